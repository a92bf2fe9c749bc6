"""Stage `bm25`: the lexical reference for monolingual retrieval (Mo. only) on the evaluation dataset.

    python src/stages/baseline_bm25.py [--params params.yaml]

Writes results/bm25/metrics.json (same keys as a dense run's Mo. metrics; Cr./Mul. are not computed) and
results/bm25/per_query.parquet.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hybridbatch.baselines import bm25_lareqa
from hybridbatch.data import DataError, load_prepared
from hybridbatch.io import atomic_path, write_json
from hybridbatch.params import load_section, setup_logging


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    setup_logging()
    p = load_section(args.params, "bm25")
    prepared, dataset = Path(p["prepared_dir"]), p["dataset"]
    try:
        qs, cs = load_prepared(prepared, dataset)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = bm25_lareqa(qs, cs, k1=p["k1"], b=p["b"])
    out = Path("results") / "bm25"
    with atomic_path(out / "per_query.parquet") as tmp:
        result["per_query"].to_parquet(tmp, index=False)
    write_json(out / "metrics.json", {dataset: {"run": "bm25", **result["summary"]}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
