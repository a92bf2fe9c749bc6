"""Gradient caching (GradCache, Gao et al. 2021): large contrastive batches in small memory.

The contrastive loss couples every query with every passage of the batch, so a plain step holds the
activations of the whole batch at once. Gradient caching splits the step in three:

1. embed the batch chunk by chunk **without** a graph (little memory), remembering each chunk's RNG state;
2. compute the loss on the detached embeddings and its gradient with respect to each embedding;
3. re-embed chunk by chunk **with** a graph, replaying the RNG state (identical dropout masks), and
   back-propagate the cached embedding gradients into the parameters.

The parameter gradients equal those of the plain loss up to floating-point reassociation; only one chunk's
activations are alive at a time, so the paper's batch of 100 pairs fits in a few GB on a CPU.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

EmbedFn = Callable[[Sequence[int]], torch.Tensor]  # indices of the batch's texts -> (len, H) embeddings
LossFn = Callable[..., torch.Tensor]  # (q, p) embeddings -> scalar loss


class _RngState:
    """CPU (and, if used, CUDA) RNG state captured before a chunk's first forward pass."""

    def __init__(self) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


def _chunks(n: int, size: int) -> list[list[int]]:
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def cached_contrastive_backward(embed_queries: EmbedFn, embed_passages: EmbedFn, n: int, loss_fn: LossFn,
                                chunk_size: int) -> float:
    """Accumulate into ``.grad`` the parameter gradients of ``loss_fn(E_q(all), E_p(all))``; return the loss.

    ``embed_queries(idx)`` / ``embed_passages(idx)`` embed the texts at batch positions ``idx`` (with the
    model in whatever mode the caller set: dropout is replayed exactly). ``n`` is the batch size.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    parts = {"q": (embed_queries, _chunks(n, chunk_size)), "p": (embed_passages, _chunks(n, chunk_size))}
    cached: dict[str, list[torch.Tensor]] = {}
    states: dict[str, list[_RngState]] = {}
    with torch.no_grad():  # 1. embeddings without graphs
        for side, (embed, chunks) in parts.items():
            states[side], cached[side] = [], []
            for idx in chunks:
                states[side].append(_RngState())
                cached[side].append(embed(idx))
    leaves = {side: torch.cat(cached[side]).detach().requires_grad_(True) for side in parts}
    loss = loss_fn(leaves["q"], leaves["p"])  # 2. loss and embedding gradients
    loss.backward()
    rng = _RngState()
    for side, (embed, chunks) in parts.items():  # 3. replay each chunk with its graph
        grads = leaves[side].grad.split([len(idx) for idx in chunks])
        for idx, state, grad in zip(chunks, states[side], grads):
            state.restore()
            embed(idx).backward(grad)
    rng.restore()  # leave the RNG where a plain step would: after the forward passes of step 1
    return float(loss.detach())
