"""Stage `paper`: build paper/main.pdf from paper/main.tex with latexmk (pdflatex).

    python src/stages/paper.py [--params params.yaml] [--tex paper/main.tex] [--output paper/main.pdf]

The settings the report's prose states (batch size, steps, evaluation sample, seeds, scaling ladders ...) come
from the params file as LaTeX macros written into the build directory (``main-settings-generated.tex``, found
through TEXINPUTS), so the text always describes the configuration that produced the tables; built by hand
(``cd paper && latexmk -pdf main.tex``), or for a key the params file lacks, the document names the key.

latexmk runs with the directory of the .tex file as its working directory (so ``\\input{tables/...}`` and
``\\includegraphics{../figures/...}`` resolve as they do for ``cd paper && latexmk -pdf main.tex``), writing its
auxiliary files to a temporary build directory; the PDF then replaces the output atomically. The build is made
reproducible where it is cheap: SOURCE_DATE_EPOCH=0 and FORCE_SOURCE_DATE=1 fix the dates pdfTeX writes, and the
document clears the trailer ID. Every file the document inputs or includes is checked first, so a missing table
or figure gives one clear message (run the report stages) instead of a LaTeX error.

Needs latexmk and TeX Live's recommended LaTeX packages (Debian: ``latexmk texlive-latex-recommended``); exits
with status 2 and says so when latexmk is absent, 1 when LaTeX fails (with the end of its log).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


from hybridbatch.io import atomic_path
from hybridbatch.params import ParamsError, read_params
from hybridbatch.reporting.latex import latex_escape

SETTINGS_FILE = "main-settings-generated.tex"  # written into the build directory only, never next to main.tex
INSTALL_HINT = ("error: latexmk not found; install the Debian packages `latexmk texlive-latex-recommended` "
                "(sudo apt-get install latexmk texlive-latex-recommended)")
_INPUT = re.compile(r"^[^%\n]*?\\(input|include)\{([^}]+)\}", re.M)
_GRAPHICS = re.compile(r"^[^%\n]*?\\includegraphics(?:\[[^\]]*\])?\{([^}]+)\}", re.M)


def referenced_files(tex: Path) -> list[Path]:
    """The files ``tex`` inputs (``\\input``/``\\include``, ``.tex`` implied) and includes as graphics, relative
    to its directory (one level: the generated tables input nothing)."""
    text = tex.read_text(encoding="utf-8")
    out = []
    for _, name in _INPUT.findall(text):
        out.append(tex.parent / (name if name.endswith(".tex") else f"{name}.tex"))
    for name in _GRAPHICS.findall(text):
        out.append(tex.parent / name)
    return out


def _words(values, last: str = "and") -> str:
    """``[2, 3, 4]`` -> ``2, 3 and 4``."""
    items = [latex_escape(v) for v in values]
    if not items:
        return "none"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


def _percent(fraction) -> str:
    return f"{100 * float(fraction):g}"


def main_cell_seeds(grid: dict) -> list[list]:
    """The seeds of every cell (fold x strategy) of the main table: the blocks of ``grid.main``, each a cross
    product folds x strategies x seeds (an unused block has none); an older params file's ``grid.seeds`` is one
    cell's."""
    if grid.get("main") is None:
        return [list(grid["seeds"])] if grid.get("seeds") else []
    return [list(b["seeds"]) for b in grid["main"].values() if b.get("seeds")
            for _ in range(len(b.get("folds") or []) * len(b.get("strategies") or []))]


def seeds_macros(grid: dict) -> dict[str, str]:
    """``\\pNumSeeds`` and ``\\pSeeds`` (prose: "\\pNumSeeds{} seeds per configuration (\\pSeeds{})"): the
    count and list when every main-table cell runs the same seeds, else the range of counts ("3 to 10") and
    every seed used, with a word that the cells differ."""
    cells = main_cell_seeds(grid)
    counts = sorted({len(c) for c in cells}) or [0]
    seeds = sorted({s for c in cells for s in c})
    number = str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    if len({tuple(c) for c in cells}) <= 1:
        return {"pNumSeeds": number, "pSeeds": _words(seeds)}
    differ = "the seed count differs" if len(counts) > 1 else "the seeds differ"
    return {"pNumSeeds": number, "pSeeds": f"{_words(seeds)}; {differ} between configurations"}


def settings_tex(params: dict) -> str:
    """LaTeX macros (``\\pBatchSize`` ...) stating the settings of this build, read from the params file, so the
    report's prose describes the configuration that produced its tables (the study of params.yaml, or an
    overlay such as configs/quick.yaml). Settings only: no result is ever written here."""
    train, ev, grid = params.get("train") or {}, params.get("evaluate") or {}, params.get("grid") or {}
    sample = ev.get("sample_fraction")
    sample = 1.0 if sample is None else sample
    pairs = ev.get("tatoeba_pairs")
    hard = int(train.get("hard_negatives") or 0)
    main = "main" if "main" in grid or "seeds" not in grid else "seeds"  # the main table's cells (older: seeds)
    sources = {  # macro -> (section, key) it is made from; left to main.tex's fallback (the key) when absent
        "pBatchSize": (train, "batch_size"), "pSteps": (train, "steps"), "pWarmup": (train, "warmup_steps"),
        "pTemperature": (train, "temperature"), "pMaxQuery": (train, "max_query_length"),
        "pMaxPassage": (train, "max_passage_length"), "pEvalEvery": (train, "eval_every"),
        "pValPercent": (train, "val_fraction"), "pEmbeddings": (train, "freeze_word_embeddings"),
        "pSelection": (train, "keep_best"),
        "pHardNegatives": (train, "hard_negatives"), "pNumSeeds": (grid, main), "pSeeds": (grid, main),
        "pEvalSet": (ev, "sample_fraction"), "pEvalSubsample": (ev, "sample_fraction"),
        "pTatoeba": (ev, "tatoeba_pairs"), "pScalingFold": (grid, "scaling_fold"),
        "pScalingSeed": (grid, "scaling_seeds"), "pLayers": (grid, "layers"), "pNLanguages": (grid, "n_languages"),
        "pAlphas": (grid, "alphas"),
    }
    macros = {
        "pBatchSize": latex_escape(train.get("batch_size")),
        "pSteps": latex_escape(train.get("steps")),
        "pWarmup": latex_escape(train.get("warmup_steps")),
        "pTemperature": latex_escape(train.get("temperature")),
        "pMaxQuery": latex_escape(train.get("max_query_length")),
        "pMaxPassage": latex_escape(train.get("max_passage_length")),
        "pEvalEvery": latex_escape(train.get("eval_every")),
        "pValPercent": _percent(train.get("val_fraction", 0)) + r"\%",
        "pEmbeddings": ("the word-embedding table frozen (it also keeps the rows of tokens that only unseen "
                        "languages use as pre-trained)") if train.get("freeze_word_embeddings") else
                       "every weight updated, the word embeddings included",
        "pSelection": ("early stopping on a held-out validation loss (the saved model is the step with the lowest "
                       "loss)") if train.get("keep_best") else
                      ("a fixed budget: every run is evaluated at its last step (the held-out validation loss is "
                       "logged for the training curves, never used to select a step)"),
        "pHardNegatives": "no hard negatives" if hard == 0 else
                          f"{hard} hard negative(s) per pair (other sentences of the answer's paragraph)",
        **seeds_macros(grid),
        "pEvalSet": "the full evaluation sets" if float(sample) >= 1.0 else
                    (f"a fixed {_percent(sample)}\\% sample of each evaluation set's paragraphs (drawn on the English "
                     "side and kept in every language with all their questions and sentences)"),
        "pEvalSubsample": "the full evaluation sets, as in the paper" if float(sample) >= 1.0 else
                          f"a fixed {_percent(sample)}\\% subsample of the evaluation sets instead of the full sets",
        "pTatoeba": ("all Tatoeba pairs" if pairs is None else
                     f"the first {latex_escape(pairs)} Tatoeba pairs per language"),
        "pScalingFold": r"\texttt{" + latex_escape(grid.get("scaling_fold")) + "}",
        "pScalingSeed": _words(grid.get("scaling_seeds") or []),
        "pLayers": _words(grid.get("layers") or [], "or"),
        "pNLanguages": _words(grid.get("n_languages") or [], "or"),
        "pAlphas": _words(grid.get("alphas") or []),
    }
    lines = ["% Generated by src/stages/paper.py from the params file: the settings of this build (no results)."]
    lines += [rf"\newcommand{{\{k}}}{{{v}}}" for k, v in macros.items()
              if sources[k][1] in sources[k][0]]
    return "\n".join(lines) + "\n"


def build(tex: Path, output: Path, latexmk: str = "latexmk", params: dict | None = None) -> None:
    """Compile ``tex`` into ``output`` (atomically). Raises FileNotFoundError / RuntimeError.

    ``params``: the params file's content, for the settings macros (:func:`settings_tex`); without it the
    document falls back to naming the params keys."""
    missing = [p for p in referenced_files(tex) if not p.is_file()]
    if missing:
        names = ", ".join(os.path.relpath(p, tex.parent) for p in missing[:6]) + (" ..." if len(missing) > 6 else "")
        raise FileNotFoundError(f"{tex} needs {len(missing)} missing file(s): {names}; run the report stages first "
                                "(`dvc repro`)")
    with tempfile.TemporaryDirectory(prefix="paper-build-") as tmp:
        if params is not None:
            (Path(tmp) / SETTINGS_FILE).write_text(settings_tex(params), encoding="utf-8")
        env = dict(os.environ, SOURCE_DATE_EPOCH="0", FORCE_SOURCE_DATE="1", TZ="UTC",
                   TEXINPUTS=f"{tmp}{os.pathsep}{os.environ.get('TEXINPUTS', '')}")
        cmd = [latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", f"-outdir={tmp}", tex.name]
        proc = subprocess.run(cmd, cwd=tex.parent, env=env, capture_output=True, text=True)
        pdf = Path(tmp) / f"{tex.stem}.pdf"
        if proc.returncode != 0 or not pdf.is_file():
            log = Path(tmp) / f"{tex.stem}.log"
            tail = log.read_text(encoding="utf-8", errors="replace")[-4000:] if log.is_file() else proc.stdout[-4000:]
            raise RuntimeError(f"latexmk failed (exit {proc.returncode}) on {tex}:\n{tail}\n{proc.stderr[-2000:]}")
        with atomic_path(output) as out:
            shutil.copyfile(pdf, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml",
                    help="params file: the settings the report's prose states (train, evaluate, grid)")
    ap.add_argument("--tex", type=Path, default=Path("paper/main.tex"))
    ap.add_argument("--output", type=Path, default=None, help="default: the .tex file's name with .pdf")
    args = ap.parse_args(argv)
    latexmk = shutil.which("latexmk")
    if latexmk is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    tex = args.tex.resolve()
    if not tex.is_file():
        print(f"error: {args.tex} not found", file=sys.stderr)
        return 2
    output = args.output or args.tex.with_suffix(".pdf")
    try:
        params = read_params(args.params)
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        build(tex, output.resolve(), latexmk, params)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
