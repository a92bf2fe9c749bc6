"""Tatoeba bitext retrieval: hand-built nearest neighbours, a brute-force reference, the evaluator's shape."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch

from hybridbatch.evaluation.tatoeba import bitext_accuracy, evaluate_tatoeba


class HashEncoder:
    """Deterministic fake encoder: a text's vector is seeded by a hash of its prefixed text."""

    def __init__(self, dim: int = 16) -> None:
        self.dim = dim
        self.calls: list[tuple[str, int, dict]] = []

    def encode(self, texts, kind, **kw) -> torch.Tensor:
        self.calls.append((kind, len(texts), kw))
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(f"{kind}|{t}".encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).normal(size=self.dim))
        return torch.nn.functional.normalize(torch.tensor(np.array(rows), dtype=torch.float32), dim=-1)


def brute_force_accuracy(src: np.ndarray, tgt: np.ndarray) -> float:
    """Full similarity matrix; each row's best target by lexsort (score desc, then index asc)."""
    src = src / np.linalg.norm(src, axis=1, keepdims=True)
    tgt = tgt / np.linalg.norm(tgt, axis=1, keepdims=True)
    sims = src @ tgt.T
    idx = np.arange(sims.shape[1])
    best = np.array([np.lexsort((idx, -row))[0] for row in sims])
    return float(np.mean(best == np.arange(len(src))))


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_hand_built_neighbours():
    src = t([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert bitext_accuracy(src, src) == 1.0
    # row 2's translation points the wrong way: its nearest target is row 0 (cosine 0.6 vs -1)
    tgt = t([[1, 0, 0], [0, 1, 0], [0.6, 0, -0.8]])
    assert bitext_accuracy(src, tgt) == pytest.approx(2 / 3)
    # scale does not matter: rows are normalised inside
    assert bitext_accuracy(3 * src, 0.5 * tgt) == bitext_accuracy(src, tgt)


def test_exact_tie_resolves_to_lower_index():
    tgt = t([[1, 0], [1, 0], [0, 1]])  # targets 0 and 1 are identical: any source near them ties exactly
    # source 0 ties between targets 0 and 1 -> lower index 0 = its translation: hit (higher index: miss)
    src = t([[1, 0], [0, 1], [0, 1]])
    assert bitext_accuracy(src, tgt) == pytest.approx(2 / 3)  # 1/3 if ties went to the higher index
    # source 1 ties between targets 0 and 1 -> lower index 0, not its translation: miss (higher: hit)
    src = t([[0, 1], [1, 0], [0, 1]])
    assert bitext_accuracy(src, tgt) == pytest.approx(1 / 3)  # 2/3 if ties went to the higher index
    # a tie between vectors of different norms is still exact after normalisation
    assert bitext_accuracy(src, t([[1, 0], [2, 0], [0, 3]])) == pytest.approx(1 / 3)


def test_asymmetric_directions():
    # x0 and x1 both lie closest to e0; e1 lies closest to x1. x2en: x0 hits, x1 misses (-> e0), x2 hits.
    # en2x: e0 -> x0 (cos 1) hits, e1 -> x1 hits, e2 -> x2 hits.
    x = t([[1, 0, 0], [0.8, 0.6, 0], [0, 0, 1]])
    en = t([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert bitext_accuracy(x, en) == pytest.approx(2 / 3)
    assert bitext_accuracy(en, x) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_brute_force_continuous(seed):
    rng = np.random.default_rng(seed)
    tgt = rng.normal(size=(203, 8))
    src = tgt + rng.normal(scale=1.2, size=tgt.shape)  # noisy translations: a mix of hits and misses
    acc = bitext_accuracy(torch.from_numpy(src).float(), torch.from_numpy(tgt).float(), chunk=17)
    ref = brute_force_accuracy(src.astype(np.float32).astype(np.float64), tgt.astype(np.float32).astype(np.float64))
    assert 0.05 < acc < 0.95
    assert acc == ref


@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_brute_force_many_ties(seed):
    # binary vectors with exactly four ones: normalised entries are exactly 0.5, every similarity is an exact
    # multiple of 1/4, so ties are frequent and computed identically by both implementations
    rng = np.random.default_rng(seed)
    n, d = 150, 10
    tgt = np.zeros((n, d))
    for row in tgt:
        row[rng.choice(d, 4, replace=False)] = 1
    src = tgt.copy()
    flip = rng.random(n) < 0.5  # perturb half the sources: move one of their ones elsewhere
    for i in np.flatnonzero(flip):
        ones, zeros = np.flatnonzero(src[i]), np.flatnonzero(src[i] == 0)
        src[i, rng.choice(ones)], src[i, rng.choice(zeros)] = 0, 1
    for a, b in ((src, tgt), (tgt, src)):
        acc = bitext_accuracy(torch.from_numpy(a), torch.from_numpy(b), chunk=32)
        assert acc == brute_force_accuracy(a, b)


def test_shape_errors():
    with pytest.raises(ValueError):
        bitext_accuracy(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError):
        bitext_accuracy(torch.zeros(0, 4), torch.zeros(0, 4))


def tatoeba_table() -> pd.DataFrame:
    rows = []
    for lang3, lang, n in (("deu", "de", 5), ("cmn", "zh", 4), ("tha", "th", 3)):
        for i in range(n):
            rows.append((lang3, lang, i, f"{lang3} sentence {i}", f"english sentence {i} of {lang3}"))
    return pd.DataFrame(rows, columns=["lang3", "lang", "idx", "text", "eng"])


def test_evaluate_tatoeba_keys_and_values():
    table = tatoeba_table()
    enc = HashEncoder()
    out = evaluate_tatoeba(enc, table, kind="query", max_tokens=123)
    assert set(out) == {"per_language", "x2en", "en2x", "mean"}
    assert list(out["per_language"]) == ["de", "zh", "th"]  # ISO-639-1, table order
    for lang3, lang in (("deu", "de"), ("cmn", "zh"), ("tha", "th")):
        pairs = table[table["lang3"] == lang3]
        x = enc.encode(pairs["text"].tolist(), "query")
        en = enc.encode(pairs["eng"].tolist(), "query")
        res = out["per_language"][lang]
        assert res == {"x2en": bitext_accuracy(x, en), "en2x": bitext_accuracy(en, x), "n": len(pairs)}
        assert 0.0 <= res["x2en"] <= 1.0 and 0.0 <= res["en2x"] <= 1.0
    per = out["per_language"].values()
    assert out["x2en"] == pytest.approx(np.mean([v["x2en"] for v in per]))
    assert out["en2x"] == pytest.approx(np.mean([v["en2x"] for v in per]))
    assert out["mean"] == pytest.approx((out["x2en"] + out["en2x"]) / 2)
    # both sides of every language were encoded once, with the one prefix and the token budget
    evaluated = enc.calls[:6]
    assert [(k, n) for k, n, _ in evaluated] == [("query", 5)] * 2 + [("query", 4)] * 2 + [("query", 3)] * 2
    assert all(kw == {"max_tokens": 123} for _, _, kw in evaluated)


def test_evaluate_tatoeba_perfect_encoder():
    class Translator(HashEncoder):
        """A sentence and its translation ("english <sentence>") share one vector."""

        def encode(self, texts, kind, **kw):
            return super().encode([s.removeprefix("english ") for s in texts], kind)

    table = tatoeba_table()
    table["eng"] = "english " + table["text"]
    out = evaluate_tatoeba(Translator(), table)
    assert out["x2en"] == out["en2x"] == out["mean"] == 1.0
    assert {k: v["n"] for k, v in out["per_language"].items()} == {"de": 5, "zh": 4, "th": 3}


def test_evaluate_tatoeba_rejects_bad_tables():
    with pytest.raises(ValueError, match="lacks"):
        evaluate_tatoeba(HashEncoder(), tatoeba_table().drop(columns="eng"))
    with pytest.raises(ValueError, match="empty"):
        evaluate_tatoeba(HashEncoder(), tatoeba_table().iloc[:0])
    clash = tatoeba_table()
    clash.loc[clash["lang3"] == "tha", "lang"] = "de"
    with pytest.raises(ValueError, match="one-to-one"):
        evaluate_tatoeba(HashEncoder(), clash)


@pytest.mark.parametrize("value", [1.5, -0.25, float("nan")])
def test_evaluate_tatoeba_stops_on_accuracy_out_of_range(monkeypatch, value):
    import hybridbatch.evaluation.tatoeba as A

    calls = iter([0.5, value] * 10)  # de: x2en fine, en2x broken
    monkeypatch.setattr(A, "bitext_accuracy", lambda src, tgt: next(calls))
    with pytest.raises(ValueError, match=rf"metric tatoeba en2x = {value!r} outside \[0, 1\] \(language de\)"):
        evaluate_tatoeba(HashEncoder(), tatoeba_table())
