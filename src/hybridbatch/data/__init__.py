"""Data: the vendored raw files (checksums, LAReQA / Tatoeba loaders), the parallel questions a run trains on,
and extra training sources."""
