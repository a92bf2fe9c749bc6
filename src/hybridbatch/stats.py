"""Significance testing of headline retrieval numbers (macro-averaged AP) over per-query results.

Input: the per-query frames written by the evaluation stage (``results/<run>/per_query.parquet``), with
columns ``setting`` ("mo" | "cr" | "mul"), ``query_lang``, ``corpus_lang`` ("all" for mul), ``qid`` and a
value column (``ap`` by default). A *system* (a strategy) is one frame or the list of its training seeds'
frames.

Headline numbers are *macro* averages: the mean over groups ``(query_lang, corpus_lang)`` of the mean value
of the group's rows (Mo.: one group per language, X == Y; Cr.: one per ordered pair X != Y; Mul.: one per
query language). The data are parallel: the same ``qid`` occurs in every language, so rows sharing a qid are
dependent. Every resampling procedure here therefore treats a qid as the unit (cluster):

* ``cluster_bootstrap_ci`` draws qids with replacement; a drawn qid brings all of its rows, and the macro
  mean is recomputed with the group structure, each row weighted by how many times its qid was drawn.
  A group none of whose qids was drawn in a resample is left out of that resample's macro mean.
* ``paired_randomization_test`` swaps the two systems' values for *all* rows of a qid jointly, i.e. flips
  the sign of the qid's per-row differences. Because the macro mean is linear, the macro difference under a
  sign vector ``s`` is ``s @ w`` with ``w[q] = sum over rows r of q of d[r] / (n_groups * n_rows(group(r)))``.

Training seeds (``compare_runs``, ``seeded_paired_test``, ``seeded_bootstrap_ci``). A trained system's
headline number varies from seed to seed (an sd of .010 has been seen, larger than the question-level
standard error of a paired difference), and a test on seed-averaged per-query values cannot see that
variation: a seed's offset is shared by all of its queries, so resampling or sign-flipping qids leaves it
in place. The seed-aware comparison of systems A (``k_A`` seeds) and B (``k_B`` seeds) is:

* ``diff`` = mean over B's seeds of the macro mean - mean over A's seeds (== the macro mean of the
  seed-averaged per-query values, by linearity).
* Two independent parts of uncertainty. Questions: ``V_q``, the cluster-bootstrap variance (qids drawn
  jointly for both systems and all seeds) of the seed-averaged paired macro difference, with ``n_qids - 1``
  df; it includes the seed x question noise (a seed doing well on some questions, badly on others), averaged
  over seeds. Seeds: ``V_s = tau_A**2 / k_A + tau_B**2 / k_B``, ``tau_X**2`` the variance of system X's seed
  *offsets*: the sample variance ``s_X**2`` (ddof 1) of its per-seed macro means minus the part of it that
  is seed x question noise (estimated from the seed x qid table of macro contributions, see
  ``_seed_variances``; floored at 0), so that noise is counted once. ``V_s`` gets Welch-Satterthwaite df
  ``df_s`` (``k_X - 1`` per system: 1-2 for 2 + 2 seeds, 2-4 for 3 + 3). ``s**2 / k`` is also what a
  bootstrap that resamples seeds contributes once the usual ``k / (k - 1)`` correction is applied; it is
  computed exactly instead of by Monte-Carlo (with 2-3 seeds there are only 3 or 10 distinct seed
  resamples). A system given as one frame contributes no seed variance (a deterministic system such as BM25
  or zero-shot, or a comparison conditional on that one run).
* Interval at level 1 - a: ``diff -+ h(a)``, ``h(a) = sqrt(V_q * t_{n_qids-1}(a)**2 + V_s * t_{df_s}(a)**2)``
  (``t_df(a)``: upper a/2 quantile of Student t): each part is widened by its own quantile and the two are
  added in quadrature, exact for normal parts and conservative for t parts. ``p_value`` is the a at which
  ``h(a) = |diff|`` (so ``p < 1 - confidence`` exactly when the CI at ``confidence`` excludes 0); with only
  one part it is the ordinary t test (Welch's on the per-seed macro means when V_q is 0). Why not one t with
  Welch-Satterthwaite df over all three components: its df estimate is largest exactly when the seed
  variance is underestimated by chance, and it rejected 6 % of true nulls at nominal 5 % with 2 + 2 seeds in
  simulation. Why nothing distribution-free at the seed level: a permutation test over seeds cannot reach
  p < .05 with 2 + 2 seeds (smallest two-sided p 1/3) or 3 + 3 (1/10), and a percentile bootstrap over 2-3
  seeds is far too narrow (its seed part is a 3- or 10-point distribution with a variance biased low). With
  2 seeds the t quantiles are large (12.7 for 1 df, 4.3 for 2): that is the price of estimating seed
  variance from two runs. ``p_holm``: Holm over the rows of the table.
* ``significant`` = ``p_holm < alpha`` AND every seed pairing agrees: all ``k_A * k_B`` per-seed macro
  differences ``B_j - A_i`` (``diff_per_seed``) are non-zero and have the sign of ``diff``. The second
  condition is an extra guard against one outlying seed (it alone would be a weak test: under the null it
  holds with probability 1/3 for 2 + 2 seeds and 1/10 for 3 + 3).
* ``effect_size`` = ``diff / sd_q(c)``, a paired d_z on the macro weighting: ``c[q] = n_qids * w[q]`` is qid
  q's contribution to the macro difference of the seed-averaged values (``mean(c) == diff``), so the effect
  size always has diff's sign (it is 0 when diff is 0).

``simulate_systems`` generates per-query frames with this structure (languages as groups, qids shared across
languages, per-qid effects, a per-seed offset with sd ``tau``, per-row noise) for validating the procedure;
``benchmarks/stats_power.py`` reports false-positive rate and power, ``docs/statistics.md`` the figures.

Everything is vectorised over resamples (count / sign matrices processed in memory-bounded chunks) and
seeded through ``numpy.random.default_rng``; the same seed gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.optimize import brentq

__all__ = [
    "macro_mean",
    "paired_frame",
    "cluster_bootstrap_ci",
    "paired_randomization_test",
    "holm",
    "compare_runs",
    "seeded_paired_test",
    "seeded_bootstrap_ci",
    "average_runs",
    "simulate_systems",
]

KEYS = ["query_lang", "corpus_lang", "qid"]
_CHUNK_ELEMENTS = 2_000_000  # qids x resamples processed at once (bounds memory to ~16 MB per matrix)

PerQuery = pd.DataFrame | Sequence[pd.DataFrame]


# ---------------------------------------------------------------------------------------------- helpers


def _select(df: pd.DataFrame, setting: str, value: str) -> pd.DataFrame:
    """Rows of one setting, validated: required columns present, non-empty, no missing values."""
    missing = [c for c in ["setting", *KEYS, value] if c not in df.columns]
    if missing:
        raise ValueError(f"per-query frame lacks column(s) {missing}")
    sub = df[df["setting"] == setting]
    if sub.empty:
        raise ValueError(f"no rows for setting {setting!r} (settings present: {sorted(df['setting'].unique())})")
    if sub[[*KEYS, value]].isna().any().any():
        raise ValueError(f"missing values in setting {setting!r} (columns {KEYS + [value]})")
    return sub


@dataclass(frozen=True)
class _Design:
    """A setting's rows reduced to (group x qid) sums and counts: all a macro mean needs."""

    sums: np.ndarray  # (G, Q) sum of the values of group g's rows belonging to qid q
    counts: np.ndarray  # (G, Q) number of such rows
    qid_rows: np.ndarray  # (Q,) rows per qid
    qid_sums: np.ndarray  # (Q,) sum of values per qid

    @property
    def n_qids(self) -> int:
        return self.sums.shape[1]


def _design(sub: pd.DataFrame, value: str) -> _Design:
    g = sub.groupby(["query_lang", "corpus_lang"], sort=True).ngroup().to_numpy()
    q, _ = pd.factorize(sub["qid"], sort=True)
    v = sub[value].to_numpy(dtype=float)
    n_g, n_q = int(g.max()) + 1, int(q.max()) + 1
    cell = g * n_q + q
    sums = np.bincount(cell, weights=v, minlength=n_g * n_q).reshape(n_g, n_q)
    counts = np.bincount(cell, minlength=n_g * n_q).reshape(n_g, n_q).astype(float)
    return _Design(sums, counts, np.bincount(q, minlength=n_q).astype(float),
                   np.bincount(q, weights=v, minlength=n_q))


def _chunks(n_resamples: int, n_qids: int):
    size = max(1, min(n_resamples, _CHUNK_ELEMENTS // max(n_qids, 1)))
    for start in range(0, n_resamples, size):
        yield min(size, n_resamples - start)


def _bootstrap_macros(sums: np.ndarray, counts: np.ndarray, n_resamples: int, rng: np.random.Generator
                      ) -> np.ndarray:
    """Macro means of each (G, Q) slice of a (m, G, Q) stack of sums over the same ``n_resamples``
    cluster-bootstrap resamples (qids drawn with replacement, shared by the m slices) -> (m, n_resamples)."""
    m, n_g, n_q = sums.shape
    distinct, inverse = np.unique(counts, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    stacked = sums.reshape(m * n_g, n_q)
    out = []
    for r in _chunks(n_resamples, n_q):
        draws = rng.integers(0, n_q, size=(r, n_q))  # r resamples of n_q qids each
        weights = np.bincount((draws + n_q * np.arange(r)[:, None]).ravel(), minlength=r * n_q)
        weights = weights.reshape(r, n_q).T.astype(float)
        den = (distinct @ weights)[inverse]  # (G, r): groups covering the same qids share it
        valid = den > 0
        num = (stacked @ weights).reshape(m, n_g, r)
        group_means = np.divide(num, den, out=np.zeros_like(num), where=valid)
        out.append(group_means.sum(axis=1) / valid.sum(axis=0))
    return np.concatenate(out, axis=1)


def _bootstrap_distribution(design: _Design, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Macro mean over ``n_resamples`` cluster-bootstrap resamples (qids drawn with replacement)."""
    return _bootstrap_macros(design.sums[None], design.counts, n_resamples, rng)[0]


def _percentile_ci(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    _check_confidence(confidence)
    alpha = 1 - confidence
    low, high = np.percentile(stats, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _check_resamples(n_resamples: int) -> None:
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples}")


def _macro_contributions(design: _Design) -> np.ndarray:
    """Per-qid contributions ``c`` to the macro mean of the design's values: ``c.mean() == macro``.

    ``c[q] = n_qids * sum over rows r of q of v[r] / (n_groups * n_rows(group(r)))``; with one row per qid
    in a single group, ``c`` is just the values.
    """
    n_groups = design.counts.shape[0]
    group_rows = design.counts.sum(axis=1, keepdims=True)  # (G, 1)
    return design.n_qids * (design.sums / (n_groups * group_rows)).sum(axis=0)


def _sign_flip_p(w: np.ndarray, d_obs: float, n_resamples: int, rng: np.random.Generator) -> float:
    """Randomization p-value of ``d_obs = w.sum()``: random qid sign vectors s, p = (1 + #{|s @ w| >= |d_obs|}) /
    (1 + n_resamples), values equal up to rounding counting as ties."""
    n_q = len(w)
    tol = 1e-12 * max(float(np.abs(w).sum()), 1e-300)
    extreme = 0
    for r in _chunks(n_resamples, n_q):
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(r, n_q))
        extreme += int(np.count_nonzero(np.abs(signs @ w) >= abs(d_obs) - tol))
    return (1 + extreme) / (1 + n_resamples)


def _effect_size(diff: float, contributions: np.ndarray) -> float:
    """Paired d_z on the macro weighting: ``diff / sd(c)`` (ddof 1), so it always has the sign of ``diff``.

    0 when ``diff`` is 0; +-inf when the contributions do not vary and ``diff`` is not 0.
    """
    sd = float(contributions.std(ddof=1)) if len(contributions) > 1 else 0.0
    if diff == 0:
        return 0.0
    if sd > 0:
        return diff / sd
    return float(np.copysign(np.inf, diff))


# ------------------------------------------------------------------------------------------------- API


def macro_mean(df: pd.DataFrame, setting: str, value: str = "ap") -> float:
    """Headline macro average of ``value`` for one setting.

    Mean over groups ``(query_lang, corpus_lang)`` of the group's mean value (not the mean over rows).
    """
    sub = _select(df, setting, value)
    return float(sub.groupby(["query_lang", "corpus_lang"], sort=True)[value].mean().mean())


def paired_frame(a: pd.DataFrame, b: pd.DataFrame, setting: str, value: str = "ap") -> pd.DataFrame:
    """Align two runs' per-query rows of one setting on (query_lang, corpus_lang, qid).

    Returns columns ``query_lang, corpus_lang, qid, a, b`` (the two runs' values), sorted by the keys.
    Raises ValueError if a key is duplicated within a run or the runs do not cover the same queries
    (the message gives the count of unmatched keys on each side and a few examples).
    """
    sa, sb = _select(a, setting, value), _select(b, setting, value)
    for name, s in (("a", sa), ("b", sb)):
        dup = s.duplicated(KEYS)
        if dup.any():
            ex = [tuple(k) for k in s.loc[dup, KEYS].head(3).itertuples(index=False)]
            raise ValueError(f"run {name}, setting {setting!r}: {int(dup.sum())} duplicated "
                             f"(query_lang, corpus_lang, qid) key(s), e.g. {ex}")
    m = sa[KEYS + [value]].merge(sb[KEYS + [value]], on=KEYS, how="outer", suffixes=("_a", "_b"),
                                 indicator=True)
    only_a, only_b = m[m["_merge"] == "left_only"], m[m["_merge"] == "right_only"]
    if len(only_a) or len(only_b):
        ex_a = [tuple(k) for k in only_a[KEYS].head(3).itertuples(index=False)]
        ex_b = [tuple(k) for k in only_b[KEYS].head(3).itertuples(index=False)]
        raise ValueError(f"runs do not cover the same queries in setting {setting!r}: "
                         f"{len(only_a)} missing key(s) only in a (e.g. {ex_a}), "
                         f"{len(only_b)} missing key(s) only in b (e.g. {ex_b})")
    out = m[KEYS].copy()
    out["a"] = m[f"{value}_a"].to_numpy(dtype=float)
    out["b"] = m[f"{value}_b"].to_numpy(dtype=float)
    return out.sort_values(KEYS, kind="stable").reset_index(drop=True)


def cluster_bootstrap_ci(df: pd.DataFrame, setting: str, value: str = "ap", n_resamples: int = 10000,
                         confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile confidence interval of the macro mean, by a bootstrap over qids (clusters).

    Each resample draws as many qids as there are, with replacement; a drawn qid brings all its rows
    (in every group), weighted by the number of times it was drawn, and the macro mean is recomputed
    with the group structure. One run: the interval says nothing about training-seed variation (see
    :func:`seeded_bootstrap_ci`).
    """
    _check_resamples(n_resamples)
    design = _design(_select(df, setting, value), value)
    stats = _bootstrap_distribution(design, int(n_resamples), np.random.default_rng(seed))
    return _percentile_ci(stats, confidence)


def paired_randomization_test(a: pd.DataFrame, b: pd.DataFrame, setting: str, value: str = "ap",
                              n_resamples: int = 10000, seed: int = 0, confidence: float = 0.95) -> dict:
    """Two-sided paired approximate randomization test of macro(b) - macro(a), qids as units, one run each.

    Each resample swaps the two systems' values for a random half of the qids (all rows of a qid jointly,
    i.e. the sign of the qid's differences is flipped) and recomputes the macro difference d*.
    p = (1 + #{|d*| >= |d_obs|}) / (1 + n_resamples) (values equal up to rounding count as ties).

    Returns ``diff`` (d_obs), ``p_value``, ``effect_size`` (paired d_z on the macro weighting: d_obs / the
    sample sd of the qids' contributions ``c[q] = n_qids * w[q]`` to the macro difference, whose mean is
    d_obs; so it has d_obs's sign; 0 when d_obs is 0, +-inf when the contributions are equal and non-zero;
    with one row per qid in one group it is the usual mean / sd of the differences), ``n_queries`` (number
    of qids) and ``ci`` (percentile cluster-bootstrap interval of the difference at ``confidence``).

    The test conditions on the two runs: it ignores training-seed variation (:func:`seeded_paired_test`).
    """
    _check_resamples(n_resamples)
    pf = paired_frame(a, b, setting, value)
    pf["d"] = pf["b"] - pf["a"]
    design = _design(pf, "d")
    # macro difference = s @ w for a qid sign vector s (linearity of the macro mean)
    contributions = _macro_contributions(design)
    n_q = design.n_qids
    w = contributions / n_q
    d_obs = float(w.sum())

    perm_seed, boot_seed = np.random.SeedSequence(seed).spawn(2)
    p_value = _sign_flip_p(w, d_obs, int(n_resamples), np.random.default_rng(perm_seed))

    ci = _percentile_ci(_bootstrap_distribution(design, int(n_resamples), np.random.default_rng(boot_seed)),
                        confidence)
    return {"diff": d_obs, "p_value": float(p_value), "effect_size": _effect_size(d_obs, contributions),
            "n_queries": int(n_q), "ci": ci}


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (same keys, same order).

    With the m p-values sorted ascending, p_adj(i) = max_{j <= i} min(1, (m - j + 1) * p(j)).
    """
    keys = list(p_values)
    p = np.array([p_values[k] for k in keys], dtype=float)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must lie in [0, 1]: {p_values}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return {k: float(v) for k, v in zip(keys, adjusted)}


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


def average_runs(frames: list[pd.DataFrame], value: str = "ap") -> pd.DataFrame:
    """Per-query mean of ``value`` over several runs of one system (e.g. its seeds).

    Every frame must hold exactly the same ``(setting, query_lang, corpus_lang, qid)`` keys, each once,
    without missing values; the result has those key columns and ``value`` (the mean over the runs),
    sorted by the keys. Because the macro mean is linear, ``macro_mean`` of the result is the mean over
    the runs of their macro means. A paired test on it compares seed-averaged systems with the question id
    as the unit, but ignores seed-to-seed variation: give :func:`compare_runs` the list of frames instead.
    """
    if not frames:
        raise ValueError("no runs to average")
    cols = ["setting", *KEYS]
    base: pd.DataFrame | None = None
    values = []
    for i, df in enumerate(frames):
        missing = [c for c in cols + [value] if c not in df.columns]
        if missing:
            raise ValueError(f"run {i}: per-query frame lacks column(s) {missing}")
        sub = df[cols + [value]]
        dup = sub.duplicated(cols)
        if dup.any():
            raise ValueError(f"run {i}: {int(dup.sum())} duplicated (setting, query_lang, corpus_lang, qid) key(s)")
        if sub.isna().any().any():
            raise ValueError(f"run {i}: missing values in columns {cols + [value]}")
        sub = sub.sort_values(cols, kind="stable").reset_index(drop=True)
        keys = sub[cols].astype(str)
        if base is None:
            base = keys
        elif len(keys) != len(base) or not (keys.to_numpy() == base.to_numpy()).all():
            m = base.merge(keys, on=cols, how="outer", indicator=True)
            raise ValueError(f"run {i} does not cover the same queries as run 0: "
                             f"{int((m['_merge'] == 'left_only').sum())} key(s) only in run 0, "
                             f"{int((m['_merge'] == 'right_only').sum())} only in run {i}")
        values.append(sub[value].to_numpy(dtype=float))
    out = base.copy()
    out[value] = np.mean(values, axis=0)
    return out


# ------------------------------------------------------------------------------------------- simulation


def _simulation_layout(rng: np.random.Generator, n_qids: int, n_langs: int, coverage: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Row -> (language index, qid index) of a simulated setting; every qid kept in language 0."""
    gi, qi = np.meshgrid(np.arange(n_langs), np.arange(n_qids), indexing="ij")
    gi, qi = gi.ravel(), qi.ravel()
    if coverage < 1:
        keep = rng.random(len(gi)) < coverage
        keep[:n_qids] = True  # language 0 has every qid: no qid and no group is empty
        gi, qi = gi[keep], qi[keep]
    return gi, qi


def _simulate_values(rng: np.random.Generator, gi: np.ndarray, qi: np.ndarray, n_seeds: tuple[int, int],
                     delta: float, tau: float, sd_qid: float, sd_system_qid: float, sd_seed_qid: float,
                     sd_noise: float, sd_lang: float, base: float) -> tuple[np.ndarray, np.ndarray]:
    """(k_A, n_rows) and (k_B, n_rows) values of the model of :func:`simulate_systems`."""
    n_langs, n_qids = int(gi.max()) + 1, int(qi.max()) + 1
    common = base + rng.normal(0, sd_lang, n_langs)[gi] + rng.normal(0, sd_qid, n_qids)[qi]
    out = []
    for s, k in enumerate(n_seeds):
        system = common + rng.normal(0, sd_system_qid, n_qids)[qi] + (delta if s == 1 else 0.0)
        seeds = (system + rng.normal(0, tau, (int(k), 1)) + rng.normal(0, sd_seed_qid, (int(k), n_qids))[:, qi]
                 + rng.normal(0, sd_noise, (int(k), len(gi))))
        out.append(seeds)
    return out[0], out[1]


def simulate_systems(seed: int | np.random.Generator = 0, *, n_qids: int = 200, n_langs: int = 5,
                     n_seeds: tuple[int, int] = (2, 2), delta: float = 0.0, tau: float = 0.01,
                     sd_qid: float = 0.2, sd_system_qid: float = 0.05, sd_seed_qid: float = 0.05,
                     sd_noise: float = 0.15, sd_lang: float = 0.05, base: float = 0.6, coverage: float = 1.0,
                     setting: str = "mo") -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """Per-query frames of two systems A and B with the structure of the real data, for validating tests.

    Groups are languages (``(l, l)`` pairs, as in Mo.); every qid occurs in every language (or, with
    ``coverage < 1``, in a random subset, the same for every run, as in MLQA-R). The value of system s,
    seed i, language g, qid q is::

        base + lang[g] + u[q] + v[s, q] + b[s, i] + e[s, i, q] + e[s, i, g, q] + delta * (s == B)

    with ``lang ~ N(0, sd_lang)`` (fixed language difficulty), ``u ~ N(0, sd_qid)`` (question difficulty,
    shared by both systems), ``v ~ N(0, sd_system_qid)`` (a system's own question effects, the same in every
    seed), ``b ~ N(0, tau)`` (the per-seed offset of the whole run: what seed-averaged tests miss),
    ``e[s,i,q] ~ N(0, sd_seed_qid)`` (a seed's question effects, shared across languages) and row noise
    ``N(0, sd_noise)``. Values are not clipped to [0, 1], so the expected macro difference B - A is exactly
    ``delta``; ``delta = 0`` is the null (same mean, independent seed offsets). Returns ``(a_frames,
    b_frames)``, lists of ``n_seeds[0]`` and ``n_seeds[1]`` frames.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    gi, qi = _simulation_layout(rng, n_qids, n_langs, coverage)
    values_a, values_b = _simulate_values(rng, gi, qi, n_seeds, delta, tau, sd_qid, sd_system_qid, sd_seed_qid,
                                          sd_noise, sd_lang, base)
    langs = np.array([f"l{j}" for j in range(n_langs)])[gi]
    qids = np.array([f"q{i:05d}" for i in range(n_qids)])[qi]
    keys = pd.DataFrame({"setting": setting, "query_lang": langs, "corpus_lang": langs, "qid": qids})
    return ([keys.assign(ap=v) for v in values_a], [keys.assign(ap=v) for v in values_b])
