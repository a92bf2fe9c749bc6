"""Every table, figure and the PDF from the committed results -- only from a whole study.

    python -m hybridbatch.pipeline.regenerate [--params params.yaml] [--check]

The report stages read every run of the study in ``params.yaml``, and DVC removes a stage's outputs before it
runs it: a report stage that stopped on a missing run would already have deleted the committed figure it makes
(and ``curves`` would have rewritten ``figures/curves/`` from part of the study). So this command checks first.
While any run of the study lacks ``results/<run>/metrics.json`` it refuses in one ``error:`` line, exit status 2,
and touches nothing; otherwise it runs ``dvc repro --force --single-item`` over :data:`STAGES` (``validate`` first,
the params' front door) with DVC's output on the terminal, and prints how long that took. ``--check`` only checks.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Sequence

from hybridbatch.grid import grid_runs
from hybridbatch.params import fail
from hybridbatch.pipeline.study import checked_params
from hybridbatch.reporting.readme import missing_runs

# the stages downstream of results/ that make figures/, paper/tables/ and paper/main.pdf, in dependency order
STAGES = ("validate", "curves", "report_main", "report_per_language", "report_bias", "report_scaling", "paper")
COMMAND = ("dvc", "repro", "--force", "--single-item", *STAGES)


def refusal(missing: list[str], total: int, results_dir: str) -> str:
    """The one line that refuses a regeneration while ``missing`` runs (of ``total``) have no results."""
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    return (f"{results_dir}/{missing[0]}/metrics.json is missing{more}: {total - len(missing)} of the study's "
            f"{total} runs have results, and the tables and figures are made from the whole study; the study runner "
            "fills results/ (docs/STUDY.md). Nothing was changed.")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hybridbatch.pipeline.regenerate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--results", default="results", help="the results directory the report stages read")
    ap.add_argument("--check", action="store_true", help="only check that every run of the study has results")
    args = ap.parse_args(argv)
    params = checked_params(args.params)  # the study runner's reader: one error line for a bad file or grid
    missing = missing_runs(args.results, params)
    total = len(dict.fromkeys(grid_runs(params)["run"]))
    if missing:
        fail(refusal(missing, total, args.results.rstrip("/")))
    print(f"every one of the study's {total} runs has results", flush=True)
    if args.check:
        return 0
    print("$ " + " ".join(COMMAND), flush=True)
    start = time.perf_counter()
    rc = subprocess.run(COMMAND).returncode
    print(f"{'regenerated' if rc == 0 else f'error: dvc repro failed (exit {rc})'} in "
          f"{time.perf_counter() - start:.0f} s", file=sys.stdout if rc == 0 else sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
