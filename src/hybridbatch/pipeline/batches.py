"""The study with N workers side by side, committed batch by batch.

    python -m hybridbatch.pipeline.batches --workers 2 --commit --until 23:30

The units of :func:`hybridbatch.pipeline.study.units` in the study's order (the pre-registered cut order), taken
``--per-worker`` x N at a time (default 2 x 2 = 4 units, ~20-25 min on 2 cores) through
:func:`hybridbatch.pipeline.workers.run`: N worker copies of this workspace with ``execution.threads`` =
cores // N, whole units per worker, then a ``collect`` that restores every stage here from DVC's run cache. After
each batch, with ``--commit``, the batch is one commit (``dvc.lock``, ``build/code``, every unit's
``results/<run>/`` and ``cards/<run>/``) together with the generated status blocks of README.md and docs/, which
are refreshed first (:mod:`hybridbatch.reporting.readme`), so every commit is a consistent state that the README
test accepts. Which units are finished is decided as in ``study run`` (DVC's own test against ``dvc.lock``,
:func:`hybridbatch.pipeline.study.pending_stages`), so the two runners continue each other's work.

It starts no batch that would end after ``--until`` (where a whole batch would, it takes one unit fewer per
worker until it fits or is one unit per worker): the first batch is estimated from ``docs/timings.tsv``
(each unit at its families' medians, divided by N and multiplied by :data:`SLOWDOWN`: a 1-thread worker is
slower than the 2-thread stages measured there; 15 min a family not measured) or from ``--unit-minutes`` (the
batch log's "N units in M min" gives it: M x N workers / N units), later ones from the wall time of the batches
this invocation ran. ``touch logs/study.pause`` holds it between batches. When no unit is left it runs
:func:`hybridbatch.pipeline.study.reproduce_all` (the curves, reports and paper) and refreshes the README -- with
``--only``, only when no unit of the whole study is left (:func:`hybridbatch.pipeline.study.finish_if_complete`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from hybridbatch.params import read_params
from hybridbatch.pipeline import study, workers

SLOWDOWN = 1.5  # a unit on a 1-thread worker vs the same stages at 2 threads (training 1.18x, encoding 2x slower)


def _commit_batch(batch: list[study.Unit], params: dict, n_workers: int) -> None:
    """One commit for the batch: ``dvc.lock``, ``build/code``, every unit's paths and the refreshed blocks."""
    written = study.refresh_readme(params)
    runs = ", ".join(u.run for u in batch)
    both = study.Unit(runs, "batch", [], [p for u in batch for p in u.paths] + ["build/code", *written])
    study.commit(both, f"study: {runs} trained and evaluated ({len(batch)} units, "
                       f"{n_workers} workers); results, dvc.lock, status blocks")


def run(params_path: str, n_workers: int, until: dt.datetime | None, do_commit: bool, only: Sequence[str] = (),
        per_worker: int = 2, unit_minutes: float | None = None) -> int:
    params = read_params(params_path)
    _, all_units = study.units(params)
    todo = [u for u in all_units if not only or u.study in only]
    # wall seconds of one unit on one worker: --unit-minutes, then measured on this invocation's batches
    slot: float | None = unit_minutes * 60 if unit_minutes else None
    while True:
        while study.PAUSE.exists():  # before deciding what is left: a pause is for edits that may change it
            time.sleep(10)
        left = study.left_units(todo)
        if not left:
            break
        known = study.measured_seconds()

        def estimate_of(units: list[study.Unit]) -> float:
            return (slot * len(units) / n_workers if slot is not None else
                    SLOWDOWN * sum(study.estimate_seconds(u, known) for u in units) / n_workers)

        batch = left[:per_worker * n_workers]
        while (until is not None and len(batch) > n_workers
               and dt.datetime.now() + dt.timedelta(seconds=estimate_of(batch)) > until):
            batch = batch[:len(batch) - n_workers]  # a smaller batch that still fits: one unit fewer per worker
        estimate = estimate_of(batch)
        if until is not None and dt.datetime.now() + dt.timedelta(seconds=estimate) > until:
            study._log(f"batches: stop: the next batch ({len(batch)} units) would take ~{estimate / 60:.0f} min, "
                       f"past {until:%H:%M}")
            return 0
        study._log(f"batches: {len(left)} of {len(todo)} units left; next {len(batch)} on {n_workers} workers "
                   f"(~{estimate / 60:.0f} min): {' '.join(u.run for u in batch)}")
        start = time.monotonic()
        workers.run(Path("."), n_workers, [s for u in batch for s in u.stages if not s.startswith("shrink_model@")])
        wall = time.monotonic() - start
        slot = wall * n_workers / len(batch)
        study._log(f"batches: {len(batch)} units in {wall / 60:.1f} min")
        if do_commit:
            _commit_batch(batch, params, n_workers)
    if not study.finish_if_complete(all_units, do_commit):  # with --only, other studies' units may be left
        return 0
    written = study.refresh_readme(params)
    if do_commit and written:
        subprocess.run(["git", "commit", "-q", "-m", "study: README and docs/ blocks from the finished study", "--",
                        *written], check=False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hybridbatch.pipeline.batches", description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2, help="worker copies side by side (default 2)")
    ap.add_argument("--per-worker", type=int, default=2, help="units per worker in one batch (default 2)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--until", help="HH:MM (today, or tomorrow if already past): start no batch that would end later")
    ap.add_argument("--commit", action="store_true", help="git-commit each batch when it finishes")
    ap.add_argument("--only", nargs="*", default=[], help="studies to run (reference main ladder alpha size languages)")
    ap.add_argument("--unit-minutes", type=float, help="a unit's wall minutes on one worker, for the first batch's "
                    "estimate (default: docs/timings.tsv medians x SLOWDOWN; later batches: measured)")
    args = ap.parse_args(argv)
    if args.workers < 1 or args.per_worker < 1:
        ap.error(f"--workers {args.workers} / --per-worker {args.per_worker}: each must be at least 1")
    until = study.parse_until(args.until) if args.until else None
    study.checked_params(args.params)
    return run(args.params, args.workers, until, args.commit, args.only, args.per_worker, args.unit_minutes)


if __name__ == "__main__":
    sys.exit(main())
