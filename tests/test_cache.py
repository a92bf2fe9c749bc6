"""The persistent embedding cache returns exactly what the encoder returns, and only for the same inputs."""

from __future__ import annotations

import torch

from helpers.tiny import make_tiny_model
from hybridbatch.cache import CachingEncoder, checkpoint_fingerprint
from hybridbatch.encoder import DualEncoder

TEXTS = ["Wie viele Punkte?", "黑豹队的防守只丢了308分。", "How many points did the defense give up?"]


class Counting:
    """Counts the calls that reach the real encoder."""

    def __init__(self, enc):
        self.enc, self.calls = enc, 0
        self.name_or_path, self.settings = enc.name_or_path, enc.settings

    def encode(self, texts, kind, **kw):
        self.calls += 1
        return self.enc.encode(texts, kind, **kw)


def test_cache_hits_equal_fresh_encodings_and_keys_separate_inputs(tmp_path):
    model = make_tiny_model(tmp_path / "m", dropout=0.0)
    inner = Counting(DualEncoder(model))
    cached = CachingEncoder(inner, tmp_path / "cache")
    first = cached.encode(TEXTS, "passage", max_tokens=512)
    again = CachingEncoder(Counting(inner.enc), tmp_path / "cache")  # a new process, same checkpoint
    second = again.encode(TEXTS, "passage", max_tokens=512, progress=True)  # progress does not change vectors
    assert inner.calls == 1 and again.encoder.calls == 0 and again.hits == 1
    assert torch.equal(first, second) and torch.equal(first, inner.enc.encode(TEXTS, "passage", max_tokens=512))
    # another kind (prefix), other texts, other kwargs: all misses
    cached.encode(TEXTS, "query", max_tokens=512)
    cached.encode(TEXTS[:2], "passage", max_tokens=512)
    cached.encode(TEXTS, "passage", max_tokens=256)
    assert inner.calls == 4 and len(list((tmp_path / "cache").glob("*.npy"))) == 4


def test_changed_weights_change_the_fingerprint(tmp_path):
    a = make_tiny_model(tmp_path / "a", seed=0)
    b = make_tiny_model(tmp_path / "b", seed=1)
    assert checkpoint_fingerprint(a) == checkpoint_fingerprint(make_tiny_model(tmp_path / "a2", seed=0))
    assert checkpoint_fingerprint(a) != checkpoint_fingerprint(b)


def test_corrupt_entry_is_recomputed(tmp_path):
    model = make_tiny_model(tmp_path / "m", dropout=0.0)
    cached = CachingEncoder(DualEncoder(model), tmp_path / "cache")
    first = cached.encode(TEXTS, "query")
    entry = next((tmp_path / "cache").glob("*.npy"))
    entry.write_bytes(b"not an array")
    assert torch.equal(CachingEncoder(DualEncoder(model), tmp_path / "cache").encode(TEXTS, "query"), first)
