"""InfoNCE against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hybridbatch.training.losses import info_nce


def unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float64), dim=-1)


def test_in_batch_matches_hand_computation():
    q = unit([1.0, 0.0], [0.0, 1.0])
    p = unit([1.0, 1.0], [0.0, 1.0])
    tau = 0.5
    c = 1 / math.sqrt(2)
    # query 0: positive cos = c, in-batch negative cos = 0; query 1: positive 1, negative c
    l0 = -math.log(math.exp(c / tau) / (math.exp(c / tau) + math.exp(0 / tau)))
    l1 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(c / tau)))
    got = info_nce(q, p, temperature=tau)
    assert got.item() == pytest.approx((l0 + l1) / 2, rel=1e-12)


def test_in_batch_with_hard_negatives_and_paper_variant():
    q = unit([1.0, 0.0], [0.0, 1.0])
    p = unit([1.0, 0.0], [0.0, 1.0])
    n = unit([1.0, 1.0])
    tau = 1.0
    c = 1 / math.sqrt(2)
    # in-batch: denominators hold the positive, the other positive (cos 0) and the hard negative (cos c)
    ib = -math.log(math.e / (math.e + 1 + math.exp(c)))
    assert info_nce(q, p, n, temperature=tau).item() == pytest.approx(ib, rel=1e-12)
    # paper Eq. 1: only the positive and the batch's hard negatives
    pp = -math.log(math.e / (math.e + math.exp(c)))
    assert info_nce(q, p, n, temperature=tau, negatives="paper").item() == pytest.approx(pp, rel=1e-12)


def test_paper_variant_needs_hard_negatives_and_bad_settings_fail():
    q = unit([1.0, 0.0])
    with pytest.raises(ValueError, match="hard negatives"):
        info_nce(q, q, negatives="paper")
    with pytest.raises(ValueError, match="temperature"):
        info_nce(q, q, temperature=0)
    with pytest.raises(ValueError, match="negatives must be"):
        info_nce(q, q, negatives="everything")
