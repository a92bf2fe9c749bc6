"""Grid points in parallel with DVC itself: worker copies of the workspace sharing one DVC cache.

DVC runs one ``dvc repro`` per workspace (repository lock) and its experiment queue parallelises whole
experiments, not stages. So::

    python -m hybridbatch.pipeline.workers run --workers 2

(a) reproduces the *shared upstream* once in this workspace (``prepare``, ``import_model``, the ``code_*``
    stamps, ...: every ancestor of the targets that is not a matrix/foreach entry, plus any entry feeding two
    or more other entries, e.g. ``shrink_model@4`` under three ``train_size`` runs);
(b) makes N worker copies of the workspace (``clone``: the files git tracks or would track, or for a
    repository without git every file that is not a cached DVC output; the shared upstream's cached outputs
    checked out from the cache) whose DVC cache *is* this workspace's cache, with ``execution.threads`` =
    max(1, cores // N) -- an execution setting, no stage's param, so no stage hash changes;
(c) splits the targets into *units* -- the connected groups of the remaining stages, i.e. whole runs: a
    run's ``train*``, ``evaluate*`` and ``model_card`` stay together -- balances the units over the workers
    and runs ``dvc repro <its targets>`` in every copy at once (logs: ``logs/parallel/worker-<i>.log``).
    Each worker then saves a run-cache entry for every stage it reproduced (:func:`save_run_cache`);
(d) ``collect``: ``dvc repro <targets>`` here, which finds every grid stage in DVC's run cache ("Stage ... is
    cached - skipping run, checking out outputs") and runs nothing -- guaranteed: while it runs, ``python``
    on its PATH is a stub that fails, so a stage without an entry stops it instead of training on the login
    node -- then ``dvc status`` of the targets must be clean. One ``dvc.lock``, as if run sequentially;
(e) removes the worker copies (a failed worker's copy is kept for inspection).

Why the explicit run-cache save: since DVC 3.0 (treeverse/dvc#8738) a stage with a ``cache: false`` output
that is neither a metric nor a plot gets no run-cache entry. Here those outputs are small result files, so
the worker saves the entry through DVC's own ``StageCache.save`` after checking the stage is up to date.

SLURM (``slurm/grid.sbatch``): ``upstream`` in the shared checkout, then one array task per worker:
``clone`` onto shared storage + ``worker --index I --of N``, then ``collect --commit``.

This module: the worker copies (b), a worker's share (c), the whole run (a)-(e) and the CLI. Running DVC --
its commands and log lines, the upstream (a), the run-cache save and ``collect`` (d) -- is
:mod:`hybridbatch.pipeline.dvcrun`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

# running DVC (commands, their log lines, run-cache entries, collect): hybridbatch.pipeline.dvcrun
from hybridbatch.pipeline.dvcrun import (LOG_DIR, RESTORED, RUNNING, UNCHANGED, Collected, _env_for, _is_git, _tail,
                                         collect, dvc, save_run_cache, upstream)
from hybridbatch.pipeline.plan import ParallelError, _Graph, describe, load_graph, make_plan

WORKDIR = Path(".dvc") / "tmp" / "parallel"  # worker copies: inside .dvc/tmp (ignored by git and DVC), same filesystem
# never copied into a worker (besides every cached DVC output, .dvc/cache, .dvc/tmp and the worker directory)
NEVER_COPY = (".git", ".dvc/cache", ".dvc/tmp", ".dvc/config.local", "logs", "checkpoints", ".venv",
              ".pytest_cache")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def find_root(start: Path | None = None) -> Path:
    """The DVC repository containing ``start`` (default: the working directory)."""
    path = (start or Path.cwd()).resolve()
    for candidate in (path, *path.parents):
        if (candidate / ".dvc").is_dir():
            return candidate
    raise ParallelError(f"{path} is not inside a DVC repository")


# ---------------------------------------------------------------------------------------------- worker copies
def _git_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files (read-only git; the working-tree versions are copied, so
    uncommitted edits travel)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         capture_output=True, check=True).stdout.decode()
    return [p for p in out.split("\0") if p]


def _walk_files(root: Path, skip: set[Path]) -> list[str]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for d in dirnames:
            full = here / d
            if full in skip or d == "__pycache__" or (full / "pyvenv.cfg").exists():
                continue
            if full.is_symlink():  # copied as a link below
                filenames.append(d)
                continue
            keep.append(d)
        dirnames[:] = keep
        files.extend(str((here / f).relative_to(root)) for f in filenames if here / f not in skip)
    return files


def _copy(src: Path, dst: Path, link: bool = False) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif link:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    else:
        shutil.copy2(src, dst)


def _copy_tree(src: Path, dst: Path, link: bool) -> None:
    if src.is_dir() and not src.is_symlink():
        for path in sorted(p for p in src.rglob("*") if not p.is_dir() or p.is_symlink()):
            target = dst / path.relative_to(src)
            if not target.exists():
                _copy(path, target, link)
    elif src.exists() and not dst.exists():
        _copy(src, dst, link)


def _set_threads(params: Path, threads: int) -> bool:
    """``execution.threads: <threads>`` in a params file, as a one-line edit (the rest byte for byte)."""
    import yaml

    text = params.read_text()
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if re.match(r"execution\s*:", l)), None)
    if start is None:
        return False
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.strip() and not line[0].isspace() and not line.lstrip().startswith("#"):
            break  # next top-level section
        m = re.match(r"(\s+threads\s*:\s*)([^#\n]*?)(\s*(#.*)?\n?)$", line)
        if m:
            lines[i] = f"{m.group(1)}{threads}{m.group(3)}"
            new = "".join(lines)
            before, after = yaml.safe_load(text), yaml.safe_load(new)
            before["execution"]["threads"] = threads
            if before != after:  # pragma: no cover - a layout the edit does not understand
                raise ParallelError(f"could not set execution.threads in {params}")
            params.write_text(new)
            return True
    return False


def make_clone(source: Path, dest: Path, threads: int | None = None, checkout: Sequence[str] = (),
               graph: _Graph | None = None) -> Path:
    """Step (b): a worker copy of the workspace ``source`` at ``dest`` sharing its DVC cache.

    Copied: the files git tracks or would track (working-tree versions) -- without git, every file that is not
    a cached DVC output -- plus the ``cache: false`` outputs of every stage and any dependency no stage
    produces (hard-linked when possible), e.g. a git-ignored corpus. The copy is its own DVC repository
    without git (``core.no_scm`` and ``cache.dir`` in its ``.dvc/config.local``); the cached outputs of the
    ``checkout`` stages (the shared upstream) are checked out from the shared cache."""
    source, dest = source.resolve(), dest.resolve()
    graph = graph or load_graph(source)
    if dest.exists() and any(dest.iterdir()):
        raise ParallelError(f"{dest} exists and is not empty")
    skip = {source / p for p in NEVER_COPY}
    skip |= {source / p for outs in graph.cached_outs.values() for p in outs}
    if source in dest.parents:
        skip.add(next(p for p in [dest, *dest.parents] if p.parent == source))
    files = _git_files(source) if _is_git(source) else _walk_files(source, skip)
    for rel in files:
        path = source / rel
        if any(s == path or s in path.parents for s in skip) or not (path.exists() or path.is_symlink()):
            continue
        _copy(path, dest / rel)
    for outs in graph.uncached_outs.values():  # results, code stamps: whatever git ignores or not
        for rel in outs:
            _copy_tree(source / rel, dest / rel, link=False)
    for rel in graph.external_deps:
        if not any(s == source / rel or s in (source / rel).parents for s in skip):
            _copy_tree(source / rel, dest / rel, link=True)
    (dest / ".dvc" / "tmp").mkdir(parents=True, exist_ok=True)
    local = source / ".dvc" / "config.local"  # remotes etc. travel; cache and scm are set below
    if local.exists():
        shutil.copy2(local, dest / ".dvc" / "config.local")
    from dvc.config import Config

    config = Config(dvc_dir=str(dest / ".dvc"), validate=False)
    with config.edit("local") as conf:
        conf["core"]["no_scm"] = True
        conf["cache"]["dir"] = graph.cache_dir
        if not graph.cache_type:  # DVC's default (reflink, copy) copies every output where reflinks are missing;
            conf["cache"]["type"] = "reflink,hardlink,copy"  # a worker's outputs are never edited in place
    if threads is not None and (dest / "params.yaml").exists():
        _set_threads(dest / "params.yaml", threads)
    wanted = [n for n in checkout if graph.cached_outs.get(n)]
    if wanted:
        rc, out = dvc(dest, ["checkout", *wanted])
        if rc:
            raise ParallelError(f"`dvc checkout` of the upstream outputs failed in {dest} (are they in the cache "
                                f"{graph.cache_dir}? run `python -m hybridbatch.pipeline.workers upstream` first):\n"
                                f"{_tail(out)}")
    return dest


# ---------------------------------------------------------------------------------------------------- worker
def worker(root: Path, index: int, of: int, targets: Sequence[str] | None = None) -> int:
    """Step (c) for one share: ``dvc repro`` of the ``index``-th share of the targets in this workspace (a
    worker copy), then a run-cache entry for every stage of the share."""
    if not 0 <= index < of:
        raise ParallelError(f"--index must be in [0, {of})")
    graph = load_graph(root)
    plan = make_plan(graph, targets, of)
    share, stages = plan.shares[index], plan.share_stages[index]
    print(f"worker {index}/{of} in {root}: {len(stages)} stages, targets: {' '.join(share) or '-'}", flush=True)
    if not share:
        return 0
    rc, out = dvc(root, ["repro", "--keep-going", *share], echo=True)  # the other runs go on after a failure
    if rc:
        saved = save_run_cache(root, stages, strict=False)
        print(f"worker {index}: `dvc repro` failed (exit {rc}); run cache saved for the {len(saved)} stages that "
              f"finished", file=sys.stderr, flush=True)
        return rc
    ran = RUNNING.findall(out)
    redone = [n for n in ran if n in plan.upstream]
    if redone:  # not wrong, but the copy lacked an upstream output: the work was done twice
        print(f"warning: worker {index} ran upstream stages {redone} (missing from its copy)", flush=True)
    saved = save_run_cache(root, stages)
    print(f"worker {index}: ran {len(ran)}, restored {len(RESTORED.findall(out))}, "
          f"unchanged {len(UNCHANGED.findall(out))}; run cache saved for {len(saved)} stages", flush=True)
    return 0


# ------------------------------------------------------------------------------------------------------- run
def run(root: Path, workers: int, targets: Sequence[str] | None = None, threads: int | None = None,
        workdir: Path | None = None, keep: bool = False, gpus: Sequence[str] = (), poll: float = 2.0) -> Collected:
    """Steps (a)-(e) on this machine."""
    root = root.resolve()
    graph = load_graph(root)
    plan = make_plan(graph, targets, workers)
    print(describe(plan), flush=True)
    busy = [i for i, share in enumerate(plan.shares) if share]
    threads = threads or max(1, cores() // max(1, len(busy)))
    clock = _Clock()
    upstream(root, plan)                                                       # (a)
    clock.lap("upstream")
    workdir = (workdir or root / WORKDIR).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log_dir = root / LOG_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    clones: dict[int, Path] = {}
    procs: dict[int, subprocess.Popen] = {}
    failed: list[int] = []
    try:
        for i in busy:                                                         # (b)
            dest = workdir / f"worker-{i}"
            if dest.exists():
                shutil.rmtree(dest)
            clones[i] = make_clone(root, dest, threads=threads, checkout=plan.upstream, graph=graph)
            print(f"worker {i}: copy {dest} (execution.threads={threads})", flush=True)
        clock.lap("worker copies")
        logs = {i: log_dir / f"worker-{i}.log" for i in busy}
        for i in busy:                                                         # (c)
            cmd = [sys.executable, "-m", "hybridbatch.pipeline.workers", "worker", "--index", str(i), "--of", str(workers)]
            if targets:
                cmd += ["--targets", *targets]
            extra = {"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]} if gpus else {}
            with open(logs[i], "w", encoding="utf-8") as handle:
                procs[i] = subprocess.Popen(cmd, cwd=clones[i], env=_env_for(clones[i], extra), stdout=handle,
                                            stderr=subprocess.STDOUT)
        _follow(procs, logs, poll)
        clock.lap("workers")
        failed = [i for i in busy if procs[i].returncode]
        if failed:
            report = "\n".join(
                f"worker {i} failed (exit {procs[i].returncode}); copy kept at {clones[i]}; last lines of "
                f"{logs[i]}:\n{_tail(logs[i].read_text(errors='replace'))}" for i in failed)
            raise ParallelError(report)
        result = collect(root, targets, log_dir=log_dir)                       # (d)
        clock.lap("collect")
        return result
    finally:
        for i, proc in procs.items():
            if proc.poll() is None:  # interrupted: stop our own workers
                proc.terminate()
                proc.wait()
        if not keep:                                                           # (e)
            for i, dest in clones.items():
                if i not in failed:
                    shutil.rmtree(dest, ignore_errors=True)
            if workdir.exists() and not any(workdir.iterdir()):
                workdir.rmdir()
        clock.lap("clean-up")
        print(f"time: {clock}", flush=True)


class _Clock:
    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.laps: list[str] = []

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps.append(f"{name} {now - self.last:.0f} s")
        self.last = now

    def __str__(self) -> str:
        return f"{', '.join(self.laps)}; total {time.monotonic() - self.start:.0f} s"


def _follow(procs: dict[int, subprocess.Popen], logs: dict[int, Path], poll: float) -> None:
    """Wait for the workers, echoing their stage lines as they come."""
    offsets = {i: 0 for i in procs}
    pattern = re.compile(r"^(Running stage '[^']+'|Stage '[^']+' is cached|worker \d+.*)", re.M)
    while True:
        done = all(p.poll() is not None for p in procs.values())
        for i, path in logs.items():
            if path.exists():
                with open(path, "rb") as handle:
                    handle.seek(offsets[i])
                    data = handle.read()
                cut = data.rfind(b"\n") + 1
                offsets[i] += cut
                for m in pattern.finditer(data[:cut].decode("utf-8", errors="replace")):
                    print(f"[worker {i}] {m.group(0).rstrip(':')}", flush=True)
        if done:
            return
        time.sleep(poll)


# ------------------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hybridbatch.pipeline.workers", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def targets_arg(p):
        p.add_argument("--targets", nargs="+", metavar="T",
                       help="stages, matrix families or globs (default: every leaf of the grid)")

    p = sub.add_parser("run", help="(a)-(e): upstream, N worker copies in parallel, collect, clean up")
    p.add_argument("--workers", type=int, required=True)
    targets_arg(p)
    p.add_argument("--threads", type=int, help="execution.threads of each worker (default: max(1, cores // N))")
    p.add_argument("--gpus", help="comma-separated device ids, worker i gets CUDA_VISIBLE_DEVICES=gpus[i %% len]")
    p.add_argument("--workdir", type=Path, help=f"where the worker copies go (default: <repo>/{WORKDIR})")
    p.add_argument("--keep", action="store_true", help="keep the worker copies")

    p = sub.add_parser("plan", help="print the upstream stages and the split, run nothing")
    p.add_argument("--workers", type=int, required=True)
    targets_arg(p)

    p = sub.add_parser("upstream", help="(a): reproduce the shared upstream stages here")
    targets_arg(p)

    p = sub.add_parser("clone", help="(b): a worker copy of this workspace at DEST sharing its DVC cache")
    p.add_argument("dest", type=Path)
    p.add_argument("--threads", type=int, help="execution.threads in the copy (default: unchanged)")
    targets_arg(p)

    p = sub.add_parser("worker", help="(c): reproduce share INDEX of OF in this workspace (a worker copy)")
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--of", type=int, required=True)
    targets_arg(p)

    p = sub.add_parser("collect", help="(d): restore every target here from the run cache; nothing may run")
    targets_arg(p)
    p.add_argument("--allow-run", action="store_true", help="let stages without a run-cache entry run here")
    p.add_argument("--commit", metavar="MESSAGE", help="then git add dvc.lock and the uncached outputs, commit")

    args = parser.parse_args(argv)
    try:
        root = find_root()
        if args.command == "run":
            gpus = [g for g in (args.gpus or "").split(",") if g]
            run(root, args.workers, args.targets, args.threads, args.workdir, args.keep, gpus)
        elif args.command == "plan":
            print(describe(make_plan(load_graph(root), args.targets, args.workers)))
        elif args.command == "upstream":
            upstream(root, make_plan(load_graph(root), args.targets, 1))
        elif args.command == "clone":
            graph = load_graph(root)
            plan = make_plan(graph, args.targets, 1)
            dest = make_clone(root, args.dest, args.threads, checkout=plan.upstream, graph=graph)
            print(dest)
        elif args.command == "worker":
            return worker(root, args.index, args.of, args.targets)
        elif args.command == "collect":
            collect(root, args.targets, allow_run=args.allow_run, commit=args.commit)
    except ParallelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
