"""Stage `shrink_model`: a smaller encoder of the same family, for the offline model-size ladder.

    python src/stages/shrink_model.py --base models/e5-small --layers 4 --out models/e5-small-L4

Keeps the first ``--layers`` transformer layers of the base checkpoint (embeddings, tokenizer, pooling
and prefixes unchanged) and writes a standard Hugging Face checkpoint, atomically, with ``ladder.json``
recording the parameter counts. Online, the ladder is the real families (configs/paper.yaml).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hybridbatch.io import atomic_dir, write_json
from hybridbatch.params import setup_logging


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, type=Path, help="checkpoint directory to shrink")
    ap.add_argument("--layers", required=True, type=int, help="number of leading transformer layers to keep")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    setup_logging()
    from hybridbatch.model.encoder import DualEncoder

    if not (args.base / "config.json").is_file():
        print(f"error: {args.base} is not a checkpoint directory (no config.json); run `dvc repro import_model`",
              file=sys.stderr)
        return 2
    try:
        encoder = DualEncoder(args.base)  # EncoderError (a ValueError): weights that cannot be loaded
        encoder.keep_layers(args.layers)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with atomic_dir(args.out) as tmp:
        encoder.save(tmp)
        write_json(Path(tmp) / "ladder.json", {"base_model": str(args.base), **encoder.parameter_counts()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
