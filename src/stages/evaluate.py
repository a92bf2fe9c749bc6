"""Stage `evaluate`: LAReQA metrics of one model on the evaluation dataset.

    python src/stages/evaluate.py --run zeroshot --model models/e5-small [--params params.yaml]

Writes results/<run>/metrics.json (DVC metrics) and results/<run>/per_query.parquet (per-query AP, for
significance tests and distributions). Embeddings are cached under ``evaluate.cache_dir`` (keyed by the
checkpoint's content and the texts), so re-running an evaluation of an unchanged model skips encoding.
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
from hybridbatch.data import DataError, load_prepared
from hybridbatch.encoder import DualEncoder
from hybridbatch.evaluation import evaluate_lareqa
from hybridbatch.io import atomic_path, write_json
from hybridbatch.params import load_section, setup_logging


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="run name: results/<run>/")
    ap.add_argument("--model", required=True, help="checkpoint directory or hub name")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    setup_logging()
    p = load_section(args.params, "evaluate")
    torch.set_num_threads(p.get("threads") or os.cpu_count() or 1)
    prepared = Path(p["prepared_dir"])
    dataset = p["dataset"]
    try:
        qs, cs = load_prepared(prepared, dataset)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    all_questions = pd.read_parquet(prepared / "questions.parquet", columns=["dataset", "lang"])
    seen, seen_from = training_languages(args.model, all_questions, load_section(args.params, "train"),
                                         p["reference_languages"])
    encoder = DualEncoder(args.model, max_length=p["max_length"])
    if p.get("cache_dir"):
        encoder = CachingEncoder(encoder, p["cache_dir"])
    result = evaluate_lareqa(encoder, qs, cs, candidate_text=p["candidate_text"], max_tokens=p["max_tokens"],
                             seen_languages=seen)
    out = Path("results") / args.run
    metrics = {dataset: {"run": args.run, "model": args.model, "candidate_text": p["candidate_text"],
                         "seen_from": seen_from, **result["summary"]}}
    if p["tatoeba"]:
        table = pd.read_parquet(prepared / "tatoeba.parquet")
        metrics["tatoeba"] = evaluate_tatoeba(encoder, table, kind=p["tatoeba_prefix"], max_tokens=p["max_tokens"])
    with atomic_path(out / "per_query.parquet") as tmp:
        result["per_query"].to_parquet(tmp, index=False)
    write_json(out / "metrics.json", metrics)
    return 0


def training_languages(model: str, questions: pd.DataFrame, train: dict, reference: list[str]) -> tuple[list[str], str]:
    """The languages a checkpoint was fine-tuned on, else the reference list.

    A checkpoint written by the train stage (it has ``training_summary.json``) was trained on
    ``train.languages`` of ``train.dataset`` (all of the dataset's languages when null) unless its summary
    names them. A model without a summary (the zero-shot encoder) is split by the fold's training languages
    (``evaluate.reference_languages``), so its seen/unseen numbers line up with the trained runs'.
    """
    summary = Path(model) / "training_summary.json"
    if not summary.is_file():
        return sorted(reference), "reference_languages"
    langs = json.loads(summary.read_text(encoding="utf-8")).get("train_languages")
    if langs:
        return sorted(langs), "training_summary"
    if train.get("languages"):
        return sorted(train["languages"]), "params:train.languages"
    return sorted(set(questions.loc[questions["dataset"] == train["dataset"], "lang"])), "params:train.dataset"

if __name__ == "__main__":
    sys.exit(main())
