"""Reading ``params.yaml``: one section per stage (iterative/example-get-started style)."""

from __future__ import annotations

import logging
import os
import sys
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
