"""Stage `train`: fine-tune a base encoder with one batch sampling strategy (one run of the grid).

    python src/stages/train.py --run mlqa2xquad-hybrid-s1 --fold mlqa2xquad --strategy hybrid --seed 1
    python src/stages/train.py --run mlqa2xquad-L4-xy-s1 --fold mlqa2xquad --strategy xy --seed 1 \\
        --base models/e5-small-L4                                   # model-size ladder
    python src/stages/train.py ... --n-languages 2                  # the fold's first 2 training languages
    python src/stages/train.py ... --strategy hybrid --alpha 0.25   # alpha sweep
    torchrun --nproc_per_node 2 src/stages/train.py ...            # data parallel

Hyperparameters come from the ``train`` section of params.yaml, the training dataset and the language order
from ``folds.<fold>``. The checkpoint goes to ``models/<run>`` and the curves to ``results/<run>/training``.
A killed run, started again with the same settings, resumes from its last checkpoint in
``checkpoints/<run>/`` (removed once the run has finished).
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from hybridbatch.params import FoldError, load_fold, load_section, setup_logging
from hybridbatch.samplers import STRATEGIES
from hybridbatch.training import TrainConfig, train

IO_KEYS = ("base_model", "prepared_dir")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="run name: models/<run>, results/<run>/training")
    ap.add_argument("--fold", required=True, help="a key of the `folds` section of params.yaml")
    ap.add_argument("--strategy", required=True, choices=STRATEGIES)
    ap.add_argument("--seed", required=True, type=int, help="seeds the sampler, the validation split and torch")
    ap.add_argument("--alpha", type=float, default=None, help="hybrid: P(monolingual batch) (default: train.alpha)")
    ap.add_argument("--base", default=None, help="base checkpoint (default: train.base_model)")
    ap.add_argument("--n-languages", type=int, default=None,
                    help="train on the first N languages of the fold's language_order (default: all)")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    setup_logging()
    section = dict(load_section(args.params, "train"))
    io = {k: section.pop(k) for k in IO_KEYS if k in section}
    try:
        fold = load_fold(args.params, args.fold)
        languages = fold.first_languages(args.n_languages)
    except FoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.alpha is not None:
        if args.strategy != "hybrid":
            print(f"error: --alpha only applies to --strategy hybrid (got {args.strategy})", file=sys.stderr)
            return 2
        section["alpha"] = args.alpha
    try:
        cfg = TrainConfig(**section, dataset=fold.train, languages=languages, seed=args.seed)
    except ValidationError as exc:
        print(f"error: {args.params} [train] for run {args.run}: {exc}", file=sys.stderr)
        return 2
    base = args.base or io["base_model"]
    run_config = {"run": args.run, "fold": args.fold, "strategy": args.strategy, "seed": args.seed,
                  "alpha": cfg.alpha if args.strategy == "hybrid" else None, "base_model": base,
                  "n_languages": args.n_languages}
    train(base, io["prepared_dir"], args.strategy, cfg, out_dir=f"models/{args.run}",
          live_dir=f"results/{args.run}/training", checkpoint_dir=f"checkpoints/{args.run}", run_config=run_config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
