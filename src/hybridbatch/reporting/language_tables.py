"""The report's per-language tables: the paper's Tables 3-6 layout (mAP and recall per query language and
setting), Tatoeba bitext retrieval per language, and the mean rank distance per query language, as booktabs
LaTeX built from the frames of :mod:`hybridbatch.reporting.results` (:func:`report.per_language_frame`,
:func:`report.tatoeba_frame`).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import pandas as pd

from hybridbatch import strategies
from hybridbatch.grid import OURS, dataset_label, ordered
from hybridbatch.reporting.latex import MISSING, best_flags, block_title, bold_if, booktabs, fmt, fmt_int, group_header, latex_escape
from hybridbatch.reporting.results import datasets_of, dataset_title, training_languages, unseen_languages

# the paper's Tables 3-6: per query language, mAP and a recall for each setting -- R@1 for Mo. and Cr., R@10
# for Mul. (the paper's tables label that column R@1, but it is R@10); (metric, block title) in table order
PER_LANGUAGE_BLOCKS = (("map_mo", "Monolingual (Mo.) mAP"), ("r1_mo", "Monolingual (Mo.) R@1"),
                       ("map_cr", "Cross-lingual (Cr.) mAP"), ("r1_cr", "Cross-lingual (Cr.) R@1"),
                       ("map_mul", "Multilingual (Mul.) mAP"), ("r10_mul", "Multilingual (Mul.) R@10"))
PER_LANGUAGE_METRICS = tuple(m for m, _ in PER_LANGUAGE_BLOCKS)


def _strategy_rows(frame: pd.DataFrame, langs: Sequence[str], mean_column: str) -> list[list[str]]:
    """One row per strategy (registry order): the mean ``value`` per language of ``langs`` (over seeds), then
    their mean (``mean_column``); the best value of each column in bold."""
    mat = frame.groupby(["strategy", "lang"])["value"].mean().unstack("lang").reindex(columns=list(langs))
    mat[mean_column] = mat.mean(axis=1, skipna=False)
    rows = ordered(mat.index, strategies.ORDER)
    mat = mat.reindex(rows)
    flags = {c: best_flags(list(mat[c])) for c in mat.columns}
    return [[strategies.label(s)] + [bold_if(fmt(mat.at[s, c]), flags[c][si]) for c in mat.columns]
            for si, s in enumerate(rows)]


def _lang_header(lang: str, unseen: Iterable[str]) -> str:
    return lang + (r"$^{\dagger}$" if lang in set(unseen) else "")


def per_language_table(results: pd.DataFrame, frames: dict[str, pd.DataFrame], dataset: str, *,
                       label: str | None = None) -> str:
    """Paper Tables 3-6 layout for one evaluation dataset: per query language (columns, plus the macro
    average), one block per setting and measure -- Mo. mAP, Mo. R@1, Cr. mAP, Cr. R@1, Mul. mAP, Mul. R@10
    (:data:`PER_LANGUAGE_BLOCKS`) -- one row per strategy (seed means); languages unseen in training marked
    with a dagger; best per column and block in bold.

    ``frames``: ``{metric: report.per_language_frame(..., metric)}`` for the blocks to show; a block whose
    metric is missing or has no value on ``dataset`` is left out (the caption names the measures shown).
    Cr. per query language is the mean over the other corpus languages (see
    :func:`report.per_language_values`)."""
    unseen = unseen_languages(results, dataset)
    langs = sorted(next(iter(results.loc[results["eval_dataset"] == dataset, "languages"])))
    header = [" & ".join(["Sampling"] + [_lang_header(l, unseen) for l in langs] + ["Avg."]) + r" \\"]
    body: list = []
    shown = []
    for metric, title in PER_LANGUAGE_BLOCKS:
        f = frames.get(metric)
        f = None if f is None else f[f["eval_dataset"] == dataset]
        if f is None or f.empty:
            continue
        if body:
            body.append(r"\midrule")
        shown.append(metric)
        body.append(block_title(title, len(langs) + 2))
        body += _strategy_rows(f, langs, "avg")
    title = dataset_title(results, dataset)
    dag = (r"$^{\dagger}$: a language outside the training languages (unseen: " + ", ".join(unseen) + "). "
           if unseen else "Every evaluation language is a training language of this fold. ")
    recall = ""
    if any(m.startswith("r") for m in shown):
        recall = (r"Recall as in the paper: R@1 for Mo. and Cr., R@10 for Mul. (the paper's Tables 3--6 label "
                  r"the Mul. recall R@1, but it is R@10). ")
    cross = (r"Cr.: per query language, the mean over the other corpus languages. " if "map_cr" in shown
             or "r1_cr" in shown else "")
    caption = (rf"{title}: mAP and recall per query language, {OURS}; mean over seeds (the paper's Tables 3--6 "
               rf"layout). {recall}{cross}{dag}Avg.: macro average over query languages. Best per column and block "
               r"in bold; BM25 is monolingual only.")
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
            train = results.loc[results["fold"] == fold, "train_dataset"].iloc[0]
            body.append(block_title(rf"{names[direction]}, trained on {dataset_label(train)} (fold "
                                    rf"\texttt{{{fold}}})", len(langs) + 2))
            body += _strategy_rows(sub, langs, "mean")
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


def bias_table(results: pd.DataFrame, rd: pd.DataFrame, label: str = "tab:bias") -> str:
    """Mean rank distance per query language (rows) and strategy (columns, grouped by dataset); seed means
    of ``per_language["rank_distance"]``; the last row is the macro average. Lowest per row and dataset in bold.

    ``rd``: :func:`report.per_language_frame` of ``rank_distance``."""
    datasets = [d for d in datasets_of(results) if d in set(rd["eval_dataset"])]
    strat = {d: ordered(rd.loc[rd["eval_dataset"] == d, "strategy"], strategies.ORDER) for d in datasets}
    langs = sorted(rd["lang"].unique())
    unseen = {d: unseen_languages(results, d) for d in datasets}
    mats = {}
    for d in datasets:
        m = rd[rd["eval_dataset"] == d].groupby(["lang", "strategy"])["value"].mean().unstack("strategy")
        m = m.reindex(index=langs, columns=strat[d])
        m.loc["avg"] = m.mean(axis=0, skipna=True)
        mats[d] = m
    header = group_header([""], [(dataset_title(results, d), len(strat[d])) for d in datasets])
    header.append(" & ".join(["Query lang."] + [strategies.label(s) for d in datasets for s in strat[d]]) + r" \\")
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
            row += [bold_if(fmt(v, 1), f) for v, f in zip(vals, flags)]
        body.append(row)
    dag = "; ".join(f"{dataset_label(d)}: {', '.join(unseen[d])}" for d in datasets if unseen[d])
    dag = (r"$^{\dagger}$: unseen in training (" + dag + "). ") if dag else ""
    caption = (rf"Mean rank distance per query language (multilingual setting; lower is less language bias), "
               rf"{OURS}; mean over seeds. {dag}"
               r"Avg.: macro average over query languages. Lowest per row and dataset in bold; --: language not in "
               r"that evaluation set.")
    n = sum(len(strat[d]) for d in datasets)
    return booktabs(header, body, align="l" + "c" * n, caption=caption, label=label, size=r"\footnotesize")


def miracl_table(miracl: pd.DataFrame, labels: dict[str, str], label: str = "tab:miracl") -> str:
    """MIRACL dev (the paper's Tables 12-13): nDCG@10 and Recall@100 per language (columns, plus the mean over
    the languages with a corpus), one row per run (``labels``: run -> row label) in each block. A language
    whose passages are not present reads "absent" (the corpus is not vendored: data/external/miracl-corpus);
    the judged queries per language head the table either way."""
    langs = list(dict.fromkeys(miracl["lang"]))
    runs = list(dict.fromkeys(miracl["run"]))
    cell = {(r["run"], r["lang"]): r for r in miracl.to_dict("records")}
    present = [l for l in langs if all(cell[(run, l)]["status"] == "ok" for run in runs)]
    header = [" & ".join(["Run"] + langs + ["Avg."]) + r" \\"]
    judged = [fmt_int(cell[(runs[0], l)]["judged_queries"]) if runs else MISSING for l in langs]
    body: list = [[r"\emph{judged queries}"] + judged + [""]]
    for metric, title in (("ndcg10", "nDCG@10"), ("recall100", "Recall@100")):
        body += [r"\midrule", block_title(title, len(langs) + 2)]
        for run in runs:
            vals = [cell[(run, l)][metric] if cell[(run, l)]["status"] == "ok" else math.nan for l in langs]
            mean = (sum(v for v, l in zip(vals, langs) if l in present) / len(present)) if present else math.nan
            body.append([labels.get(run, latex_escape(run))]
                        + [fmt(v) if l in present or not math.isnan(v) else "absent" for v, l in zip(vals, langs)]
                        + [fmt(mean)])
    absent = [l for l in langs if l not in present]
    caption = (rf"MIRACL dev, {OURS} (the paper's Tables 12--13): nDCG@10 and Recall@100 (trec\_eval "
               r"\texttt{-c}, the top 100 per query) of dense retrieval over each language's passage corpus. "
               + (f"Corpus absent for {len(absent)} of {len(langs)} languages ({', '.join(absent)}): the passages "
                  r"are not vendored (data/external/miracl-corpus/README.md says how to add them), so those cells "
                  r"read ``absent'' and the average is over the languages present. " if absent else "")
               + "Judged queries: dev topics with relevance judgments.")
    return booktabs(header, body, align="l" + "c" * (len(langs) + 1), caption=caption, label=label,
                    size=r"\footnotesize")

