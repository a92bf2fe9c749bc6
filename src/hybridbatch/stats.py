"""Significance testing of headline retrieval numbers (macro-averaged AP) over per-query results.

Input: the per-query frames written by the evaluation stage (``results/<run>/per_query.parquet``), with
columns ``setting`` ("mo" | "cr" | "mul"), ``query_lang``, ``corpus_lang`` ("all" for mul), ``qid`` and a
value column (``ap`` by default).

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

Everything is vectorised over resamples (count / sign matrices processed in memory-bounded chunks) and
seeded through ``numpy.random.default_rng``; the same seed gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "macro_mean",
    "paired_frame",
    "cluster_bootstrap_ci",
    "paired_randomization_test",
    "holm",
    "compare_runs",
    "average_runs",
]

KEYS = ["query_lang", "corpus_lang", "qid"]
_CHUNK_ELEMENTS = 2_000_000  # qids x resamples processed at once (bounds memory to ~16 MB per matrix)


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


def _weighted_macro(design: _Design, weights: np.ndarray) -> np.ndarray:
    """Macro mean for each column of a (Q, R) qid-weight matrix -> (R,).

    Group mean = weighted mean of its rows (a row's weight is its qid's weight); groups with zero total
    weight are skipped in that column's macro mean.
    """
    num = design.sums @ weights  # (G, R)
    den = design.counts @ weights
    valid = den > 0
    group_means = np.divide(num, den, out=np.zeros_like(num), where=valid)
    return group_means.sum(axis=0) / valid.sum(axis=0)


def _chunks(n_resamples: int, n_qids: int):
    size = max(1, min(n_resamples, _CHUNK_ELEMENTS // max(n_qids, 1)))
    for start in range(0, n_resamples, size):
        yield min(size, n_resamples - start)


def _bootstrap_distribution(design: _Design, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Macro mean over ``n_resamples`` cluster-bootstrap resamples (qids drawn with replacement)."""
    n_q = design.n_qids
    out = []
    for r in _chunks(n_resamples, n_q):
        draws = rng.integers(0, n_q, size=(r, n_q))  # r resamples of n_q qids each
        counts = np.bincount((draws + n_q * np.arange(r)[:, None]).ravel(), minlength=r * n_q)
        out.append(_weighted_macro(design, counts.reshape(r, n_q).T.astype(float)))
    return np.concatenate(out)


def _percentile_ci(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1 - confidence
    low, high = np.percentile(stats, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def _check_resamples(n_resamples: int) -> None:
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples}")


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
    with the group structure.
    """
    _check_resamples(n_resamples)
    design = _design(_select(df, setting, value), value)
    stats = _bootstrap_distribution(design, int(n_resamples), np.random.default_rng(seed))
    return _percentile_ci(stats, confidence)


def paired_randomization_test(a: pd.DataFrame, b: pd.DataFrame, setting: str, value: str = "ap",
                              n_resamples: int = 10000, seed: int = 0, confidence: float = 0.95) -> dict:
    """Two-sided paired approximate randomization test of macro(b) - macro(a), qids as units.

    Each resample swaps the two systems' values for a random half of the qids (all rows of a qid jointly,
    i.e. the sign of the qid's differences is flipped) and recomputes the macro difference d*.
    p = (1 + #{|d*| >= |d_obs|}) / (1 + n_resamples) (values equal up to rounding count as ties).

    Returns ``diff`` (d_obs), ``p_value``, ``effect_size`` (paired Cohen's d_z: mean / sample standard
    deviation of the per-qid mean differences; 0 when all differences are 0, +-inf when they are equal
    and non-zero), ``n_queries`` (number of qids) and ``ci`` (percentile cluster-bootstrap interval of the
    difference at ``confidence``).
    """
    _check_resamples(n_resamples)
    pf = paired_frame(a, b, setting, value)
    pf["d"] = pf["b"] - pf["a"]
    design = _design(pf, "d")
    # macro difference = s @ w for a qid sign vector s (linearity of the macro mean)
    n_groups = design.counts.shape[0]
    group_rows = design.counts.sum(axis=1, keepdims=True)  # (G, 1)
    w = (design.sums / (n_groups * group_rows)).sum(axis=0)  # (Q,)
    d_obs = float(w.sum())
    tol = 1e-12 * max(float(np.abs(w).sum()), 1e-300)

    perm_seed, boot_seed = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(perm_seed)
    n_q = design.n_qids
    extreme = 0
    for r in _chunks(int(n_resamples), n_q):
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(r, n_q))
        extreme += int(np.count_nonzero(np.abs(signs @ w) >= abs(d_obs) - tol))
    p_value = (1 + extreme) / (1 + int(n_resamples))

    per_qid = design.qid_sums / design.qid_rows
    sd = float(per_qid.std(ddof=1)) if n_q > 1 else 0.0
    mean = float(per_qid.mean())
    if sd > 0:
        effect = mean / sd
    else:
        effect = 0.0 if mean == 0 else float(np.copysign(np.inf, mean))

    ci = _percentile_ci(_bootstrap_distribution(design, int(n_resamples), np.random.default_rng(boot_seed)),
                        confidence)
    return {"diff": d_obs, "p_value": float(p_value), "effect_size": effect, "n_queries": int(n_q), "ci": ci}


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


def compare_runs(per_query: dict[str, pd.DataFrame], baseline: str, settings=("mo", "cr", "mul"), *,
                 value: str = "ap", n_resamples: int = 10000, confidence: float = 0.95, alpha: float = 0.05,
                 seed: int = 0) -> pd.DataFrame:
    """Compare every run against ``baseline`` in each setting: the table of which cells are significant.

    One row per (run != baseline, setting), in input order, with columns ``run, setting, mean_a``
    (baseline macro mean), ``mean_b`` (run's), ``diff`` (b - a), ``p_value`` (paired randomization test),
    ``p_holm`` (Holm-adjusted over all rows of this table), ``effect_size`` (d_z), ``ci_low, ci_high``
    (bootstrap CI of the difference), ``n_queries`` and ``significant`` (p_holm < alpha).
    """
    if baseline not in per_query:
        raise ValueError(f"baseline {baseline!r} not among runs {list(per_query)}")
    rows = []
    for run, df in per_query.items():
        if run == baseline:
            continue
        for setting in settings:
            res = paired_randomization_test(per_query[baseline], df, setting, value=value,
                                            n_resamples=n_resamples, seed=seed, confidence=confidence)
            rows.append({"run": run, "setting": setting,
                         "mean_a": macro_mean(per_query[baseline], setting, value),
                         "mean_b": macro_mean(df, setting, value),
                         "diff": res["diff"], "p_value": res["p_value"], "effect_size": res["effect_size"],
                         "ci_low": res["ci"][0], "ci_high": res["ci"][1], "n_queries": res["n_queries"]})
    columns = ["run", "setting", "mean_a", "mean_b", "diff", "p_value", "p_holm", "effect_size", "ci_low",
               "ci_high", "n_queries", "significant"]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(rows)
    adjusted = holm({str(i): p for i, p in enumerate(table["p_value"])})
    table["p_holm"] = [adjusted[str(i)] for i in range(len(table))]
    table["significant"] = table["p_holm"] < alpha
    return table[columns]


def average_runs(frames: list[pd.DataFrame], value: str = "ap") -> pd.DataFrame:
    """Per-query mean of ``value`` over several runs of one system (e.g. its seeds).

    Every frame must hold exactly the same ``(setting, query_lang, corpus_lang, qid)`` keys, each once,
    without missing values; the result has those key columns and ``value`` (the mean over the runs),
    sorted by the keys. Because the macro mean is linear, ``macro_mean`` of the result is the mean over
    the runs of their macro means, and a paired test on it compares seed-averaged systems with the
    question id as the unit.
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
