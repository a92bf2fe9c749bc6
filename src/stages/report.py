"""Stage `report_*`: execute one report notebook with papermill on the project's kernel.

    python src/stages/report.py notebooks/main.ipynb [--params params.yaml] [-p name value ...]

The notebook gets the papermill parameters ``params_file`` (--params), ``results_dir`` (results),
``tables_dir`` (paper/tables) and ``figures_dir`` (figures); ``-p name value`` overrides or adds one (the
notebooks declare any extra ones with defaults, e.g. main.ipynb's ``n_resamples``). The executed copy goes to
notebooks/executed/<name>.ipynb (or --output), written atomically and without run-specific values (papermill's
timestamps and durations, the kernel's cell timings, the temporary output path: see :func:`normalise`), so the
same inputs give the same bytes; the notebook itself writes its tables and figures (byte-stable too). Notebooks
only load results/ and draw; they read the params file's ``grid`` and ``folds`` sections.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from hybridbatch.io import atomic_path
from hybridbatch.params import FoldError, fail, load_fold, load_section, setup_logging

KERNEL = "hybridbatch"
DEFAULTS = {"results_dir": "results", "tables_dir": "paper/tables", "figures_dir": "figures"}
VOLATILE = ("start_time", "end_time", "duration")  # papermill metadata that differs between identical runs


def parameters(params_file: str, overrides: list[list[str]] | None = None) -> dict[str, str]:
    """The papermill parameters of every report notebook."""
    return {"params_file": params_file, **DEFAULTS, **dict(overrides or [])}


def normalise(book: nbformat.NotebookNode, output_path: str | Path) -> nbformat.NotebookNode:
    """``book`` (an executed notebook) without what changes from run to run, so that executing the same notebook
    on the same inputs twice writes the same bytes: papermill's timestamps and durations (the notebook's and each
    cell's), the kernel's per-cell ``execution`` timings, the random id of the cell papermill inserts (its
    injected parameters), and papermill's ``output_path`` (the temporary file the stage writes first) set to the
    final ``output_path``. Execution counts, outputs and the parameters stay."""
    pm = book.metadata.get("papermill")
    if pm is not None:
        for key in VOLATILE:
            pm.pop(key, None)
        pm["output_path"] = str(output_path)
    for cell in book.cells:
        if "injected-parameters" in cell.metadata.get("tags", []) and "id" in cell:
            cell["id"] = "injected-parameters"  # papermill gives the cell it inserts a random id
        cell.metadata.pop("execution", None)
        for key in VOLATILE:
            cell.metadata.get("papermill", {}).pop(key, None)
    return book


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
    # what the notebooks read (grid, and the folds it names), validated: a clear error before starting a kernel
    grid = load_section(args.params, "grid")
    for fold in dict.fromkeys([*grid["folds"], grid["scaling_fold"]]):
        try:
            load_fold(args.params, fold)
        except FoldError as exc:
            fail(exc)
    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        print(f"error: Jupyter kernel {KERNEL!r} is not installed; run `bash setup.sh` (it registers it)",
              file=sys.stderr)
        return 2
    out = args.output or Path("notebooks/executed") / args.notebook.name
    try:
        with atomic_path(out) as tmp:
            papermill.execute_notebook(str(args.notebook), str(tmp),
                                       parameters=parameters(args.params, args.parameter),
                                       kernel_name=KERNEL, cwd=".", log_output=True, progress_bar=False)
            book = nbformat.read(tmp, as_version=nbformat.NO_CONVERT)
            nbformat.write(normalise(book, out), tmp)
    except PapermillExecutionError as exc:  # the notebook's own error in one line (its traceback is in the log)
        print(f"error: {args.notebook}: cell {exc.exec_count}: {exc.ename}: {' '.join(str(exc.evalue).split())}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
