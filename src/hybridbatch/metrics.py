"""Rank-based retrieval metrics over dense score matrices.

Ranking convention (documented, deterministic): candidates are sorted by decreasing score; equal scores
are ordered by increasing candidate index. The rank of a relevant candidate ``c`` of query ``q`` is thus

    1 + #{j : s[q, j] > s[q, c]} + #{j < c : s[q, j] == s[q, c]}

Every relevant candidate is in the scored list, so AP is the mean over relevant items of k / rank_k
(trec_eval's ``map`` without a cut-off) and Recall@k is the share of relevant items ranked <= k.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def relevant_ranks(scores: torch.Tensor, relevant: Sequence[Sequence[int]], chunk: int = 128) -> list[np.ndarray]:
    """1-based ranks (sorted ascending) of each query's relevant candidates.

    scores: (Q, N) float tensor; relevant[q]: indices into the N candidates (non-empty, distinct).
    """
    n_q, n_c = scores.shape
    if len(relevant) != n_q:
        raise ValueError(f"{len(relevant)} relevance lists for {n_q} queries")
    width = max((len(r) for r in relevant), default=0)
    rel = torch.full((n_q, max(width, 1)), -1, dtype=torch.long)
    for i, r in enumerate(relevant):
        if len(r) == 0:
            raise ValueError(f"query {i} has no relevant candidate")
        rel[i, :len(r)] = torch.as_tensor(list(r), dtype=torch.long)
    if rel.max() >= n_c:
        raise ValueError(f"relevant index {int(rel.max())} out of range for {n_c} candidates")
    cand = torch.arange(n_c)
    out: list[np.ndarray] = []
    for s in range(0, n_q, chunk):
        sc = scores[s:s + chunk]  # (b, N)
        rc = rel[s:s + chunk]  # (b, R)
        valid = rc >= 0
        target = torch.gather(sc, 1, rc.clamp(min=0))  # (b, R)
        higher = (sc.unsqueeze(1) > target.unsqueeze(2)).sum(-1)
        tied_before = ((sc.unsqueeze(1) == target.unsqueeze(2))
                       & (cand.view(1, 1, -1) < rc.clamp(min=0).unsqueeze(2))).sum(-1)
        ranks = (1 + higher + tied_before).numpy()
        for row, ok in zip(ranks, valid.numpy()):
            out.append(np.sort(row[ok]))
    return out


def average_precision(ranks: np.ndarray) -> float:
    """AP when every relevant item is ranked (``ranks`` sorted ascending, 1-based)."""
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def recall_at(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(ranks <= k))


def reciprocal_rank(ranks: np.ndarray) -> float:
    return float(1.0 / ranks[0])


def rank_distance(ranks: np.ndarray) -> float:
    """Largest minus smallest rank among a query's parallel relevant items (PAPER.md §4, language bias)."""
    return float(ranks[-1] - ranks[0])


def ndcg_at(ranks: np.ndarray, k: int) -> float:
    """Binary-relevance nDCG@k (trec_eval ``ndcg_cut``) when every relevant item is ranked."""
    gains = 1.0 / np.log2(ranks[ranks <= k] + 1.0)
    ideal = 1.0 / np.log2(np.arange(1, min(len(ranks), k) + 1) + 1.0)
    return float(gains.sum() / ideal.sum())
