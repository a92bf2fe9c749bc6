"""Significance of the report's comparisons and confidence of its headline numbers, on per-query values.

Each system is given as the list of its seeds' per-query frames (``results/<run>/per_query.parquet``; one frame
for zero-shot and BM25), never averaged over seeds first, so :mod:`hybridbatch.stats.inference` sees the seed-to-seed
variation beside the question-level one (a question id is the cluster: it brings all of its parallel
versions): :func:`seeded.compare_runs` for the seed-aware paired tests of a target strategy against each
baseline, :func:`seeded.seeded_bootstrap_ci` for the interval of each headline mAP (the method: the docstring
of :mod:`hybridbatch.stats.inference`). The marks the main table puts on the target's cells come from
:func:`significance_marks`.
"""

from __future__ import annotations

import os
from typing import Sequence

import pandas as pd

from hybridbatch.stats import seeded, inference as stats
from hybridbatch import strategies
from hybridbatch.grid import DATASET_ORDER, SETTINGS, grid_runs, ordered
from hybridbatch.reporting.results import per_seed_per_query

# the columns every comparison table starts with; seeded.compare_runs' other columns (standard errors, seed sds,
# degrees of freedom ...) follow, their ``_a`` / ``_b`` suffixes renamed ``_baseline`` / ``_target``
SIGNIFICANCE_COLUMNS = ["dataset", "baseline", "setting", "mean_baseline", "mean_target", "diff", "diff_per_seed",
                        "ci_low", "ci_high", "p_value", "p_holm", "effect_size", "n_queries", "n_seeds_baseline",
                        "n_seeds_target", "seeds_agree", "significant"]
INTERVAL_COLUMNS = ["dataset", "strategy", "setting", "map", "ci_low", "ci_high", "n_runs"]

PerQuery = pd.DataFrame | Sequence[pd.DataFrame]


def _seeds(frames: PerQuery) -> list[pd.DataFrame]:
    """One system's per-query frames as a list (a single frame is a one-seed system)."""
    return [frames] if isinstance(frames, pd.DataFrame) else list(frames)


def _side_names(columns) -> dict[str, str]:
    """``mean_a`` -> ``mean_baseline``, ``n_seeds_b`` -> ``n_seeds_target`` ... (a: baseline, b: target)."""
    out = {}
    for c in columns:
        if c.endswith("_a"):
            out[c] = c[:-2] + "_baseline"
        elif c.endswith("_b"):
            out[c] = c[:-2] + "_target"
    return out


def _has_setting(frames: PerQuery, setting: str) -> bool:
    return all((f["setting"] == setting).any() for f in _seeds(frames))


def baseline_letters(baselines: Sequence[str]) -> dict[str, str]:
    """Superscript letter of each baseline in significance marks: a, b, c ... in the strategies' order."""
    return {b: "abcdefghijklmnopqrstuvwxyz"[i] for i, b in enumerate(ordered(baselines, strategies.ORDER))}


def compare_strategies(per_query: dict[tuple[str, str], PerQuery], target: str = "hybrid",
                       baselines: Sequence[str] | None = None, settings: Sequence[str] = SETTINGS, *,
                       value: str = "ap", n_resamples: int = 10000, seed: int = 0, confidence: float = 0.95,
                       alpha: float = 0.05) -> pd.DataFrame:
    """``target`` minus each baseline, per dataset and setting, on per-query values.

    ``per_query``: ``{(dataset, strategy): the strategy's per-seed per-query frames}`` (a list, one frame per
    seed, in seed order; a single frame is a one-seed system). Each (baseline, target) pair goes to
    :func:`seeded.compare_runs` (seed-aware paired test: the question-level uncertainty by a cluster bootstrap
    over question ids and the seed-to-seed variance of each system's macro means); Holm's correction is then
    redone over *all* rows of the returned table (every dataset, baseline and setting together).

    Columns: ``dataset, baseline, setting, mean_baseline, mean_target, diff`` (macro, means over seeds),
    ``diff_per_seed`` (tuple: target seed j minus baseline seed i for every pairing, i outer), ``ci_low,
    ci_high, p_value, p_holm, effect_size, n_queries, n_seeds_baseline, n_seeds_target, seeds_agree``
    (every pairing has diff's sign), ``significant`` (``p_holm < alpha`` and ``seeds_agree``, as
    :func:`seeded.compare_runs` defines it), then compare_runs' other columns (``se``, ``sd_seed_baseline`` ...).
    """
    datasets = ordered((d for d, _ in per_query), DATASET_ORDER)
    parts = []
    for ds in datasets:
        if (ds, target) not in per_query:
            continue
        tgt = _seeds(per_query[(ds, target)])
        bases = baselines if baselines is not None else [s for d, s in per_query if d == ds and s != target]
        for base in ordered(bases, strategies.ORDER):
            if (ds, base) not in per_query or base == target:
                continue
            ref = _seeds(per_query[(ds, base)])
            present = [st for st in settings if _has_setting(ref, st) and _has_setting(tgt, st)]
            if not present:
                continue
            # seeded.compare_runs: target minus this baseline per setting (its Holm is redone over all rows below)
            t = seeded.compare_runs({base: ref, target: tgt}, base, present, value=value, n_resamples=n_resamples,
                                   confidence=confidence, seed=seed)
            parts.append(t.rename(columns=_side_names(t.columns)).drop(columns="run").assign(dataset=ds, baseline=base))
    if not parts:
        return pd.DataFrame(columns=SIGNIFICANCE_COLUMNS)
    table = pd.concat(parts, ignore_index=True)
    adjusted = stats.holm({str(i): p for i, p in enumerate(table["p_value"])})
    table["p_holm"] = [adjusted[str(i)] for i in range(len(table))]
    table["significant"] = is_significant(table, alpha)
    return table[SIGNIFICANCE_COLUMNS + [c for c in table.columns if c not in SIGNIFICANCE_COLUMNS]]


def significance_tests(results_dir: str | os.PathLike, params: dict, target: str = "hybrid", *,
                       n_resamples: int = 10000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """:func:`compare_strategies` of the main grid: per fold, ``target`` against every other trained strategy
    of ``grid.strategies``, each given as its main runs' per-query AP (Mo./Cr./Mul.; the seeds of its cell of
    ``grid.main``, :func:`grid.cell_seeds`)."""
    specs = grid_runs(params, "main")
    trained = specs[specs["strategy"].isin(strategies.TRAINED)]
    per_query = {}
    for (ds, strategy), group in trained.groupby(["eval_dataset", "strategy"], sort=False):
        per_query[(ds, strategy)] = per_seed_per_query(results_dir, list(group["run"]), "ap")
    return compare_strategies(per_query, target, n_resamples=n_resamples, seed=seed, alpha=alpha)


def pairings_with_sign(diff: float, diff_per_seed) -> tuple[int, int]:
    """``(k, n)``: how many of the ``n`` seed pairings (target seed minus baseline seed) have the sign of the
    seed means' ``diff`` (a pairing of exactly 0 has no sign). §2's superiority rule needs ``k == n``."""
    values = [float(v) for v in (diff_per_seed if diff_per_seed is not None else ())]
    return sum((v > 0 and diff > 0) or (v < 0 and diff < 0) for v in values), len(values)


MIN_SEEDS = 2  # a system with fewer training seeds has no seed-to-seed variance to test against


def is_significant(sig: pd.DataFrame, alpha: float = 0.05) -> pd.Series:
    """Which rows of a :func:`compare_strategies` table are significant at ``alpha``: Holm-adjusted
    ``p < alpha`` and, where the table has the column, every seed pairing agreeing in sign (``seeds_agree``),
    and, where it has the seed counts, at least :data:`MIN_SEEDS` seeds on both sides: with one seed the
    seed-to-seed variance cannot be estimated, the test is the question-only one, and by simulation that
    test's false-positive rate under seed variance is far above alpha (docs/statistics.md) -- so a one-seed
    comparison is never marked, whatever its p."""
    mask = sig["p_holm"] < alpha
    if "seeds_agree" in sig.columns:
        mask &= sig["seeds_agree"].astype(bool)
    for col in ("n_seeds_baseline", "n_seeds_target"):
        if col in sig.columns:
            mask &= sig[col].fillna(0).astype(int) >= MIN_SEEDS
    return mask


def significance_marks(sig: pd.DataFrame, dataset: str, setting: str, alpha: float = 0.05,
                       letters: dict[str, str] | None = None) -> str:
    """The superscript marking a target cell: one letter per baseline the target differs from significantly
    (:func:`is_significant`: Holm-adjusted ``p < alpha``, seed pairings agreeing) (``a`` = better than baseline
    a; ``a$\\downarrow$`` = worse); empty when none does."""
    if sig is None or sig.empty:
        return ""
    letters = letters or baseline_letters(sig["baseline"].unique())
    rows = sig[(sig["dataset"] == dataset) & (sig["setting"] == setting) & is_significant(sig, alpha)]
    parts = []
    for r in rows.to_dict("records"):
        parts.append(letters[r["baseline"]] + (r"\downarrow" if r["diff"] < 0 else ""))
    return "$^{" + ",".join(parts) + "}$" if parts else ""


def marks_legend(letters: dict[str, str], target: str = "hybrid") -> str:
    return "; ".join(f"{v}: {strategies.label(target)} vs {strategies.label(k)}" for k, v in letters.items())


# ------------------------------------------------------------------------ confidence of headline numbers


def headline_intervals(results_dir: str | os.PathLike, params: dict, *, n_resamples: int = 10000, seed: int = 0,
                       confidence: float = 0.95) -> pd.DataFrame:
    """A confidence interval for every headline mAP of the main grid (each strategy's Mo./Cr./Mul.).

    Each strategy is given as its seeds' per-query AP (zero-shot and BM25 have one run) to
    :func:`seeded.seeded_bootstrap_ci`: the question-level uncertainty from a cluster bootstrap over question
    ids (each bringing all of its parallel versions) and the seed-to-seed variance of the macro means, each
    widened by its own t quantile. ``map`` is the mean over seeds of the macro mAP (the main table's mean).
    Columns: ``dataset, strategy, setting, map, ci_low, ci_high, n_runs``.
    """
    specs = grid_runs(params, "main")
    rows = []
    for (ds, strategy), group in specs.groupby(["eval_dataset", "strategy"], sort=False):
        frames = per_seed_per_query(results_dir, list(group["run"]), "ap")
        for setting in SETTINGS:
            if not _has_setting(frames, setting):
                continue
            low, high = seeded.seeded_bootstrap_ci(frames, setting, "ap", n_resamples=n_resamples,
                                                  confidence=confidence, seed=seed)
            mean = sum(stats.macro_mean(f, setting, "ap") for f in frames) / len(frames)
            rows.append({"dataset": ds, "strategy": strategy, "setting": setting, "map": mean, "ci_low": low,
                         "ci_high": high, "n_runs": len(group)})
    return pd.DataFrame(rows, columns=INTERVAL_COLUMNS)


# ------------------------------------------------------------------------------------------- alpha sweep


def alpha_tests(results_dir: str | os.PathLike, params: dict, alpha_results: pd.DataFrame, *,
                settings: Sequence[str] = SETTINGS, n_resamples: int = 10000, seed: int = 0,
                alpha: float = 0.05) -> pd.DataFrame:
    """Every other point of the alpha sweep minus the reference alpha -- the main Hybrid runs' (the hybrid runs of
    the main grid, ``train.alpha`` = 0.5 in ``params.yaml``) -- per setting, with the seed-aware paired test of
    :func:`seeded.compare_runs` (Holm over all rows of this table). The question it answers is the paper's "stable for alpha in [0.4, 0.6]": does moving
    alpha away from the reference change mAP beyond the question and seed noise?

    ``alpha_results``: :func:`report.study_results` ``(..., "alpha")`` -- one row per run with ``run``, ``alpha``
    (0 for the X-Y run, 1 for the X-X-mono run) and ``seed``; each alpha's runs, in seed order, are one system.
    Columns, named as :func:`compare_strategies` names them (baseline: the reference alpha, target: the compared
    one): ``alpha`` (the compared point), ``reference``, ``setting``, ``mean_baseline, mean_target, diff``
    (alpha minus reference: negative = the reference is better), ``diff_per_seed, ci_low, ci_high, p_value,
    p_holm, effect_size, n_queries, n_seeds_baseline, n_seeds_target, seeds_agree, significant``
    (:func:`is_significant`). Empty when the sweep has a single alpha or no main Hybrid run.
    """
    columns = ["alpha", "reference", "setting", "mean_baseline", "mean_target", "diff", "diff_per_seed", "ci_low",
               "ci_high", "p_value", "p_holm", "effect_size", "n_queries", "n_seeds_baseline", "n_seeds_target",
               "seeds_agree", "significant"]
    if alpha_results.empty:
        return pd.DataFrame(columns=columns)
    if alpha_results["alpha"].isna().any():
        bad = alpha_results.loc[alpha_results["alpha"].isna(), "run"].tolist()
        raise ValueError(f"alpha sweep: no alpha recorded for run(s) {bad} (results/<run>/metrics.json config.alpha)")
    points = sorted({float(a) for a in alpha_results["alpha"]})
    main_runs = set(grid_runs(params, "main")["run"])
    main_hybrid = alpha_results[(alpha_results["strategy"] == "hybrid") & alpha_results["run"].isin(main_runs)]
    references = sorted({float(a) for a in main_hybrid["alpha"]})
    if len(points) < 2 or not references:  # a single point, or no main Hybrid run in the sweep: nothing to test
        return pd.DataFrame(columns=columns)
    if len(references) > 1:
        raise ValueError(f"alpha sweep: the main Hybrid runs {sorted(main_hybrid['run'])} record different alphas "
                         f"{references} (results/<run>/metrics.json config.alpha)")
    reference = references[0]
    name = {a: f"{a:g}" for a in points}
    per_query = {}
    for a in [reference] + [p for p in points if p != reference]:
        runs = alpha_results[alpha_results["alpha"].astype(float) == a].sort_values("seed", kind="stable")["run"]
        per_query[name[a]] = per_seed_per_query(results_dir, list(runs), "ap")
    present = [st for st in settings if all(_has_setting(f, st) for f in per_query.values())]
    t = seeded.compare_runs(per_query, name[reference], present, n_resamples=n_resamples, seed=seed,
                            alpha=alpha)
    t = t.rename(columns=_side_names(t.columns))  # baseline: the reference alpha; target: the compared one
    t["alpha"] = [float(r) for r in t.pop("run")]
    t["reference"] = reference
    t["significant"] = is_significant(t, alpha)
    return t[columns + [c for c in t.columns if c not in columns]]
