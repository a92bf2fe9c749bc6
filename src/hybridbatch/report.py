"""Helpers the report notebooks share: load results, format LaTeX tables. No metric logic here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from .io import atomic_path, write_text

STRATEGY_LABELS = {"bm25": "BM25 (lexical)", "zeroshot": "zero-shot", "xx": "X-X-mono", "xx-mixed": "X-X (mixed)", "xy": "X-Y",
                   "hybrid": "Hybrid"}


def strategy_of(run: str) -> str:
    """``mlqa2xquad-hybrid`` -> ``hybrid``; ``zeroshot`` -> ``zeroshot``."""
    return run.split("-", 1)[1] if "-" in run else run


def load_metrics(results_dir: str | os.PathLike, runs: list[str], dataset: str) -> pd.DataFrame:
    """One row per run with its headline metrics for ``dataset``."""
    rows = []
    for run in runs:
        path = Path(results_dir) / run / "metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `dvc repro` for run {run!r} first")
        data = json.loads(path.read_text(encoding="utf-8"))
        m = data[dataset]
        row = {"run": run, "strategy": strategy_of(run), **{k: v for k, v in m.items() if isinstance(v, (int, float))}}
        for split in ("seen", "unseen"):
            row.update({f"{k}_{split}": v for k, v in m.get(split, {}).items() if isinstance(v, (int, float))})
        if "tatoeba" in data:
            row["tatoeba"] = data["tatoeba"]["mean"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def load_per_language(results_dir: str | os.PathLike, runs: list[str], dataset: str, metric: str) -> pd.DataFrame:
    """One row per run, one column per query language: ``per_language[metric]`` of its metrics.json."""
    rows = {}
    for run in runs:
        path = Path(results_dir) / run / "metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `dvc repro` for run {run!r} first")
        per_language = json.loads(path.read_text(encoding="utf-8"))[dataset].get("per_language", {})
        if metric in per_language:
            rows[run] = per_language[metric]
    return pd.DataFrame.from_dict(rows, orient="index").sort_index(axis=1)


def latex_table(df: pd.DataFrame, columns: dict[str, str], *, caption: str, label: str,
                higher_is_better: dict[str, bool] | None = None, digits: int = 3,
                groups: list[tuple[str, int]] | None = None) -> str:
    """A booktabs table of ``df[columns]`` (first column: the index), best value per column in bold."""
    higher_is_better = higher_is_better or {}
    best = {}
    for c in columns:
        col = df[c].dropna()
        best[c] = col.max() if higher_is_better.get(c, True) else col.min()
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\begin{tabular}{l" + "r" * len(columns) + "}", r"\toprule"]
    if groups:
        lines.append(" & ".join([""] + [rf"\multicolumn{{{n}}}{{c}}{{{g}}}" for g, n in groups]) + r" \\")
    lines.append(" & ".join(["Sampling"] + list(columns.values())) + r" \\")
    lines.append(r"\midrule")
    for name, row in df.iterrows():
        cells = [str(name)]
        for c in columns:
            v = row.get(c, float("nan"))
            if pd.isna(v):
                cells.append("--")
                continue
            s = f"{v:.{digits}f}" if abs(v) < 10 else f"{v:.1f}"
            cells.append(rf"\textbf{{{s}}}" if v == best[c] else s)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", rf"\label{{{label}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def save_table(text: str, path: str | os.PathLike) -> None:
    write_text(path, text)


def save_figure(fig, stem: str | os.PathLike) -> None:
    """Save ``fig`` as ``stem.pdf`` and ``stem.png``, atomically, without timestamps (reproducible bytes)."""
    stem = Path(stem)
    with atomic_path(stem.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    with atomic_path(stem.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", dpi=150, metadata={"Software": None})


def significance_table(comparisons: pd.DataFrame, *, caption: str, label: str, alpha: float = 0.05) -> str:
    """Booktabs table of ``stats.compare_runs`` rows: difference, 95 % CI, p-value and Holm-adjusted p."""
    names = {"mo": "Mo.", "cr": "Cr.", "mul": "Mul."}
    lines = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{llrrrr}", r"\toprule",
             r"Comparison & Setting & $\Delta$mAP & 95\% CI & $p$ & $p_\mathrm{Holm}$ \\", r"\midrule"]
    for _, r in comparisons.iterrows():
        mark = "$^{*}$" if r["p_holm"] < alpha else ""
        lines.append(f"{r['comparison']} & {names.get(r['setting'], r['setting'])} & {r['diff']:+.4f}{mark} & "
                     f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] & {r['p_value']:.4f} & {r['p_holm']:.4f} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", rf"\label{{{label}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"
