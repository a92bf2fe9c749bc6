"""Stage `curves`: every run's training curves stacked into one table per curve (the comparison plots).

    python src/stages/curves.py --results results --out figures/curves

Writes ``<out>/<curve>.csv`` (``step, run, strategy, seed, <curve>``) for each curve of
hybridbatch.reporting.curves.CURVES; dvc.yaml declares them as top-level plots (one line per run), so
``dvc plots show`` compares strategies and seeds and ``dvc plots diff`` compares revisions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hybridbatch.reporting.curves import CURVES, collect
from hybridbatch.io import atomic_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="figures/curves")
    args = ap.parse_args(argv)
    for curve in CURVES:
        with atomic_path(Path(args.out) / f"{curve}.csv") as tmp:
            collect(args.results, curve).to_csv(tmp, index=False, float_format="%.6g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
