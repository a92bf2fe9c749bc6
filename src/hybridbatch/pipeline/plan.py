"""The plan of a parallel grid run: which stages the workers share, and how whole runs are split over them.

Read from DVC's own graph of the workspace (``dvc.yaml`` resolved with ``params.yaml``): the targets (by
default every leaf of the grid), the upstream stages several runs share (reproduced once, before the
workers start), and the units (a run's ``train*``, ``evaluate*`` and ``model_card`` entries together)
balanced over the workers. Used by :mod:`hybridbatch.pipeline.workers` and :mod:`hybridbatch.pipeline.dvcrun`.
Also the study's order of the main table's runs (:func:`main_order`, for :mod:`hybridbatch.pipeline.study`).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from hybridbatch.params import MAIN_BLOCKS


#: main-table seeds per cell run before any other block's further seeds (docs/PREREGISTRATION.md §5: the second
#: fold's seeds beyond 3 are cut before the primary fold's 10, the ladder, alpha and scaling runs before those)
CORE_SEEDS = 3


def main_order(g: dict) -> list[tuple[str, str, str]]:
    """``(run, family suffix, matrix key)`` of every main run of the params' ``grid`` (``grid.main``), in the study's
    priority order: every block's first :data:`CORE_SEEDS` seeds seed rank by seed rank over all cells (display
    order), then the primary block's further seeds, then the other blocks' (:mod:`hybridbatch.pipeline.study`)."""
    out = []
    for b, (name, block) in enumerate(g["main"].items()):
        suffix = MAIN_BLOCKS.get(name, f"_{name}")
        for rank, seed in enumerate(block.get("seeds") or []):
            for f in block.get("folds") or []:
                for s in block.get("strategies") or []:
                    cell = (list(g["folds"]).index(f) if f in g["folds"] else 99,
                            list(g["strategies"]).index(s) if s in g["strategies"] else 99)
                    key = (0, rank, *cell) if rank < CORE_SEEDS else (1, b, rank, *cell)
                    out.append((key, f"{f}-{s}-s{seed}", suffix, f"{f}-{s}-{seed}"))
    return [row[1:] for row in sorted(out)]


class ParallelError(RuntimeError):
    """A failed step, with what to look at."""


def _open_repo(root: Path):
    from dvc.repo import Repo  # noqa: PLC0415 -- DVC is imported only where a graph is read

    return Repo(str(root))


# --------------------------------------------------------------------------------------------------- plan
def is_entry(name: str) -> bool:
    """A matrix / foreach entry (``train@mlqa2xquad-xx-13``)."""
    return "@" in name


@dataclass
class Plan:
    """What runs where (every list in dvc.yaml order)."""

    targets: list[str]
    upstream: list[str]                        # reproduced once, in the main workspace
    units: list[list[str]]                     # independent groups of the other stages (whole runs)
    shares: list[list[str]] = field(default_factory=list)        # per worker: its targets
    share_stages: list[list[str]] = field(default_factory=list)  # per worker: every stage it reproduces

    @property
    def grid(self) -> list[str]:
        return [s for unit in self.units for s in unit]


@dataclass
class _Graph:
    order: list[str]                 # stage names in dvc.yaml order
    deps: dict[str, set[str]]        # stage -> the stages producing its dependencies
    dependents: dict[str, set[str]]  # stage -> the stages depending on it
    cached_outs: dict[str, list[str]]
    uncached_outs: dict[str, list[str]]
    external_deps: list[str]         # dependency paths no stage produces (inputs kept in the workspace)
    cache_dir: str
    cache_type: object = None        # the workspace's cache.type setting (None: DVC's default)

    def upstream_of(self, names: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(names)
        while todo:
            for dep in self.deps[todo.pop()]:
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    def downstream_of(self, name: str) -> set[str]:
        seen: set[str] = set()
        todo = [name]
        while todo:
            for dep in self.dependents[todo.pop()]:
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen


def stage_name(stage, root: Path) -> str:
    """The name ``dvc repro`` takes from ``root``: ``train@x`` for the root dvc.yaml, ``sub/dvc.yaml:name``
    elsewhere, the path of a ``.dvc`` file (``stage.addressing`` is relative to the working directory)."""
    rel = os.path.relpath(stage.path, root)
    name = getattr(stage, "name", None)
    if name and rel.endswith(("dvc.yaml", "dvc.yml")):
        return name if rel in ("dvc.yaml", "dvc.yml") else f"{rel}:{name}"
    return rel


def load_graph(root: Path) -> _Graph:
    """The stage graph of the DVC repository at ``root`` (DVC's own index: dvc.yaml, params, dvc.lock)."""
    repo = _open_repo(root)
    try:
        stages = list(repo.index.stages)
        graph = repo.index.graph  # edges: stage -> the stage producing one of its dependencies
        top = root.resolve()
        name = {s: stage_name(s, top) for s in stages}
        order = [name[s] for s in stages]
        deps = {name: set() for name in order}
        dependents = {name: set() for name in order}
        for stage, producer in graph.edges:
            deps[name[stage]].add(name[producer])
            dependents[name[producer]].add(name[stage])
        cached = {name[s]: [os.path.relpath(o.fs_path, top) for o in s.outs if o.use_cache] for s in stages}
        uncached = {name[s]: [os.path.relpath(o.fs_path, top) for o in s.outs if not o.use_cache] for s in stages}
        produced = [os.path.normpath(p) for outs in (*cached.values(), *uncached.values()) for p in outs]

        def overlaps(a: str, b: str) -> bool:
            return a == b or a.startswith(b + os.sep) or b.startswith(a + os.sep)

        external = set()
        for s in stages:
            for dep in s.deps:
                if getattr(dep, "protocol", None) != "local" or type(dep).__name__ == "ParamsDependency":
                    continue
                path = Path(dep.fs_path).resolve()
                if top not in path.parents:
                    continue
                rel = str(path.relative_to(top))
                if rel in external or any(overlaps(rel, p) for p in produced):
                    continue
                external.add(rel)
        return _Graph(order, deps, dependents, cached, uncached, sorted(external), str(repo.cache.local_cache_dir),
                      repo.config["cache"].get("type"))
    finally:
        repo.close()


def resolve_targets(graph: _Graph, patterns: Sequence[str] | None) -> list[str]:
    """Stage names for ``patterns`` (a name, a matrix family such as ``evaluate``, or a glob such as
    ``evaluate_*``); none: every *leaf of the grid* -- each matrix/foreach entry no other entry depends on,
    e.g. the evaluate*, model_card, bm25 and miracl entries (the aggregate stages such as reports are left to a
    plain ``dvc repro`` afterwards)."""
    if not patterns:
        return [n for n in graph.order
                if is_entry(n) and not any(is_entry(d) for d in graph.downstream_of(n))]
    chosen: set[str] = set()
    for pattern in patterns:
        hits = [n for n in graph.order if n == pattern or n.split("@")[0] == pattern or fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise ParallelError(f"no stage matches target {pattern!r}")
        chosen.update(hits)
    return [n for n in graph.order if n in chosen]


def make_plan(graph: _Graph, targets: Sequence[str] | None = None, workers: int = 1) -> Plan:
    """Upstream, units and the split of the units over ``workers`` (deterministic: every SLURM array task
    computes the same plan from the same files)."""
    chosen = resolve_targets(graph, targets)
    closure = set(chosen) | graph.upstream_of(chosen)
    inner = closure - set(chosen)
    upstream = {n for n in inner if not is_entry(n)
                or sum(1 for d in graph.dependents[n] if d in inner) >= 2  # feeds two or more chains
                or len({d.split("@", 1)[1] for d in graph.dependents[n] if d in closure and is_entry(d)}
                       - {n.split("@", 1)[1]}) >= 2}  # or the runs of several keys (a fold's zero-shot baseline)
    upstream |= graph.upstream_of(upstream)  # and what those need
    rest = [n for n in graph.order if n in closure and n not in upstream]
    # units: connected components of the remaining stages
    parent = {n: n for n in rest}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n in rest:
        for d in graph.deps[n]:
            if d in parent:
                parent[find(n)] = find(d)
    groups: dict[str, list[str]] = {}
    for n in rest:
        groups.setdefault(find(n), []).append(n)
    units = list(groups.values())
    plan = Plan(targets=chosen, upstream=[n for n in graph.order if n in upstream], units=units)
    split(plan, workers)
    return plan


def _weight(unit: list[str], targets: set[str]) -> int:
    """Rough cost of a unit: a stage others build on (a training) counts 3, an end stage 1."""
    return sum(1 if n in targets else 3 for n in unit)


def split(plan: Plan, workers: int) -> None:
    """Units over workers, heaviest first onto the least loaded (ties: lower index)."""
    if workers < 1:
        raise ParallelError("--workers must be at least 1")
    targets = set(plan.targets)
    load = [0] * workers
    assigned: list[list[list[str]]] = [[] for _ in range(workers)]
    for unit in sorted(plan.units, key=lambda u: -_weight(u, targets)):  # stable: dvc.yaml order among equals
        i = min(range(workers), key=lambda k: (load[k], k))
        assigned[i].append(unit)
        load[i] += _weight(unit, targets)
    position = {n: k for k, unit in enumerate(plan.units) for n in unit}
    plan.share_stages = [sorted((n for u in units for n in u), key=lambda n: (position[n], n)) for units in assigned]
    order = {n: k for k, n in enumerate(plan.targets)}
    plan.shares = [sorted((n for n in stages if n in targets), key=order.__getitem__) for stages in plan.share_stages]


def describe(plan: Plan) -> str:
    lines = [f"targets: {len(plan.targets)}; upstream (main workspace): {' '.join(plan.upstream) or '-'}",
             f"units (whole runs): {len(plan.units)}"]
    for i, (share, stages) in enumerate(zip(plan.shares, plan.share_stages)):
        lines.append(f"worker {i}: {len(stages)} stages, targets: {' '.join(share) or '- (idle)'}")
    return "\n".join(lines)
