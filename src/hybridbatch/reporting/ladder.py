"""The budget ladder (docs/PREREGISTRATION.md §5, family S4): the same strategies trained for more optimiser steps
(study ``ladder`` of :func:`grid.grid_runs`, e.g. 480 steps) beside the main budget (the main runs of the same fold
and strategies, e.g. 120 steps): mAP per budget (``paper/tables/ladder.tex``, ``figures/ladder.{pdf,png}``) and,
at every budget above the main one, Hybrid minus X-Y and X-X-mono per setting with the seed-aware test
(secondary, Holm within S4). With no ladder run configured (or a grid without a ``ladder`` study) the table and
figure say so and draw nothing. Seed counts may differ between budgets and strategies.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from hybridbatch import grid, strategies
from hybridbatch.grid import SETTING_LABELS, SETTINGS, dataset_label
from hybridbatch.reporting.latex import block_title, booktabs, fmt_mean_sd, placeholder_table
from hybridbatch.reporting.results import load_results, per_seed_per_query, seed_summary, summary_lookup
from hybridbatch.reporting.significance import MIN_SEEDS, compare_strategies, is_significant
from hybridbatch.stats import inference

STUDY = "ladder"
TARGET = "hybrid"
BASELINES = ("xy", "xx")
LABEL = "tab:ladder"


def ladder_specs(params: dict) -> pd.DataFrame:
    """The ladder study's runs (:func:`grid.grid_runs` ``(params, "ladder")``); empty when the grid has no such
    study or no run in it."""
    if STUDY not in grid.STUDIES:
        return pd.DataFrame(columns=grid.SPEC_COLUMNS)
    return grid.grid_runs(params, STUDY)


def ladder_results(results_dir: str | os.PathLike, params: dict, specs: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`results.load_results` of the ladder runs, with ``budget`` = the steps the run records
    (``config.steps``), else the spec's ``steps``, else ``train.steps`` (a main-budget point). The main-budget
    points are the ladder's own (its seeds' main runs); a spec list without them gets the main runs of the same
    folds and strategies. Empty when no run above the main budget has results yet (the study has not run them:
    nothing is drawn); FileNotFoundError when only some have (a study half-way)."""
    specs = ladder_specs(params) if specs is None else specs
    empty = pd.DataFrame(columns=grid.SPEC_COLUMNS + ["budget"])
    if specs.empty:
        return empty
    steps = specs["steps"] if "steps" in specs else pd.Series([None] * len(specs), index=specs.index)
    longer = specs[steps.notna()]
    present = [(Path(results_dir) / r / "metrics.json").is_file() for r in longer["run"]]
    if not any(present):
        return empty
    if not all(present):
        missing = [r for r, ok in zip(longer["run"], present) if not ok]
        raise FileNotFoundError(f"budget ladder: {len(missing)} of {len(longer)} runs have no results yet "
                                f"(e.g. results/{missing[0]}/metrics.json): run `dvc repro` first")
    both = specs
    if steps.notna().all():  # no main-budget point among the specs: the main runs of the same cells
        main = grid.grid_runs(params, "main")
        main = main[main["fold"].isin(set(specs["fold"])) & main["strategy"].isin(set(specs["strategy"]))]
        both = pd.concat([specs, main], ignore_index=True).drop_duplicates("run")
    spec_steps = dict(zip(both["run"], both["steps"])) if "steps" in both else {}
    default = (params.get("train") or {}).get("steps", math.nan)
    res = load_results(results_dir, both.drop(columns=[c for c in ("steps",) if c in both]))
    budgets = []
    for r, s in zip(res["run"], res.get("steps", pd.Series([math.nan] * len(res)))):
        given = spec_steps.get(r)
        budgets.append(s if not pd.isna(s) else given if given is not None and not pd.isna(given) else default)
    res["budget"] = budgets
    res = res.dropna(subset=["budget"]).reset_index(drop=True)
    res["budget"] = res["budget"].astype(int)
    return res


def main_budget(res: pd.DataFrame, params: dict) -> int | None:
    """The budget of the main runs among ``res`` (the smallest budget when none is a main run)."""
    if res.empty:
        return None
    main = set(grid.grid_runs(params, "main")["run"])
    budgets = sorted({int(b) for b, r in zip(res["budget"], res["run"]) if r in main}) or sorted(set(res["budget"]))
    return int(budgets[0])


def ladder_tests(results_dir: str | os.PathLike, res: pd.DataFrame, params: dict, *, n_resamples: int = 10000,
                 seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Family S4: at every budget above the main one, Hybrid minus each of :data:`BASELINES` per dataset and
    setting (:func:`significance.compare_strategies`), with ``budget``; Holm over all its rows."""
    base = main_budget(res, params)
    parts = []
    for budget in sorted({int(b) for b in res["budget"]} - {base}):
        rung = res[res["budget"] == budget]
        per_query = {}
        for (ds, s), group in rung.groupby(["eval_dataset", "strategy"], sort=False):
            per_query[(ds, s)] = per_seed_per_query(results_dir, list(group.sort_values("seed")["run"]), "ap")
        t = compare_strategies(per_query, TARGET, [b for b in BASELINES if any(k[1] == b for k in per_query)],
                               n_resamples=n_resamples, seed=seed, alpha=alpha)
        parts.append(t.assign(budget=budget))
    if not parts or all(p.empty for p in parts):
        return pd.DataFrame(columns=["budget", "dataset", "baseline", "setting", "diff", "ci_low", "ci_high",
                                     "p_value", "p_holm", "significant"])
    t = pd.concat(parts, ignore_index=True)
    adjusted = inference.holm({str(i): p for i, p in enumerate(t["p_value"])})
    t["p_holm"] = [adjusted[str(i)] for i in range(len(t))]
    t["significant"] = is_significant(t, alpha)
    t["family"] = "S4"
    return t


def ladder_table(res: pd.DataFrame, tests: pd.DataFrame, *, alpha: float = 0.05, n_resamples: int = 10000,
                 label: str = LABEL) -> str:
    """mAP (mean $\\pm$ sd over seeds, seed count) per budget and strategy, then the S4 tests with 95 % CIs; a
    placeholder table when there is no ladder run."""
    if res.empty:
        return placeholder_table(r"\textbf{Secondary} family S4, budget ladder (docs/PREREGISTRATION.md \S5): no "
                                 r"ladder run in this configuration; nothing is drawn.", label,
                                 "no budget-ladder runs")
    look = summary_lookup(seed_summary(res, [f"map_{s}" for s in SETTINGS], by=("eval_dataset", "budget", "strategy")),
                          by=("eval_dataset", "budget", "strategy"))
    width = 2 + len(SETTINGS)
    header = [" & ".join(["Steps", "Sampling"] + [f"{SETTING_LABELS[s]} mAP" for s in SETTINGS]) + r" \\"]
    body: list = []
    for ds in [d for d in grid.DATASET_ORDER if d in set(res["eval_dataset"])]:
        body.append(block_title(dataset_label(ds), width))
        sub = res[res["eval_dataset"] == ds]
        for budget in sorted({int(b) for b in sub["budget"]}):
            shown = grid.ordered(sub.loc[sub["budget"] == budget, "strategy"], strategies.ORDER)
            for i, s in enumerate(shown):
                cells = [fmt_mean_sd(*look.get((ds, budget, s, f"map_{k}"), (math.nan, math.nan, 0))[:2])
                         for k in SETTINGS]
                n = look.get((ds, budget, s, "map_mo"), (0, 0, 0))[2]
                body.append([str(budget) if i == 0 else "", f"{strategies.label(s)} ({n})"] + cells)
    marked = list(is_significant(tests, alpha)) if not tests.empty else []
    if marked:
        body.append(r"\midrule")
        body.append(block_title(rf"S4 tests: {strategies.label(TARGET)} minus baseline, $\Delta$mAP [95\% CI], "
                                r"$p_\mathrm{Holm}$", width))
    for r, sig in zip(tests.to_dict("records") if not tests.empty else [], marked):
        body.append([str(int(r["budget"])), rf"$-$ {strategies.label(r['baseline'])}, {dataset_label(r['dataset'])}",
                     f"{SETTING_LABELS[r['setting']]}: ${r['diff']:+.4f}$" + ("$^{*}$" if sig else ""),
                     f"[${r['ci_low']:+.4f}$, ${r['ci_high']:+.4f}$]", f"$p_\\mathrm{{Holm}}$ {r['p_holm']:.4f}"])
    caption = (r"\textbf{Secondary} family S4, budget ladder (docs/PREREGISTRATION.md \S5): the same strategies "
               r"at the main budget and at more optimiser steps (fixed budget, final step), mAP mean $\pm$ sd over "
               r"seeds (in brackets: the number of seeds). Tests at each budget above the main one: the seed-aware "
               rf"test of Table~\ref{{tab:significance}} ({n_resamples:,} resamples), Holm over the family's "
               rf"{len(tests)} comparisons; $^{{*}}$: $p_\mathrm{{Holm}}<{alpha:g}$, every seed pairing with the "
               rf"sign of $\Delta$, $\ge {MIN_SEEDS}$ seeds a side.")
    return booktabs(header, body, align="rl" + "c" * len(SETTINGS), caption=caption, label=label,
                    size=r"\footnotesize")


def plot_ladder(res: pd.DataFrame):
    """mAP against the budget (log scale), one line per strategy, error bars the sd over seeds; one panel per
    dataset and setting. With no ladder run: a figure that says so."""
    import matplotlib.pyplot as plt

    if res.empty:
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no budget-ladder runs in this configuration", ha="center", va="center")
        return fig
    datasets = [d for d in grid.DATASET_ORDER if d in set(res["eval_dataset"])]
    fig, axes = plt.subplots(len(datasets), len(SETTINGS), figsize=(10, 2.8 * len(datasets)), squeeze=False)
    for i, ds in enumerate(datasets):
        sub = res[res["eval_dataset"] == ds]
        for j, setting in enumerate(SETTINGS):
            ax = axes[i, j]
            for s in grid.ordered(sub["strategy"], strategies.ORDER):
                g = sub[sub["strategy"] == s].groupby("budget")[f"map_{setting}"]
                m, sd = g.mean(), g.std(ddof=1).fillna(0.0)
                ax.errorbar(m.index, m.values, yerr=sd.values, marker="o", ms=4, capsize=2,
                            color=strategies.STRATEGIES[s].colour, label=strategies.label(s))
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(set(sub["budget"])), [str(int(b)) for b in sorted(set(sub["budget"]))])
            ax.minorticks_off()
            ax.set_title(f"{dataset_label(ds)} {SETTING_LABELS[setting]} mAP")
            ax.set_xlabel("optimiser steps")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(frameon=False, fontsize=6)
    fig.suptitle(f"Budget ladder, ours: {grid.MODEL_NOTE} (seed means; error bars: sd over seeds)")
    fig.tight_layout()
    return fig
