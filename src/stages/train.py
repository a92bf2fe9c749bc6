"""Stage `train`: fine-tune a base encoder with one batch sampling strategy (one run of the grid).

    python src/stages/train.py --run mlqa2xquad-hybrid-s1 --fold mlqa2xquad --strategy hybrid --seed 1
    python src/stages/train.py --run mlqa2xquad-L4-xy-s1 --fold mlqa2xquad --strategy xy --seed 1 \\
        --base models/e5-small-L4                                   # model-size ladder
    python src/stages/train.py ... --n-languages 2                  # the fold's first 2 training languages
    python src/stages/train.py ... --strategy hybrid --alpha 0.25   # alpha sweep
    python src/stages/train.py --run mlqa2xquad-steps480-xy-s13 ... --steps 480   # budget ladder
    torchrun --nproc_per_node 2 src/stages/train.py ...            # data parallel (or execution.processes: 2)

Hyperparameters come from the ``train`` section of params.yaml, the training dataset and the language order
from ``folds.<fold>``; threads and the checkpoint interval from ``execution`` (not a DVC param: they never
change the result). The checkpoint goes to ``models/<run>``, the curves to ``results/<run>/training``, the
wall-clock timing to ``logs/train/<run>.json`` (untracked). A killed run, started again with the same
settings, resumes from its last checkpoint in ``checkpoints/<run>/`` (removed once the run has finished).
Exit status 2 with a one-line ``error:`` for bad params or data that cannot serve the run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from pydantic import ValidationError

from hybridbatch.params import (FoldError, ParamsError, TrainConfig, fail, load_fold, section, setup_logging)
from hybridbatch.records import RunRecord
from hybridbatch.strategies import TRAINED
from hybridbatch.model.encoder import EncoderError, check_checkpoint, check_max_length
from hybridbatch.training.loop import train
from hybridbatch.data.training import DataFitError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="run name: models/<run>, results/<run>/training")
    ap.add_argument("--fold", required=True, help="a key of the `folds` section of params.yaml")
    ap.add_argument("--strategy", required=True, choices=TRAINED)
    ap.add_argument("--seed", required=True, type=int, help="seeds the sampler, the validation split and torch")
    ap.add_argument("--alpha", type=float, default=None, help="hybrid: P(monolingual batch) (default: train.alpha)")
    ap.add_argument("--steps", type=int, default=None,
                    help="optimiser steps of this run (default: train.steps); the budget ladder. The run's record "
                         "(results/<run>/metrics.json config.steps) says its steps; warm-up stays train.warmup_steps")
    ap.add_argument("--base", default=None, help="base checkpoint (default: train.base_model)")
    ap.add_argument("--n-languages", type=int, default=None,
                    help="train on the first N languages of the fold's language_order (default: all)")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    setup_logging()
    if args.alpha is not None and args.strategy != "hybrid":
        fail(f"--alpha only applies to --strategy hybrid (got {args.strategy})")
    try:
        params = section(args.params, "train")
        execution = section(args.params, "execution")
        fold = load_fold(args.params, args.fold)
        languages = fold.first_languages(args.n_languages)
        check_inputs(args, params)
    except (ParamsError, FoldError, EncoderError) as exc:
        fail(exc)
    if execution.processes > 1 and "WORLD_SIZE" not in os.environ:  # data parallel: relaunch under torchrun
        # "--": torchrun's parser would otherwise take this script's --run for an abbreviation of its --run-path
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={execution.processes}",
               "--", os.path.abspath(__file__), *(sys.argv[1:] if argv is None else argv)]
        return subprocess.call(cmd)
    hyper = params.model_dump(exclude={"base_model", "prepared_dir"})
    if args.alpha is not None:
        hyper["alpha"] = args.alpha
    if args.steps is not None:
        hyper["steps"] = args.steps
    try:
        cfg = TrainConfig(**hyper, dataset=fold.train, languages=languages, seed=args.seed,
                          threads=execution.threads, checkpoint_every=execution.checkpoint_every)
    except ValidationError as exc:
        err = exc.errors()[0]
        fail(f"{args.params}: train.{'.'.join(map(str, err['loc']))} for run {args.run}: {err['msg']} "
             f"(got {err['input']!r})")
    base = args.base or params.base_model
    run = RunRecord(run=args.run, strategy=args.strategy, fold=args.fold, train_dataset=fold.train,
                    eval_dataset=fold.eval, seed=args.seed, n_languages=args.n_languages, base_model=base)
    try:
        done = train(base, params.prepared_dir, args.strategy, cfg, out_dir=f"models/{args.run}",
                     live_dir=f"results/{args.run}/training", checkpoint_dir=f"checkpoints/{args.run}", run=run,
                     timing_path=f"logs/train/{args.run}.json")
    except (DataFitError, EncoderError) as exc:
        fail(f"run {args.run}: {exc}")
    if done.get("validation") and os.environ.get("RANK", "0") == "0":  # once, not per data-parallel process
        last = done["validation"][-1]
        print(f"models/{args.run}: {done['steps']} steps in {done['train_seconds'] / 60:.1f} min, kept step "
              f"{done['config']['best_step']}; validation loss {last['val_loss']:.4f} at step {last['step']} "
              f"(monolingual and cross-lingual curves: results/{args.run}/training)", flush=True)
    return 0


def check_inputs(args: argparse.Namespace, params) -> None:
    """The run's inputs, before any work: a seed numpy and torch accept, the prepared tables, the base checkpoint
    (its config only) and the token lengths it can serve; :class:`ParamsError` / :class:`EncoderError` otherwise."""
    if args.seed < 0:
        raise ParamsError(f"--seed: {args.seed} < 0 (seeds are non-negative integers)")
    if args.steps is not None and args.steps < 1:
        raise ParamsError(f"--steps: {args.steps} < 1 (a budget is a positive number of optimiser steps)")
    if not (Path(params.prepared_dir) / "questions.parquet").is_file():
        raise ParamsError(f"{args.params}: train.prepared_dir: {params.prepared_dir!r} has no questions.parquet "
                          "(run `dvc repro prepare`)")
    base = args.base or params.base_model
    config = check_checkpoint(base, what="--base" if args.base else f"{args.params}: train.base_model")
    for key in ("max_query_length", "max_passage_length"):
        check_max_length(base, config, getattr(params, key), what=f"{args.params}: train.{key}")


if __name__ == "__main__":
    sys.exit(main())
