"""Stage `train`: fine-tune the base encoder with one batch sampling strategy.

    python src/stages/train.py --strategy hybrid [--params params.yaml]
    torchrun --nproc_per_node 2 src/stages/train.py --strategy hybrid     # data parallel

A killed run, started again with the same settings, resumes from its last checkpoint in
``checkpoints/<run>/`` (removed once the run has finished).
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from hybridbatch.params import load_section, setup_logging
from hybridbatch.samplers import STRATEGIES
from hybridbatch.training import TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strategy", required=True, choices=STRATEGIES)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    setup_logging()
    section = dict(load_section(args.params, "train"))
    io = {k: section.pop(k) for k in ("base_model", "prepared_dir", "fold", "strategies") if k in section}
    try:
        cfg = TrainConfig(**section)
    except ValidationError as exc:
        print(f"error: {args.params} [train]: {exc}", file=sys.stderr)
        return 2
    run = f"{io['fold']}-{args.strategy}"
    train(io["base_model"], io["prepared_dir"], args.strategy, cfg, out_dir=f"models/{run}",
          live_dir=f"results/{run}/training", checkpoint_dir=f"checkpoints/{run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
