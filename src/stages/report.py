"""Stage `report_*`: execute one report notebook with papermill on the project's kernel.

    python src/stages/report.py notebooks/main.ipynb [--params params.yaml] [-p name value ...]

The notebook gets the papermill parameters ``params_file`` (--params), ``results_dir`` (results),
``tables_dir`` (paper/tables) and ``figures_dir`` (figures); ``-p name value`` overrides or adds one (the
notebooks declare any extra ones with defaults, e.g. main.ipynb's ``n_resamples``). The executed copy goes to
notebooks/executed/<name>.ipynb (or --output), written atomically; the notebook itself writes its tables and
figures. Notebooks only load results/ and draw; they read the params file's ``grid`` and ``folds`` sections.
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
DEFAULTS = {"results_dir": "results", "tables_dir": "paper/tables", "figures_dir": "figures"}


def parameters(params_file: str, overrides: list[list[str]] | None = None) -> dict[str, str]:
    """The papermill parameters of every report notebook."""
    return {"params_file": params_file, **DEFAULTS, **dict(overrides or [])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook", type=Path)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--output", type=Path, default=None,
                    help="executed notebook (default: notebooks/executed/<name>.ipynb)")
    args = ap.parse_args(argv)
    setup_logging()
    if not args.notebook.is_file():
        print(f"error: notebook {args.notebook} not found", file=sys.stderr)
        return 2
    for section in ("grid", "folds"):  # what the notebooks read; a clear error before starting a kernel
        load_section(args.params, section)
    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        print(f"error: Jupyter kernel {KERNEL!r} is not installed; run `bash setup.sh` (it registers it)",
              file=sys.stderr)
        return 2
    out = args.output or Path("notebooks/executed") / args.notebook.name
    with atomic_path(out) as tmp:
        papermill.execute_notebook(str(args.notebook), str(tmp), parameters=parameters(args.params, args.parameter),
                                   kernel_name=KERNEL, cwd=".", log_output=True, progress_bar=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
