"""Reading ``params.yaml``: one section per stage (iterative/example-get-started style)."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


def load_section(path: str | os.PathLike, section: str) -> dict[str, Any]:
    """The ``section`` mapping of the params file, with a clear error if the file or section is missing."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"error: params file {path} not found")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SystemExit(f"error: {path} is not valid YAML: {exc}") from None
    if not isinstance(params.get(section), dict):
        raise SystemExit(f"error: {path} has no '{section}' section")
    return params[section]


class FoldError(ValueError):
    """A `folds` entry of params.yaml that is missing or malformed."""


@dataclass(frozen=True)
class Fold:
    """One cross-dataset fold: train on ``train``, evaluate zero-shot on ``eval`` (PAPER.md §7)."""

    name: str
    train: str  # training dataset (prepared table name, e.g. mlqa_r)
    eval: str  # evaluation dataset, never seen in training
    language_order: tuple[str, ...]  # the fixed order of the nested training-language subsets

    def first_languages(self, n: int | None) -> list[str] | None:
        """The first ``n`` languages of ``language_order`` (``None``: all of the training dataset)."""
        if n is None:
            return None
        if not 1 <= n <= len(self.language_order):
            raise FoldError(f"fold {self.name}: cannot take {n} training languages from language_order "
                            f"{list(self.language_order)}")
        return list(self.language_order[:n])


def load_fold(path: str | os.PathLike, name: str) -> Fold:
    """``folds.<name>`` of the params file, validated."""
    folds = load_section(path, "folds")
    if name not in folds:
        raise FoldError(f"{path}: fold {name!r} is not in the `folds` section (has {sorted(folds)})")
    spec = folds[name]
    where = f"{path}: folds.{name}"
    if not isinstance(spec, dict) or set(spec) != {"train", "eval", "language_order"}:
        raise FoldError(f"{where} must be a mapping with exactly the keys train, eval, language_order; got {spec!r}")
    if not all(isinstance(spec[k], str) for k in ("train", "eval")):
        raise FoldError(f"{where}: train and eval must be dataset names, got {spec['train']!r}, {spec['eval']!r}")
    if spec["train"] == spec["eval"]:
        raise FoldError(f"{where}: train and eval are both {spec['train']!r}; the protocol is cross-dataset")
    order = spec["language_order"]
    if not isinstance(order, list) or not order or not all(isinstance(x, str) for x in order) \
            or len(set(order)) != len(order):
        raise FoldError(f"{where}.language_order must be a non-empty list of distinct language codes, got {order!r}")
    return Fold(name, spec["train"], spec["eval"], tuple(order))


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


# -- named configurations: overlays of params.yaml run as DVC experiments -----------------------------------

def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        # only the top level (sections) is descended into: a mapping inside a section is one value
        if isinstance(value, dict) and prefix == "":
            out.update(_flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def overlay_overrides(overlay_path: str | os.PathLike, params_path: str | os.PathLike = "params.yaml") -> list[str]:
    """``dvc exp run -S`` arguments (``section.key=value``) that apply an overlay file to params.yaml.

    Every overlay key must exist in params.yaml (a typo is an error, not a silently ignored setting);
    values are written as one-line YAML (floats keep their dot, ``3.0e-05``, so YAML 1.1 and 1.2 parsers
    both read a number).
    """
    overlay = yaml.safe_load(Path(overlay_path).read_text(encoding="utf-8")) or {}
    params = yaml.safe_load(Path(params_path).read_text(encoding="utf-8")) or {}
    out = []
    for path, value in _flatten(overlay).items():
        section, _, key = path.partition(".")
        if section not in params or not key or key not in params[section]:
            raise SystemExit(f"error: {overlay_path}: {path} is not a key of {params_path}")
        text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 30).strip()
        out.append(f"{path}={text.removesuffix('...').strip()}")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m hybridbatch.params exp-run configs/paper.yaml [dvc exp run options...]``"""
    import argparse
    import subprocess

    ap = argparse.ArgumentParser(prog="python -m hybridbatch.params",
                                 description="Run a named configuration (an overlay of params.yaml) as a DVC experiment.")
    ap.add_argument("command", choices=["exp-run", "show"], help="exp-run: dvc exp run -S ...; show: print the -S list")
    ap.add_argument("overlay")
    ap.add_argument("--params", default="params.yaml")
    args, dvc_args = ap.parse_known_args(argv)
    sets = overlay_overrides(args.overlay, args.params)
    if args.command == "show":
        print("\n".join(sets))
        return 0
    cmd = ["dvc", "exp", "run", *[a for s in sets for a in ("-S", s)], *dvc_args]
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
