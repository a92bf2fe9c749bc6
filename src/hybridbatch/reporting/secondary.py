"""Secondary test families of the pre-registration (docs/PREREGISTRATION.md §4), each with Holm within itself and
a 95 % interval on every difference: S2 every trained strategy's Mo./Cr./Mul. against the zero-shot encoder, both
folds (``paper/tables/vs_zeroshot.tex``); S3 rank distance, Hybrid against each other strategy and the zero-shot
encoder, both folds (``paper/tables/rank_distance_tests.tex``). The test is the seed-aware one of
:func:`significance.compare_strategies`; a secondary result is reported as such, never as a headline.

The zero-shot encoder is deterministic (no training seed): its side has no seed variance to estimate, so a
comparison against it needs >= 2 seeds on the trained side only (:func:`significant_vs_reference`).
"""

from __future__ import annotations

import os
from typing import Sequence

import pandas as pd

from hybridbatch import strategies
from hybridbatch.grid import DATASET_ORDER, SETTING_LABELS, SETTINGS, dataset_label, grid_runs, is_reference, ordered
from hybridbatch.reporting.latex import booktabs
from hybridbatch.reporting.results import per_seed_per_query
from hybridbatch.reporting.significance import MIN_SEEDS, compare_strategies
from hybridbatch.stats import inference

REFERENCE = "zeroshot"


def _per_query(results_dir: str | os.PathLike, params: dict, value: str, keep: Sequence[str]) -> dict:
    """``{(dataset, strategy): per-seed per-query frames}`` of the main grid's strategies in ``keep``."""
    specs = grid_runs(params, "main")
    out = {}
    for (ds, strategy), group in specs.groupby(["eval_dataset", "strategy"], sort=False):
        if strategy in keep:
            out[(ds, strategy)] = per_seed_per_query(results_dir, list(group["run"]), value)
    return out


def significant_vs_reference(t: pd.DataFrame, alpha: float = 0.05) -> pd.Series:
    """Holm-adjusted p < alpha, every seed pairing with diff's sign, and >= :data:`MIN_SEEDS` seeds on each
    trained side (a reference system -- zero-shot -- is deterministic and counts as one exact run)."""
    mask = (t["p_holm"] < alpha) & t["seeds_agree"].astype(bool)
    for side, col in (("baseline", "n_seeds_baseline"), ("target", "n_seeds_target")):
        mask &= pd.Series([is_reference(n) or int(k) >= MIN_SEEDS for n, k in zip(t[side], t[col])],
                          index=t.index, dtype=bool)
    return mask


def _holm(t: pd.DataFrame, alpha: float, family: str) -> pd.DataFrame:
    adjusted = inference.holm({str(i): p for i, p in enumerate(t["p_value"])})
    t["p_holm"] = [adjusted[str(i)] for i in range(len(t))]
    t["significant"] = significant_vs_reference(t, alpha)
    t["family"] = family
    return t


def zeroshot_tests(results_dir: str | os.PathLike, params: dict, *, n_resamples: int = 10000, seed: int = 0,
                   alpha: float = 0.05) -> pd.DataFrame:
    """Family S2: each trained strategy minus the zero-shot encoder, per dataset and setting (``strategy`` = the
    trained side, ``baseline`` = zeroshot); Holm over all its rows."""
    per_query = _per_query(results_dir, params, "ap", strategies.TRAINED + (REFERENCE,))
    parts = []
    for s in strategies.ORDER:
        if s not in strategies.TRAINED or not any(k[1] == s for k in per_query):
            continue
        t = compare_strategies(per_query, s, [REFERENCE], n_resamples=n_resamples, seed=seed, alpha=alpha)
        parts.append(t.assign(strategy=s, target=s))
    if not parts:
        return pd.DataFrame(columns=["dataset", "strategy", "baseline", "setting", "diff", "ci_low", "ci_high",
                                     "p_value", "p_holm", "significant", "family"])
    return _holm(pd.concat(parts, ignore_index=True), alpha, "S2")


def rank_distance_tests(results_dir: str | os.PathLike, params: dict, target: str = "hybrid", *,
                        n_resamples: int = 10000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Family S3: ``target``'s rank distance (multilingual setting, per query, macro over query languages) minus
    each other dense strategy's and the zero-shot encoder's, per dataset; negative = less language bias than the
    baseline. Holm over all its rows."""
    per_query = _per_query(results_dir, params, "rank_distance", strategies.TRAINED + (REFERENCE,))
    t = compare_strategies(per_query, target, settings=("mul",), value="rank_distance", n_resamples=n_resamples,
                           seed=seed, alpha=alpha)
    if t.empty:
        return t.assign(family=pd.Series(dtype=object))
    return _holm(t.assign(target=target), alpha, "S3")


def _ci(r: dict, digits: int) -> str:
    return f"${r['diff']:+.{digits}f}$ [${r['ci_low']:+.{digits}f}$, ${r['ci_high']:+.{digits}f}$]"


def _p(p: float) -> str:
    return "$<$0.0001" if p < 1e-4 else f"{p:.4f}"


def vs_zeroshot_table(t: pd.DataFrame, *, alpha: float = 0.05, n_resamples: int = 10000,
                      label: str = "tab:vs-zeroshot") -> str:
    """Family S2 as a table: one row per dataset and strategy, one column group per setting ($\\Delta$mAP with its
    95 % CI, Holm $p$; starred when significant)."""
    header = [" & ".join(["Dataset", "Sampling"] + [rf"\multicolumn{{2}}{{c}}{{{SETTING_LABELS[s]}}}" for s in SETTINGS])
              + r" \\", "".join(rf"\cmidrule(lr){{{3 + 2 * i}-{4 + 2 * i}}}" for i in range(len(SETTINGS))),
              " & ".join(["", ""] + [r"$\Delta$mAP [95\% CI]", r"$p_\mathrm{Holm}$"] * len(SETTINGS)) + r" \\"]
    body: list = []
    prev = None
    keys = [(ds, s) for ds in ordered(t["dataset"], DATASET_ORDER) for s in ordered(t["strategy"], strategies.ORDER)]
    for ds, s in keys:
        sub = t[(t["dataset"] == ds) & (t["strategy"] == s)]
        if sub.empty:
            continue
        if prev is not None and ds != prev:
            body.append(r"\midrule")
        row = [dataset_label(ds) if ds != prev else "", strategies.label(s)]
        for setting in SETTINGS:
            r = sub[sub["setting"] == setting]
            if r.empty:
                row += ["--", "--"]
                continue
            r0 = r.iloc[0].to_dict()
            row += [_ci(r0, 3) + ("$^{*}$" if r0["significant"] else ""), _p(r0["p_holm"])]
        body.append(row)
        prev = ds
    if not body:
        body.append([r"\multicolumn{8}{c}{no trained strategy or no zero-shot run}"])
    caption = (r"\textbf{Secondary} family S2 (docs/PREREGISTRATION.md \S4): each trained strategy minus the "
               r"zero-shot encoder, mAP (mean over the strategy's seeds). 95\% CI and $p$: the seed-aware test of "
               rf"Table~\ref{{tab:significance}} ({n_resamples:,} resamples; the zero-shot encoder is one "
               r"deterministic run, no seed part); $p_\mathrm{Holm}$: Holm over the family's "
               rf"{len(t)} comparisons. $^{{*}}$: $p_\mathrm{{Holm}}<{alpha:g}$, every seed pairing with the sign "
               rf"of $\Delta$ and $\ge {MIN_SEEDS}$ seeds of the trained strategy.")
    return booktabs(header, body, align="ll" + "cr" * len(SETTINGS), caption=caption, label=label,
                    size=r"\footnotesize")


def rank_distance_tests_table(t: pd.DataFrame, *, alpha: float = 0.05, n_resamples: int = 10000,
                              label: str = "tab:rank-distance-tests") -> str:
    """Family S3 as a table: Hybrid's rank distance minus each baseline's, with its 95 % CI, $p$, Holm $p$."""
    header = [r"Dataset & Baseline & RD baseline & RD Hybrid & $\Delta$RD [95\% CI] & $p$ & $p_\mathrm{Holm}$ \\"]
    body: list = []
    prev = None
    for r in t.to_dict("records"):
        if prev is not None and r["dataset"] != prev:
            body.append(r"\midrule")
        body.append([dataset_label(r["dataset"]) if r["dataset"] != prev else "", strategies.label(r["baseline"]),
                     f"{r['mean_baseline']:.1f}", f"{r['mean_target']:.1f}",
                     _ci(r, 1) + ("$^{*}$" if r["significant"] else ""), _p(r["p_value"]), _p(r["p_holm"])])
        prev = r["dataset"]
    if not body:
        body.append([r"\multicolumn{7}{c}{no comparison}"])
    caption = (r"\textbf{Secondary} family S3 (docs/PREREGISTRATION.md \S4): Hybrid's rank distance (multilingual "
               r"setting; per query, mean over queries then query languages; lower is less language bias) minus "
               r"each baseline's, means over seeds; negative: Hybrid less biased (the paper's Table~2 claim). 95\% "
               rf"CI and $p$: the seed-aware test on per-query rank distance ({n_resamples:,} resamples; zero-shot: "
               rf"one deterministic run); $p_\mathrm{{Holm}}$: Holm over the family's {len(t)} comparisons. "
               rf"$^{{*}}$: $p_\mathrm{{Holm}}<{alpha:g}$, every seed pairing with the sign of $\Delta$ and "
               rf"$\ge {MIN_SEEDS}$ seeds of each trained side.")
    return booktabs(header, body, align="llrrcrr", caption=caption, label=label, size=r"\footnotesize")
