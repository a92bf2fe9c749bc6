"""Rank-based retrieval metrics over dense score matrices.

Ranking convention (documented, deterministic): candidates are sorted by decreasing score; equal scores
are ordered by increasing candidate index. The rank of a relevant candidate ``c`` of query ``q`` is thus

    1 + #{j : s[q, j] > s[q, c]} + #{j < c : s[q, j] == s[q, c]}

Every relevant candidate is in the scored list, so AP is the mean over relevant items of k / rank_k
(trec_eval's ``map`` without a cut-off) and Recall@k is the share of relevant items ranked <= k.

``PER_QUERY`` is the one list of per-query metrics (with their ranges); ``mean`` is the one mean helper of
the evaluators and ``check_metric`` their range check (AP, recall, MRR, nDCG, shares and accuracies lie in
[0, 1], rank distances in [0, inf); NaN and inf are never valid values).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import numpy as np

def _as_numpy(scores) -> np.ndarray:
    """A (Q, N) score matrix (torch tensor or array) as a numpy array, without copying a CPU tensor."""
    if hasattr(scores, "detach"):
        scores = scores.detach().cpu().numpy()
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a (queries, candidates) matrix, got shape {scores.shape}")
    return scores


def relevant_ranks(scores, relevant: Sequence[Sequence[int]], chunk: int = 32) -> list[np.ndarray]:
    """1-based ranks (sorted ascending) of each query's relevant candidates, by the convention above.

    scores: (Q, N) float tensor or array; relevant[q]: indices into the N candidates (non-empty, distinct).
    No sort: per relevant candidate, one vectorised count of the candidates scoring higher and one of those
    scoring equal; only where another candidate ties with it is ``#{j < c : s[q, j] == s[q, c]}`` counted
    (numpy only: the light core).
    """
    a = _as_numpy(scores)
    n_q, n_c = a.shape
    if len(relevant) != n_q:
        raise ValueError(f"{len(relevant)} relevance lists for {n_q} queries")
    width = max((len(r) for r in relevant), default=0)
    rel = np.full((n_q, max(width, 1)), -1, dtype=np.int64)
    for i, r in enumerate(relevant):
        if len(r) == 0:
            raise ValueError(f"query {i} has no relevant candidate")
        rel[i, :len(r)] = np.asarray(list(r), dtype=np.int64)
    if n_q and rel.max() >= n_c:
        raise ValueError(f"relevant index {int(rel.max())} out of range for {n_c} candidates")
    valid = rel >= 0
    idx = np.where(valid, rel, 0)
    target = np.take_along_axis(a, idx, axis=1)  # (Q, R)
    higher = np.empty(target.shape, dtype=np.int64)
    equal = np.empty(target.shape, dtype=np.int64)
    for s in range(0, n_q, chunk):  # (chunk, R, N) booleans at a time
        block, t = a[s:s + chunk, None, :], target[s:s + chunk, :, None]
        higher[s:s + chunk] = np.count_nonzero(block > t, axis=-1)
        equal[s:s + chunk] = np.count_nonzero(block == t, axis=-1)
    ranks = 1 + higher
    for q, r in zip(*np.nonzero(valid & (equal > 1))):  # ties with another candidate: those before it rank higher
        c = idx[q, r]
        ranks[q, r] += np.count_nonzero(a[q, :c] == target[q, r])
    return [np.sort(row[ok]) for row, ok in zip(ranks, valid)]


def top_k(scores, k: int, chunk: int = 256) -> np.ndarray:
    """(Q, min(k, N)) candidate indices of each query's top k, best first, by the convention above.

    Equal to the first k columns of a full stable sort by decreasing score (ties by increasing index), without
    it: the k-th largest score ``v`` (a partition), every candidate above ``v`` plus the lowest-indexed ones
    equal to ``v`` up to k, then a stable sort of that block.
    """
    a = _as_numpy(scores)
    n_q, n_c = a.shape
    k = min(k, n_c)
    out = np.empty((n_q, k), dtype=np.int64)
    if k == 0:
        return out
    for s in range(0, n_q, chunk):
        block = a[s:s + chunk]
        v = np.partition(block, n_c - k, axis=1)[:, n_c - k:n_c - k + 1]  # k-th largest of each row
        take = block >= v
        extra = np.count_nonzero(take, axis=1) - k  # > 0 where more than one candidate ties at v
        for row in np.flatnonzero(extra):
            tied = np.flatnonzero(block[row] == v[row, 0])
            take[row, tied[len(tied) - extra[row]:]] = False  # keep the lowest-indexed ones
        idx = np.nonzero(take)[1].reshape(len(block), k)  # ascending within a row
        order = np.argsort(-np.take_along_axis(block, idx, axis=1), axis=1, kind="stable")
        out[s:s + chunk] = np.take_along_axis(idx, order, axis=1)
    return out


def average_precision(ranks: np.ndarray) -> float:
    """AP when every relevant item is ranked (``ranks`` sorted ascending, 1-based)."""
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def recall_at(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(ranks <= k))


def reciprocal_rank(ranks: np.ndarray) -> float:
    return float(1.0 / ranks[0])


def rank_distance(ranks: np.ndarray) -> float:
    """Largest minus smallest rank among a query's parallel relevant items (docs/PROTOCOL.md §4.4)."""
    return float(ranks[-1] - ranks[0])


def ndcg_at(ranks: np.ndarray, k: int) -> float:
    """Binary-relevance nDCG@k (trec_eval ``ndcg_cut``) when every relevant item is ranked."""
    gains = 1.0 / np.log2(ranks[ranks <= k] + 1.0)
    ideal = 1.0 / np.log2(np.arange(1, min(len(ranks), k) + 1) + 1.0)
    return float(gains.sum() / ideal.sum())


# ----------------------------------------------------------------------------------- the metric table
UNIT = (0.0, 1.0)
#: per-query metric (a ``per_query`` column) -> (function of a query's sorted relevant ranks, allowed range).
#: The one list of per-query metrics: ``evaluation.query_row`` computes these, in this order.
PER_QUERY: dict[str, tuple[Callable[[np.ndarray], float], tuple[float, float]]] = {
    "ap": (average_precision, UNIT),
    "rr": (reciprocal_rank, UNIT),
    "ndcg10": (lambda r: ndcg_at(r, 10), UNIT),
    "r1": (lambda r: recall_at(r, 1), UNIT),
    "r10": (lambda r: recall_at(r, 10), UNIT),
    "rank_distance": (rank_distance, (0.0, math.inf)),
}
#: ranges of the other reported metrics: same-language shares of a top k, bitext accuracies
RANGES: dict[str, tuple[float, float]] = {
    **{name: bounds for name, (_f, bounds) in PER_QUERY.items()},
    "same_lang": UNIT, "accuracy": UNIT,
}


def check_metric(metric: str, value: float, where: str = "", kind: str | None = None) -> float:
    """``value`` if it is finite and inside the range of ``kind`` (default: ``metric``), else ``ValueError``.

    ``kind`` is a key of ``RANGES`` (``metric`` is the reported name, e.g. ``map_mo`` of kind ``ap``);
    ``where`` names the setting / language / query for the message. An out-of-range value is a bug or
    corrupt input (NaN embeddings give AP > 1), so it stops the evaluation instead of reaching a table.
    """
    lo, hi = RANGES[kind or metric]
    v = float(value)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"metric {metric} = {v!r} outside [{lo:g}, {hi:g}]" + (f" ({where})" if where else ""))
    return v


def mean(values: Iterable[float], metric: str | None = None, where: str = "", kind: str | None = None) -> float:
    """Mean of ``values`` (NaN for none: "not computed"); with ``metric``, every value and the mean are
    range-checked by :func:`check_metric` (so a NaN *value* raises; only an empty list gives NaN)."""
    values = list(values)
    if not values:
        return float("nan")
    if metric is not None:
        for v in values:
            check_metric(metric, v, where, kind)
    out = float(np.mean(values))
    return check_metric(metric, out, where, kind) if metric is not None else out
