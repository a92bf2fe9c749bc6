"""The persistent embedding cache returns exactly what the encoder returns, and only for the same inputs;
bad entries (zeros, NaN, empty, truncated, wrong shape or dtype, checksum mismatch) are detected, deleted and
recomputed; a failed write never stops the evaluation."""

from __future__ import annotations

import errno
import hashlib
import logging

import numpy as np
import pytest
import torch

from helpers.tiny import make_tiny_model
from hybridbatch.evaluation import cache as C
from hybridbatch.evaluation.cache import CachingEncoder, checkpoint_fingerprint, read_entry, write_entry
from hybridbatch.model.encoder import DualEncoder

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
    assert inner.calls == 4 and len(list((tmp_path / "cache").glob("*.npz"))) == 4


def test_changed_weights_change_the_fingerprint(tmp_path):
    a = make_tiny_model(tmp_path / "a", seed=0)
    b = make_tiny_model(tmp_path / "b", seed=1)
    assert checkpoint_fingerprint(a) == checkpoint_fingerprint(make_tiny_model(tmp_path / "a2", seed=0))
    assert checkpoint_fingerprint(a) != checkpoint_fingerprint(b)


def test_corrupt_entry_is_recomputed(tmp_path):
    model = make_tiny_model(tmp_path / "m", dropout=0.0)
    cached = CachingEncoder(DualEncoder(model), tmp_path / "cache")
    first = cached.encode(TEXTS, "query")
    assert cached._dim == 32  # the real encoder's dimension is checked
    entry = next((tmp_path / "cache").glob("*.npz"))
    for bad in (b"not an array", b""):
        entry.write_bytes(bad)
        again = CachingEncoder(DualEncoder(model), tmp_path / "cache")
        assert torch.equal(again.encode(TEXTS, "query"), first) and again.rejected == 1
        np.testing.assert_array_equal(read_entry(entry, len(TEXTS), 32), first.numpy())


# ------------------------------------------------------------------------------ faults, with a fast fake encoder
DIM = 8


class FakeEncoder:
    """Deterministic L2-normalised vectors seeded by a hash of (kind, text); counts its calls."""

    name_or_path, settings, dim = "fake/encoder", None, DIM

    def __init__(self, broken: bool = False) -> None:
        self.calls, self.broken = 0, broken

    def encode(self, texts, kind, **kw) -> torch.Tensor:
        self.calls += 1
        rows = [np.random.default_rng(int.from_bytes(hashlib.sha256(f"{kind}|{t}".encode()).digest()[:8], "little"))
                .normal(size=DIM) for t in texts]
        out = torch.nn.functional.normalize(torch.tensor(np.array(rows), dtype=torch.float32), dim=-1)
        if self.broken:
            out[0, 0] = float("nan")
        return out


def _with(arr: np.ndarray, row: int, col, value: float) -> np.ndarray:
    arr = arr.copy()
    arr[row, col] = value
    return arr


# name -> (how the bad entry is planted from the good one, a word of the logged reason)
FAULTS = {
    "zeros": (lambda p, a: write_entry(p, np.zeros_like(a)), "all-zero row"),
    "one_zero_row": (lambda p, a: write_entry(p, _with(a, 1, slice(None), 0.0)), "all-zero row"),
    "nan": (lambda p, a: write_entry(p, _with(a, 0, 3, np.nan)), "NaN or inf"),
    "inf": (lambda p, a: write_entry(p, _with(a, 2, 0, np.inf)), "NaN or inf"),
    "zero_byte": (lambda p, a: p.write_bytes(b""), "unreadable"),
    "truncated": (lambda p, a: p.write_bytes(p.read_bytes()[:p.stat().st_size // 2]), "unreadable"),
    "fewer_rows": (lambda p, a: write_entry(p, a[:-1]), "shape"),
    "wider": (lambda p, a: write_entry(p, np.concatenate([a, a[:, :1]], axis=1)), "shape"),
    "float64": (lambda p, a: write_entry(p, a.astype(np.float64)), "dtype"),
    "checksum": (lambda p, a: p.write_bytes(_savez_bytes(a * 0.5, C._digest(a))), "checksum mismatch"),
    "old_npy_format": (lambda p, a: np.save(open(p, "wb"), a), "unreadable"),
}


def _savez_bytes(arr: np.ndarray, digest: str) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, embeddings=arr, sha256=np.array(digest))
    return buf.getvalue()


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_bad_entry_is_logged_deleted_recomputed_and_rewritten(tmp_path, caplog, fault):
    plant, reason = FAULTS[fault]
    good = CachingEncoder(FakeEncoder(), tmp_path).encode(TEXTS, "passage")
    entry = next(tmp_path.glob("*.npz"))
    plant(entry, good.numpy())
    inner = FakeEncoder()
    cached = CachingEncoder(inner, tmp_path)
    with caplog.at_level(logging.WARNING, logger="hybridbatch.evaluation.cache"):
        out = cached.encode(TEXTS, "passage")
    assert torch.equal(out, good)  # the fresh encoding, not the bad entry
    assert inner.calls == 1 and cached.rejected == 1 and cached.hits == 0
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert entry.name in warning and reason in warning
    np.testing.assert_array_equal(read_entry(entry, len(TEXTS), DIM), good.numpy())  # rewritten, valid
    assert CachingEncoder(inner, tmp_path).encode(TEXTS, "passage").equal(good) and inner.calls == 1  # a hit


def test_entry_checks_name_the_reason(tmp_path):
    good = FakeEncoder().encode(TEXTS, "query").numpy()
    path = tmp_path / "e.npz"
    write_entry(path, good)
    np.testing.assert_array_equal(read_entry(path, 3, DIM), good)
    np.testing.assert_array_equal(read_entry(path, 3), good)  # dimension unknown: any
    with pytest.raises(C.CacheEntryError, match=r"shape \(3, 8\), expected \(3, 16\)"):
        read_entry(path, 3, 16)
    with pytest.raises(C.CacheEntryError, match="shape"):
        read_entry(path, 4)
    with pytest.raises(C.CacheEntryError, match="unreadable"):
        read_entry(tmp_path / "missing.npz", 3)
    assert C.check_embeddings(np.zeros((0, DIM), np.float32), 0, DIM) is None  # no texts: nothing to check


def test_failed_write_warns_and_returns_the_embeddings(tmp_path, caplog, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    inner = FakeEncoder()
    cached = CachingEncoder(inner, tmp_path / "cache")
    monkeypatch.setattr(C.np, "savez", disk_full)
    with caplog.at_level(logging.WARNING, logger="hybridbatch.evaluation.cache"):
        out = cached.encode(TEXTS, "query")
    assert torch.equal(out, FakeEncoder().encode(TEXTS, "query")) and cached.write_failures == 1
    assert "No space left on device" in caplog.text and "could not write" in caplog.text
    assert list((tmp_path / "cache").iterdir()) == []  # no entry, no temporary file left behind
    monkeypatch.undo()
    assert torch.equal(cached.encode(TEXTS, "query"), out) and inner.calls == 2  # recomputed, now written
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def test_unusable_cache_directory_does_not_stop_encoding(tmp_path, caplog):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache directory should be")
    cached = CachingEncoder(FakeEncoder(), blocker / "cache")
    with caplog.at_level(logging.WARNING, logger="hybridbatch.evaluation.cache"):
        out = cached.encode(TEXTS, "query")
    assert out.shape == (3, DIM) and cached.write_failures == 1 and "could not write" in caplog.text


def test_broken_fresh_embeddings_are_not_cached(tmp_path, caplog):
    cached = CachingEncoder(FakeEncoder(broken=True), tmp_path)
    with caplog.at_level(logging.WARNING, logger="hybridbatch.evaluation.cache"):
        out = cached.encode(TEXTS, "query")
    assert torch.isnan(out[0, 0]) and "not caching" in caplog.text and list(tmp_path.iterdir()) == []
