"""Stage `bm25`: the lexical reference for monolingual retrieval (Mo. only) on a fold's evaluation dataset.

    python src/stages/bm25.py --run mlqa2xquad-bm25 --fold mlqa2xquad [--params params.yaml]

Evaluates the same paragraph sample as the dense runs (``evaluate.sample_fraction`` / ``sample_seed``).
Writes results/<run>/metrics.json (a ``config`` block and the same keys as a dense run's Mo. metrics;
Cr./Mul. are not computed) and results/<run>/per_query.parquet.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hybridbatch.evaluation.bm25 import bm25_lareqa
from hybridbatch.evaluation.lareqa import headline
from hybridbatch.data.raw import DataError, load_prepared, sample_paragraphs
from hybridbatch.io import atomic_path, write_json
from hybridbatch.params import FoldError, ParamsError, fail, load_fold, section, setup_logging
from hybridbatch.records import RunRecord


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="run name: results/<run>/")
    ap.add_argument("--fold", required=True, help="a key of the `folds` section: its `eval` dataset is evaluated")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    setup_logging()
    try:
        p = section(args.params, "bm25")
        sample = section(args.params, "evaluate")
        fold = load_fold(args.params, args.fold)
        prepared = Path(p.prepared_dir)
        qs, cs = load_prepared(prepared, fold.eval)
        qs, cs = sample_paragraphs(qs, cs, sample.sample_fraction, sample.sample_seed)
        record = RunRecord(run=args.run, strategy="bm25", fold=fold.name, train_dataset=fold.train,
                           eval_dataset=fold.eval, train_languages=fold.training_languages(prepared))
    except (DataError, FoldError, ParamsError, ValueError, OSError) as exc:
        fail(exc)
    result = bm25_lareqa(qs, cs, k1=p.k1, b=p.b)
    out = Path("results") / args.run
    with atomic_path(out / "per_query.parquet") as tmp:
        result["per_query"].to_parquet(tmp, index=False)
    write_json(out / "metrics.json", {"config": record.to_json(),
                                      fold.eval: {"run": args.run, "sample_fraction": sample.sample_fraction,
                                                  **result["summary"]}})
    write_json(Path("logs") / "bm25" / f"{args.run}.json", result.get("timings", {}))  # untracked
    print(headline(args.run, fold.eval, result["summary"]) + "   (BM25: monolingual only)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
