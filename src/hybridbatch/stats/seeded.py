"""Seed-aware comparison of systems given as their training seeds' per-query results (docs/statistics.md).

A system is one per-query frame (a deterministic system, e.g. BM25 or zero-shot) or the list of its training
seeds' frames. :func:`compare_runs` compares every system with a baseline per setting; a cell is
``significant`` when the seed-aware test rejects after Holm *and* every seed pairing agrees in sign.
:func:`seeded_bootstrap_ci` is the headline interval of one system. The method: :mod:`hybridbatch.stats.inference`
(module docstring) and docs/statistics.md; the single-run procedures and helpers live in
:mod:`hybridbatch.stats.inference`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.optimize import brentq

from hybridbatch.stats.inference import (KEYS, PerQuery, _bootstrap_distribution, _check_confidence, _check_resamples, _Design,
                    _effect_size, _macro_contributions, _select, holm)

__all__ = ["compare_runs", "seeded_paired_test", "seeded_bootstrap_ci", "COMPARE_COLUMNS"]


# ------------------------------------------------------------------------------------ seeds of a system


@dataclass(frozen=True)
class _Seeds:
    """One system's seeds in one setting: sorted keys (shared by every seed) and a (k, n_rows) value matrix."""

    name: str
    keys: pd.DataFrame
    values: np.ndarray

    @property
    def k(self) -> int:
        return self.values.shape[0]


def _as_frames(name: str, frames: PerQuery) -> list[pd.DataFrame]:
    if isinstance(frames, pd.DataFrame):
        return [frames]
    if isinstance(frames, (str, bytes)) or not isinstance(frames, Sequence):
        raise TypeError(f"run {name!r}: expected a per-query DataFrame or a list of them (one per seed), "
                        f"got {type(frames).__name__}")
    frames = list(frames)
    if not frames:
        raise ValueError(f"run {name!r}: empty list of seeds")
    for i, f in enumerate(frames):
        if not isinstance(f, pd.DataFrame):
            raise TypeError(f"run {name!r}, seed {i}: expected a DataFrame, got {type(f).__name__}")
    return frames


def _examples(keys: pd.DataFrame) -> list[tuple]:
    return [tuple(k) for k in keys.head(3).itertuples(index=False)]


def _match_keys(ref: pd.DataFrame, other: pd.DataFrame) -> tuple[np.ndarray | None, pd.DataFrame, pd.DataFrame]:
    """How ``other``'s rows line up with ``ref``'s (both sorted, duplicate-free key frames).

    Returns ``(order, only_ref, only_other)``: when the key sets agree, ``order`` indexes ``other``'s rows in
    ``ref``'s row order (None when they are already in the same order) and both ``only_*`` are empty; otherwise
    ``order`` is None and ``only_*`` hold the unmatched keys. Keys are compared as strings when the frames
    differ, so a qid stored as 7 in one run and "7" in another matches (and is realigned, not misordered).
    """
    if ref.equals(other):
        return None, ref.iloc[:0], ref.iloc[:0]
    r = ref.astype(str).assign(_i=np.arange(len(ref)))
    o = other.astype(str).assign(_j=np.arange(len(other)))
    m = r.merge(o, on=KEYS, how="outer", indicator=True)
    only_ref, only_other = m.loc[m["_merge"] == "left_only", KEYS], m.loc[m["_merge"] == "right_only", KEYS]
    if len(only_ref) or len(only_other):
        return None, only_ref, only_other
    order = m.sort_values("_i")["_j"].to_numpy(dtype=np.int64)
    return order, only_ref, only_other


def _seeds(name: str, frames: PerQuery, setting: str, value: str) -> _Seeds:
    """Validate one system's seeds in ``setting`` and align them on the keys (all seeds must share them)."""
    frames = _as_frames(name, frames)
    ref: pd.DataFrame | None = None
    values = []
    for i, df in enumerate(frames):
        try:
            sub = _select(df, setting, value)
        except ValueError as e:
            raise ValueError(f"run {name!r}, seed {i}: {e}") from None
        dup = sub.duplicated(KEYS)
        if dup.any():
            raise ValueError(f"run {name!r}, seed {i}, setting {setting!r}: {int(dup.sum())} duplicated "
                             f"(query_lang, corpus_lang, qid) key(s), e.g. {_examples(sub.loc[dup, KEYS])}")
        sub = sub[KEYS + [value]].sort_values(KEYS, kind="stable").reset_index(drop=True)
        v = sub[value].to_numpy(dtype=float)
        if ref is None:
            ref = sub[KEYS]
        else:
            order, only_ref, only_i = _match_keys(ref, sub[KEYS])
            if len(only_ref) or len(only_i):
                raise ValueError(f"run {name!r}: seed {i} does not cover the same queries as seed 0 in setting "
                                 f"{setting!r}: {len(only_ref)} key(s) only in seed 0 (e.g. {_examples(only_ref)}), "
                                 f"{len(only_i)} only in seed {i} (e.g. {_examples(only_i)})")
            if order is not None:
                v = v[order]
        values.append(v)
    return _Seeds(name, ref, np.vstack(values))


def _paired(a: _Seeds, b: _Seeds, setting: str) -> _Seeds:
    """``b`` with its values in ``a``'s row order; ValueError if the two systems cover different queries."""
    order, only_a, only_b = _match_keys(a.keys, b.keys)
    if len(only_a) or len(only_b):
        raise ValueError(f"runs {a.name!r} and {b.name!r} do not cover the same queries in setting {setting!r}: "
                         f"{len(only_a)} missing key(s) only in a={a.name!r} (e.g. {_examples(only_a)}), "
                         f"{len(only_b)} missing key(s) only in b={b.name!r} (e.g. {_examples(only_b)})")
    return b if order is None else _Seeds(b.name, a.keys, b.values[:, order])


def _layout(keys: pd.DataFrame) -> tuple[np.ndarray, int, int]:
    """Row -> cell index ``g * Q + q`` (group, qid) of a key frame, and (G, Q)."""
    g = keys.groupby(["query_lang", "corpus_lang"], sort=True).ngroup().to_numpy()
    q, _ = pd.factorize(keys["qid"], sort=True)
    n_g, n_q = int(g.max()) + 1, int(q.max()) + 1
    return g * n_q + q, n_g, n_q


def _seed_designs(layout: tuple[np.ndarray, int, int], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, G, Q) per-seed group x qid sums and the (G, Q) counts, from a layout and a (k, n_rows) value matrix."""
    cell, n_g, n_q = layout
    counts = np.bincount(cell, minlength=n_g * n_q).reshape(n_g, n_q).astype(float)
    sums = np.stack([np.bincount(cell, weights=v, minlength=n_g * n_q).reshape(n_g, n_q) for v in values])
    return sums, counts


def _macro_of_sums(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Full-sample macro mean of each (G, Q) slice of a (k, G, Q) stack -> (k,)."""
    return (sums.sum(axis=2) / counts.sum(axis=1)).mean(axis=1)


def _seed_variances(sums: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """``(s**2, tau**2)`` of one system from its (k, G, Q) per-seed sums: the sample variance (ddof 1) of the
    per-seed macro means, and the part of it that is a seed *offset* rather than within-seed question noise.

    A seed's macro mean is ``mean_q c[i, q]`` (``c`` the per-qid macro contributions), so
    ``E[s**2] = tau**2 + sigma_e**2 / Q`` with ``sigma_e**2`` the seed x question interaction variance. That
    interaction is estimated from the two-way residuals ``r = c - row mean - column mean + grand mean``
    (``sigma_e**2 = sum r**2 / ((k - 1) (Q - 1))``), and ``tau**2 = max(0, s**2 - sigma_e**2 / Q)``. The
    interaction is question-level noise, which the question bootstrap of the seed-averaged values already
    carries; subtracting it here keeps it from being counted twice. Both are 0 for one seed.
    """
    k, n_g, n_q = sums.shape
    if k < 2:
        return 0.0, 0.0
    contrib = n_q * (sums / (n_g * counts.sum(axis=1))[None, :, None]).sum(axis=1)  # (k, Q)
    macros = contrib.mean(axis=1)
    s2 = float(macros.var(ddof=1))
    if n_q < 2:
        return s2, s2
    resid = contrib - contrib.mean(axis=0, keepdims=True) - (macros - macros.mean())[:, None]
    sigma2_e = float((resid ** 2).sum()) / ((k - 1) * (n_q - 1))
    return s2, max(0.0, s2 - sigma2_e / n_q)


def _design_of(sums: np.ndarray, counts: np.ndarray) -> _Design:
    return _Design(sums, counts, counts.sum(axis=0), sums.sum(axis=0))


def _welch_df(components: list[tuple[float, float]]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance components ``(variance, df)``; inf if all 0."""
    total = sum(v for v, _ in components)
    denom = sum(v * v / d for v, d in components if v > 0)
    return float(total * total / denom) if total > 0 and denom > 0 else float("inf")


_P_FLOOR = 1e-30  # smallest p reported when both parts are present (scipy's t quantiles fail further out)


def _combined_interval(estimate: float, var_q: float, df_q: float, var_s: float, df_s: float,
                       confidence: float) -> tuple[float, float, float]:
    """(low, high, two-sided p of estimate == 0) for an estimate with a question part (variance ``var_q``,
    ``df_q`` df) and an independent seed part (``var_s``, ``df_s`` df).

    The half-width at level 1 - a is ``h(a) = sqrt(var_q * t_{df_q}(a)**2 + var_s * t_{df_s}(a)**2)``, with
    ``t_df(a)`` the upper a/2 quantile of Student t: each part widened by its own quantile, then added in
    quadrature (exact for normal parts, conservative for t parts). p is the a with ``h(a) = |estimate|``, so
    ``p < 1 - confidence`` exactly when the interval at ``confidence`` excludes 0 (p is floored at 1e-30
    when both parts are present). With one part this is the ordinary t interval and t test (Welch's when only
    the seed part is there).
    """
    var_q, var_s = max(var_q, 0.0), max(var_s, 0.0)

    def half_width(a: float) -> float:
        out = 0.0
        if var_q > 0:
            out += var_q * float(sps.t.isf(a / 2, df_q)) ** 2
        if var_s > 0:
            out += var_s * float(sps.t.isf(a / 2, df_s)) ** 2
        return float(np.sqrt(out)) if np.isfinite(out) else float("inf")

    h = half_width(1 - confidence)
    d = abs(estimate)
    if var_q == 0 and var_s == 0:
        p = 1.0 if estimate == 0 else 0.0
    elif var_s == 0 or var_q == 0:
        var, df = (var_q, df_q) if var_s == 0 else (var_s, df_s)
        p = float(min(1.0, 2 * sps.t.sf(d / np.sqrt(var), df)))
    elif d == 0:
        p = 1.0
    elif half_width(_P_FLOOR) <= d:
        p = _P_FLOOR
    else:  # h decreases from h(_P_FLOOR) > d to h(1) = 0: one root, found on log(a)
        p = float(np.exp(brentq(lambda x: half_width(np.exp(x)) - d, np.log(_P_FLOOR), 0.0, xtol=1e-12)))
    return estimate - h, estimate + h, p


def _seeded_test(a: _Seeds, b: _Seeds, n_resamples: int, confidence: float, seed: int) -> dict:
    """The seed-aware comparison of two aligned systems (module docstring)."""
    return _seeded_test_arrays(_layout(a.keys), a.values, b.values, n_resamples, confidence, seed)


def _seeded_test_arrays(layout: tuple[np.ndarray, int, int], values_a: np.ndarray, values_b: np.ndarray,
                        n_resamples: int, confidence: float, seed: int) -> dict:
    """:func:`_seeded_test` on (k_A, n_rows) and (k_B, n_rows) value matrices aligned on ``layout``."""
    _check_resamples(n_resamples)
    _check_confidence(confidence)
    k_a, k_b = len(values_a), len(values_b)
    sums, counts = _seed_designs(layout, np.vstack([values_a, values_b]))
    sums_a, sums_b = sums[:k_a], sums[k_a:]
    macro_a, macro_b = _macro_of_sums(sums_a, counts), _macro_of_sums(sums_b, counts)
    mean_a, mean_b = float(macro_a.mean()), float(macro_b.mean())
    diff = mean_b - mean_a
    per_seed = tuple(float(mb - ma) for ma in macro_a for mb in macro_b)

    design = _design_of(sums_b.mean(axis=0) - sums_a.mean(axis=0), counts)
    n_q = design.n_qids
    boot = _bootstrap_distribution(design, int(n_resamples), np.random.default_rng(seed))
    var_q = float(boot.var(ddof=1)) if len(boot) > 1 else 0.0
    s2_a, tau2_a = _seed_variances(sums_a, counts)
    s2_b, tau2_b = _seed_variances(sums_b, counts)
    var_s = tau2_a / k_a + tau2_b / k_b
    df_s = _welch_df([(tau2_a / k_a, k_a - 1.0), (tau2_b / k_b, k_b - 1.0)])
    low, high, p = _combined_interval(diff, var_q, n_q - 1.0, var_s, df_s, confidence)
    agree = diff != 0 and all(np.sign(d) == np.sign(diff) for d in per_seed)
    return {"mean_a": mean_a, "mean_b": mean_b, "diff": diff, "diff_per_seed": per_seed, "ci": (low, high),
            "p_value": p, "effect_size": _effect_size(diff, _macro_contributions(design)), "n_queries": int(n_q),
            "n_seeds_a": k_a, "n_seeds_b": k_b, "se": float(np.sqrt(var_q + var_s)),
            "se_question": float(np.sqrt(var_q)), "se_seed": float(np.sqrt(var_s)),
            "sd_seed_a": float(np.sqrt(s2_a)) if k_a > 1 else float("nan"),
            "sd_seed_b": float(np.sqrt(s2_b)) if k_b > 1 else float("nan"),
            "df_seed": df_s, "seeds_agree": bool(agree)}


def seeded_paired_test(a: PerQuery, b: PerQuery, setting: str, value: str = "ap", n_resamples: int = 10000,
                       seed: int = 0, confidence: float = 0.95) -> dict:
    """Seed-aware paired comparison of macro(b) - macro(a) in one setting (the method: module docstring).

    ``a`` and ``b`` are each one per-query frame or a list of frames (the system's seeds, in seed order); every
    frame of both must cover the same queries. Returns ``mean_a, mean_b`` (means over seeds of the macro
    means), ``diff``, ``diff_per_seed`` (``B_j - A_i`` for every pairing, i over a's seeds outer, j over b's
    inner), ``ci`` (interval at ``confidence``: question and seed parts, each widened by its t quantile,
    added in quadrature), ``p_value`` (the matching test), ``effect_size`` (macro-weighted d_z, sign of diff),
    ``n_queries`` (qids), ``n_seeds_a, n_seeds_b``, ``se`` (total standard error ``sqrt(V_q + V_s)``),
    ``se_question`` (``sqrt(V_q)``, cluster bootstrap), ``se_seed`` (``sqrt(V_s)``, seed offsets),
    ``sd_seed_a, sd_seed_b`` (sd over seeds of the macro means, as the tables show it; NaN for one seed),
    ``df_seed`` (Welch-Satterthwaite df of ``V_s``; inf when it is 0) and ``seeds_agree`` (every pairing
    has diff's sign).
    """
    sa = _seeds("a", a, setting, value)
    sb = _paired(sa, _seeds("b", b, setting, value), setting)
    return _seeded_test(sa, sb, n_resamples, confidence, seed)


def seeded_bootstrap_ci(frames: PerQuery, setting: str, value: str = "ap", n_resamples: int = 10000,
                        confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Confidence interval of a system's headline number (mean over its seeds of the macro mean).

    Questions and seeds are both resampled: qids by a cluster bootstrap of the seed-averaged per-query values
    (variance ``V_q``), seeds through the exact variance of resampling them with the ``k / (k - 1)``
    correction, ``V_s = tau**2 / k`` (``tau**2``: variance of the per-seed macro means less its seed x
    question part, which ``V_q`` holds; module docstring). The interval is
    ``mean -+ sqrt(V_q * t_{n_qids-1}**2 + V_s * t_{k-1}**2)`` (t quantiles at ``confidence``): with 2-3
    seeds a percentile interval of resampled seeds would be far too narrow. When the seeds differ by constant
    offsets only it is the one-sample t interval of the per-seed macro means; one frame (or one seed) gives
    the question-only interval, a t counterpart of :func:`cluster_bootstrap_ci`.
    """
    s = _seeds("system", frames, setting, value)
    _check_resamples(n_resamples)
    _check_confidence(confidence)
    sums, counts = _seed_designs(_layout(s.keys), s.values)
    macros = _macro_of_sums(sums, counts)
    mean = float(macros.mean())
    design = _design_of(sums.mean(axis=0), counts)
    boot = _bootstrap_distribution(design, int(n_resamples), np.random.default_rng(seed))
    var_q = float(boot.var(ddof=1)) if len(boot) > 1 else 0.0
    _, tau2 = _seed_variances(sums, counts)
    low, high, _ = _combined_interval(mean, var_q, design.n_qids - 1.0, tau2 / s.k, s.k - 1.0, confidence)
    return float(low), float(high)


COMPARE_COLUMNS = ["run", "setting", "mean_a", "mean_b", "diff", "diff_per_seed", "ci_low", "ci_high", "p_value",
                   "p_holm", "effect_size", "n_queries", "n_seeds_a", "n_seeds_b", "se", "se_question", "se_seed",
                   "sd_seed_a", "sd_seed_b", "df_seed", "seeds_agree", "significant"]


def compare_runs(per_query: dict[str, PerQuery], baseline: str, settings=("mo", "cr", "mul"), *,
                 value: str = "ap", n_resamples: int = 10000, confidence: float = 0.95, alpha: float = 0.05,
                 seed: int = 0) -> pd.DataFrame:
    """Compare every run against ``baseline`` in each setting: the table of which cells are significant.

    ``per_query[name]`` is one per-query frame or a list of frames (that system's seeds, in seed order).
    One row per (run != baseline, setting), in input order, with columns (``a`` = baseline, ``b`` = run):

    ``run, setting``; ``mean_a, mean_b`` (mean over seeds of the macro means); ``diff`` (mean_b - mean_a);
    ``diff_per_seed`` (tuple of the per-seed-*pairing* macro differences ``B_j - A_i``, i over the
    baseline's seeds outer, j over the run's inner: ``k_a * k_b`` values); ``ci_low, ci_high`` (interval of
    diff at ``confidence`` from the question and the seed variance); ``p_value`` (the matching two-sided test);
    ``p_holm`` (Holm over all rows of this table); ``effect_size`` (macro-weighted paired d_z of the
    seed-averaged values, always with diff's sign); ``n_queries`` (qids); ``n_seeds_a, n_seeds_b``; ``se,
    se_question, se_seed`` (total standard error, its question and its seed-offset part); ``sd_seed_a,
    sd_seed_b`` (sd over seeds of
    the macro means, NaN for one seed); ``df_seed`` (Welch-Satterthwaite df of the seed variance, inf if
    none); ``seeds_agree`` (every seed pairing has diff's sign); ``significant`` (``p_holm < alpha`` and
    ``seeds_agree``). The method: module docstring. Callers that redo Holm over a larger table must keep
    ``significant = (p_holm < alpha) & seeds_agree``.
    A single frame per system gives the question-only test (t on the cluster-bootstrap standard error).
    """
    if baseline not in per_query:
        raise ValueError(f"baseline {baseline!r} not among runs {list(per_query)}")
    rows = []
    cache: dict[tuple[str, str], _Seeds] = {}

    def prepared(name: str, setting: str) -> _Seeds:
        if (name, setting) not in cache:
            cache[(name, setting)] = _seeds(name, per_query[name], setting, value)
        return cache[(name, setting)]

    for run in per_query:
        if run == baseline:
            continue
        for setting in settings:
            a = prepared(baseline, setting)
            b = _paired(a, prepared(run, setting), setting)
            res = _seeded_test(a, b, n_resamples, confidence, seed)
            ci = res.pop("ci")
            rows.append({"run": run, "setting": setting, **res, "ci_low": ci[0], "ci_high": ci[1]})
    if not rows:
        return pd.DataFrame(columns=COMPARE_COLUMNS)
    table = pd.DataFrame(rows)
    adjusted = holm({str(i): p for i, p in enumerate(table["p_value"])})
    table["p_holm"] = [adjusted[str(i)] for i in range(len(table))]
    table["significant"] = (table["p_holm"] < alpha) & table["seeds_agree"]
    return table[COMPARE_COLUMNS]
