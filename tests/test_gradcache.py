"""Gradient caching gives the plain loss's gradients (dropout included) with chunked activations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hybridbatch.training.gradcache import cached_contrastive_backward
from hybridbatch.training.losses import info_nce


class Tiny(torch.nn.Module):
    """A small encoder with dropout: token embeddings -> mean -> MLP -> L2 normalised."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(50, 16)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Dropout(0.3),
                                       torch.nn.Linear(32, 8))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(self.emb(ids).mean(1)), dim=-1)


def batch(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 50, (n, 5), generator=g), torch.randint(0, 50, (n, 7), generator=g)


def grads(model):
    return {k: p.grad.detach().clone() for k, p in model.named_parameters()}


@pytest.mark.parametrize("chunk", [1, 4, 5, 12])
def test_cached_gradients_equal_plain_gradients_with_dropout(chunk):
    torch.manual_seed(0)
    model = Tiny().double().train()
    q_ids, p_ids = batch()
    loss_fn = lambda q, p: info_nce(q, p, temperature=0.1)  # noqa: E731

    # plain: one forward per side, in the same order as the cached path's first pass (chunk by chunk)
    torch.manual_seed(123)
    q = torch.cat([model(q_ids[i:i + chunk]) for i in range(0, len(q_ids), chunk)])
    p = torch.cat([model(p_ids[i:i + chunk]) for i in range(0, len(p_ids), chunk)])
    plain_loss = loss_fn(q, p)
    plain_loss.backward()
    plain = grads(model)
    after_plain = torch.get_rng_state()

    model.zero_grad()
    torch.manual_seed(123)
    loss = cached_contrastive_backward(lambda idx: model(q_ids[idx]), lambda idx: model(p_ids[idx]),
                                       len(q_ids), loss_fn, chunk_size=chunk)
    assert loss == pytest.approx(float(plain_loss), rel=1e-12)
    for k, g in grads(model).items():
        torch.testing.assert_close(g, plain[k], rtol=1e-9, atol=1e-12, msg=k)
    assert torch.equal(torch.get_rng_state(), after_plain)  # the RNG ends where a plain step leaves it


def test_without_rng_replay_dropout_would_differ():
    """Guards the test above: re-embedding without replaying the RNG changes the gradients."""
    torch.manual_seed(0)
    model = Tiny().double().train()
    q_ids, _ = batch()
    torch.manual_seed(1)
    a = model(q_ids)
    b = model(q_ids)
    assert not torch.allclose(a, b)


def test_bad_chunk_size():
    with pytest.raises(ValueError, match="chunk_size"):
        cached_contrastive_backward(lambda i: None, lambda i: None, 4, lambda q, p: None, chunk_size=0)
