"""The scoring as it was before issue 22 item 7 (a full stable sort for the top k; ranks counted over a
(chunk, R, N) broadcast in torch): the reference that the faster ``metrics.relevant_ranks`` /
``metrics.top_k`` must match bit for bit (tests/test_metrics.py, benchmarks/evaluate.py, benchmarks/run_cost.py).
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np


def relevant_ranks(scores, relevant: Sequence[Sequence[int]], chunk: int = 128) -> list[np.ndarray]:
    import torch

    scores = torch.as_tensor(scores)
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
        sc = scores[s:s + chunk]
        rc = rel[s:s + chunk]
        valid = rc >= 0
        target = torch.gather(sc, 1, rc.clamp(min=0))
        higher = (sc.unsqueeze(1) > target.unsqueeze(2)).sum(-1)
        tied_before = ((sc.unsqueeze(1) == target.unsqueeze(2))
                       & (cand.view(1, 1, -1) < rc.clamp(min=0).unsqueeze(2))).sum(-1)
        ranks = (1 + higher + tied_before).numpy()
        for row, ok in zip(ranks, valid.numpy()):
            out.append(np.sort(row[ok]))
    return out


def top_k(scores, k: int) -> np.ndarray:
    """The first k columns of a full stable sort by decreasing score (the old ``_same_language_share``)."""
    import torch

    scores = torch.as_tensor(scores)
    kmax = min(k, scores.shape[1])
    return torch.sort(-scores, dim=1, stable=True).indices[:, :kmax].numpy()


@contextlib.contextmanager
def old_scoring():
    """Within the block, ``evaluate_retriever`` (and Tatoeba) score as before: a side-by-side comparison."""
    from hybridbatch.evaluation import metrics as M

    saved = M.relevant_ranks, M.top_k
    M.relevant_ranks, M.top_k = relevant_ranks, top_k
    try:
        yield
    finally:
        M.relevant_ranks, M.top_k = saved
