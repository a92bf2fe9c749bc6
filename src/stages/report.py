"""Stage `report`: execute one notebook with papermill on the project's kernel.

    python src/stages/report.py notebooks/main.ipynb [--params params.yaml] [-p name value ...]

The executed copy goes to notebooks/executed/<name>.ipynb, written atomically; the notebook itself writes
its tables (paper/tables/) and figures (figures/). Notebooks only load results/ and draw.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import papermill
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from hybridbatch.io import atomic_path
from hybridbatch.params import load_section, setup_logging

KERNEL = "hybridbatch"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook", type=Path)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    args = ap.parse_args(argv)
    setup_logging()
    section = load_section(args.params, "report")
    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        print(f"error: Jupyter kernel {KERNEL!r} is not installed; run `bash setup.sh` (it registers it)",
              file=sys.stderr)
        return 2
    parameters = {"params_file": args.params, "dataset": section["dataset"], **dict(args.parameter)}
    out = Path("notebooks/executed") / args.notebook.name
    with atomic_path(out) as tmp:
        papermill.execute_notebook(str(args.notebook), str(tmp), parameters=parameters, kernel_name=KERNEL,
                                   cwd=".", log_output=True, progress_bar=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
