"""Stage `evaluate`: LAReQA metrics of one model on its fold's evaluation dataset (one run of the grid).

    python src/stages/evaluate.py --run mlqa2xquad-hybrid-s1 --model models/mlqa2xquad-hybrid-s1 --fold mlqa2xquad
    python src/stages/evaluate.py --run mlqa2xquad-zeroshot --model models/e5-small --fold mlqa2xquad
    python src/stages/evaluate.py ... --no-tatoeba          # scaling runs, later seeds: retrieval metrics only
    python src/stages/evaluate.py ... --tatoeba-if-seed 13  # main runs: Tatoeba only for a seed in grid.tatoeba_seeds

Writes results/<run>/metrics.json (DVC metrics: the run's record -- ``config``, its place in the grid,
see hybridbatch.records -- the metrics of the evaluation dataset, plus Tatoeba) and
results/<run>/per_query.parquet (per-query values, for significance tests and distributions). The
evaluation set is ``evaluate.sample_fraction`` of the dataset's paragraphs (seeded; 1.0 = the full set).
Embeddings are cached under ``execution.cache_dir`` (keyed by the checkpoint's content and the texts), so
re-running an unchanged model skips encoding; threads come from ``execution.threads``. Neither is a DVC
param: they never change the result. Exit status 2 with a one-line ``error:`` for bad params or data,
before the model is loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd
import torch

from hybridbatch.evaluation.tatoeba import evaluate_tatoeba
from hybridbatch.evaluation.cache import CachingEncoder
from hybridbatch.data.raw import DataError, load_prepared, sample_paragraphs
from hybridbatch.model.encoder import DualEncoder, EncoderError, check_checkpoint, check_max_length
from hybridbatch.evaluation.lareqa import evaluate_lareqa, headline
from hybridbatch.io import atomic_path, write_json
from hybridbatch.params import FoldError, ParamsError, fail, load_fold, section, setup_logging
from hybridbatch.records import RunRecord


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="run name: results/<run>/")
    ap.add_argument("--model", required=True, help="checkpoint directory or hub name")
    ap.add_argument("--fold", required=True, help="a key of the `folds` section: its `eval` dataset is evaluated")
    ap.add_argument("--tatoeba", action=argparse.BooleanOptionalAction, default=True,
                    help="Tatoeba bitext retrieval (default: computed); --no-tatoeba skips it: metrics.json then "
                         "has no `tatoeba` key (the report reads that as not computed)")
    ap.add_argument("--tatoeba-if-seed", type=int, default=None, metavar="SEED",
                    help="Tatoeba only if SEED is in grid.tatoeba_seeds of --params (the main table's runs)")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    setup_logging()
    try:
        p = section(args.params, "evaluate")
        execution = section(args.params, "execution")
        fold = load_fold(args.params, args.fold)
        if args.tatoeba_if_seed is not None:  # the main table: Tatoeba for the seeds grid.tatoeba_seeds names
            args.tatoeba &= args.tatoeba_if_seed in section(args.params, "grid").tatoeba_seeds
        config = check_checkpoint(args.model, what="--model")  # --model: its config only (no weights), before any other work
        check_max_length(args.model, config, p.max_length, what=f"{args.params}: evaluate.max_length")
        prepared = Path(p.prepared_dir)
        qs, cs = load_prepared(prepared, fold.eval)
        qs, cs = sample_paragraphs(qs, cs, p.sample_fraction, p.sample_seed)
        record = run_record(args.run, args.model, fold, prepared)
    except (DataError, EncoderError, FoldError, ParamsError, ValueError, OSError) as exc:
        fail(exc)
    torch.set_num_threads(execution.threads or os.cpu_count() or 1)
    try:
        encoder = DualEncoder(args.model, max_length=p.max_length)
    except EncoderError as exc:
        fail(exc)
    if torch.cuda.is_available():  # the same embeddings up to float rounding; where the encoding runs is execution
        encoder = encoder.to("cuda")
    counts = encoder.parameter_counts()
    record = record.replace(layers=counts["layers"], parameters=counts["parameters"],
                            non_embedding_parameters=counts["non_embedding_parameters"])
    if execution.cache_dir:
        encoder = CachingEncoder(encoder, execution.cache_dir)
    result = evaluate_lareqa(encoder, qs, cs, candidate_text=p.candidate_text, max_tokens=p.max_tokens,
                             seen_languages=list(record.train_languages))
    metrics = {"config": record.to_json(),
               fold.eval: {"run": args.run, "model": args.model, "candidate_text": p.candidate_text,
                           "sample_fraction": p.sample_fraction, **result["summary"]}}
    if args.tatoeba:
        table = pd.read_parquet(prepared / "tatoeba.parquet")
        if p.tatoeba_pairs:
            table = table.groupby("lang3", sort=False).head(p.tatoeba_pairs)
        metrics["tatoeba"] = evaluate_tatoeba(encoder, table, kind=p.tatoeba_prefix, max_tokens=p.max_tokens)
    out = Path("results") / args.run
    with atomic_path(out / "per_query.parquet") as tmp:
        result["per_query"].to_parquet(tmp, index=False)
    write_json(out / "metrics.json", metrics)
    write_json(Path("logs") / "evaluate" / f"{args.run}.json", result.get("timings", {}))  # untracked
    print(headline(args.run, fold.eval, metrics[fold.eval], metrics.get("tatoeba")), flush=True)
    return 0


def run_record(run: str, model: str, fold, prepared: Path) -> RunRecord:
    """The run's record: the one training wrote into the checkpoint's ``training_summary.json``, else that
    of a zero-shot encoder (seen languages: those of the fold's training dataset)."""
    summary = Path(model) / "training_summary.json"
    if summary.is_file():
        record = RunRecord.from_json(json.loads(summary.read_text(encoding="utf-8"))["config"])
    else:
        record = RunRecord(run=run, strategy="zeroshot", base_model=model, train_dataset=fold.train,
                           train_languages=fold.training_languages(prepared))
    return record.replace(run=run, fold=fold.name, eval_dataset=fold.eval)


if __name__ == "__main__":
    sys.exit(main())
