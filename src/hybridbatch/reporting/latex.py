"""LaTeX for the report: number formatting, escaping and booktabs tables.

The one place that turns values into LaTeX text: the report's tables (:mod:`hybridbatch.reporting.tables`) and the paper
stage's settings macros (``src/stages/paper.py``) both escape through :func:`latex_escape`. Standard library
only (the paper stage imports it without pandas).
"""

from __future__ import annotations

import math
import os
from typing import Sequence

from hybridbatch.io import write_text

MISSING = "--"

# every character LaTeX treats specially in running text, with its text-mode spelling
_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: object) -> str:
    """``str(text)`` with LaTeX's special characters escaped for running text (one pass, so the braces of
    ``\\textbackslash{}`` are never escaped again): ``a_b & 50%`` -> ``a\\_b \\& 50\\%``."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def isnull(value: object) -> bool:
    """None or a float NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value: float, digits: int = 3) -> str:
    """A number for a table: NaN -> ``--``; ``digits`` decimals below 10, one decimal from 10 on."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:.{digits}f}" if abs(value) < 10 else f"{value:.1f}"


def fmt_mean_sd(mean: float, sd: float = math.nan, digits: int = 3, *, bold: bool = False, mark: str = "") -> str:
    """``0.712 {\\scriptsize$\\pm$0.004}`` (sd left out when NaN, i.e. a single run); the mean in bold if asked.

    ``mark`` (e.g. a significance superscript) follows the mean. NaN mean -> ``--``.
    """
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return MISSING
    m = fmt(mean, digits)
    text = (rf"\textbf{{{m}}}" if bold else m) + mark
    if sd is not None and not (isinstance(sd, float) and math.isnan(sd)):
        text += rf" {{\scriptsize$\pm${fmt(sd, digits)}}}"
    return text


def fmt_int(value: object) -> str:
    """An integer cell (a step, a layer count ...); None / NaN -> ``--``."""
    return MISSING if isnull(value) else str(int(value))


def fmt_share(value: object, digits: int = 2) -> str:
    """A share in [0, 1] (e.g. the realised share of monolingual batches); None / NaN -> ``--``."""
    return MISSING if isnull(value) else f"{float(value):.{digits}f}"


def best_flags(values: Sequence[float], higher_is_better: bool = True, digits: int = 3) -> list[bool]:
    """Which values are the best of their column, compared as printed (ties at the printed precision all win)."""
    printed = [math.nan if v is None or math.isnan(v) else float(fmt(v, digits)) for v in values]
    valid = [v for v in printed if not math.isnan(v)]
    if not valid:
        return [False] * len(values)
    best = max(valid) if higher_is_better else min(valid)
    return [(not math.isnan(v)) and v == best for v in printed]


def bold_if(text: str, flag: bool) -> str:
    return rf"\textbf{{{text}}}" if flag else text


def booktabs(header: Sequence[str], body: Sequence[Sequence[str] | str], *, align: str, caption: str, label: str,
             size: str = r"\small", fit: bool = True, placement: str = "htbp", colsep: str | None = "4pt") -> str:
    """A booktabs ``table`` float. ``header``: raw header lines (without the rules); ``body``: rows, each a
    list of cells or a raw line (``\\midrule``, a ``\\multicolumn`` block title ...). ``fit``: shrink the
    tabular to the line width when (and only when) it is wider; ``colsep``: ``\\tabcolsep`` (None: LaTeX's)."""
    lines = [rf"\begin{{table}}[{placement}]", r"\centering", size]
    if colsep:
        lines.append(rf"\setlength{{\tabcolsep}}{{{colsep}}}")
    lines += [rf"\caption{{{caption}}}", rf"\label{{{label}}}"]
    if fit:
        lines.append(r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule", *header, r"\midrule"]
    for row in body:
        lines.append(row if isinstance(row, str) else " & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if fit:
        lines.append("}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def group_header(first: Sequence[str], groups: Sequence[tuple[str, int]]) -> list[str]:
    """A column-group line with its cmidrules: ``first`` cells, then each ``(title, width)`` group."""
    cells, rules, col = list(first), [], len(first) + 1
    for title, width in groups:
        cells.append(rf"\multicolumn{{{width}}}{{c}}{{{title}}}" if width > 1 else title)
        rules.append(rf"\cmidrule(lr){{{col}-{col + width - 1}}}")
        col += width
    return [" & ".join(cells) + r" \\", "".join(rules)]


def block_title(title: str, width: int) -> str:
    """A body line spanning ``width`` columns with an emphasised block title."""
    return rf"\multicolumn{{{width}}}{{l}}{{\emph{{{title}}}}} \\"


def placeholder_table(caption: str, label: str, message: str = "not part of this configuration") -> str:
    """A declared table whose runs the configured grid does not have (keeps the paper compiling)."""
    return booktabs(["Note \\\\"], [[rf"\emph{{{message}}}"]], align="l", caption=caption, label=label, fit=False)


def save_table(text: str, path: str | os.PathLike) -> None:
    """Write a table atomically (a killed notebook never leaves half a table)."""
    write_text(path, text)
