"""What a stage reads from the project: the transitive closure of a script's (or notebook's) imports.

Used twice: by the ``code_*`` stages of dvc.yaml (each writes the hashes of a stage family's source files,
and refuses to run when the deps declared for it in dvc.yaml differ from the imports), and by
``tests/test_dvc_deps.py`` (every stage's declared code deps equal its imports). Imports are found with
``ast`` anywhere in a module -- at top level and inside functions -- so a lazy import counts too. Only files
of this project count (``src/hybridbatch/*.py``); third-party packages are pinned by the environment.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

PACKAGE = "hybridbatch"
# what a code_* stage runs itself (declared as its deps too; stamped only when the family imports them)
STAMP_CODE = ("src/stages/code_stamp.py", "src/hybridbatch/pipeline/deps.py", "src/hybridbatch/io.py",
              "src/hybridbatch/folds.py", "src/hybridbatch/params.py", "src/hybridbatch/__init__.py",
              "src/hybridbatch/pipeline/__init__.py")


def _imported_modules(tree: ast.AST, module: str | None) -> set[str]:
    """Dotted names of ``hybridbatch`` modules imported anywhere in ``tree`` (relative imports resolved)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y / from . import x
                if module is None:
                    continue
                base = module.split(".")[: -node.level] if node.level <= module.count(".") + 1 else []
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            out.add(target)
            out |= {f"{target}.{a.name}" for a in node.names}  # `from hybridbatch import report`
    return out


def _module_file(name: str, src: Path) -> Path | None:
    path = src / Path(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _source(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        return "\n".join(line for cell in code for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))
    return path.read_text(encoding="utf-8")


def project_imports(entry: str | Path, root: str | Path = ".") -> list[str]:
    """Project files ``entry`` reads as code: itself and every ``src/hybridbatch`` module it imports,
    transitively (paths relative to ``root``, sorted). The package ``__init__`` is included when imported
    through (Python runs it for any submodule)."""
    root = Path(root).resolve()
    src = root / "src"
    entry = (root / entry).resolve()
    seen: set[Path] = {entry}
    todo = [(entry, None)]
    while todo:
        path, module = todo.pop()
        for name in _imported_modules(ast.parse(_source(path)), module):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # a.b.c imports a, a.b and a.b.c
                sub = ".".join(parts[:i])
                f = _module_file(sub, src)
                if f is not None and f not in seen:
                    seen.add(f)
                    todo.append((f, sub if f.name != "__init__.py" else sub + ".__init__"))
    return sorted(str(p.relative_to(root)) for p in seen)


def file_hashes(paths: list[str], root: str | Path = ".") -> dict[str, str]:
    root = Path(root)
    return {p: hashlib.sha256((root / p).read_bytes()).hexdigest() for p in sorted(paths)}
