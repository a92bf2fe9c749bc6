"""The report's tables on the main grid (paper Table 1 / Table 2 layouts, recall, significance, confidence
intervals, the paper beside ours) and on the scaling studies, as booktabs LaTeX built from the frames of
:mod:`hybridbatch.reporting.results`. The per-language tables (paper Tables 3-6 layout), Tatoeba and bias tables are in
:mod:`hybridbatch.reporting.language_tables`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import pandas as pd
import yaml

from hybridbatch import strategies
from hybridbatch.grid import DATASET_LABELS, DATASET_ORDER, MODEL_NOTE, OURS, SETTING_LABELS, SETTINGS, dataset_label, ordered
from hybridbatch.reporting.latex import (MISSING, best_flags, block_title, bold_if, booktabs, fmt, fmt_int, fmt_mean_sd, fmt_share,
                    group_header, isnull, latex_escape)
from hybridbatch.reporting.results import (MIN_CLAIM_SEEDS, datasets_of, dataset_title, num, seed_summary, seeds_note, seeds_of,
                     strategies_of, summary_lookup)
from hybridbatch.reporting.significance import (MIN_SEEDS, baseline_letters, is_significant, marks_legend, pairings_with_sign,
                                                significance_marks)


def _reference_rule(rows: list, strategies_: Sequence[str]) -> list:
    """``rows`` (one per strategy) with a ``\\midrule`` between the reference rows and the trained ones."""
    out: list = []
    for i, (row, s) in enumerate(zip(rows, strategies_)):
        if i and s in strategies.TRAINED and strategies_[i - 1] not in strategies.TRAINED:
            out.append(r"\midrule")
        out.append(row)
    return out


def main_table(results: pd.DataFrame, sig: pd.DataFrame | None = None, *, alpha: float = 0.05,
               metric_prefix: str = "map", caption: str | None = None, label: str = "tab:main") -> str:
    """Paper Table 1 layout: rows zero-shot, BM25, the trained strategies; column groups per evaluation
    dataset, Mo./Cr./Mul. mAP as mean $\\pm$ sd over seeds. Best mean per column in bold; Hybrid's cell
    carries :func:`significance.significance_marks` (Holm-adjusted, from ``sig``)."""
    datasets = datasets_of(results)
    rows_ = strategies_of(results)
    metrics = [f"{metric_prefix}_{s}" for s in SETTINGS]
    look = summary_lookup(seed_summary(results, metrics))
    letters = baseline_letters(sig["baseline"].unique()) if sig is not None and not sig.empty else {}
    cells: dict[str, list[str]] = {s: [strategies.label(s)] for s in rows_}
    for ds in datasets:
        for setting, metric in zip(SETTINGS, metrics):
            stats_ = [look.get((ds, s, metric), (math.nan, math.nan, 0)) for s in rows_]
            flags = best_flags([m for m, _, _ in stats_])
            for s, (mean, sd, _), bold in zip(rows_, stats_, flags):
                mark = significance_marks(sig, ds, setting, alpha, letters) if s == "hybrid" and letters else ""
                cells[s].append(fmt_mean_sd(mean, sd, bold=bold, mark=mark))
    header = group_header([""], [(dataset_title(results, ds), 3) for ds in datasets])
    header.append(" & ".join(["Sampling"] + [SETTING_LABELS[s] for _ in datasets for s in SETTINGS]) + r" \\")
    body = _reference_rule([cells[s] for s in rows_], rows_)
    if caption is None:
        legend = marks_legend(letters) if letters else ""
        caption = (rf"mAP, {OURS}: monolingual (Mo.), cross-lingual (Cr.) and multilingual (Mul.) retrieval, "
                   rf"zero-shot on each evaluation set after training on the other; {seeds_note(results)}. "
                   r"BM25: lexical reference, monolingual only. Best mean per column in bold. "
                   + (rf"Superscripts on Hybrid: significant difference (seed-aware paired test on per-query AP, "
                      rf"question ids as units, every seed of both systems kept; Holm-adjusted $p<{alpha:g}$ "
                      + (r"within the cell's family -- the primary family P of Table~\ref{tab:primary} for its "
                         r"three cells, the secondary family S1 of Table~\ref{tab:significance} for the others -- "
                         if "family" in sig.columns else
                         r"over all the comparisons of Table~\ref{tab:significance} ")
                      + rf"and every seed pairing in the same direction) against {legend}; $\downarrow$: Hybrid "
                      r"lower. " if letters else "")
                   + r"The paper's numbers (other models and data) are in Table~\ref{tab:paper-vs-ours}.")
    return booktabs(header, body, align="l" + "c" * (3 * len(datasets)), caption=caption, label=label)


RECALL_COLUMNS = [("r1_mo", "Mo."), ("r1_cr", "Cr."), ("r10_mul", "Mul."), ("mrr_mo", "Mo."), ("mrr_cr", "Cr."),
                  ("mrr_mul", "Mul."), ("ndcg10_mo", "Mo."), ("ndcg10_cr", "Cr."), ("ndcg10_mul", "Mul.")]
RECALL_GROUPS = [("R@1", 2), ("R@10", 1), ("MRR", 3), ("nDCG@10", 3)]


def _block_table(results: pd.DataFrame, columns: Sequence[tuple[str, str]], groups: Sequence[tuple[str, int]],
                 rows_: Sequence[str], *, caption: str, label: str,
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
        body.append(block_title(dataset_title(results, ds), len(columns) + 1))
        present = [s for s in rows_ if any((ds, s, m) in look for m in metrics)]
        cells = {s: [strategies.label(s)] for s in present}
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
    rows_ = [s for s in strategies_of(results) if s != "bm25"]
    metrics = ["rank_distance", "same_lang@10"]
    look = summary_lookup(seed_summary(results, metrics))
    cells = {s: [strategies.label(s)] for s in rows_}
    uniform = []
    for ds in datasets:
        for m in metrics:
            vals = [look.get((ds, s, m), (math.nan, math.nan, 0)) for s in rows_]
            flags = best_flags([v[0] for v in vals], False) if m == "rank_distance" else [False] * len(vals)
            for s, (mean, sd, _), bold in zip(rows_, vals, flags):
                cells[s].append(fmt_mean_sd(mean, sd, 1 if m == "rank_distance" else 3, bold=bold))
        n_lang = len(results.loc[results["eval_dataset"] == ds, "languages"].iloc[0])
        if n_lang:
            uniform.append(f"{dataset_label(ds)}: 1/{n_lang}")
    header = group_header([""], [(dataset_title(results, ds), 2) for ds in datasets])
    header.append(" & ".join(["Sampling"] + [r"RD $\downarrow$", r"same-lang.@10"] * len(datasets)) + r" \\")
    body = _reference_rule([cells[s] for s in rows_], rows_)
    caption = (rf"Language bias in the multilingual setting, {OURS}; {seeds_note(results)}. RD: rank distance "
               r"(per query, largest minus smallest rank among its parallel relevant sentences; mean over queries, "
               r"then over query languages; lower is less bias; lowest in bold). same-lang.@10: share of the top 10 "
               r"candidates in the query's language (mean over query languages); a ranking blind to language would "
               r"give about one over the number of languages (" + ", ".join(uniform) + ").")
    return booktabs(header, body, align="l" + "c" * (2 * len(datasets)), caption=caption, label=label)


MAX_LISTED_PAIRINGS = 9  # more seed pairings than this (e.g. 10 x 10): a count and a range, not the list


def _per_seed(values, diff: float | None = None) -> str:
    """The per-seed-pairing differences as a compact list, ``$+.012$, $+.015$``; beyond
    :data:`MAX_LISTED_PAIRINGS` pairings, how many have ``diff``'s sign and their range, ``95/100 $>0$, [$-.005$,
    $+.022$]`` (``--`` when there are none)."""
    if values is None or isinstance(values, float) or len(values) == 0:
        return MISSING
    if len(values) <= MAX_LISTED_PAIRINGS or diff is None or isnull(diff):
        return ", ".join(_pairing(v) for v in values)
    k, n = pairings_with_sign(float(diff), values)
    finite = [float(v) for v in values if not isnull(v)]
    return f"{k}/{n} ${'>' if diff > 0 else '<'}0$, [{_pairing(min(finite))}, {_pairing(max(finite))}]"


def _pairing(v) -> str:
    """One seed pairing's difference, ``$+.012$`` (``--`` when missing)."""
    return MISSING if isnull(v) else f"${float(v):+.3f}$".replace("0.", ".", 1)


def _test_cells(r: dict, significant: bool) -> list[str]:
    """A seed-aware comparison's cells: $\\Delta$mAP (starred when significant), per seed pairing, CI, $p$, Holm $p$,
    $d_z$ (the columns of :func:`seeded.compare_runs`)."""
    star = "$^{*}$" if significant else ""
    return [f"${r['diff']:+.4f}${star}", _per_seed(r.get("diff_per_seed"), r.get("diff")),
            f"[${r['ci_low']:+.4f}$, ${r['ci_high']:+.4f}$]", f"{r['p_value']:.4f}", f"{r['p_holm']:.4f}",
            f"${r['effect_size']:+.2f}$"]


def _test_method(n_resamples: int, n_tests: int, family: str, alpha: float, marks: str = r" ($^{*}$)") -> str:
    """The caption's account of the seed-aware test behind :func:`_test_cells` and of what *significant* means."""
    return (r"95\% CI and $p$: seed-aware paired test combining the question-level uncertainty (cluster "
            rf"bootstrap over questions, {n_resamples:,} resamples, all parallel versions of a question drawn "
            r"together) with the seed-to-seed variance of each system's mAP, each widened by its own $t$ "
            r"quantile (few degrees of freedom with few seeds, so the intervals are wide); $p_\mathrm{Holm}$: "
            r"Holm-adjusted over all "
            rf"{n_tests} comparisons of this table ({family}); $d_z$: paired "
            rf"effect size on the macro weighting. \emph{{Significant}}{marks}: $p_\mathrm{{Holm}}<{alpha:g}$ "
            r"\emph{and} every seed pairing differing in the same direction; it says the difference is unlikely to "
            r"be chance at that family-wise level, not that it is large.")


def significance_table(sig: pd.DataFrame, target: str = "hybrid", *, alpha: float = 0.05, n_seeds: int | None = None,
                       n_resamples: int = 10000, label: str = "tab:significance", family: str = "") -> str:
    """Target minus each baseline per dataset and setting: $\\Delta$mAP (seed means), the difference for every
    pairing of the two systems' seeds, 95% CI, $p$, Holm $p$, effect size; the caption says what the
    significance mark means (:func:`significance.is_significant`)."""
    header = [r"Dataset & Baseline & Setting & $\Delta$mAP & per seed pairing & 95\% CI & $p$ & $p_\mathrm{Holm}$ "
              r"& $d_z$ \\"]
    body: list = []
    prev = None
    marked = list(is_significant(sig, alpha)) if not sig.empty else []
    for r, significant in zip(sig.to_dict("records"), marked):
        if prev is not None and r["dataset"] != prev:
            body.append(r"\midrule")
        body.append([dataset_label(r["dataset"]) if r["dataset"] != prev else "",
                     strategies.label(r["baseline"]), SETTING_LABELS.get(r["setting"], r["setting"])]
                    + _test_cells(r, significant))
        prev = r["dataset"]
    if not body:
        body.append([r"\multicolumn{9}{c}{no comparison (a single strategy)}"])
    counts = sorted({int(v) for c in ("n_seeds_baseline", "n_seeds_target") if c in sig for v in sig[c]})
    if len(counts) > 1:  # unequal seed counts across strategies or folds: the range, not one number
        n_seeds = None
        seeds = f"{counts[0]}--{counts[-1]} seeds per strategy (by fold and strategy), kept apart. "
    else:
        seeds = (f"{n_seeds} seeds per strategy, kept apart (not averaged before testing). "
                 if n_seeds and n_seeds > 1 else "")
    single = any(int(r.get(c) or 0) < MIN_SEEDS for r in sig.to_dict("records")
                 for c in ("n_seeds_baseline", "n_seeds_target") if c in r)
    if single:
        seeds += (r"\textbf{A single training seed}: the seed-to-seed variance cannot be estimated, so $p$ and the "
                  r"CI are question-level only and no comparison is marked significant (exploratory). ")
    caption = (family + rf"{strategies.label(target)} minus each other sampling strategy, {OURS}; {seeds}$\Delta$mAP: "
               r"macro, mean over seeds (as in Table~\ref{tab:main}); per seed pairing: the same difference for "
               rf"every pair of a {strategies.label(target)} seed and a baseline seed (baseline seed outer). "
               + _test_method(n_resamples, len(sig), "both datasets, every baseline and setting", alpha,
                              r" ($^{*}$, and the superscripts of Table~\ref{tab:main})"))
    return booktabs(header, body, align="lllrlcrrr", caption=caption, label=label)


def intervals_table(ci: pd.DataFrame, *, confidence: float = 0.95, n_resamples: int = 10000,
                    label: str = "tab:confidence") -> str:
    """Every headline mAP with its confidence interval: one block per dataset, one row per strategy."""
    header = [" & ".join(["Sampling"] + [SETTING_LABELS[s] + " mAP [CI]" for s in SETTINGS]) + r" \\"]
    body: list = []
    for i, ds in enumerate(ordered(set(ci["dataset"]), DATASET_ORDER)):
        if i:
            body.append(r"\midrule")
        body.append(block_title(DATASET_LABELS.get(ds, ds), len(SETTINGS) + 1))
        sub = ci[ci["dataset"] == ds]
        for strategy in ordered(set(sub["strategy"]), strategies.ORDER):
            row = [strategies.label(strategy)]
            for setting in SETTINGS:
                r = sub[(sub["strategy"] == strategy) & (sub["setting"] == setting)]
                row.append(MISSING if r.empty else
                           f"{fmt(r['map'].iloc[0])} [{fmt(r['ci_low'].iloc[0])}, {fmt(r['ci_high'].iloc[0])}]")
            body.append(row)
    caption = (rf"Headline mAP (mean over seeds) with {100 * confidence:g}\% confidence intervals, {OURS}: the "
               r"question-level uncertainty (cluster bootstrap over questions, "
               rf"{n_resamples:,} resamples; a question brings all its parallel versions) combined, for the trained "
               r"strategies, with the seed-to-seed variance of the mean over seeds (from the sd of "
               r"Table~\ref{tab:main}), each widened by its own $t$ quantile: the interval covers both the sample "
               r"of questions and the training seeds. Zero-shot and BM25: one run, the question part only.")
    return booktabs(header, body, align="l" + "c" * len(SETTINGS), caption=caption, label=label)


def load_reported(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: it holds the paper's reported numbers (its Tables 1-2, "
                                "arXiv 2408.10536; docs/PROTOCOL.md §7)")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def protocol_note(results: pd.DataFrame) -> str:
    """Our protocol as the results record it: cross-dataset folds, the trained runs' steps, and the evaluation
    pools (``full evaluation pools`` or ``a 10\\% sample of the evaluation pools``), e.g. for a caption."""
    trained = results[results["steps"].notna()] if "steps" in results else results.iloc[:0]
    steps = sorted({int(v) for v in trained["steps"]}) if len(trained) else []
    parts = ["cross-dataset folds"]
    if steps:
        parts.append(f"{'/'.join(map(str, steps))}-step fine-tuning")
    fractions = sorted({float(v) for v in results.get("sample_fraction", pd.Series(dtype=float)).dropna()})
    if fractions == [1.0]:
        parts.append("full evaluation pools")
    elif fractions:
        parts.append(r"a " + "/".join(f"{100 * f:g}" for f in fractions) + r"\% sample of the evaluation pools")
    return ", ".join(parts)


def paper_vs_ours_table(results: pd.DataFrame, reported: dict, label: str = "tab:paper-vs-ours") -> str:
    """The paper's reported Table 1 (mAP) and Table 2 (rank distance) beside our seed means, for the
    strategies the paper reports. Best per column within each block in bold (lowest rank distance)."""
    datasets = [d for d in DATASET_ORDER]  # the paper's columns, ours filled where present
    rows_ = list(reported.get("strategies", ["xx", "xy", "hybrid"]))
    look = summary_lookup(seed_summary(results, ["map_mo", "map_cr", "map_mul", "rank_distance"]))
    blocks: list[tuple[str, dict]] = []
    for model in reported.get("models", list(reported["table1_map"])):
        vals = {}
        for s in rows_:
            t1 = reported["table1_map"][model].get(s, {})
            t2 = reported["table2_rank_distance"][model].get(s, {})
            vals[s] = ([num(t1.get(d, {}).get(k)) for d in datasets for k in SETTINGS]
                       + [num(t2.get(d)) for d in datasets])
        blocks.append((rf"\emph{{Paper (reported): {latex_escape(model)}}}", vals))
    ours = {s: [look.get((d, s, f"map_{k}"), (math.nan,))[0] for d in datasets for k in SETTINGS]
            + [look.get((d, s, "rank_distance"), (math.nan,))[0] for d in datasets] for s in rows_}
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
        cols = list(zip(*[vals[s] for s in rows_]))
        flags = [best_flags(c, j < 3 * len(datasets), 1 if j >= 3 * len(datasets) else 3) for j, c in enumerate(cols)]
        for si, s in enumerate(rows_):
            row = [strategies.label(s)]
            for j, v in enumerate(vals[s]):
                row.append(bold_if(fmt(v, 3), flags[j][si]))
            body.append(row)
    caption = (r"The paper's reported numbers beside ours: \textbf{different models and data}. Paper: XLM-R and "
               r"LaBSE fine-tuned on machine-translated training sets with batches of 100, evaluated on the full "
               rf"XQuAD-R and MLQA-R ({latex_escape(str(reported.get('source', 'arXiv 2408.10536')))}). Ours: "
               rf"{MODEL_NOTE} ({protocol_note(results)}), means over "
               rf"{len(seeds_of(results))} seed(s). Compare the pattern across sampling strategies within a block, "
               r"not the levels across blocks. RD: rank distance in the multilingual setting (lower is less language "
               r"bias).")
    return booktabs(header, body, align="l" + "c" * n_cols, caption=caption, label=label)


# ------------------------------------------------------------------------------------------------- scaling


def fmt_alpha(alpha, schedule=None) -> str:
    """The configured alpha (``0.5``), followed by its schedule when given (``0.5, coin``)."""
    if isnull(alpha):
        return MISSING
    return f"{float(alpha):g}" + (", " + latex_escape(schedule) if isinstance(schedule, str) and schedule else "")


def _schedules(frames: Sequence[pd.DataFrame | None]) -> list[str]:
    """The alpha schedules recorded by the hybrid runs of ``frames`` (sorted, distinct)."""
    found = set()
    for f in frames:
        if f is not None and not f.empty and "alpha_schedule" in f.columns:
            found |= {s for s, st in zip(f["alpha_schedule"], f["strategy"]) if st == "hybrid" and isinstance(s, str)}
    return sorted(found)


def fmt_kept_step(best_step, steps) -> str:
    """``150/200``: the step whose model was evaluated (early stopping's choice; the last under a fixed budget), of
    the run's steps; ``--`` for a missing part."""
    if isnull(best_step) and isnull(steps):
        return MISSING
    return f"{fmt_int(best_step)}/{fmt_int(steps)}"


def _trained_seeds(frames: Sequence[pd.DataFrame | None]) -> list[int]:
    seeds = set()
    for f in frames:
        if f is not None and not f.empty:
            seeds |= {int(v) for v, st in zip(f["seed"], f["strategy"]) if st in strategies.TRAINED and not isnull(v)}
    return sorted(seeds)


def scaling_table(size: pd.DataFrame, languages: pd.DataFrame, alpha: pd.DataFrame, label: str = "tab:scaling") -> str:
    """Every point of the three scaling studies (one row per run, seeds ``grid.scaling_seeds``; a Seed column
    when there are several), with each trained run's realised share of monolingual batches (whole run / the
    batches the kept model saw) and the step evaluated; ``--`` where a run's config does not record
    them."""
    frames = (size, languages, alpha)
    seeds = _trained_seeds(frames)
    many = len(seeds) > 1
    cols = ["map_mo", "map_cr", "map_mul", "rank_distance", "map_mul_seen", "map_mul_unseen", "map_mul_heldout"]
    heads = ["Mo.", "Cr.", "Mul.", r"RD $\downarrow$", r"Mul.\ seen", r"Mul.\ unseen", r"Mul.\ held-out"]
    first = (["Sampling"] + (["Seed"] if many else []) + ["Layers", r"Non-emb.\ params", "Train langs", r"$\alpha$",
                                                          "run", "kept", "Kept step"])
    share_col = first.index("run") + 1  # 1-based column of the share group
    header = [" & ".join([""] * (share_col - 1) + [r"\multicolumn{2}{c}{Mono.\ share}"]
                         + [""] * (len(first) - share_col - 1 + len(heads))) + r" \\",
              rf"\cmidrule(lr){{{share_col}-{share_col + 1}}}", " & ".join(first + heads) + r" \\"]
    width = len(first) + len(heads)
    body: list = []
    schedules = _schedules(frames)  # one: named in the caption; several: in each hybrid cell

    def fmt_params(v):
        return MISSING if isnull(v) else f"{v / 1e6:.1f}M"

    studies = [("Model size (first $k$ encoder layers)", size, ["layers", "strategy"]),
               ("Number of training languages", languages, ["n_languages", "strategy"]),
               (r"Hybrid mixing probability $\alpha$ (0: X-Y run, 1: X-X-mono run)", alpha, ["alpha"])]
    for title, frame, order in studies:
        if frame is None or frame.empty:
            continue
        if body:
            body.append(r"\midrule")
        body.append(block_title(title, width))
        f = frame.copy()
        f["_s"] = [strategies.ORDER.index(s) if s in strategies.ORDER else 99 for s in f["strategy"]]
        f["_seed"] = [-1 if isnull(v) else int(v) for v in f["seed"]]
        keys = [("_s" if k == "strategy" else k) for k in order] + ["_seed"]
        f = f.sort_values(keys, kind="stable")
        for r in f.to_dict("records"):
            trained = r["strategy"] in strategies.TRAINED
            schedule = r.get("alpha_schedule") if len(schedules) > 1 and r["strategy"] == "hybrid" else None
            body.append([strategies.label(r["strategy"])] + ([fmt_int(r.get("seed"))] if many else [])
                        + [fmt_int(r.get("layers")), fmt_params(r.get("non_embedding_parameters")),
                           fmt_int(r.get("n_languages")),
                           fmt_alpha(r.get("alpha"), schedule) if trained else MISSING,
                           fmt_share(r.get("mono_share")) if trained else MISSING,
                           fmt_share(r.get("mono_share_kept")) if trained else MISSING,
                           fmt_kept_step(r.get("best_step"), r.get("steps")) if trained else MISSING]
                        + [fmt(r.get(c, math.nan), 1 if c == "rank_distance" else 3) for c in cols])
    fold = next((str(f["fold"].iloc[0]) for f in frames if f is not None and not f.empty), "")
    heldout = next((list(x) for f in frames if f is not None and "heldout_languages" in f
                    for x in f["heldout_languages"] if x), [])
    seed_text = (f", seeds {', '.join(map(str, seeds))}, one row per run" if many else
                 f", seed {seeds[0]}, single runs" if seeds else ", single runs")
    few = [(name, len(_trained_seeds([f]))) for name, f in (("model size", size), ("training languages", languages),
                                                             (r"$\alpha$", alpha))
           if f is not None and not f.empty and 0 < len(_trained_seeds([f])) < MIN_CLAIM_SEEDS]
    explore = ""
    if few:
        explore = (r" \textbf{Exploratory}: " + "; ".join(f"{name} with {n} seed{'s' if n > 1 else ''} per point"
                                                          for name, n in few)
                   + rf" (fewer than {MIN_CLAIM_SEEDS}: the study's budget), untested; no claim rests on them alone.")
    caption = (rf"Scaling studies, {OURS}: fold \texttt{{{fold}}}{seed_text}.{explore} Model size: the first $k$ "
               r"layers of the encoder (non-embedding parameters); training languages: the first $k$ languages of the "
               r"fold's language order; $\alpha$: configured probability of a monolingual batch"
               + (rf" (schedule \texttt{{{latex_escape(schedules[0])}}})" if len(schedules) == 1 else
                  " (with the run's schedule)" if schedules else "")
               + r". Mono.\ share: the realised share of monolingual batches over the whole run and "
               r"over the batches the evaluated model saw; kept step: the step whose model was evaluated (early "
               r"stopping's choice, or the last step under a fixed budget), of the run's steps (--: not recorded). Seen / unseen: query languages inside / outside "
               r"the run's training languages (--: none); the unseen set changes with the training languages, so "
               r"compare runs with different training languages on held-out: the query languages no run of the "
               r"fold trains on" + (f" ({', '.join(heldout)})" if heldout else "") + ", the same set for every run.")
    align = "l" + ("r" if many else "") + "crcc" + "cc" + "c" + "c" * len(heads)
    return booktabs(header, body, align=align, caption=caption, label=label, size=r"\footnotesize")


def alpha_significance_table(sig: pd.DataFrame, *, fold: str = "", alpha: float = 0.05, n_resamples: int = 10000,
                             label: str = "tab:alpha-significance") -> str:
    """Each point of the alpha sweep minus the main Hybrid's alpha (a :func:`significance.alpha_tests` frame), per
    setting: $\\Delta$mAP (seed means), per seed pairing, CI, $p$, Holm $p$, $d_z$, as in
    :func:`significance_table`; the caption names the seeds and says what the significance mark means."""
    header = [r"$\alpha$ & Setting & $\Delta$mAP & per seed pairing & 95\% CI & $p$ & $p_\mathrm{Holm}$ & $d_z$ \\"]
    body: list = []
    prev = None
    marked = list(is_significant(sig, alpha)) if not sig.empty else []
    for r, significant in zip(sig.to_dict("records"), marked):
        if prev is not None and r["alpha"] != prev:
            body.append(r"\midrule")
        body.append([fmt_alpha(r["alpha"]) if r["alpha"] != prev else "",
                     SETTING_LABELS.get(r["setting"], r["setting"])] + _test_cells(r, significant))
        prev = r["alpha"]
    if not body:
        body.append([r"\multicolumn{8}{c}{no comparison (the sweep has a single $\alpha$ or no main Hybrid run)}"])
    reference = fmt_alpha(sig["reference"].iloc[0]) if not sig.empty else MISSING
    n_ref = sorted({int(v) for v in sig.get("n_seeds_baseline", [])})
    n_alpha = sorted({int(v) for v in sig.get("n_seeds_target", [])})
    seeds = ""
    if n_ref and n_alpha:
        seeds = (f"{'/'.join(map(str, sorted(set(n_ref) | set(n_alpha))))} seeds per point, kept apart (not averaged "
                 "before testing). ")
        if min(n_ref + n_alpha) < MIN_SEEDS:
            seeds += (r"\textbf{A single training seed} at some point: no comparison with it is marked significant "
                      r"(exploratory). ")
    where = rf" on fold \texttt{{{latex_escape(fold)}}}" if fold else ""
    caption = (r"\textbf{Secondary} family S5 (docs/PREREGISTRATION.md \S4). "
               rf"The $\alpha$ sweep tested{where}, {OURS}: each $\alpha$ minus the main Hybrid run's "
               rf"$\alpha={reference}$ (negative: $\alpha={reference}$ is better; $\alpha=0$ is the "
               rf"{strategies.label('xy')} run, $\alpha=1$ the {strategies.label('xx')} run, as in "
               rf"Table~\ref{{tab:scaling}}); {seeds}$\Delta$mAP: macro, mean "
               r"over seeds; per seed pairing: the same difference for every pair of a reference seed and an "
               r"$\alpha$ seed (reference seed outer). "
               + _test_method(n_resamples, len(sig), r"every $\alpha$ and setting", alpha))
    return booktabs(header, body, align="llrlcrrr", caption=caption, label=label)


def training_runs_table(runs: pd.DataFrame, label: str = "tab:training-runs") -> str:
    """Every trained run (a :func:`report.training_runs` frame): fold, strategy, seed, alpha (and schedule),
    steps, the step evaluated (early stopping's or the last) and the realised share of monolingual batches (whole run / kept)."""
    header = [r"Fold & Sampling & Seed & $\alpha$ & Steps & Kept step & Mono.\ share & Mono.\ share (kept) \\"]
    body: list = []
    for r in runs.to_dict("records"):
        body.append([rf"\texttt{{{latex_escape(r['fold'])}}}", strategies.label(r["strategy"]), fmt_int(r["seed"]),
                     fmt_alpha(r.get("alpha"), r.get("alpha_schedule")) if r["strategy"] == "hybrid" else MISSING,
                     fmt_int(r.get("steps")), fmt_int(r.get("best_step")), fmt_share(r.get("mono_share")),
                     fmt_share(r.get("mono_share_kept"))])
    caption = (rf"Training runs, {OURS}: the step whose model was evaluated (early stopping's choice, or the last step "
               r"under a fixed budget; of the run's steps) and the realised share of "
               r"monolingual batches over the whole run and over the batches the kept model saw (--: not recorded "
               r"by the run).")
    return booktabs(header, body, align="llrcrrcc", caption=caption, label=label, size=r"\footnotesize")
