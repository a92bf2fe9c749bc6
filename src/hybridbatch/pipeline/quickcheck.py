"""The quick check: the whole pipeline -- data, model import, every training family, evaluation, BM25, MIRACL,
reports, paper -- on a named small configuration, in a copy of the workspace, so the committed study (its
``params.yaml``, ``dvc.lock`` and results) stays exactly as it is.

    python -m hybridbatch.pipeline.quickcheck                                  # configs/quick.yaml -> build/quick/
    python -m hybridbatch.pipeline.quickcheck --config configs/budget.yaml --dir build/budget

The copy (:func:`hybridbatch.pipeline.workers.make_clone`: the working-tree files, its own DVC repository sharing this
workspace's DVC cache) gets ``params.yaml`` with the overlay applied (every overlay key must exist in
``params.yaml``: :func:`hybridbatch.overlays.overlay_overrides`) and no ``results/``; then ``dvc repro`` runs in it.
Its PDF is ``<dir>/paper/main.pdf``, its tables ``<dir>/paper/tables/``; the elapsed time is printed and appended
to ``<dir>/quickcheck.log``. A previous copy at ``<dir>`` is replaced.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import yaml

from hybridbatch.overlays import overlay_overrides


def apply_overlay(params_path: Path, overlay_path: Path) -> dict:
    """Write ``params_path`` with the sections of ``overlay_path`` merged in (key by key within a section);
    returns the merged params. Keys are checked first (an unknown one is an error, nothing is written)."""
    overlay_overrides(overlay_path, params_path)  # raises SystemExit naming an unknown key
    params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    for section, values in (yaml.safe_load(overlay_path.read_text(encoding="utf-8")) or {}).items():
        params[section].update(values or {})
    params_path.write_text(f"# {params_path.name} with {overlay_path.as_posix()} applied "
                           "(hybridbatch.pipeline.quickcheck)\n" + yaml.safe_dump(params, sort_keys=False, width=120),
                           encoding="utf-8")
    return params


def prepare_copy(root: Path, dest: Path, overlay: Path) -> Path:
    """The copy at ``dest`` (replacing a previous one) with the overlay applied and no results."""
    from hybridbatch.pipeline.workers import make_clone

    if dest.exists():
        shutil.rmtree(dest)
    make_clone(root, dest)
    shutil.rmtree(dest / "results", ignore_errors=True)
    apply_overlay(dest / "params.yaml", (root / overlay) if not overlay.is_absolute() else overlay)
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    from hybridbatch.pipeline.workers import _env_for, find_root

    ap = argparse.ArgumentParser(prog="python -m hybridbatch.pipeline.quickcheck", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/quick.yaml", help="the overlay of params.yaml to run")
    ap.add_argument("--dir", default="build/quick", help="where the copy is made (replaced if present)")
    args = ap.parse_args(argv)
    root = find_root()
    dest = (root / args.dir).resolve()
    start = time.monotonic()
    prepare_copy(root, dest, Path(args.config))
    print(f"quickcheck: {args.config} in {dest}; dvc repro (log: {dest / 'quickcheck.log'})", flush=True)
    with open(dest / "quickcheck.log", "a", encoding="utf-8") as log:
        rc = subprocess.call([sys.executable, "-m", "dvc", "repro"], cwd=dest, env=_env_for(dest), stdout=log,
                             stderr=subprocess.STDOUT)
        minutes = (time.monotonic() - start) / 60
        log.write(f"quickcheck: exit {rc} after {minutes:.1f} min\n")
    if rc:
        tail = (dest / "quickcheck.log").read_text(encoding="utf-8").rstrip().splitlines()[-20:]
        print("\n".join(tail), file=sys.stderr)
        print(f"error: the quick check failed (exit {rc}) after {minutes:.1f} min; log: {dest / 'quickcheck.log'}",
              file=sys.stderr)
        return rc
    print(f"quickcheck: done in {minutes:.1f} min; paper: {dest / 'paper' / 'main.pdf'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
