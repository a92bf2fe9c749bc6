"""The reproducibility contract, checked (docs/REPRODUCIBILITY.md): re-train and re-evaluate one run in a copy
of the workspace and compare its headline metrics with the committed ones.

    python -m hybridbatch.pipeline.reproduce mlqa2xquad-hybrid-s13                      # tolerance 2.5e-4
    python -m hybridbatch.pipeline.reproduce mlqa2xquad-hybrid-s13 --tolerance 1e-5 --dir build/reproduce

1. The run's stages: those writing ``models/<run>`` or ``results/<run>/metrics.json`` (its ``train*`` and
   ``evaluate*`` entries; for a zero-shot or BM25 run the evaluation alone), found in DVC's stage graph.
2. A copy of the workspace at ``--dir`` (:func:`hybridbatch.pipeline.workers.make_clone`: the working-tree
   files, its own DVC repository over this workspace's cache; a previous copy there is replaced).
3. There, ``dvc repro --force --no-commit <those stages>``: the stages and their whole upstream (validate,
   prepare, import_model, the code stamps, shrink_model where the run has one) run again -- ``--force``:
   nothing is restored from DVC's run cache; ``--no-commit``: nothing re-run enters the shared cache or its
   run cache, so a re-run on another CPU type never stands in for the committed outputs. Log:
   ``<dir>/reproduce.log``; ``execution.threads`` is the workspace's (weights are bit-identical only at the
   same thread count).
4. Every headline metric of ``results/<run>/metrics.json`` (:data:`hybridbatch.evaluation.lareqa.HEADLINE`
   of each evaluation set, Tatoeba's ``en2x`` / ``x2en`` / ``mean``) and the final validation loss of
   ``results/<run>/training/metrics.json``: committed value, re-run value, difference, and whether
   ``|re-run - committed| <= tolerance * max(1, |committed|)`` (absolute for scores in [0, 1], relative for
   larger values such as the rank distance). A metric absent from either side is a failure.

Exit status: 0 every metric within the tolerance; 1 one outside it or missing, or the re-run failed; 2 a bad
run name or option (one line).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

DEFAULT_TOLERANCE = 2.5e-4  # why: docs/REPRODUCIBILITY.md (one near-tie flip; 1/10 of a seed's sd)
TATOEBA = ("en2x", "x2en", "mean")


class ReproduceError(ValueError):
    """A run that cannot be reproduced here (unknown name, nothing committed); the message is the reason."""


# ------------------------------------------------------------------------------------------- the metrics
def headline_metrics(metrics: dict, training: dict | None = None) -> dict[str, float]:
    """The headline numbers of a run's ``metrics.json`` (and its ``training/metrics.json``), flat:
    ``<dataset>.<metric>``, ``tatoeba.<direction>``, ``training.val_loss``."""
    from hybridbatch.evaluation.lareqa import HEADLINE

    out: dict[str, float] = {}
    for block, values in metrics.items():
        if not isinstance(values, dict) or block == "config":
            continue
        keys = TATOEBA if block == "tatoeba" else HEADLINE
        out.update({f"{block}.{k}": float(values[k]) for k in keys
                    if isinstance(values.get(k), (int, float)) and not isinstance(values.get(k), bool)})
    val = ((training or {}).get("val") or {}).get("loss")
    if isinstance(val, (int, float)):
        out["training.val_loss"] = float(val)
    return out


@dataclass(frozen=True)
class Row:
    """One metric compared: ``None`` where a side lacks it (then never within the tolerance)."""
    name: str
    committed: float | None
    rerun: float | None

    @property
    def diff(self) -> float | None:
        return None if self.committed is None or self.rerun is None else self.rerun - self.committed

    def within(self, tolerance: float) -> bool:
        d = self.diff
        return d is not None and math.isfinite(d) and abs(d) <= tolerance * max(1.0, abs(self.committed))


def compare(committed: dict[str, float], rerun: dict[str, float]) -> list[Row]:
    """Every metric of either side, in the committed file's order (then any only the re-run has)."""
    names = list(committed) + [k for k in rerun if k not in committed]
    return [Row(n, committed.get(n), rerun.get(n)) for n in names]


def report(run: str, rows: list[Row], tolerance: float) -> tuple[str, bool]:
    """The comparison as a fixed-width table and a verdict line; ``True`` when every metric is within."""
    def num(v: float | None) -> str:
        return "missing" if v is None else f"{v:.9g}"

    width = max([len("metric"), *(len(r.name) for r in rows)])
    lines = [f"{'metric':<{width}}  {'committed':>14}  {'re-run':>14}  {'difference':>11}  within {tolerance:g}"]
    for r in rows:
        diff = "--" if r.diff is None else f"{r.diff:+.2e}"
        verdict = "yes" if r.within(tolerance) else ("MISSING" if r.diff is None else "NO")
        lines.append(f"{r.name:<{width}}  {num(r.committed):>14}  {num(r.rerun):>14}  {diff:>11}  {verdict}")
    bad = [r.name for r in rows if not r.within(tolerance)]
    ok = bool(rows) and not bad
    lines.append(f"reproduce {run}: " + (f"all {len(rows)} metrics within {tolerance:g}" if ok else
                                         f"{len(bad)} of {len(rows)} metrics not within {tolerance:g}: "
                                         f"{', '.join(bad[:6])}{' ...' if len(bad) > 6 else ''}"
                                         if rows else "no headline metric to compare"))
    return "\n".join(lines), ok


def read_metrics(root: Path, run: str) -> dict[str, float]:
    """The headline metrics of ``results/<run>`` under ``root`` (empty when its metrics.json is absent)."""
    path = root / "results" / run / "metrics.json"
    if not path.is_file():
        return {}
    training = path.parent / "training" / "metrics.json"
    return headline_metrics(json.loads(path.read_text(encoding="utf-8")),
                            json.loads(training.read_text(encoding="utf-8")) if training.is_file() else None)


# --------------------------------------------------------------------------------------------- the re-run
def run_stages(graph, run: str) -> list[str]:
    """The stages writing ``models/<run>`` or ``results/<run>/metrics.json``, in DVC's order;
    :class:`ReproduceError` naming a few runs when there is none."""
    wanted = {str(Path("models") / run), str(Path("results") / run / "metrics.json")}
    outs = {name: {str(Path(p)) for p in graph.cached_outs.get(name, []) + graph.uncached_outs.get(name, [])}
            for name in graph.order}
    stages = [name for name in graph.order if outs[name] & wanted]
    if not stages:
        runs = sorted({Path(p).parent.name for ps in outs.values() for p in ps
                       if p.startswith("results/") and p.endswith("/metrics.json") and p.count("/") == 2})
        raise ReproduceError(f"unknown run {run!r}: no stage writes results/{run}/metrics.json "
                             f"(runs: {', '.join(runs[:4])}{', ...' if len(runs) > 4 else ''})")
    return stages


def repro_args(stages: Sequence[str]) -> list[str]:
    """``dvc`` arguments re-running ``stages`` and their upstream, restoring and committing nothing."""
    return ["repro", "--force", "--no-commit", *stages]


def prepare(root: Path, run: str, dest: Path) -> list[str]:
    """Check the run (:class:`ReproduceError`), then the copy at ``dest`` (a previous one replaced), without
    the run's results; returns the stages to re-run."""
    from hybridbatch.pipeline.plan import load_graph
    from hybridbatch.pipeline.workers import make_clone

    graph = load_graph(root)
    stages = run_stages(graph, run)
    if not (root / "results" / run / "metrics.json").is_file():
        raise ReproduceError(f"run {run!r} has no committed results/{run}/metrics.json to compare with")
    if dest.exists():
        shutil.rmtree(dest)
    make_clone(root, dest, graph=graph)
    shutil.rmtree(dest / "results" / run, ignore_errors=True)  # the re-run writes its own
    return stages


def main(argv: Sequence[str] | None = None) -> int:
    from hybridbatch.pipeline.dvcrun import dvc
    from hybridbatch.pipeline.workers import find_root

    ap = argparse.ArgumentParser(prog="python -m hybridbatch.pipeline.reproduce", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="the run to reproduce, e.g. mlqa2xquad-hybrid-s13 (results/<run>/metrics.json)")
    ap.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                    help="largest |re-run - committed| / max(1, |committed|) accepted (default %(default)g)")
    ap.add_argument("--dir", default="build/reproduce", help="where the copy is made (replaced if present)")
    args = ap.parse_args(argv)
    if not (math.isfinite(args.tolerance) and args.tolerance >= 0):
        print(f"error: --tolerance must be a finite number >= 0, got {args.tolerance}", file=sys.stderr)
        return 2
    root = find_root()
    dest = (root / args.dir).resolve()
    try:
        stages = prepare(root, args.run, dest)
    except ReproduceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    start = time.monotonic()
    log = dest / "reproduce.log"
    print(f"reproduce {args.run}: dvc {' '.join(repro_args(stages))} in {dest} (log: {log})", flush=True)
    rc, _ = dvc(dest, repro_args(stages), log=log)
    minutes = (time.monotonic() - start) / 60
    if rc:
        tail = log.read_text(encoding="utf-8").rstrip().splitlines()[-20:]
        print("\n".join(tail), file=sys.stderr)
        print(f"error: the re-run failed (exit {rc}) after {minutes:.1f} min; log: {log}", file=sys.stderr)
        return 1
    table, ok = report(args.run, compare(read_metrics(root, args.run), read_metrics(dest, args.run)),
                       args.tolerance)
    print(table)
    print(f"reproduce {args.run}: re-run took {minutes:.1f} min", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
