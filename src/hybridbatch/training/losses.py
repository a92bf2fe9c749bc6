"""InfoNCE over (query, positive[, hard negatives]) with a temperature (docs/PROTOCOL.md §3.5).

Negative sets (``negatives``):
- ``in-batch`` (default): every other query's positive in the batch, plus hard negatives if given
  (sentence-transformers' MultipleNegativesRankingLoss).
- ``paper``: Eq. 1 taken literally -- the positive against the batch's hard negatives only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEGATIVE_SETS = ("in-batch", "paper")


def info_nce(q: torch.Tensor, p: torch.Tensor, n: torch.Tensor | None = None, *, temperature: float = 0.05,
             negatives: str = "in-batch") -> torch.Tensor:
    """Mean InfoNCE loss.

    q: (B, H) query embeddings; p: (B, H) their positives (row i is query i's); n: (M, H) hard negatives
    shared by the whole batch (Eq. 1 sums over every d-_j of the batch). Embeddings are expected to be
    L2-normalised, so dot products are cosines.
    """
    if negatives not in NEGATIVE_SETS:
        raise ValueError(f"negatives must be one of {NEGATIVE_SETS}, got {negatives!r}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if q.shape != p.shape:
        raise ValueError(f"queries {tuple(q.shape)} and positives {tuple(p.shape)} differ in shape")
    if negatives == "in-batch":
        logits = q @ p.T  # (B, B): the diagonal holds the positives
        if n is not None and len(n):
            logits = torch.cat([logits, q @ n.T], dim=1)
        target = torch.arange(len(q), device=q.device)
    else:
        if n is None or not len(n):
            raise ValueError("negatives='paper' needs hard negatives (Eq. 1 has no in-batch term)")
        logits = torch.cat([(q * p).sum(-1, keepdim=True), q @ n.T], dim=1)
        target = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits / temperature, target)
