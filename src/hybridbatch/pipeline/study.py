"""The study in pieces: whole runs (trained *and* evaluated), one after another in priority order, each committed
to git (``dvc.lock`` + its results) as soon as it is finished, so that the study can stop anywhere and continue
later -- on this machine or on one without the DVC cache.

    python -m hybridbatch.pipeline.study plan                  # the units, in order, and which are finished
    python -m hybridbatch.pipeline.study run --until 03:40 --commit
    python -m hybridbatch.pipeline.study status                # finished units and their headline numbers (markdown)
    python -m hybridbatch.pipeline.study costs                 # measured cost per stage family, the study's total

Order (the headline first; stopping early cuts from the bottom, as docs/PREREGISTRATION.md §5 cuts): the references,
the main table's first ``plan.CORE_SEEDS`` seeds seed rank by seed rank, the primary block's further seeds, the other
blocks', then the budget ladder, the alpha sweep, model size and training languages. A *unit* is one run: its
``train*`` and ``evaluate*`` stages, and its ``model_card*`` / ``miracl`` stages where the grid has them. Two units
side by side: :mod:`hybridbatch.pipeline.batches` (DVC locks the workspace for a whole ``dvc repro``).

Every stage runs as ``dvc repro --allow-missing <stage>``: a stage whose lock entry matches is skipped even when its
outputs are missing, so finished runs are never retrained on a machine without the DVC cache; the deterministic shared
upstream (``prepare``, ``import_model``, ``code_*``, ``shrink_model@<k>``) is reproduced without it. Each executed
stage's wall/CPU seconds and peak memory (``os.wait4``) go to ``docs/timings.tsv`` (docs/COSTS.md; no stage reads it).
When no unit of the whole study is left, the reports and the paper are regenerated and committed. A unit that would
not end by ``--until`` is not started; ``logs/study.pause`` holds the run between units; a finished unit's
``checkpoints/<run>/`` is removed. Log: ``logs/study.log``. Bad options are one ``error:`` line, exit status 2.
Details: docs/STUDY.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from hybridbatch.pipeline.plan import main_order  # the main table's runs in priority order
from hybridbatch.pipeline.dvcrun import RESTORED, RUNNING, run_dvc  # DVC's log lines, read the same way as the grid workers
from hybridbatch.params import ParamsError, fail, read_params

TIMINGS = Path("docs") / "timings.tsv"
TIMING_COLUMNS = ("date", "stage", "family", "wall_s", "cpu_s", "max_rss_mib", "cores")
LOG = Path("logs") / "study.log"
CHECKPOINTS = Path("checkpoints")  # a training run's resumable state: checkpoints/<run>/ (src/stages/train.py)
PAUSE = Path("logs") / "study.pause"
DEFAULT_STAGE_S = 15 * 60
# the training log line of a run that continued from its checkpoint (hybridbatch.training.loop): such a stage's time
# is part of a run, not a whole one, so it is recorded under "<family>-resumed" and kept out of the family's cost
RESUMED = re.compile(r"resuming from the checkpoint at step (\d+)")


@dataclass
class Unit:
    """One run of the study: its DVC stages in order, and the tracked paths a commit of it holds."""
    run: str
    study: str
    stages: list[str]
    paths: list[str] = field(default_factory=list)


def _family(stage: str) -> str:
    return stage.split("@", 1)[0]


def units(params: dict) -> tuple[list[str], list[Unit]]:
    """The shared upstream stages and the study's units, in priority order (see the module docstring)."""
    g, miracl = params["grid"], (params.get("miracl") or {}).get("runs") or {}
    if g.get("main") is None:
        raise ParamsError("grid.main: missing (the blocks of the main table; an older params file with grid.seeds "
                          "describes the earlier study, docs/STUDY.md)")
    folds, sseeds, fold = list(g["folds"]), list(g["scaling_seeds"]), g["scaling_fold"]
    upstream = ["prepare", "import_model", "code_train", "code_evaluate"]
    out: list[Unit] = []

    def unit(run: str, study: str, stages: list[str], card: str | None = None) -> None:
        stages = list(stages) + ([f"model_card{card}@{stages[0].split('@', 1)[1]}"] if card is not None else [])
        stages += [f"miracl@{run}"] if run in miracl else []
        paths = [f"results/{run}"] + ([f"cards/{run}"] if card is not None else [])
        out.append(Unit(run, study, stages, paths))

    for f in folds:
        unit(f"{f}-zeroshot", "reference", [f"evaluate_zeroshot@{f}"])
        unit(f"{f}-bm25", "reference", [f"bm25@{f}"])
    for run, suffix, key in main_order(g):
        unit(run, "main", [f"train{suffix}@{key}", f"evaluate{suffix}@{key}"], card=suffix)
    ladder = g.get("ladder") or {}
    for seed in ladder.get("seeds") or []:
        for k in ladder.get("steps") or []:
            for s in ladder.get("strategies") or []:
                unit(f"{ladder['fold']}-steps{k}-{s}-s{seed}", "ladder",
                     [f"train_ladder@{k}-{s}-{seed}", f"evaluate_ladder@{k}-{s}-{seed}"])
    for seed in g.get("alpha_seeds") or []:
        for a in g.get("alphas") or []:
            unit(f"{fold}-hybrid-a{a}-s{seed}", "alpha", [f"train_alpha@{a}-{seed}", f"evaluate_alpha@{a}-{seed}"])
    for k in g.get("layers") or []:
        unit(f"{fold}-L{k}-zeroshot", "size", [f"shrink_model@{k}", f"evaluate_size_zeroshot@{k}"])
    for seed in sseeds:
        for k in g.get("layers") or []:
            for s in g.get("scaling_strategies") or []:
                unit(f"{fold}-L{k}-{s}-s{seed}", "size",
                     [f"shrink_model@{k}", f"train_size@{k}-{s}-{seed}", f"evaluate_size@{k}-{s}-{seed}"])
        for n in g.get("n_languages") or []:
            for s in g.get("scaling_strategies") or []:
                unit(f"{fold}-n{n}-{s}-s{seed}", "languages",
                     [f"train_languages@{n}-{s}-{seed}", f"evaluate_languages@{n}-{s}-{seed}"])
    return upstream, out


# ------------------------------------------------------------------------------------------------ running
def _log(msg: str) -> None:
    line = f"{dt.datetime.now():%H:%M:%S} {msg}"
    print(line, flush=True)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(LOG, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _dvc(args: Sequence[str]) -> tuple[int, str, float, float, float]:
    """``dvc <args>`` here: exit code, output, wall s, CPU s (user + system, children included), peak RSS MiB."""
    r = run_dvc(Path.cwd(), args, log=LOG)
    return r.rc, r.out, r.wall, r.cpu, r.rss_mib


def _dvc_waiting(args: Sequence[str]) -> tuple[int, str, float, float, float]:
    """:func:`_dvc`, waiting (up to 5 min) while another dvc command -- a `dvc status` by hand -- holds the
    repository lock."""
    for attempt in range(20):
        result = _dvc(args)
        if not (result[0] and "Unable to acquire lock" in result[1]):
            break
        time.sleep(15)
    return result


def _record(stage: str, wall: float, cpu: float, rss: float, family: str | None = None) -> None:
    new = not TIMINGS.exists()
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    with open(TIMINGS, "a", encoding="utf-8") as fh:
        if new:
            fh.write("\t".join(TIMING_COLUMNS) + "\n")
        fh.write(f"{dt.date.today().isoformat()}\t{stage}\t{family or _family(stage)}\t{wall:.0f}\t{cpu:.0f}\t{rss:.0f}\t"
                 f"{os.cpu_count()}\n")


def measured_seconds() -> dict[str, float]:
    """The median wall time measured so far per stage family (``docs/timings.tsv``): the runner's estimate of a
    unit's cost; a median, so that a stage slowed by another job on the same cores does not stop the next
    piece of the study early (nor one unusually fast run make it overrun)."""
    walls: dict[str, list[float]] = {}
    if TIMINGS.exists():
        for line in TIMINGS.read_text(encoding="utf-8").splitlines()[1:]:
            parts = line.split("\t")
            if len(parts) >= 4:
                walls.setdefault(parts[2], []).append(float(parts[3]))
    return {fam: statistics.median(vals) for fam, vals in walls.items()}


def estimate_seconds(unit: Unit, known: dict[str, float]) -> float:
    """A unit's expected wall time: its stage families' measured medians (``known``: :func:`measured_seconds`),
    15 min for a family not measured yet; the shared ``shrink_model`` and the small ``model_card`` / ``miracl``
    stages are not counted."""
    return sum(known.get(_family(s), DEFAULT_STAGE_S) for s in unit.stages
               if not s.startswith(("shrink_model", "model_card", "miracl")))


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 90 * 60 else f"{seconds / 3600:.1f} h"


def drop_checkpoints(unit: Unit) -> None:
    """Remove ``checkpoints/<run>/`` of a finished unit: the resumable state of a training run that DVC now
    records as done (a run killed and then restored from the run cache never removed it itself)."""
    path = CHECKPOINTS / unit.run
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
        _log(f"  {unit.run}: removed its resumable training state {path}/")


def reproduce(stage: str, allow_missing: bool = True) -> bool:
    """``dvc repro [--allow-missing] <stage>``; True if the stage ran (then its cost is recorded) or was restored
    from DVC's run cache -- either way ``dvc.lock`` changed."""
    args = ["repro", *(["--allow-missing"] if allow_missing else []), stage]
    rc, out, wall, cpu, rss = _dvc_waiting(args)
    if rc:
        tail = "\n".join(out.rstrip().splitlines()[-15:])
        raise SystemExit(f"error: `dvc {' '.join(args)}` failed (exit {rc}); see {LOG}:\n{tail}")
    ran = stage in RUNNING.findall(out)
    if ran:
        resumed = RESUMED.search(out)
        _record(stage, wall, cpu, rss, f"{_family(stage)}-resumed" if resumed else None)
        _log(f"  {stage}: {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU, peak {rss:.0f} MiB"
             + (f" (resumed at step {resumed.group(1)}: recorded as {_family(stage)}-resumed, not in the "
                f"{_family(stage)} family's cost)" if resumed else ""))
    elif stage in RESTORED.findall(out):
        _log(f"  {stage}: restored from the run cache")
        return True
    return ran


def commit(unit: Unit, message: str) -> None:
    # models/.gitignore: DVC adds an entry for each new model output
    paths = [p for p in ["dvc.lock", str(TIMINGS), "models/.gitignore", *unit.paths] if Path(p).exists()]
    for attempt in range(10):  # another git process may hold the index lock for a moment
        add = subprocess.run(["git", "add", "--", *paths], capture_output=True, text=True)
        done = add.returncode == 0 and subprocess.run(
            ["git", "commit", "-q", "-m", message, "--", *paths], capture_output=True, text=True).returncode == 0
        if done:
            _log(f"  committed: {message}")
            return
        time.sleep(3 * (attempt + 1))
    _log(f"  WARNING: could not commit {unit.run}; commit dvc.lock and {' '.join(unit.paths)} by hand")


def run(params_path: str, until: dt.datetime | None, do_commit: bool, only: Sequence[str] = ()) -> int:
    upstream, all_units = units(read_params(params_path))
    todo = [u for u in all_units if not only or u.study in only]
    _log(f"study: log {LOG} (this summary and the output of every dvc command)")
    _log(f"study: {len(todo)} units; upstream {' '.join(upstream)}")
    for stage in upstream:
        _log(f"upstream: {stage}")
        reproduce(stage, allow_missing=False)
    left = left_units(todo)
    total = sum(estimate_seconds(u, measured_seconds()) for u in left)
    _log(f"study: {len(left)} of {len(todo)} units to do, ~{_duration(total)}")
    done_shrink: set[str] = set()
    for i, unit in enumerate(todo, 1):
        if unit not in left:
            _log(f"[{i}/{len(todo)}] {unit.run}: finished before")
            drop_checkpoints(unit)
            continue
        while PAUSE.exists():
            time.sleep(10)
        known = measured_seconds()
        estimate = estimate_seconds(unit, known)
        if until is not None and dt.datetime.now() + dt.timedelta(seconds=estimate) > until:
            _log(f"stop: {unit.run} would take ~{estimate / 60:.0f} min, past {until:%H:%M}")
            return 0
        remaining = left[left.index(unit):]
        _log(f"[{i}/{len(todo)}] {unit.run} ({unit.study}): {' '.join(unit.stages)}; ~{_duration(estimate)} for this "
             f"unit, ~{_duration(sum(estimate_seconds(u, known) for u in remaining))} left for {len(remaining)} "
             f"unit(s)")
        ran = _run_unit(unit, i, len(todo), done_shrink)
        _log(f"[{i}/{len(todo)}] {unit.run}: {'ran ' + ', '.join(ran) if ran else 'finished before'}")
        drop_checkpoints(unit)
        if ran and do_commit:  # with the refreshed status blocks, so that every commit passes the README test
            written = refresh_readme(read_params(params_path))
            commit(Unit(unit.run, unit.study, unit.stages, [*unit.paths, "build/code", *written]),
                   f"study: {unit.run} ({unit.study}) trained and evaluated; results and dvc.lock")
    finish_if_complete(all_units, do_commit)  # with --only, other studies' units may be left
    return 0


def finish_if_complete(all_units: Sequence[Unit], do_commit: bool) -> bool:
    """At the end of a run: the reports (:func:`reproduce_all`) only when every unit of the *whole* study is
    finished -- the analysis is made once, on the whole study (docs/PREREGISTRATION.md); other studies' units may
    still be left, and ``dvc repro --allow-missing`` would then train them one by one here, uncommitted."""
    rest = left_units(all_units)
    if rest:
        _log(f"study: the selected studies are finished; {len(rest)} unit(s) of the others left (first: "
             f"{rest[0].run}); the reports wait for the whole study")
        return False
    _log("study: every unit is finished; the reports, curves and paper (dvc repro --allow-missing)")
    reproduce_all(do_commit)
    return True


def _run_unit(unit: Unit, i: int, n: int, done_shrink: set[str]) -> list[str]:
    """Every stage of ``unit`` in order (a shared ``shrink_model`` once per session); the stages that ran or
    were restored."""
    ran = []
    for stage in unit.stages:
        if stage.startswith("shrink_model@"):
            if stage not in done_shrink:
                _log(f"[{i}/{n}] {unit.run}: {stage} (shared)")
                reproduce(stage, allow_missing=False)
                done_shrink.add(stage)
            continue
        _log(f"[{i}/{n}] {unit.run}: {stage}")
        if reproduce(stage):
            ran.append(stage)
    return ran


REPORT_PATHS = ("dvc.lock", "figures", "paper/tables", "paper/main.pdf", "notebooks/executed", "cards")


def reproduce_all(do_commit: bool) -> None:
    """``dvc repro --allow-missing``: with every run finished, what is left are the stages downstream of the
    results (curves, reports, paper, model cards); committed with ``do_commit``."""
    rc, out, wall, *_ = _dvc(["repro", "--allow-missing"])
    if rc:
        tail = "\n".join(out.rstrip().splitlines()[-15:])
        raise SystemExit(f"error: `dvc repro --allow-missing` failed (exit {rc}); see {LOG}:\n{tail}")
    ran = RUNNING.findall(out)
    _log(f"  ran {len(ran)} stages in {wall / 60:.1f} min: {', '.join(ran)}")
    if ran and do_commit:
        commit(Unit("report", "report", [], [p for p in REPORT_PATHS if p != "dvc.lock"]),
               "study: tables, figures and paper regenerated from the finished study")


def left_units(todo: Sequence[Unit]) -> list[Unit]:
    """The units of ``todo`` not finished: one pass of :func:`pending_stages` over all their stages (a `dvc repro`
    per stage costs ~7 s: ~20 min of every session that continues the study at 40 finished units)."""
    pending = pending_stages([s for u in todo for s in u.stages if not s.startswith("shrink_model@")])
    return [u for u in todo if pending.intersection(u.stages)]


def pending_stages(stages: Sequence[str], root: Path = Path(".")) -> set[str]:
    """The stages among ``stages`` that ``dvc repro --allow-missing`` would run: DVC's own test
    (``Stage.changed(allow_missing=True)``) against ``dvc.lock``, for every stage in one process -- a stage whose
    outputs (and upstream outputs) are missing but whose lock entry matches its code, params and data is not
    pending. (A ``dvc repro --dry`` over ~100 targets takes minutes and fails on a missing upstream output.)"""
    from dvc.lock import LockError
    from dvc.repo import Repo

    with contextlib.chdir(root), Repo(".") as repo:  # a stage's address is relative to the working directory
        by_name = {st.addressing: st for st in repo.index.stages}
        unknown = sorted(set(stages) - set(by_name))
        if unknown:
            raise SystemExit(f"error: dvc.yaml: no stage {unknown[0]}")
        for attempt in range(20):  # another dvc command (a `dvc status` by hand) may hold the repository lock
            try:
                with repo.lock:
                    return {name for name in stages if by_name[name].changed(allow_missing=True)}
            except LockError:
                if attempt == 19:
                    raise SystemExit(f"error: the DVC repository lock of {root.resolve()} stayed busy for 5 min")
                time.sleep(15)
    raise AssertionError("unreachable")


def _locked_stages(lock_path: Path = Path("dvc.lock")) -> set[str]:
    """The stage names ``dvc.lock`` holds (matrix entries as ``name@key``)."""
    import yaml

    if not lock_path.exists():
        return set()
    data = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
    return set(data.get("stages") or {})


def status_rows(params: dict, results_dir: Path = Path("results")) -> list[dict]:
    """One row per unit: ``finished`` (every stage of the unit in ``dvc.lock`` and its metrics file present --
    whether those entries are up to date is ``dvc status``'s question) and, when finished, its headline numbers
    (mAP Mo./Cr./Mul. and rank distance on the fold's evaluation set, Tatoeba, kept step, realised share)."""
    import json

    locked = _locked_stages()
    _, todo = units(params)
    rows = []
    for u in todo:
        stages = [s for s in u.stages if not s.startswith("shrink_model@")]
        path = results_dir / u.run / "metrics.json"
        row = {"study": u.study, "run": u.run, "finished": all(s in locked for s in stages) and path.exists()}
        if row["finished"]:
            data = json.loads(path.read_text(encoding="utf-8"))
            cfg = data.get("config", {})
            block = next((v for k, v in data.items() if isinstance(v, dict) and "map_mo" in v), {})
            row.update({k: block.get(k) for k in ("map_mo", "map_cr", "map_mul", "rank_distance")})
            row["tatoeba"] = (data.get("tatoeba") or {}).get("mean")
            row["kept"] = f"{cfg['best_step']}/{cfg['steps']}" if cfg.get("best_step") is not None else None
            row["mono_share"] = cfg.get("mono_share")
        rows.append(row)
    return rows


def status_markdown(rows: list[dict]) -> str:
    """The finished units as a markdown table (values to 3 decimals; -- where a run has no such number)."""
    def f(v, digits=3):
        return "--" if v is None else f"{v:.{digits}f}"

    done = [r for r in rows if r["finished"]]
    lines = [f"{len(done)} of {len(rows)} units finished.", "",
             "| run | Mo. | Cr. | Mul. | RD | Tatoeba | kept step | mono share |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in done:
        lines.append(f"| `{r['run']}` | {f(r.get('map_mo'))} | {f(r.get('map_cr'))} | {f(r.get('map_mul'))} | "
                     f"{f(r.get('rank_distance'), 1)} | {f(r.get('tatoeba'))} | {r.get('kept') or '--'} | "
                     f"{f(r.get('mono_share'), 2)} |")
    return "\n".join(lines)


def cost_markdown(params: dict) -> str:
    """Measured cost per stage family (``docs/timings.tsv``: stages that ran, their mean wall and CPU minutes
    and peak RSS) and the study's total: every unit's stages at their family's mean wall time (families not
    measured yet are named, not guessed)."""
    rows: dict[str, list[tuple[float, float, float]]] = {}
    if TIMINGS.exists():
        for line in TIMINGS.read_text(encoding="utf-8").splitlines()[1:]:
            parts = line.split("\t")
            if len(parts) >= 6:
                rows.setdefault(parts[2], []).append((float(parts[3]), float(parts[4]), float(parts[5])))
    lines = ["| stage family | stages measured | wall min (mean) | CPU min (mean) | peak RSS MiB (max) |",
             "|---|---:|---:|---:|---:|"]
    mean = {}
    for fam, vals in sorted(rows.items()):
        mean[fam] = sum(v[0] for v in vals) / len(vals)
        lines.append(f"| `{fam}` | {len(vals)} | {mean[fam] / 60:.1f} | {sum(v[1] for v in vals) / len(vals) / 60:.1f} | "
                     f"{max(v[2] for v in vals):.0f} |")
    upstream, todo = units(params)
    stages = list(upstream) + list(dict.fromkeys(s for u in todo for s in u.stages))
    missing = sorted({_family(s) for s in stages if _family(s) not in mean and not s.startswith("code_")})
    total = sum(mean.get(_family(s), 0.0) for s in stages)
    lines += ["", f"The study's {len(todo)} units ({len(stages)} stages) at these means: {total / 3600:.1f} h of wall "
              "time on this machine" + (f", not counting the families not measured yet ({', '.join(missing)})"
                                        if missing else "") + "."]
    return "\n".join(lines)


def fill_blocks(text: str, blocks: dict[str, str], source: str = "README") -> str:
    """:func:`hybridbatch.reporting.readme.fill_blocks`, where README.md's result numbers are generated (imported
    when used: the runner itself needs no pandas)."""
    from hybridbatch.reporting.readme import fill_blocks as fill
    return fill(text, blocks, source)


def refresh_readme(params: dict) -> list[str]:
    """Rewrite the generated blocks of README.md and docs/ (status, costs, and the results once complete)."""
    from hybridbatch.reporting import readme
    return readme.write(Path("."), params, generated_blocks(params))


def generated_blocks(params: dict) -> dict[str, dict[str, str]]:
    """The study's own generated blocks, ``{file: {block: text}}``: its status in README.md and docs/STUDY.md, its
    costs in docs/COSTS.md (README.md's result blocks come from :func:`hybridbatch.reporting.readme.readme_blocks`)."""
    from hybridbatch.reporting.readme import status_block

    rows = status_rows(params)
    return {"README.md": {"status": status_block(sum(r["finished"] for r in rows), len(rows))},
            "docs/STUDY.md": {"study-status": status_markdown(rows)},
            "docs/COSTS.md": {"study-costs": cost_markdown(params)}}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hybridbatch.pipeline.study", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["plan", "run", "status", "costs", "readme"],
                    help="plan: the units in order; run: run them; status: which are finished, with their numbers; "
                         "costs: measured time and memory per stage family, and the study's total; readme: regenerate "
                         "the numbers of README.md (hybridbatch.reporting.readme) and the status and costs blocks "
                         "of docs/STUDY.md and docs/COSTS.md")
    ap.add_argument("--readme", default="README.md", help="the README the readme command fills (docs/ beside it)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--until", help="HH:MM (today, or tomorrow if already past): start no unit that would end later")
    ap.add_argument("--commit", action="store_true", help="git-commit dvc.lock and the results after each unit")
    ap.add_argument("--only", nargs="*", default=[], help="studies to run (reference main ladder alpha size languages)")
    args = ap.parse_args(argv)
    if args.command == "costs":
        print(cost_markdown(checked_params(args.params)))
        return 0
    if args.command == "readme":
        from hybridbatch.reporting import readme
        params = checked_params(args.params)
        written = readme.write(Path(args.readme).parent, params, generated_blocks(params))
        print(f"refreshed: {', '.join(written)}" if written else "README.md and docs/: every generated block up to date")
        return 0
    if args.command == "status":
        print(status_markdown(status_rows(checked_params(args.params))))
        return 0
    if args.command == "plan":
        upstream, todo = units(checked_params(args.params))
        print("upstream:", " ".join(upstream))
        for unit in todo:
            print(f"{unit.study:10s} {unit.run:36s} {' '.join(unit.stages)}")
        return 0
    until = parse_until(args.until) if args.until else None
    checked_params(args.params)
    return run(args.params, until, args.commit, args.only)


def parse_until(value: str, now: dt.datetime | None = None) -> dt.datetime:
    """``HH:MM`` as the next such time (today, or tomorrow if already past); else exit 2 naming the option."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        fail(f"--until {value!r}: expected a time of day HH:MM, 00:00 to 23:59")
    now = now or dt.datetime.now()
    until = now.replace(hour=int(match.group(1)), minute=int(match.group(2)), second=0, microsecond=0)
    return until + dt.timedelta(days=1) if until < now else until


def checked_params(path: str) -> dict:
    """The params file, read and its grid listed as units; a missing or invalid file exits 2 with one line."""
    try:
        params = read_params(path)
        units(params)
    except ParamsError as exc:
        fail(f"--params {path}: {exc}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        fail(f"--params {path}: the grid cannot be read ({type(exc).__name__}: {exc})")
    return params


if __name__ == "__main__":
    sys.exit(main())
