"""Benchmark: wall time of one full LAReQA evaluation (the paper's protocol: every question and candidate).

    python benchmarks/evaluate.py [--model models/e5-small] [--dataset xquad_r] [--fraction 1.0] [--tatoeba]
    python benchmarks/evaluate.py --scoring-only [--fraction 1.0]   # scoring old | new, no model needed

Encodes every candidate and question of the dataset once (no embedding cache), scores Mo./Cr./Mul. for
every language and pair with matrix products, and prints the time of each phase, throughput, and peak RSS.
This is what one `evaluate` stage of the study costs (`evaluate.sample_fraction: 1.0`, params.yaml).
Then the scoring of XQuAD-R before | after issue 22 item 7 side by side (old: full stable sort and torch rank
counting; new: exact top 100 and numpy counts; random embeddings, results checked equal: benchmarks/run_cost.py).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from hybridbatch.evaluation.tatoeba import evaluate_tatoeba
from hybridbatch.data.raw import load_prepared, sample_paragraphs
from hybridbatch.model.encoder import DualEncoder
from hybridbatch.evaluation.lareqa import evaluate_lareqa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_cost import scoring_before_after  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/e5-small")
    ap.add_argument("--prepared", default="data/prepared")
    ap.add_argument("--dataset", default="xquad_r")
    ap.add_argument("--fraction", type=float, default=1.0, help="evaluate.sample_fraction (1.0 = full set)")
    ap.add_argument("--max-tokens", type=int, default=2048)
    ap.add_argument("--tatoeba", action="store_true", help="also time Tatoeba (all pairs, 10 languages)")
    ap.add_argument("--scoring-only", action="store_true", help="only the scoring, old | new (XQuAD-R, raw data)")
    args = ap.parse_args()
    if not args.scoring_only:
        full_evaluation(args)
    old_s, new_s, n_q, n_c = scoring_before_after(args.fraction)
    print(f"scoring XQuAD-R {n_q} x {n_c} (random 384-d embeddings, torch threads {torch.get_num_threads()}): "
          f"old {old_s:7.2f} s | new {new_s:7.2f} s  ({old_s / new_s:.1f}x; every value equal)")


def full_evaluation(args) -> None:
    t0 = time.perf_counter()
    qs, cs = sample_paragraphs(*load_prepared(args.prepared, args.dataset), args.fraction, seed=0)
    encoder = DualEncoder(args.model)
    t1 = time.perf_counter()
    result = evaluate_lareqa(encoder, qs, cs, max_tokens=args.max_tokens)
    t2 = time.perf_counter()
    s = result["summary"]
    sec = result["timings"]
    print(f"{args.dataset} (fraction {args.fraction}): {s['n_queries']} questions x {s['n_candidates']} candidates, "
          f"{len(s['languages'])} languages, torch threads {torch.get_num_threads()}")
    print(f"load data + model        : {t1 - t0:7.1f} s")
    print(f"encode candidates        : {sec['encode_candidates']:7.1f} s ({s['n_candidates'] / sec['encode_candidates']:.0f} texts/s)")
    print(f"encode questions         : {sec['encode_questions']:7.1f} s ({s['n_queries'] / sec['encode_questions']:.0f} texts/s)")
    print(f"score (every setting)    : {sec['score']:7.1f} s")
    print(f"full LAReQA evaluation   : {t2 - t1:7.1f} s wall   (mAP Mo/Cr/Mul {s['map_mo']:.3f} / {s['map_cr']:.3f} / "
          f"{s['map_mul']:.3f})")
    if args.tatoeba:
        table = pd.read_parquet(f"{args.prepared}/tatoeba.parquet")
        t3 = time.perf_counter()
        tat = evaluate_tatoeba(encoder, table, kind="query", max_tokens=args.max_tokens)
        print(f"Tatoeba ({len(table)} pairs)  : {time.perf_counter() - t3:7.1f} s wall   (mean accuracy {tat['mean']:.3f})")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
