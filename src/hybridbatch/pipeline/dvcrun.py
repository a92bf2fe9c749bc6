"""Running DVC in a workspace: ``dvc`` commands measured and logged, their output read, run-cache entries saved,
and the collect step of a parallel grid run (:mod:`hybridbatch.pipeline.workers`).

* :func:`run_dvc` / :func:`dvc`: ``dvc <args>`` in a workspace with its own ``src`` first on PYTHONPATH, output
  appended to a log, wall / CPU seconds and peak memory measured (``os.wait4``); :data:`RUNNING`,
  :data:`RESTORED` and :data:`UNCHANGED` read DVC's log lines (the study runner reads them the same way);
* :func:`upstream`: step (a), the shared upstream, once, in this workspace;
* :func:`save_run_cache`: a run-cache entry for every up-to-date stage, also for those DVC 3 leaves out
  because of a ``cache: false`` output (treeverse/dvc#8738);
* :func:`collect`: step (d), ``dvc repro`` restores every grid stage from the run cache -- nothing may run:
  ``python`` on its PATH is a stub that fails -- then ``dvc status`` must be clean; optionally committed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hybridbatch.pipeline.plan import ParallelError, Plan, _Graph, _open_repo, load_graph, make_plan, stage_name

LOG_DIR = Path("logs") / "parallel"
RUNNING = re.compile(r"^Running stage '([^']+)'", re.M)
RESTORED = re.compile(r"^Stage '([^']+)' is cached - skipping run", re.M)
UNCHANGED = re.compile(r"^Stage '([^']+)' didn't change, skipping", re.M)
GUARD_EXIT = 97


def _env_for(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a command in ``root``: the project's own ``src`` first on PYTHONPATH (a worker copy
    runs its own code, not an editable install of the main checkout)."""
    env = dict(os.environ)
    src = root / "src"
    if src.is_dir():
        parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([str(src), *parts])
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class DvcRun:
    """One ``dvc`` command: exit code, output, wall seconds, CPU seconds (user + system, its children included)
    and peak resident memory (MiB, its largest process), measured by ``os.wait4``."""
    rc: int
    out: str
    wall: float
    cpu: float
    rss_mib: float


def run_dvc(root: Path, args: Sequence[str], log: Path | None = None, env: dict | None = None,
            echo: bool = False) -> DvcRun:
    """``dvc <args>`` in ``root`` (this interpreter's DVC); output to ``log`` (appended), measured."""
    cmd = [sys.executable, "-m", "dvc", *args]
    lines: list[str] = []
    start = time.monotonic()
    handle = open(log, "a", encoding="utf-8") if log else None
    try:
        if handle:
            handle.write(f"$ dvc {' '.join(args)}\n")
            handle.flush()
        proc = subprocess.Popen(cmd, cwd=root, env=env or _env_for(root), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if handle:
                handle.write(line)
                handle.flush()
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if handle:
            handle.close()
    return DvcRun(proc.returncode, "".join(lines), time.monotonic() - start, usage.ru_utime + usage.ru_stime,
                  usage.ru_maxrss / 1024)


def dvc(root: Path, args: Sequence[str], log: Path | None = None, env: dict | None = None,
        echo: bool = False) -> tuple[int, str]:
    """``dvc <args>`` in ``root``: exit code and output (see :func:`run_dvc`)."""
    result = run_dvc(root, args, log=log, env=env, echo=echo)
    return result.rc, result.out


def _tail(text: str, n: int = 25) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-n:])


def upstream(root: Path, plan: Plan, log_dir: Path | None = None) -> None:
    """Step (a): the shared upstream, once, in this workspace."""
    if not plan.upstream:
        return
    log = _log_path(root, log_dir, "upstream.log")
    print(f"upstream: dvc repro {' '.join(plan.upstream)}  (log: {log})", flush=True)
    rc, out = dvc(root, ["repro", *plan.upstream], log=log)
    if rc:
        raise ParallelError(f"upstream `dvc repro` failed (exit {rc}); last lines of {log}:\n{_tail(out)}")
    ran = RUNNING.findall(out)
    print(f"upstream: ran {len(ran)}, restored {len(RESTORED.findall(out))}, "
          f"unchanged {len(UNCHANGED.findall(out))}", flush=True)


def _log_path(root: Path, log_dir: Path | None, name: str) -> Path:
    directory = log_dir or root / LOG_DIR
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


def _is_git(root: Path) -> bool:
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        return False
    return top.returncode == 0 and bool(top.stdout.strip())



# ------------------------------------------------------------------------------------------------ run cache
def save_run_cache(root: Path, names: Sequence[str], strict: bool = True) -> list[str]:
    """A run-cache entry for each of ``names`` that is up to date in ``root`` -- also for stages DVC 3 leaves
    out of the run cache because of a ``cache: false`` output (treeverse/dvc#8738); DVC's ``StageCache.save``
    commits those outputs into the cache by copy. A stage not up to date is an error (``strict``) or skipped
    (after a failed ``dvc repro``: what did finish is kept). Returns the stages saved."""
    from dvc.stage.cache import _can_hash

    saved = []
    repo = _open_repo(root)
    try:
        with repo.lock:
            by_name = {stage_name(s, root.resolve()): s for s in repo.index.stages}
            for name in names:
                stage = by_name[name]
                if not _can_hash(stage):
                    print(f"note: {name} cannot have a run-cache entry (no deps/outs, or persistent/always-changed)",
                          flush=True)
                    continue
                if stage.changed():
                    if strict:
                        raise ParallelError(f"{name} is not up to date in {root} after `dvc repro`")
                    continue
                repo.stage_cache.save(stage)
                saved.append(name)
    finally:
        repo.close()
    return saved



# --------------------------------------------------------------------------------------------------- collect
@dataclass
class Collected:
    ran: list[str]
    restored: list[str]
    unchanged: list[str]
    status_clean: bool
    output: str


def _guard_dir() -> Path:
    """A PATH entry whose ``python`` / ``python3`` / ``torchrun`` refuse to run (every stage command starts
    with one of them), so ``collect`` restores stages and never runs one."""
    directory = Path(tempfile.mkdtemp(prefix="hybridbatch-collect-guard-"))
    for name in ("python", "python3", "torchrun"):
        stub = directory / name
        stub.write_text("#!/bin/sh\n"
                        "echo \"hybridbatch.pipeline.workers collect: no run-cache entry for this stage, refusing to run: "
                        f"{name} $*\" >&2\nexit {GUARD_EXIT}\n")
        stub.chmod(0o755)
    return directory


def collect(root: Path, targets: Sequence[str] | None = None, allow_run: bool = False,
            log_dir: Path | None = None, commit: str | None = None) -> Collected:
    """Step (d): ``dvc repro <targets>`` in this workspace restores every grid stage from the run cache
    (verified from its output: no "Running stage" line for a grid stage), then ``dvc status`` of the targets
    must be clean. With ``commit`` (a git repository): ``git add`` dvc.lock and the ``cache: false`` outputs,
    ``git commit -m commit``."""
    graph = load_graph(root)
    plan = make_plan(graph, targets, 1)
    log = _log_path(root, log_dir, "collect.log")
    env = _env_for(root)
    guard = None
    if not allow_run:
        guard = _guard_dir()
        env["PATH"] = f"{guard}{os.pathsep}{env.get('PATH', '')}"
    try:
        print(f"collect: dvc repro ({len(plan.targets)} targets; log: {log})", flush=True)
        rc, out = dvc(root, ["repro", *plan.targets], log=log, env=env)
    finally:
        if guard:
            shutil.rmtree(guard, ignore_errors=True)
    ran = RUNNING.findall(out)
    result = Collected(ran, RESTORED.findall(out), UNCHANGED.findall(out), False, out)
    if rc:
        if ran and not allow_run and ran[-1] in plan.upstream:
            raise ParallelError(f"collect: upstream stage {ran[-1]!r} is not up to date here; run "
                                f"`python -m hybridbatch.pipeline.workers upstream` (and the workers) first. Last lines "
                                f"of {log}:\n{_tail(out)}")
        if ran and not allow_run:
            raise ParallelError(
                f"collect: stage {ran[-1]!r} has no run-cache entry (did its worker finish? `dvc status` here "
                f"shows what is left); rerun that worker or `collect --allow-run` to run it here. "
                f"Last lines of {log}:\n{_tail(out)}")
        raise ParallelError(f"collect: `dvc repro` failed (exit {rc}); last lines of {log}:\n{_tail(out)}")
    rc, status = dvc(root, ["status", "--json", *plan.targets], log=log)
    result.status_clean = rc == 0 and _json_tail(status) == {}
    grid_ran = [n for n in ran if n not in plan.upstream]
    print(f"collect: restored {len(result.restored)} from the run cache, unchanged {len(result.unchanged)}, "
          f"ran {len(ran)}{' (' + ' '.join(ran) + ')' if ran else ''}; dvc status "
          f"{'clean' if result.status_clean else 'NOT clean'}", flush=True)
    if not result.status_clean:
        raise ParallelError(f"collect: `dvc status` is not clean after `dvc repro`:\n{_tail(status)}")
    if grid_ran and not allow_run:  # pragma: no cover - the guard stops these first
        raise ParallelError(f"collect: grid stages ran here instead of being restored: {grid_ran}")
    if commit:
        _commit(root, graph, plan, commit)
    return result


def _json_tail(text: str):
    """The JSON document ending ``text`` (``dvc status --json`` may log lines before it); None if none."""
    import json

    for start in [i for i, ch in enumerate(text) if ch in "{["]:
        try:
            return json.loads(text[start:])
        except ValueError:
            continue
    return None


def _commit(root: Path, graph: _Graph, plan: Plan, message: str) -> None:
    if not _is_git(root):
        raise ParallelError("--commit needs a git repository")
    paths = ["dvc.lock"] + [p for name in plan.upstream + plan.grid for p in graph.uncached_outs.get(name, [])]
    # what changed among them (ignored paths left out), and the .gitignore files DVC wrote
    listed = subprocess.run(["git", "ls-files", "-z", "--modified", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, check=True).stdout.decode().split("\0")
    wanted = [f for f in listed if f and (os.path.basename(f) == ".gitignore" or any(
        f == p or f.startswith(p.rstrip("/") + "/") for p in paths))]
    if wanted:
        subprocess.run(["git", "add", "--", *sorted(set(wanted))], cwd=root, check=True)
    staged = subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=root)
    if staged.returncode == 0:
        print("collect: nothing to commit", flush=True)
        return
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=root, check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    print(f"collect: committed {head.stdout.strip()} ({message})", flush=True)
