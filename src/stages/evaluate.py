"""Stage `evaluate`: LAReQA metrics of one model on its fold's evaluation dataset (one run of the grid).

    python src/stages/evaluate.py --run mlqa2xquad-hybrid-s1 --model models/mlqa2xquad-hybrid-s1 --fold mlqa2xquad
    python src/stages/evaluate.py --run mlqa2xquad-zeroshot --model models/e5-small --fold mlqa2xquad
    python src/stages/evaluate.py ... --no-tatoeba          # scaling runs: retrieval metrics only

Writes results/<run>/metrics.json (DVC metrics: a ``config`` block -- the run's place in the grid -- and
the metrics of the evaluation dataset, plus Tatoeba) and results/<run>/per_query.parquet (per-query
values, for significance tests and distributions). The evaluation set is ``evaluate.sample_fraction`` of
the dataset's paragraphs (seeded; 1.0 = the full set). Embeddings are cached under ``evaluate.cache_dir``
(keyed by the checkpoint's content and the texts), so re-running an unchanged model skips encoding.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd
import torch

from hybridbatch.alignment import evaluate_tatoeba
from hybridbatch.cache import CachingEncoder
from hybridbatch.data import DataError, load_prepared, sample_paragraphs
from hybridbatch.encoder import DualEncoder
from hybridbatch.evaluation import evaluate_lareqa
from hybridbatch.io import atomic_path, write_json
from hybridbatch.params import FoldError, load_fold, load_section, setup_logging


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="run name: results/<run>/")
    ap.add_argument("--model", required=True, help="checkpoint directory or hub name")
    ap.add_argument("--fold", required=True, help="a key of the `folds` section: its `eval` dataset is evaluated")
    ap.add_argument("--no-tatoeba", action="store_true", help="skip Tatoeba bitext retrieval")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    setup_logging()
    p = load_section(args.params, "evaluate")
    torch.set_num_threads(p.get("threads") or os.cpu_count() or 1)
    prepared = Path(p["prepared_dir"])
    try:
        fold = load_fold(args.params, args.fold)
        qs, cs = load_prepared(prepared, fold.eval)
        qs, cs = sample_paragraphs(qs, cs, p["sample_fraction"], p["sample_seed"])
    except (DataError, FoldError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    encoder = DualEncoder(args.model, max_length=p["max_length"])
    config = run_config(args.run, args.model, fold, prepared, encoder)
    if p.get("cache_dir"):
        encoder = CachingEncoder(encoder, p["cache_dir"])
    result = evaluate_lareqa(encoder, qs, cs, candidate_text=p["candidate_text"], max_tokens=p["max_tokens"],
                             seen_languages=config["train_languages"])
    metrics = {"config": config,
               fold.eval: {"run": args.run, "model": args.model, "candidate_text": p["candidate_text"],
                           "sample_fraction": p["sample_fraction"], **result["summary"]}}
    if not args.no_tatoeba:
        table = pd.read_parquet(prepared / "tatoeba.parquet")
        if p.get("tatoeba_pairs"):
            table = table.groupby("lang3", sort=False).head(p["tatoeba_pairs"])
        metrics["tatoeba"] = evaluate_tatoeba(encoder, table, kind=p["tatoeba_prefix"], max_tokens=p["max_tokens"])
    out = Path("results") / args.run
    with atomic_path(out / "per_query.parquet") as tmp:
        result["per_query"].to_parquet(tmp, index=False)
    write_json(out / "metrics.json", metrics)
    return 0


def run_config(run: str, model: str, fold, prepared: Path, encoder: DualEncoder) -> dict:
    """The run's place in the grid: from the checkpoint's ``training_summary.json`` when the train stage
    wrote it, else a zero-shot encoder (its seen languages: those of the fold's training dataset, so its
    seen/unseen split lines up with the trained runs')."""
    counts = encoder.parameter_counts()
    summary = Path(model) / "training_summary.json"
    if summary.is_file():
        trained = json.loads(summary.read_text(encoding="utf-8"))
        config = dict(trained["config"])
    else:
        questions = pd.read_parquet(prepared / "questions.parquet", columns=["dataset", "lang"])
        config = {"strategy": "zeroshot", "seed": None, "alpha": None, "n_languages": None, "base_model": model,
                  "train_languages": sorted(set(questions.loc[questions["dataset"] == fold.train, "lang"]))}
    config.update({"run": run, "fold": fold.name, "eval_dataset": fold.eval, "layers": counts["layers"],
                   "parameters": counts["parameters"],
                   "non_embedding_parameters": counts["non_embedding_parameters"]})
    return dict(sorted(config.items()))


if __name__ == "__main__":
    sys.exit(main())
