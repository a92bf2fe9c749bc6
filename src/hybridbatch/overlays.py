"""Named configurations: overlays of ``params.yaml`` (``configs/*.yaml``) run as DVC experiments.

    python -m hybridbatch.overlays exp-run configs/paper.yaml --name paper-xlmr   # dvc exp run -S ... -S ...
    python -m hybridbatch.overlays show configs/quick.yaml                        # the -S list only

An overlay holds sections of params.yaml with the keys it changes; a key's value replaces the params value
whole (a mapping inside a section, e.g. ``grid.main``, is one value). Every overlay key must exist in
params.yaml: a typo is an error, not a silently ignored setting. (Split off :mod:`hybridbatch.params`, which
every stage imports, so that no stage depends on this CLI.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

from hybridbatch.params import load_yaml


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
    try:
        overlay = load_yaml(Path(overlay_path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SystemExit(f"error: {overlay_path}: {' '.join(str(exc).split())}") from None
    params = yaml.safe_load(Path(params_path).read_text(encoding="utf-8")) or {}
    out = []
    for path, value in _flatten(overlay).items():
        section, _, key = path.partition(".")
        if section not in params or not key or key not in params[section]:
            raise SystemExit(f"error: {overlay_path}: {path} is not a key of {params_path}")
        text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 30, sort_keys=False).strip()
        out.append(f"{path}={text.removesuffix('...').strip()}")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m hybridbatch.overlays exp-run configs/paper.yaml [dvc exp run options...]``"""
    import argparse
    import subprocess

    ap = argparse.ArgumentParser(prog="python -m hybridbatch.overlays",
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
