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

EmbedFn = Callable[[Sequence[int]], torch.Tensor]  # indices of one side's texts -> (len, H) embeddings
LossFn = Callable[..., torch.Tensor]  # one (n_i, H) embedding tensor per side -> scalar loss


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


def cached_backward(sides: Sequence[tuple[EmbedFn, int]], loss_fn: LossFn, chunk_size: int) -> float:
    """Accumulate into ``.grad`` the parameter gradients of ``loss_fn(E_1(all), ..., E_k(all))``; return the loss.

    ``sides`` holds, per side (queries, passages, hard negatives, ...), a function embedding the texts at
    positions ``idx`` of that side (with the model in whatever mode the caller set: dropout is replayed
    exactly) and the side's number of texts. ``loss_fn`` gets one embedding tensor per side.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    chunks = [_chunks(n, chunk_size) for _, n in sides]
    cached: list[list[torch.Tensor]] = []
    states: list[list[_RngState]] = []
    with torch.no_grad():  # 1. embeddings without graphs
        for (embed, _), side_chunks in zip(sides, chunks):
            states.append([])
            cached.append([])
            for idx in side_chunks:
                states[-1].append(_RngState())
                cached[-1].append(embed(idx))
    leaves = [torch.cat(c).detach().requires_grad_(True) for c in cached]
    loss = loss_fn(*leaves)  # 2. loss and embedding gradients
    loss.backward()
    rng = _RngState()
    for (embed, _), side_chunks, side_states, leaf in zip(sides, chunks, states, leaves):  # 3. replay
        if leaf.grad is None:  # a side the loss does not use
            continue
        for idx, state, grad in zip(side_chunks, side_states, leaf.grad.split([len(i) for i in side_chunks])):
            state.restore()
            embed(idx).backward(grad)
    rng.restore()  # leave the RNG where a plain step would: after the forward passes of step 1
    return float(loss.detach())


def cached_contrastive_backward(embed_queries: EmbedFn, embed_passages: EmbedFn, n: int, loss_fn: LossFn,
                                chunk_size: int) -> float:
    """``cached_backward`` for the two-sided case: ``n`` queries and their ``n`` positives."""
    return cached_backward([(embed_queries, n), (embed_passages, n)], loss_fn, chunk_size)
