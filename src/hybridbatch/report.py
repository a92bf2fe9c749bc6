"""What the report notebooks share: which runs make each study, loading them into tidy frames, seed
summaries, significance marks and LaTeX (booktabs) tables. No metric is computed here (the evaluation
stage does that); no figure is drawn here (the notebooks do that, from the frames built here).

Run names (PAPER.md §6, params.yaml ``grid`` / ``folds``; see :func:`run_name`):

* main table: ``<fold>-<strategy>-s<seed>``, the zero-shot encoder ``<fold>-zeroshot`` and the lexical
  baseline ``<fold>-bm25`` (monolingual setting only);
* model size: ``<fold>-L<k>-<strategy>-s<seed>`` and ``<fold>-L<k>-zeroshot``; the full encoder is the main run;
* training languages: ``<fold>-n<k>-<strategy>-s<seed>``; all languages is the main run;
* alpha sweep: ``<fold>-hybrid-a<alpha>-s<seed>``; alpha 0.5 is the main hybrid run, 0 the X-Y run and 1 the
  X-X-mono run (the hybrid sampler with alpha 0 / 1 draws exactly their batch sequences).

Every ``results/<run>/metrics.json`` has a ``config`` block (run, fold, strategy, seed, alpha, layers,
n_languages, train_languages, parameters, non_embedding_parameters, eval_dataset) and one block per
evaluation dataset; :func:`load_results` flattens both into one row per run.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd
import yaml

from . import stats
from .io import atomic_path, write_text

# ------------------------------------------------------------------------------------------ vocabulary

STRATEGY_LABELS = {"zeroshot": "zero-shot", "bm25": "BM25 (Mo. only)", "xx": "X-X-mono", "xx-mixed": "X-X (mixed)",
                   "xy": "X-Y", "hybrid": "Hybrid"}
STRATEGY_ORDER = ("zeroshot", "bm25", "xx", "xx-mixed", "xy", "hybrid")
TRAINED = ("xx", "xx-mixed", "xy", "hybrid")
REFERENCES = ("zeroshot", "bm25")
DATASET_LABELS = {"xquad_r": "XQuAD-R", "mlqa_r": "MLQA-R"}
DATASET_ORDER = ("xquad_r", "mlqa_r")  # the paper's column order
SETTINGS = ("mo", "cr", "mul")
SETTING_LABELS = {"mo": "Mo.", "cr": "Cr.", "mul": "Mul."}
MODEL_NOTE = "multilingual-e5-small, offline protocol"
OURS = f"ours ({MODEL_NOTE})"
STUDIES = ("main", "size", "languages", "alpha")
MISSING = "--"
# Colours per strategy (colour-blind safe, fixed across figures)
STRATEGY_COLORS = {"zeroshot": "#7f7f7f", "bm25": "#bcbd22", "xx": "#0173b2", "xx-mixed": "#56b4e9", "xy": "#de8f05",
                   "hybrid": "#029e73"}

SPEC_COLUMNS = ["study", "run", "fold", "train_dataset", "eval_dataset", "strategy", "seed", "layers", "n_languages",
                "alpha"]
CONFIG_FILLED = ("seed", "layers", "n_languages", "alpha")  # spec value, else the run's config value


def strategy_label(strategy: str) -> str:
    """``xx`` -> ``X-X-mono`` (the paper's names)."""
    return STRATEGY_LABELS.get(strategy, strategy)


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


def ordered(items: Iterable[str], order: Sequence[str]) -> list[str]:
    """``items`` (unique) in ``order``; items not in ``order`` follow, in their first-seen order."""
    seen = list(dict.fromkeys(items))
    return [x for x in order if x in seen] + [x for x in seen if x not in order]


# ------------------------------------------------------------------------------ params and run names


def load_params(path: str | os.PathLike) -> dict:
    """The params file, checked for the two sections the report reads (``grid`` and ``folds``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file {path} not found")
    params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for section in ("grid", "folds"):
        if not isinstance(params.get(section), dict):
            raise KeyError(f"{path} has no '{section}' section")
    return params


def fold_spec(params: dict, fold: str) -> dict:
    """``folds.<fold>``: ``{train, eval, language_order}``."""
    folds = params["folds"]
    if fold not in folds:
        raise KeyError(f"fold {fold!r} is not in the params' `folds` section (has {sorted(folds)})")
    return folds[fold]


def run_name(fold: str, strategy: str, seed: int | None = None, *, layers: int | None = None,
             n_languages: int | None = None, alpha: float | None = None) -> str:
    """The results directory name of one run (the DVC stages' names, see the module docstring).

    ``alpha`` is written as the params file gives it (``str`` of the YAML value: 0.25 -> ``a0.25``), as
    DVC's ``${item.alpha}`` does.
    """
    prefix = fold + (f"-L{layers}" if layers is not None else "")
    prefix += f"-n{n_languages}" if n_languages is not None else ""
    if strategy in REFERENCES:
        if strategy == "bm25" and (layers is not None or n_languages is not None):
            raise ValueError("the BM25 baseline has no model size or training languages")
        return f"{prefix}-{strategy}"
    if seed is None:
        raise ValueError(f"a trained run ({strategy}) needs a seed")
    if alpha is not None:
        if strategy != "hybrid":
            raise ValueError(f"alpha is a hybrid setting, not one of {strategy!r}")
        return f"{prefix}-hybrid-a{alpha}-s{seed}"
    return f"{prefix}-{strategy}-s{seed}"


def _spec(params: dict, study: str, fold: str, strategy: str, seed=None, layers=None, n_languages=None,
          alpha=None, named_alpha=None) -> dict:
    f = fold_spec(params, fold)
    return {"study": study,
            "run": run_name(fold, strategy, seed, layers=layers, n_languages=n_languages, alpha=named_alpha),
            "fold": fold, "train_dataset": f["train"], "eval_dataset": f["eval"], "strategy": strategy,
            "seed": seed, "layers": layers, "n_languages": n_languages, "alpha": alpha}


def grid_runs(params: dict, study: str | None = None) -> pd.DataFrame:
    """The runs of one study (or of all of them), one row each, built from ``params['grid']``.

    Columns: ``study`` (main | size | languages | alpha), ``run``, ``fold``, ``train_dataset``,
    ``eval_dataset``, ``strategy``, ``seed``, ``layers``, ``n_languages``, ``alpha``. A run serving several
    studies (a main run is the full-size point of the size ladder, ...) has one row per study. ``layers``,
    ``n_languages`` and ``alpha`` are None where the run's own config tells them (:func:`load_results`
    fills them in): the full encoder, all training languages, the main hybrid run's alpha. The alpha
    study's endpoints are the X-Y run (alpha 0) and the X-X-mono run (alpha 1).
    """
    if study is not None and study not in STUDIES:
        raise ValueError(f"unknown study {study!r}; one of {STUDIES}")
    g = params["grid"]
    folds, strategies, seeds = list(g["folds"]), list(g["strategies"]), list(g["seeds"])
    rows: list[dict] = []

    def main_exists(fold, strategy, seed) -> bool:
        return fold in folds and strategy in strategies and seed in seeds

    if study in (None, "main"):
        for fold in folds:
            rows.append(_spec(params, "main", fold, "zeroshot"))
            rows.append(_spec(params, "main", fold, "bm25"))
            for strategy in strategies:
                for seed in seeds:
                    rows.append(_spec(params, "main", fold, strategy, seed))
    if study in (None, "size", "languages", "alpha"):
        fold, seed = g.get("scaling_fold"), g.get("scaling_seed")
        scaling = list(g.get("scaling_strategies") or [])
        if fold is not None:
            if study in (None, "size"):
                for k in list(g.get("layers") or []):
                    rows.append(_spec(params, "size", fold, "zeroshot", layers=k))
                    rows += [_spec(params, "size", fold, s, seed, layers=k) for s in scaling]
                if fold in folds:
                    rows.append(_spec(params, "size", fold, "zeroshot"))
                rows += [_spec(params, "size", fold, s, seed) for s in scaling if main_exists(fold, s, seed)]
            if study in (None, "languages"):
                for k in list(g.get("n_languages") or []):
                    rows += [_spec(params, "languages", fold, s, seed, n_languages=k) for s in scaling]
                rows += [_spec(params, "languages", fold, s, seed) for s in scaling if main_exists(fold, s, seed)]
            if study in (None, "alpha"):
                if main_exists(fold, "xy", seed):
                    rows.append(_spec(params, "alpha", fold, "xy", seed, alpha=0.0))
                for a in list(g.get("alphas") or []):
                    rows.append(_spec(params, "alpha", fold, "hybrid", seed, alpha=float(a), named_alpha=a))
                if main_exists(fold, "hybrid", seed):
                    rows.append(_spec(params, "alpha", fold, "hybrid", seed))
                if main_exists(fold, "xx", seed):
                    rows.append(_spec(params, "alpha", fold, "xx", seed, alpha=1.0))
    return pd.DataFrame(rows, columns=SPEC_COLUMNS, dtype=object)


# --------------------------------------------------------------------------------------------- loading


def metrics_path(results_dir: str | os.PathLike, run: str) -> Path:
    return Path(results_dir) / run / "metrics.json"


def _missing_error(paths: list[Path]) -> FileNotFoundError:
    more = f" (and {len(paths) - 1} more: {', '.join(str(p) for p in paths[1:4])}{' ...' if len(paths) > 4 else ''})" \
        if len(paths) > 1 else ""
    return FileNotFoundError(f"{paths[0]} is missing{more}: run `dvc repro` to produce the results the report "
                             "reads (or `dvc exp run` for a configured grid)")


def check_results(results_dir: str | os.PathLike, runs: Iterable[str], name: str = "metrics.json") -> None:
    """Raise FileNotFoundError naming the first missing ``results/<run>/<name>`` (and how many others)."""
    paths = [Path(results_dir) / r / name for r in dict.fromkeys(runs)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise _missing_error(missing)


def read_metrics(results_dir: str | os.PathLike, run: str) -> dict:
    path = metrics_path(results_dir, run)
    if not path.is_file():
        raise _missing_error([path])
    return json.loads(path.read_text(encoding="utf-8"))


def _num(v: Any) -> float:
    """A JSON number as float; None / missing / non-numbers -> NaN."""
    if isinstance(v, bool) or v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _isnull(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _block(data: dict, spec: dict, path: Path) -> dict:
    ds = spec["eval_dataset"]
    cfg_ds = data.get("config", {}).get("eval_dataset")
    if cfg_ds is not None and cfg_ds != ds:
        raise ValueError(f"{path}: evaluated on {cfg_ds!r}, but fold {spec['fold']!r} evaluates on {ds!r}")
    if ds not in data:
        raise KeyError(f"{path} has no {ds!r} block (has {sorted(k for k in data if k != 'config')})")
    return data[ds]


def load_results(results_dir: str | os.PathLike, specs: pd.DataFrame) -> pd.DataFrame:
    """One row per spec row (see :func:`grid_runs`): the spec, the run's config and its headline metrics.

    Added columns: ``parameters``, ``non_embedding_parameters``, ``train_languages`` (list) from the config;
    every scalar metric of the evaluation dataset's block (``map_mo`` ... ``rank_distance``,
    ``same_lang@k``, ``n_queries`` ...; NaN where absent, e.g. BM25's Cr./Mul.); ``<metric>_seen`` and
    ``<metric>_unseen`` (NaN where the split is empty) with ``seen_languages`` / ``unseen_languages``;
    ``tatoeba`` (mean bitext accuracy, NaN where not evaluated). Raises FileNotFoundError naming the
    first missing metrics.json.
    """
    check_results(results_dir, specs["run"])
    rows = []
    for spec in specs.to_dict("records"):
        path = metrics_path(results_dir, spec["run"])
        data = json.loads(path.read_text(encoding="utf-8"))
        cfg = data.get("config", {})
        m = _block(data, spec, path)
        row = dict(spec)
        for c in CONFIG_FILLED:
            if _isnull(row[c]):
                row[c] = cfg.get(c)
        row["parameters"] = _num(cfg.get("parameters"))
        row["non_embedding_parameters"] = _num(cfg.get("non_embedding_parameters"))
        row["train_languages"] = list(cfg.get("train_languages") or [])
        row["languages"] = list(m.get("languages") or [])
        for k, v in m.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row[k] = float(v)
            elif v is None and k.split("_")[0] in ("map", "r1", "r10", "mrr", "ndcg10"):
                row[k] = math.nan
        for split in ("seen", "unseen"):
            block = m.get(split) or {}
            row[f"{split}_languages"] = list(block.get("languages") or [])
            for k in ("map_mo", "map_cr", "map_mul", "rank_distance"):
                row[f"{k}_{split}"] = _num(block.get(k))
        row["tatoeba"] = _num(data["tatoeba"].get("mean")) if isinstance(data.get("tatoeba"), dict) else math.nan
        rows.append(row)
    if not rows:  # a study with no configured run (e.g. grid.layers: [])
        return pd.DataFrame(columns=SPEC_COLUMNS + ["parameters", "non_embedding_parameters", "train_languages",
                                                    "languages", "map_mo", "map_cr", "map_mul", "rank_distance"])
    return pd.DataFrame(rows)


def study_results(results_dir: str | os.PathLike, params: dict, study: str) -> pd.DataFrame:
    """:func:`load_results` of :func:`grid_runs` ``(params, study)``."""
    return load_results(results_dir, grid_runs(params, study))


def datasets_of(results: pd.DataFrame) -> list[str]:
    """The evaluation datasets present, in the paper's order."""
    return ordered(results["eval_dataset"], DATASET_ORDER)


def strategies_of(results: pd.DataFrame, include: Sequence[str] = STRATEGY_ORDER) -> list[str]:
    return [s for s in ordered(results["strategy"], STRATEGY_ORDER) if s in include]


def dataset_title(results: pd.DataFrame, dataset: str) -> str:
    """``XQuAD-R (trained on MLQA-R)``."""
    train = results.loc[results["eval_dataset"] == dataset, "train_dataset"].iloc[0]
    return f"{dataset_label(dataset)} (trained on {dataset_label(train)})"


def unseen_languages(results: pd.DataFrame, dataset: str) -> list[str]:
    """Evaluation languages outside the training languages of the trained main runs on ``dataset``.

    Empty when every evaluation language was trained on (MLQA-R in fold xquad2mlqa)."""
    sub = results[(results["eval_dataset"] == dataset) & results["strategy"].isin(TRAINED)]
    if sub.empty:
        return []
    langs = [set(x) for x in sub["unseen_languages"]]
    return sorted(set.union(*langs)) if langs else []


def untrainable_languages(params: dict, fold: str, languages: Iterable[str]) -> list[str]:
    """Evaluation ``languages`` that no run of ``fold`` can train on: outside ``folds.<fold>.language_order``
    (XQuAD-R's el, ru, th, tr in fold mlqa2xquad)."""
    order = set(fold_spec(params, fold)["language_order"])
    return sorted(l for l in languages if l not in order)


def training_languages(results: pd.DataFrame, fold: str) -> list[str]:
    """The union of the trained main runs' training languages in ``fold`` (empty if it has none)."""
    sub = results.loc[(results["fold"] == fold) & results["strategy"].isin(TRAINED), "train_languages"]
    return sorted(set().union(*[set(x) for x in sub])) if len(sub) else []


def long_metrics(results: pd.DataFrame, metrics: Sequence[str],
                 id_vars: Sequence[str] = ("eval_dataset", "fold", "strategy", "seed", "run")) -> pd.DataFrame:
    """``results`` melted to one row per (run, metric): columns ``id_vars``, ``metric``, ``value``."""
    present = [m for m in metrics if m in results.columns]
    out = results[list(id_vars) + present].melt(id_vars=list(id_vars), var_name="metric", value_name="value")
    out["value"] = out["value"].astype(float)
    return out


# ----------------------------------------------------------------------------------- seed summaries


def seed_summary(results: pd.DataFrame, metrics: Sequence[str],
                 by: Sequence[str] = ("eval_dataset", "strategy")) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof 1) over seeds: one row per ``by`` group and metric.

    Columns: ``by``, ``metric``, ``mean``, ``sd`` (NaN for a single run), ``n`` (runs with a value).
    """
    long = long_metrics(results, metrics, id_vars=list(by))
    g = long.dropna(subset=["value"]).groupby(list(by) + ["metric"], sort=False)["value"]
    out = g.agg(mean="mean", sd=lambda v: float(v.std(ddof=1)) if len(v) > 1 else math.nan, n="count")
    return out.reset_index()


def summary_lookup(summary: pd.DataFrame, by: Sequence[str] = ("eval_dataset", "strategy")) -> dict:
    """``{(*by values, metric): (mean, sd, n)}`` of a :func:`seed_summary` frame."""
    return {tuple(r[c] for c in by) + (r["metric"],): (r["mean"], r["sd"], int(r["n"]))
            for r in summary.to_dict("records")}


def seeds_of(results: pd.DataFrame) -> list[int]:
    """The seeds of the trained runs in ``results``."""
    return sorted({int(s) for s in results.loc[results["strategy"].isin(TRAINED), "seed"].dropna()})


def seeds_note(results: pd.DataFrame) -> str:
    """``mean $\\pm$ sd over 2 seeds (13, 14)`` for the trained main runs."""
    seeds = seeds_of(results)
    if len(seeds) > 1:
        return rf"mean $\pm$ sample sd over {len(seeds)} seeds ({', '.join(map(str, seeds))})"
    if seeds:
        return f"a single seed ({seeds[0]}), no sd"
    return "single runs"


# ------------------------------------------------------------------------------------------ formatting


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


def best_flags(values: Sequence[float], higher_is_better: bool = True, digits: int = 3) -> list[bool]:
    """Which values are the best of their column, compared as printed (ties at the printed precision all win)."""
    printed = [math.nan if v is None or math.isnan(v) else float(fmt(v, digits)) for v in values]
    valid = [v for v in printed if not math.isnan(v)]
    if not valid:
        return [False] * len(values)
    best = max(valid) if higher_is_better else min(valid)
    return [(not math.isnan(v)) and v == best for v in printed]


def latex_escape(text: str) -> str:
    return (str(text).replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%")
            .replace("_", r"\_").replace("#", r"\#"))


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


def placeholder_table(caption: str, label: str, message: str = "not part of this configuration") -> str:
    """A declared table whose runs the configured grid does not have (keeps the paper compiling)."""
    return booktabs(["Note \\\\"], [[rf"\emph{{{message}}}"]], align="l", caption=caption, label=label, fit=False)


def save_table(text: str, path: str | os.PathLike) -> None:
    """Write a table atomically (a killed notebook never leaves half a table)."""
    write_text(path, text)


def save_figure(fig, stem: str | os.PathLike) -> None:
    """Save ``fig`` as ``stem.pdf`` and ``stem.png``, atomically, without timestamps (reproducible bytes)."""
    stem = Path(stem)
    with atomic_path(stem.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    with atomic_path(stem.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", dpi=150, metadata={"Software": None})


# ---------------------------------------------------------------------------------------- significance


def load_per_query(results_dir: str | os.PathLike, run: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    path = Path(results_dir) / run / "per_query.parquet"
    if not path.is_file():
        raise _missing_error([path])
    return pd.read_parquet(path, columns=list(columns) if columns else None)


def seed_averaged_per_query(results_dir: str | os.PathLike, runs: Sequence[str], value: str = "ap",
                            settings: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-query ``value`` averaged over ``runs`` (a strategy's seeds), via :func:`stats.average_runs`."""
    check_results(results_dir, runs, "per_query.parquet")
    frames = []
    for run in runs:
        df = load_per_query(results_dir, run, ["setting", "query_lang", "corpus_lang", "qid", value])
        frames.append(df[df["setting"].isin(settings)] if settings else df)
    return stats.average_runs(frames, value)


def baseline_letters(baselines: Sequence[str]) -> dict[str, str]:
    """Superscript letter of each baseline in significance marks: a, b, c ... in the strategies' order."""
    return {b: "abcdefghijklmnopqrstuvwxyz"[i] for i, b in enumerate(ordered(baselines, STRATEGY_ORDER))}


def compare_strategies(per_query: dict[tuple[str, str], pd.DataFrame], target: str = "hybrid",
                       baselines: Sequence[str] | None = None, settings: Sequence[str] = SETTINGS, *,
                       value: str = "ap", n_resamples: int = 10000, seed: int = 0, confidence: float = 0.95,
                       alpha: float = 0.05) -> pd.DataFrame:
    """``target`` minus each baseline, per dataset and setting, on (seed-averaged) per-query values.

    ``per_query``: ``{(dataset, strategy): per-query frame}``. Paired approximate randomization test and
    cluster-bootstrap CI (:func:`stats.paired_randomization_test`, question ids as units); Holm's correction
    over *all* rows of the returned table (every dataset, baseline and setting together).

    Columns: ``dataset, baseline, setting, mean_baseline, mean_target, diff, ci_low, ci_high, p_value,
    p_holm, effect_size, n_queries, significant`` (``p_holm < alpha``).
    """
    datasets = ordered((d for d, _ in per_query), DATASET_ORDER)
    parts = []
    for ds in datasets:
        if (ds, target) not in per_query:
            continue
        tgt = per_query[(ds, target)]
        bases = baselines if baselines is not None else [s for d, s in per_query if d == ds and s != target]
        for base in ordered(bases, STRATEGY_ORDER):
            if (ds, base) not in per_query or base == target:
                continue
            ref = per_query[(ds, base)]
            present = [st for st in settings if (ref["setting"] == st).any() and (tgt["setting"] == st).any()]
            if not present:
                continue
            # stats.compare_runs: target minus this baseline per setting (its Holm is redone over all rows below)
            t = stats.compare_runs({base: ref, target: tgt}, base, present, value=value, n_resamples=n_resamples,
                                   confidence=confidence, seed=seed)
            parts.append(t.rename(columns={"mean_a": "mean_baseline", "mean_b": "mean_target"})
                         .assign(dataset=ds, baseline=base))
    columns = ["dataset", "baseline", "setting", "mean_baseline", "mean_target", "diff", "ci_low", "ci_high",
               "p_value", "p_holm", "effect_size", "n_queries", "significant"]
    if not parts:
        return pd.DataFrame(columns=columns)
    table = pd.concat(parts, ignore_index=True)
    adjusted = stats.holm({str(i): p for i, p in enumerate(table["p_value"])})
    table["p_holm"] = [adjusted[str(i)] for i in range(len(table))]
    table["significant"] = table["p_holm"] < alpha
    return table[columns]


def significance_tests(results_dir: str | os.PathLike, params: dict, target: str = "hybrid", *,
                       n_resamples: int = 10000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """:func:`compare_strategies` of the main grid: per fold, ``target`` against every other strategy of
    ``grid.strategies``, each averaged over ``grid.seeds`` per query (AP, Mo./Cr./Mul.)."""
    specs = grid_runs(params, "main")
    trained = specs[specs["strategy"].isin(TRAINED)]
    per_query = {}
    for (ds, strategy), group in trained.groupby(["eval_dataset", "strategy"], sort=False):
        per_query[(ds, strategy)] = seed_averaged_per_query(results_dir, list(group["run"]), "ap")
    return compare_strategies(per_query, target, n_resamples=n_resamples, seed=seed, alpha=alpha)


def significance_marks(sig: pd.DataFrame, dataset: str, setting: str, alpha: float = 0.05,
                       letters: dict[str, str] | None = None) -> str:
    """The superscript marking a target cell: one letter per baseline the target differs from with Holm-adjusted
    ``p < alpha`` (``a`` = better than baseline a; ``a$\\downarrow$`` = worse); empty when none does."""
    if sig is None or sig.empty:
        return ""
    letters = letters or baseline_letters(sig["baseline"].unique())
    rows = sig[(sig["dataset"] == dataset) & (sig["setting"] == setting) & (sig["p_holm"] < alpha)]
    parts = []
    for r in rows.to_dict("records"):
        parts.append(letters[r["baseline"]] + (r"\downarrow" if r["diff"] < 0 else ""))
    return "$^{" + ",".join(parts) + "}$" if parts else ""


def marks_legend(letters: dict[str, str], target: str = "hybrid") -> str:
    return "; ".join(f"{v}: {strategy_label(target)} vs {strategy_label(k)}" for k, v in letters.items())


# ------------------------------------------------------------------------------------------------ tables


def _reference_rule(rows: list, strategies: Sequence[str]) -> list:
    """``rows`` (one per strategy) with a ``\\midrule`` between the reference rows and the trained ones."""
    out: list = []
    for i, (row, s) in enumerate(zip(rows, strategies)):
        if i and s in TRAINED and strategies[i - 1] not in TRAINED:
            out.append(r"\midrule")
        out.append(row)
    return out


def main_table(results: pd.DataFrame, sig: pd.DataFrame | None = None, *, alpha: float = 0.05,
               metric_prefix: str = "map", caption: str | None = None, label: str = "tab:main") -> str:
    """Paper Table 1 layout: rows zero-shot, BM25, the trained strategies; column groups per evaluation
    dataset, Mo./Cr./Mul. mAP as mean $\\pm$ sd over seeds. Best mean per column in bold; Hybrid's cell
    carries :func:`significance_marks` (Holm-adjusted, from ``sig``)."""
    datasets = datasets_of(results)
    strategies = strategies_of(results)
    metrics = [f"{metric_prefix}_{s}" for s in SETTINGS]
    look = summary_lookup(seed_summary(results, metrics))
    letters = baseline_letters(sig["baseline"].unique()) if sig is not None and not sig.empty else {}
    cells: dict[str, list[str]] = {s: [strategy_label(s)] for s in strategies}
    for ds in datasets:
        for setting, metric in zip(SETTINGS, metrics):
            stats_ = [look.get((ds, s, metric), (math.nan, math.nan, 0)) for s in strategies]
            flags = best_flags([m for m, _, _ in stats_])
            for s, (mean, sd, _), bold in zip(strategies, stats_, flags):
                mark = significance_marks(sig, ds, setting, alpha, letters) if s == "hybrid" and letters else ""
                cells[s].append(fmt_mean_sd(mean, sd, bold=bold, mark=mark))
    header = group_header([""], [(dataset_title(results, ds), 3) for ds in datasets])
    header.append(" & ".join(["Sampling"] + [SETTING_LABELS[s] for _ in datasets for s in SETTINGS]) + r" \\")
    body = _reference_rule([cells[s] for s in strategies], strategies)
    if caption is None:
        legend = marks_legend(letters) if letters else ""
        caption = (rf"mAP, {OURS}: monolingual (Mo.), cross-lingual (Cr.) and multilingual (Mul.) retrieval, "
                   rf"zero-shot on each evaluation set after training on the other; {seeds_note(results)}. "
                   r"BM25: lexical reference, monolingual only. Best mean per column in bold. "
                   + (rf"Superscripts on Hybrid: significant difference (paired randomization test on per-query AP "
                      rf"averaged over seeds, question ids as units, Holm-adjusted $p<{alpha:g}$ over all the "
                      rf"comparisons of Table~\ref{{tab:significance}}) against {legend}; $\downarrow$: Hybrid lower. "
                      if letters else "")
                   + r"The paper's numbers (other models and data) are in Table~\ref{tab:paper-vs-ours}.")
    return booktabs(header, body, align="l" + "c" * (3 * len(datasets)), caption=caption, label=label)


RECALL_COLUMNS = [("r1_mo", "Mo."), ("r1_cr", "Cr."), ("r10_mul", "Mul."), ("mrr_mo", "Mo."), ("mrr_cr", "Cr."),
                  ("mrr_mul", "Mul."), ("ndcg10_mo", "Mo."), ("ndcg10_cr", "Cr."), ("ndcg10_mul", "Mul.")]
RECALL_GROUPS = [("R@1", 2), ("R@10", 1), ("MRR", 3), ("nDCG@10", 3)]


def _block_table(results: pd.DataFrame, columns: Sequence[tuple[str, str]], groups: Sequence[tuple[str, int]],
                 strategies: Sequence[str], *, caption: str, label: str,
                 lower_is_better: Sequence[str] = (), digits: int = 3) -> str:
    """Rows: one block per evaluation dataset (a title line, then one row per strategy); columns: metrics
    as mean $\\pm$ sd over seeds, best per column and dataset in bold."""
    metrics = [c for c, _ in columns]
    look = summary_lookup(seed_summary(results, metrics))
    header = group_header([""], groups) if groups else []
    header.append(" & ".join(["Sampling"] + [h for _, h in columns]) + r" \\")
    body: list = []
    for i, ds in enumerate(datasets_of(results)):
        if i:
            body.append(r"\midrule")
        body.append(rf"\multicolumn{{{len(columns) + 1}}}{{l}}{{\emph{{{dataset_title(results, ds)}}}}} \\")
        present = [s for s in strategies if any((ds, s, m) in look for m in metrics)]
        cells = {s: [strategy_label(s)] for s in present}
        for m in metrics:
            vals = [look.get((ds, s, m), (math.nan, math.nan, 0)) for s in present]
            flags = best_flags([v[0] for v in vals], m not in lower_is_better, digits)
            for s, (mean, sd, _), bold in zip(present, vals, flags):
                cells[s].append(fmt_mean_sd(mean, sd, digits, bold=bold))
        body += [cells[s] for s in present]
    return booktabs(header, body, align="l" + "c" * len(columns), caption=caption, label=label)


def recall_table(results: pd.DataFrame, label: str = "tab:recall") -> str:
    """R@1 (Mo., Cr.), R@10 (Mul.), MRR and nDCG@10 per setting; both datasets; mean $\\pm$ sd over seeds."""
    caption = (rf"Recall, MRR and nDCG@10, {OURS}; {seeds_note(results)}. R@1 for Mo./Cr. and R@10 for Mul. "
               r"as in the paper; best per column and dataset in bold; BM25 is monolingual only.")
    return _block_table(results, RECALL_COLUMNS, RECALL_GROUPS, strategies_of(results), caption=caption, label=label)


def rank_distance_table(results: pd.DataFrame, label: str = "tab:rank-distance") -> str:
    """Paper Table 2 layout: rank distance ($\\downarrow$) and same-language share of the top 10 of the
    multilingual pool, per strategy and dataset (mean $\\pm$ sd over seeds)."""
    datasets = datasets_of(results)
    strategies = [s for s in strategies_of(results) if s != "bm25"]
    metrics = ["rank_distance", "same_lang@10"]
    look = summary_lookup(seed_summary(results, metrics))
    cells = {s: [strategy_label(s)] for s in strategies}
    uniform = []
    for ds in datasets:
        for m in metrics:
            vals = [look.get((ds, s, m), (math.nan, math.nan, 0)) for s in strategies]
            flags = best_flags([v[0] for v in vals], False) if m == "rank_distance" else [False] * len(vals)
            for s, (mean, sd, _), bold in zip(strategies, vals, flags):
                cells[s].append(fmt_mean_sd(mean, sd, 1 if m == "rank_distance" else 3, bold=bold))
        n_lang = len(results.loc[results["eval_dataset"] == ds, "languages"].iloc[0])
        if n_lang:
            uniform.append(f"{dataset_label(ds)}: 1/{n_lang}")
    header = group_header([""], [(dataset_title(results, ds), 2) for ds in datasets])
    header.append(" & ".join(["Sampling"] + [r"RD $\downarrow$", r"same-lang.@10"] * len(datasets)) + r" \\")
    body = _reference_rule([cells[s] for s in strategies], strategies)
    caption = (rf"Language bias in the multilingual setting, {OURS}; {seeds_note(results)}. RD: rank distance "
               r"(per query, largest minus smallest rank among its parallel relevant sentences; mean over queries, "
               r"then over query languages; lower is less bias; lowest in bold). same-lang.@10: share of the top 10 "
               r"candidates in the query's language (mean over query languages); a ranking blind to language would "
               r"give about one over the number of languages (" + ", ".join(uniform) + ").")
    return booktabs(header, body, align="l" + "c" * (2 * len(datasets)), caption=caption, label=label)


def significance_table(sig: pd.DataFrame, target: str = "hybrid", *, alpha: float = 0.05, n_seeds: int | None = None,
                       n_resamples: int = 10000, label: str = "tab:significance") -> str:
    """Target minus each baseline per dataset and setting: $\\Delta$mAP, 95% CI, $p$, Holm $p$, effect size."""
    header = [r"Dataset & Baseline & Setting & $\Delta$mAP & 95\% CI & $p$ & $p_\mathrm{Holm}$ & $d_z$ \\"]
    body: list = []
    prev = None
    for r in sig.to_dict("records"):
        if prev is not None and r["dataset"] != prev:
            body.append(r"\midrule")
        star = "$^{*}$" if r["p_holm"] < alpha else ""
        body.append([dataset_label(r["dataset"]) if r["dataset"] != prev else "",
                     strategy_label(r["baseline"]), SETTING_LABELS.get(r["setting"], r["setting"]),
                     f"${r['diff']:+.4f}${star}", f"[${r['ci_low']:+.4f}$, ${r['ci_high']:+.4f}$]",
                     f"{r['p_value']:.4f}", f"{r['p_holm']:.4f}", f"${r['effect_size']:+.2f}$"])
        prev = r["dataset"]
    if not body:
        body.append([r"\multicolumn{8}{c}{no comparison (a single strategy)}"])
    seeds = f"per-query AP averaged over {n_seeds} seeds; " if n_seeds else ""
    caption = (rf"{strategy_label(target)} minus each other sampling strategy, {OURS}: {seeds}$\Delta$mAP "
               rf"(macro, as in Table~\ref{{tab:main}}), 95\% cluster-bootstrap CI over questions, two-sided paired "
               rf"randomization test ({n_resamples:,} resamples; all parallel versions of a question are swapped "
               r"together), "
               r"Holm-adjusted $p$ over all the table's comparisons, and the paired effect size $d_z$ (mean over "
               rf"questions of the difference divided by its sd). $^{{*}}$: $p_\mathrm{{Holm}}<{alpha:g}$.")
    return booktabs(header, body, align="lllrcrrr", caption=caption, label=label)


def load_reported(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: it holds the paper's reported numbers (see PAPER.md §5)")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def paper_vs_ours_table(results: pd.DataFrame, reported: dict, label: str = "tab:paper-vs-ours") -> str:
    """The paper's reported Table 1 (mAP) and Table 2 (rank distance) beside our seed means, for the
    strategies the paper reports. Best per column within each block in bold (lowest rank distance)."""
    datasets = [d for d in DATASET_ORDER]  # the paper's columns, ours filled where present
    strategies = list(reported.get("strategies", ["xx", "xy", "hybrid"]))
    look = summary_lookup(seed_summary(results, ["map_mo", "map_cr", "map_mul", "rank_distance"]))
    blocks: list[tuple[str, dict]] = []
    for model in reported.get("models", list(reported["table1_map"])):
        vals = {}
        for s in strategies:
            t1 = reported["table1_map"][model].get(s, {})
            t2 = reported["table2_rank_distance"][model].get(s, {})
            vals[s] = ([_num(t1.get(d, {}).get(k)) for d in datasets for k in SETTINGS]
                       + [_num(t2.get(d)) for d in datasets])
        blocks.append((rf"\emph{{Paper (reported): {latex_escape(model)}}}", vals))
    ours = {s: [look.get((d, s, f"map_{k}"), (math.nan,))[0] for d in datasets for k in SETTINGS]
            + [look.get((d, s, "rank_distance"), (math.nan,))[0] for d in datasets] for s in strategies}
    blocks.append((rf"\emph{{Ours: {MODEL_NOTE} (mean over seeds)}}", ours))
    n_cols = 3 * len(datasets) + len(datasets)
    groups = [(f"mAP {dataset_label(d)}", 3) for d in datasets] + [(r"RD $\downarrow$", len(datasets))]
    header = group_header([""], groups)
    header.append(" & ".join(["Sampling"] + [SETTING_LABELS[k] for _ in datasets for k in SETTINGS]
                             + [dataset_label(d) for d in datasets]) + r" \\")
    body: list = []
    for i, (title, vals) in enumerate(blocks):
        if i:
            body.append(r"\midrule")
        body.append(rf"\multicolumn{{{n_cols + 1}}}{{l}}{{{title}}} \\")
        cols = list(zip(*[vals[s] for s in strategies]))
        flags = [best_flags(c, j < 3 * len(datasets), 1 if j >= 3 * len(datasets) else 3) for j, c in enumerate(cols)]
        for si, s in enumerate(strategies):
            row = [strategy_label(s)]
            for j, v in enumerate(vals[s]):
                text = fmt(v, 3)
                row.append(rf"\textbf{{{text}}}" if flags[j][si] else text)
            body.append(row)
    caption = (r"The paper's reported numbers beside ours: \textbf{different models and data}. Paper: XLM-R and "
               r"LaBSE fine-tuned on machine-translated training sets with batches of 100, evaluated on the full "
               rf"XQuAD-R and MLQA-R ({latex_escape(str(reported.get('source', 'arXiv 2408.10536')))}). Ours: "
               rf"{MODEL_NOTE} (cross-dataset folds, short fine-tuning, evaluation subsample), means over "
               rf"{len(seeds_of(results))} seed(s). Compare the pattern across sampling strategies within a block, "
               r"not the levels across blocks. RD: rank distance in the multilingual setting (lower is less language "
               r"bias).")
    return booktabs(header, body, align="l" + "c" * n_cols, caption=caption, label=label)


# ------------------------------------------------------------------------------ per-language frames


def per_language_frame(results_dir: str | os.PathLike, specs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``per_language[metric]`` of every run: columns ``eval_dataset, fold, strategy, seed, run, lang, value``
    (runs without that metric, e.g. BM25's Mul., contribute nothing)."""
    rows = []
    for spec in specs.to_dict("records"):
        path = metrics_path(results_dir, spec["run"])
        m = _block(read_metrics(results_dir, spec["run"]), spec, path)
        for lang, v in (m.get("per_language", {}).get(metric) or {}).items():
            rows.append({"eval_dataset": spec["eval_dataset"], "fold": spec["fold"], "strategy": spec["strategy"],
                         "seed": spec["seed"], "run": spec["run"], "lang": lang, "value": _num(v)})
    return pd.DataFrame(rows, columns=["eval_dataset", "fold", "strategy", "seed", "run", "lang", "value"])


def per_pair_frame(results_dir: str | os.PathLike, specs: pd.DataFrame, metric: str = "map") -> pd.DataFrame:
    """``per_pair[metric]`` of every run (keys ``"<query lang>-<corpus lang>"``): columns ``eval_dataset,
    fold, strategy, seed, run, query_lang, corpus_lang, value``."""
    rows = []
    for spec in specs.to_dict("records"):
        path = metrics_path(results_dir, spec["run"])
        m = _block(read_metrics(results_dir, spec["run"]), spec, path)
        for pair, v in (m.get("per_pair", {}).get(metric) or {}).items():
            q, c = pair.split("-", 1)
            rows.append({"eval_dataset": spec["eval_dataset"], "fold": spec["fold"], "strategy": spec["strategy"],
                         "seed": spec["seed"], "run": spec["run"], "query_lang": q, "corpus_lang": c, "value": _num(v)})
    return pd.DataFrame(rows, columns=["eval_dataset", "fold", "strategy", "seed", "run", "query_lang", "corpus_lang",
                                       "value"])


def tatoeba_frame(results_dir: str | os.PathLike, specs: pd.DataFrame) -> pd.DataFrame:
    """Tatoeba 1-NN accuracy of every run that has it: columns ``fold, eval_dataset, strategy, seed, run, lang,
    direction`` (``x2en`` | ``en2x``), ``value``."""
    rows = []
    for spec in specs.to_dict("records"):
        tat = read_metrics(results_dir, spec["run"]).get("tatoeba")
        if not isinstance(tat, dict):
            continue
        for lang, acc in (tat.get("per_language") or {}).items():
            for direction in ("x2en", "en2x"):
                if direction in acc:
                    rows.append({"fold": spec["fold"], "eval_dataset": spec["eval_dataset"],
                                 "strategy": spec["strategy"], "seed": spec["seed"], "run": spec["run"],
                                 "lang": lang, "direction": direction, "value": _num(acc[direction])})
    return pd.DataFrame(rows, columns=["fold", "eval_dataset", "strategy", "seed", "run", "lang", "direction", "value"])


def pair_matrix(pairs: pd.DataFrame, dataset: str, strategy: str,
                languages: Sequence[str] | None = None) -> pd.DataFrame:
    """Query language x corpus language matrix of the seed-mean ``per_pair`` values of one strategy."""
    sub = pairs[(pairs["eval_dataset"] == dataset) & (pairs["strategy"] == strategy)]
    mat = sub.groupby(["query_lang", "corpus_lang"])["value"].mean().unstack("corpus_lang")
    langs = list(languages) if languages is not None else sorted(set(mat.index) | set(mat.columns))
    return mat.reindex(index=langs, columns=langs)


def _lang_header(lang: str, unseen: Iterable[str]) -> str:
    return lang + (r"$^{\dagger}$" if lang in set(unseen) else "")


def per_language_table(results: pd.DataFrame, frames: dict[str, pd.DataFrame], dataset: str, *,
                       label: str | None = None) -> str:
    """Paper Tables 3-6 layout for one evaluation dataset: per query language (columns, plus the macro
    average), a block of Mo. mAP rows and a block of Mul. mAP rows, one row per strategy (seed means);
    languages unseen in training marked with a dagger; best per column and block in bold.

    ``frames``: ``{"map_mo": per_language_frame(...), "map_mul": ...}``."""
    unseen = unseen_languages(results, dataset)
    langs = sorted(next(iter(results.loc[results["eval_dataset"] == dataset, "languages"])))
    blocks = [("map_mo", "Monolingual (Mo.) mAP"), ("map_mul", "Multilingual (Mul.) mAP")]
    header = [" & ".join(["Sampling"] + [_lang_header(l, unseen) for l in langs] + ["Avg."]) + r" \\"]
    body: list = []
    for i, (metric, title) in enumerate(blocks):
        f = frames[metric]
        f = f[f["eval_dataset"] == dataset]
        if f.empty:
            continue
        if i:
            body.append(r"\midrule")
        body.append(rf"\multicolumn{{{len(langs) + 2}}}{{l}}{{\emph{{{title}}}}} \\")
        mat = f.groupby(["strategy", "lang"])["value"].mean().unstack("lang").reindex(columns=langs)
        mat["avg"] = mat.mean(axis=1, skipna=False)
        strategies = [s for s in ordered(mat.index, STRATEGY_ORDER)]
        mat = mat.reindex(strategies)
        flags = {c: best_flags(list(mat[c])) for c in mat.columns}
        for si, s in enumerate(strategies):
            row = [strategy_label(s)]
            for c in mat.columns:
                v = mat.at[s, c]
                row.append(rf"\textbf{{{fmt(v)}}}" if flags[c][si] else fmt(v))
            body.append(row)
    title = dataset_title(results, dataset)
    dag = (r"$^{\dagger}$: a language outside the training languages (unseen: " + ", ".join(unseen) + "). "
           if unseen else "Every evaluation language is a training language of this fold. ")
    caption = (rf"{title}: mAP per query language, {OURS}; mean over seeds (the paper's Tables 3--6 layout). "
               rf"{dag}Avg.: macro average over query languages. Best per column in bold.")
    return booktabs(header, body, align="l" + "c" * (len(langs) + 1), caption=caption,
                    label=label or f"tab:per-language-{dataset.replace('_', '-')}", size=r"\footnotesize")


def tatoeba_table(tatoeba: pd.DataFrame, results: pd.DataFrame, label: str = "tab:tatoeba") -> str:
    """Tatoeba 1-NN accuracy per language (columns, plus the mean), both directions, per fold and strategy
    (rows, seed means). Bold: best per column within a direction and fold."""
    langs = sorted(tatoeba["lang"].unique())
    folds = ordered(tatoeba["fold"], list(results["fold"].unique()))
    header = [" & ".join(["Sampling"] + list(langs) + ["Mean"]) + r" \\"]
    body: list = []
    names = {"x2en": r"x$\to$en", "en2x": r"en$\to$x"}
    for direction in ("x2en", "en2x"):
        for fold in folds:
            sub = tatoeba[(tatoeba["direction"] == direction) & (tatoeba["fold"] == fold)]
            if sub.empty:
                continue
            if body:
                body.append(r"\midrule")
            ds = sub["eval_dataset"].iloc[0]
            train = results.loc[results["fold"] == fold, "train_dataset"].iloc[0]
            body.append(rf"\multicolumn{{{len(langs) + 2}}}{{l}}{{\emph{{{names[direction]}, trained on "
                        rf"{dataset_label(train)} (fold \texttt{{{fold}}})}}}} \\")
            mat = sub.groupby(["strategy", "lang"])["value"].mean().unstack("lang").reindex(columns=langs)
            mat["mean"] = mat.mean(axis=1, skipna=False)
            strategies = ordered(mat.index, STRATEGY_ORDER)
            mat = mat.reindex(strategies)
            flags = {c: best_flags(list(mat[c])) for c in mat.columns}
            for si, s in enumerate(strategies):
                cells = [fmt(mat.at[s, c]) for c in mat.columns]
                body.append([strategy_label(s)] + [rf"\textbf{{{v}}}" if flags[c][si] else v
                                                   for c, v in zip(mat.columns, cells)])
    unseen = []
    for fold in folds:
        train = training_languages(results, fold)
        miss = [l for l in langs if train and l not in train]
        if miss:
            unseen.append(rf"\texttt{{{fold}}}: {', '.join(miss)}")
    caption = (rf"Tatoeba bitext retrieval, {OURS}: 1-NN accuracy by cosine in both directions (x$\to$en: the "
               r"non-English sentence retrieves its English translation), mean over seeds. Languages outside the "
               r"training languages: " + ("; ".join(unseen) if unseen else "none")
               + ". Best per column and block in bold.")
    return booktabs(header, body, align="l" + "c" * (len(langs) + 1), caption=caption, label=label,
                    size=r"\footnotesize")


def rank_distance_per_query(results_dir: str | os.PathLike, specs: pd.DataFrame) -> pd.DataFrame:
    """Per-query rank distance of the multilingual setting, averaged over each strategy's seeds:
    columns ``eval_dataset, strategy, query_lang, qid, rank_distance``."""
    cols = ["setting", "query_lang", "corpus_lang", "qid", "rank_distance"]
    out = []
    for (ds, strategy), group in specs.groupby(["eval_dataset", "strategy"], sort=False):
        frames = []
        for run in group["run"]:
            df = load_per_query(results_dir, run, cols)
            frames.append(df[df["setting"] == "mul"])
        avg = stats.average_runs(frames, "rank_distance")
        avg.insert(0, "strategy", strategy)
        avg.insert(0, "eval_dataset", ds)
        out.append(avg[["eval_dataset", "strategy", "query_lang", "qid", "rank_distance"]])
    return pd.concat(out, ignore_index=True)


def bias_table(results: pd.DataFrame, rd: pd.DataFrame, label: str = "tab:bias") -> str:
    """Mean rank distance per query language (rows) and strategy (columns, grouped by dataset); seed means
    of ``per_language["rank_distance"]``; the last row is the macro average. Lowest per row and dataset in bold.

    ``rd``: :func:`per_language_frame` of ``rank_distance``."""
    datasets = [d for d in datasets_of(results) if d in set(rd["eval_dataset"])]
    strat = {d: ordered(rd.loc[rd["eval_dataset"] == d, "strategy"], STRATEGY_ORDER) for d in datasets}
    langs = sorted(rd["lang"].unique())
    unseen = {d: unseen_languages(results, d) for d in datasets}
    mats = {}
    for d in datasets:
        m = rd[rd["eval_dataset"] == d].groupby(["lang", "strategy"])["value"].mean().unstack("strategy")
        m = m.reindex(index=langs, columns=strat[d])
        m.loc["avg"] = m.mean(axis=0, skipna=True)
        mats[d] = m
    header = group_header([""], [(dataset_title(results, d), len(strat[d])) for d in datasets])
    header.append(" & ".join(["Query lang."] + [strategy_label(s) for d in datasets for s in strat[d]]) + r" \\")
    body: list = []
    for lang in langs + ["avg"]:
        if lang == "avg":
            body.append(r"\midrule")
        marked = [d for d in datasets if lang in unseen[d]]
        name = "Avg." if lang == "avg" else lang + (r"$^{\dagger}$" if marked else "")
        row = [name]
        for d in datasets:
            vals = list(mats[d].loc[lang])
            flags = best_flags(vals, False, 1)
            row += [rf"\textbf{{{fmt(v, 1)}}}" if f else fmt(v, 1) for v, f in zip(vals, flags)]
        body.append(row)
    dag = "; ".join(f"{dataset_label(d)}: {', '.join(unseen[d])}" for d in datasets if unseen[d])
    dag = (r"$^{\dagger}$: unseen in training (" + dag + "). ") if dag else ""
    caption = (rf"Mean rank distance per query language (multilingual setting; lower is less language bias), "
               rf"{OURS}; mean over seeds. {dag}"
               r"Avg.: macro average over query languages. Lowest per row and dataset in bold; --: language not in "
               r"that evaluation set.")
    n = sum(len(strat[d]) for d in datasets)
    return booktabs(header, body, align="l" + "c" * n, caption=caption, label=label, size=r"\footnotesize")


# ------------------------------------------------------------------------------------------------- scaling


def scaling_table(size: pd.DataFrame, languages: pd.DataFrame, alpha: pd.DataFrame, label: str = "tab:scaling") -> str:
    """Every point of the three scaling studies (single runs, seed ``grid.scaling_seed``)."""
    cols = ["map_mo", "map_cr", "map_mul", "rank_distance", "map_mul_seen", "map_mul_unseen"]
    heads = ["Mo.", "Cr.", "Mul.", r"RD $\downarrow$", r"Mul.\ seen", r"Mul.\ unseen"]
    header = [" & ".join(["Sampling", "Layers", "Non-emb.\\ params", "Train langs", r"$\alpha$"] + heads) + r" \\"]
    body: list = []

    def fmt_int(v):
        return MISSING if _isnull(v) else str(int(v))

    def fmt_params(v):
        return MISSING if _isnull(v) else f"{v / 1e6:.1f}M"

    def fmt_alpha(v):
        return MISSING if _isnull(v) else f"{float(v):g}"

    studies = [("Model size (first $k$ encoder layers)", size, ["layers", "strategy"]),
               ("Number of training languages", languages, ["n_languages", "strategy"]),
               (r"Hybrid mixing probability $\alpha$ (0: X-Y run, 1: X-X-mono run)", alpha, ["alpha"])]
    for title, frame, order in studies:
        if frame is None or frame.empty:
            continue
        if body:
            body.append(r"\midrule")
        body.append(rf"\multicolumn{{{len(heads) + 5}}}{{l}}{{\emph{{{title}}}}} \\")
        f = frame.copy()
        f["_s"] = [STRATEGY_ORDER.index(s) if s in STRATEGY_ORDER else 99 for s in f["strategy"]]
        keys = [("_s" if k == "strategy" else k) for k in order]
        f = f.sort_values(keys, kind="stable")
        for r in f.to_dict("records"):
            n_lang = r.get("n_languages")
            body.append([strategy_label(r["strategy"]), fmt_int(r.get("layers")),
                         fmt_params(r.get("non_embedding_parameters")), fmt_int(n_lang),
                         fmt_alpha(r.get("alpha")) if r["strategy"] != "zeroshot" else MISSING]
                        + [fmt(r.get(c, math.nan), 1 if c == "rank_distance" else 3) for c in cols])
    fold = next((str(f["fold"].iloc[0]) for f in (size, languages, alpha) if f is not None and not f.empty), "")
    seed = next((f.loc[f["strategy"] != "zeroshot", "seed"].dropna() for f in (size, languages, alpha)
                 if f is not None and not f.empty), pd.Series(dtype=object))
    seed_text = f", seed {int(seed.iloc[0])}" if len(seed) else ""
    caption = (rf"Scaling studies, {OURS}: fold \texttt{{{fold}}}{seed_text}, single runs. Model size: the first $k$ "
               r"layers of the encoder (non-embedding parameters); training languages: the first $k$ languages of the "
               r"fold's language order; $\alpha$: probability of a monolingual batch. Seen / unseen: query languages "
               r"inside / outside the run's training languages (--: none).")
    return booktabs(header, body, align="lcrcc" + "c" * len(heads), caption=caption, label=label, size=r"\footnotesize")


# ------------------------------------------------------------------------ confidence of headline numbers

def headline_intervals(results_dir: str | os.PathLike, params: dict, *, n_resamples: int = 10000, seed: int = 0,
                       confidence: float = 0.95) -> pd.DataFrame:
    """A cluster-bootstrap CI for every headline mAP of the main grid (each strategy's Mo./Cr./Mul.).

    Each strategy's per-query AP is averaged over its seeds (:func:`seed_averaged_per_query`; zero-shot and
    BM25 have one run), then :func:`stats.cluster_bootstrap_ci` resamples question ids, each bringing all of
    its parallel versions. The interval covers the variation over questions, not over training seeds (the
    tables' sd). Columns: ``dataset, strategy, setting, map, ci_low, ci_high, n_runs``.
    """
    specs = grid_runs(params, "main")
    rows = []
    for (ds, strategy), group in specs.groupby(["eval_dataset", "strategy"], sort=False):
        per_query = seed_averaged_per_query(results_dir, list(group["run"]), "ap")
        for setting in SETTINGS:
            if not (per_query["setting"] == setting).any():
                continue
            low, high = stats.cluster_bootstrap_ci(per_query, setting, "ap", n_resamples=n_resamples, seed=seed,
                                                   confidence=confidence)
            rows.append({"dataset": ds, "strategy": strategy, "setting": setting,
                         "map": stats.macro_mean(per_query, setting, "ap"), "ci_low": low, "ci_high": high,
                         "n_runs": len(group)})
    return pd.DataFrame(rows, columns=["dataset", "strategy", "setting", "map", "ci_low", "ci_high", "n_runs"])


def intervals_table(ci: pd.DataFrame, *, confidence: float = 0.95, n_resamples: int = 10000,
                    label: str = "tab:confidence") -> str:
    """Every headline mAP with its bootstrap interval: one block per dataset, one row per strategy."""
    header = [" & ".join(["Sampling"] + [SETTING_LABELS[s] + " mAP [CI]" for s in SETTINGS]) + r" \\"]
    body: list = []
    for i, ds in enumerate(ordered(set(ci["dataset"]), DATASET_ORDER)):
        if i:
            body.append(r"\midrule")
        body.append(rf"\multicolumn{{{len(SETTINGS) + 1}}}{{l}}{{\emph{{{DATASET_LABELS.get(ds, ds)}}}}} \\")
        sub = ci[ci["dataset"] == ds]
        for strategy in ordered(set(sub["strategy"]), STRATEGY_ORDER):
            row = [strategy_label(strategy)]
            for setting in SETTINGS:
                r = sub[(sub["strategy"] == strategy) & (sub["setting"] == setting)]
                row.append(MISSING if r.empty else
                           f"{fmt(r['map'].iloc[0])} [{fmt(r['ci_low'].iloc[0])}, {fmt(r['ci_high'].iloc[0])}]")
            body.append(row)
    caption = (rf"Headline mAP with {100 * confidence:g}\% cluster-bootstrap confidence intervals over questions "
               rf"({n_resamples:,} resamples; a question brings all its parallel versions), {OURS}. Trained "
               r"strategies: per-query AP averaged over seeds first, so the interval shows the uncertainty from "
               r"the sample of questions, not from training seeds (the sd of Table~\ref{tab:main}).")
    return booktabs(header, body, align="l" + "c" * len(SETTINGS), caption=caption, label=label)
