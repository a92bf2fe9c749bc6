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

Training seeds (``compare_runs``, ``seeded_paired_test``, ``seeded_bootstrap_ci``): a seed's offset is
shared by all of its queries, so resampling qids cannot see seed-to-seed variation. The seed-aware
comparison adds it: ``diff`` is the mean over seeds of the macro difference; its interval combines the
question part ``V_q`` (cluster bootstrap of the seed-averaged paired difference, ``n_qids - 1`` df) and the
seed part ``V_s = tau_A**2 / k_A + tau_B**2 / k_B`` (each system's seed-offset variance, with the seed x
question noise already in ``V_q`` subtracted; Welch-Satterthwaite df), each widened by its own t quantile;
``p_value`` is the level at which that interval reaches 0. ``significant`` = ``p_holm < alpha`` and every
seed pairing ``B_j - A_i`` (``diff_per_seed``) has diff's sign. ``effect_size`` = ``diff / sd_q(c)`` on the
macro weighting (``c[q]``: qid q's contribution to the macro difference), so it always has diff's sign.
The derivation, the alternatives rejected and the simulation (false-positive rate <= 5 % with seed variance,
power at stated effects; :mod:`hybridbatch.stats.simulation`, ``benchmarks/stats_power.py``) are in
docs/statistics.md.

Everything is vectorised over resamples (count / sign matrices processed in memory-bounded chunks) and
seeded through ``numpy.random.default_rng``; the same seed gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "macro_mean",
    "paired_frame",
    "cluster_bootstrap_ci",
    "paired_randomization_test",
    "holm",
    "average_runs",
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
