"""The house rules of src/hybridbatch (docs/ARCHITECTURE.md): floors, no upward import, no circle, small modules.

Floors, bottom first: the shared base (io, params, records, strategies, grid) -- sampling, stats -- data --
model -- evaluation -- training -- reporting, integrations -- pipeline. A module imports only from its own
floor or below (imports inside functions count: they run too); modules import each other in no circle; no
module is over 500 lines and no function over 80.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers.tiny import REPO

SRC = REPO / "src" / "hybridbatch"
FLOORS = {"": 0, "sampling": 1, "stats": 1, "data": 2, "model": 3, "evaluation": 4, "training": 5,
          "reporting": 6, "integrations": 6, "pipeline": 7}
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _package(module: str) -> str:
    """The subpackage of a module ('' for the base: hybridbatch.io, hybridbatch.grid, ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and MODULES[module].name == "__init__.py") else ""


def _imports(module: str) -> set[str]:
    """The project modules ``module`` imports (absolute or relative, anywhere in the file)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    is_pkg = MODULES[module].name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_pkg else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n for n in names if n in MODULES and n != module and n != "hybridbatch"}
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def test_every_subpackage_has_a_floor():
    assert {_package(m) for m in MODULES} <= set(FLOORS), {_package(m) for m in MODULES} - set(FLOORS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up_a_floor(module):
    here = FLOORS[_package(module)]
    up = {t for t in GRAPH[module] if FLOORS[_package(t)] > here}
    assert not up, f"{module} (floor {here}) imports from higher floors: {sorted(up)}"


def test_no_import_circle():
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(t):] + [t]))
            if t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m, [m])


def test_the_circle_check_can_fail():
    saved = dict(GRAPH)
    try:
        GRAPH["hybridbatch.io"] = GRAPH["hybridbatch.io"] | {"hybridbatch.params"}
        GRAPH["hybridbatch.params"] = GRAPH["hybridbatch.params"] | {"hybridbatch.io"}
        with pytest.raises(AssertionError, match="import circle"):
            test_no_import_circle()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_functions_are_small(module):
    text = MODULES[module].read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{module}: {len(text.splitlines())} lines"
    long = [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(ast.parse(text))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{module}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_sampler_core_and_the_registry_need_no_report_or_torch_code():
    """Reading the strategy registry (the report, the cards) imports no sampler code; the samplers import no
    data, model or training code."""
    assert not GRAPH["hybridbatch.strategies"]
    for m in MODULES:
        if _package(m) == "sampling":
            assert {_package(t) for t in GRAPH[m]} <= {"", "sampling"}, (m, GRAPH[m])
