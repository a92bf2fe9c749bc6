"""Stage `evaluate`: LAReQA metrics of one model on the evaluation dataset.

    python src/stages/evaluate.py --run zeroshot --model models/e5-small [--params params.yaml]

Writes results/<run>/metrics.json (DVC metrics) and results/<run>/per_query.parquet (per-query AP, for
significance tests and distributions).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import torch

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
    qs = pd.read_parquet(prepared / "questions.parquet")
    cs = pd.read_parquet(prepared / "candidates.parquet")
    qs, cs = qs[qs["dataset"] == dataset], cs[cs["dataset"] == dataset]
    if qs.empty:
        print(f"error: no questions of dataset {dataset!r} in {prepared}", file=sys.stderr)
        return 2
    encoder = DualEncoder(args.model, max_length=p["max_length"])
    result = evaluate_lareqa(encoder, qs, cs, candidate_text=p["candidate_text"], max_tokens=p["max_tokens"])
    out = Path("results") / args.run
    summary = {"run": args.run, "model": args.model, "candidate_text": p["candidate_text"], **result["summary"]}
    with atomic_path(out / "per_query.parquet") as tmp:
        result["per_query"].to_parquet(tmp, index=False)
    write_json(out / "metrics.json", {dataset: summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
