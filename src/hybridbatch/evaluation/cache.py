"""A persistent embedding cache: texts are encoded once per (checkpoint, settings, texts) and reused.

``CachingEncoder`` wraps any encoder with an ``encode(texts, kind, **kwargs)`` method (the ``TextEncoder``
protocol of ``alignment.py``; ``DualEncoder`` is one). The key of a cached matrix hashes everything the
vectors depend on: the checkpoint's files (weights, tokenizer, config, encoder settings), the encoder's
effective settings, the kind (query/passage prefix), the encoding keyword arguments, the library versions
and the texts themselves. Evaluating one checkpoint again -- another metric, another setting, a re-run
after a code change outside the encoder -- then costs a file read instead of an encoding pass.

Entries are self-checking (requirements): each is written atomically with a sha256 checksum of the array,
and verified when read -- readable, checksum, shape ``(n_texts, dim)``, dtype float32, all values finite,
no all-zero row. A bad or unreadable entry is logged (file and reason), deleted, recomputed and rewritten;
a failed write (e.g. a full disk) is logged and the evaluation goes on with the computed embeddings.
Entries of the earlier unchecked format (``<key>.npy``) are never read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from hybridbatch.io import atomic_path, sha256_file

logger = logging.getLogger(__name__)

#: entry files: ``<key>.npz`` holding ``embeddings`` (float32, n_texts x dim) and ``sha256`` (its checksum)
SUFFIX = ".npz"
_CHECKPOINT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "hybridbatch_encoder.json")


def checkpoint_fingerprint(path: str | os.PathLike) -> str:
    """sha256 over a checkpoint directory's weights and configuration files (names and contents)."""
    path = Path(path)
    if not path.is_dir():  # a hub name: identified by its name (and the hub revision cached locally)
        return hashlib.sha256(f"hub:{path}".encode()).hexdigest()
    files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin") or p.name in _CHECKPOINT_FILES)
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + sha256_file(p).encode() + b"\0")
    return h.hexdigest()


class CacheEntryError(ValueError):
    """A cache entry that must not be used; the message is the reason."""


def _digest(arr: np.ndarray) -> str:
    """sha256 over an array's dtype, shape and C-order bytes."""
    h = hashlib.sha256(f"{arr.dtype.str}{tuple(arr.shape)}\0".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def check_embeddings(arr: np.ndarray, n_texts: int, dim: int | None = None) -> str | None:
    """Why ``arr`` cannot be the embeddings of ``n_texts`` texts (``None`` if it can).

    Requirements: shape ``(n_texts, dim)`` (any ``dim >= 1`` when ``dim`` is ``None``), dtype float32,
    every value finite, no all-zero row (the encoders L2-normalise their outputs, so a zero vector -- or
    an unnormalised exact zero -- never comes out of a working model).
    """
    if arr.ndim != 2 or arr.shape[0] != n_texts or arr.shape[1] < 1 or (dim is not None and arr.shape[1] != dim):
        return f"shape {tuple(arr.shape)}, expected ({n_texts}, {dim if dim is not None else 'dim'})"
    if arr.dtype != np.float32:
        return f"dtype {arr.dtype}, expected float32"
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        return f"{int((~finite).sum())} row(s) with NaN or inf values (first: row {int(np.flatnonzero(~finite)[0])})"
    zero = ~arr.any(axis=1)
    if zero.any():
        return f"{int(zero.sum())} all-zero row(s) (first: row {int(np.flatnonzero(zero)[0])})"
    return None


def write_entry(path: Path, arr: np.ndarray) -> None:
    """Write ``arr`` with its checksum as one ``.npz`` file (``embeddings``, ``sha256``), atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, embeddings=arr, sha256=np.array(_digest(arr)))


def read_entry(path: Path, n_texts: int, dim: int | None = None) -> np.ndarray:
    """The verified embeddings stored at ``path``; :class:`CacheEntryError` (with the reason) otherwise.

    Verified: the file is a readable ``.npz`` of this format, the stored checksum matches the array, and
    :func:`check_embeddings` accepts it.
    """
    try:
        with np.load(path, allow_pickle=False) as entry:
            arr = entry["embeddings"]
            stored = str(entry["sha256"][()])
    except Exception as exc:  # zero-byte (EOFError), truncated (BadZipFile), old format, I/O error ...
        raise CacheEntryError(f"unreadable: {type(exc).__name__}: {exc}") from exc
    reason = check_embeddings(arr, n_texts, dim)
    if reason is None and _digest(arr) != stored:
        reason = "checksum mismatch"
    if reason is not None:
        raise CacheEntryError(reason)
    return arr


class CachingEncoder:
    """``encode`` with a persistent cache under ``cache_dir``; everything else is the wrapped encoder's.

    Every entry is verified when read (:func:`read_entry`); a bad or unreadable one is logged (file and
    reason), deleted, recomputed and rewritten. Freshly computed embeddings that fail
    :func:`check_embeddings` are returned but not cached. A failed write (``OSError``: a full disk, a
    read-only directory) is logged and the computed embeddings are used: the cache never stops an evaluation.
    Counters: ``hits``, ``misses`` (encoder calls), ``rejected`` (bad entries), ``write_failures``.
    """

    def __init__(self, encoder: Any, cache_dir: str | os.PathLike) -> None:
        self.encoder = encoder
        self.cache_dir = Path(cache_dir)
        settings = getattr(encoder, "settings", None)
        self._identity = {
            "checkpoint": checkpoint_fingerprint(getattr(encoder, "name_or_path", "")),
            "settings": dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else repr(settings),
            "versions": {p: version(p) for p in ("torch", "transformers")},
        }
        dim = getattr(encoder, "dim", None)  # DualEncoder: the hidden size; checked when known
        self._dim = int(dim) if isinstance(dim, int) else None
        self.hits = self.misses = self.rejected = self.write_failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.encoder, name)

    def key(self, texts: Sequence[str], kind: str, kwargs: dict) -> str:
        h = hashlib.sha256(json.dumps({**self._identity, "kind": kind,
                                       "kwargs": {k: v for k, v in sorted(kwargs.items()) if k != "progress"}},
                                      sort_keys=True).encode())
        for t in texts:
            h.update(t.encode("utf-8") + b"\0")
        return h.hexdigest()

    def path(self, texts: Sequence[str], kind: str, kwargs: dict) -> Path:
        """The entry file of these inputs."""
        return self.cache_dir / f"{self.key(texts, kind, kwargs)}{SUFFIX}"

    def encode(self, texts: Sequence[str], kind: str, **kwargs: Any) -> torch.Tensor:
        texts = list(texts)
        path = self.path(texts, kind, kwargs)
        if path.is_file():
            try:
                arr = read_entry(path, len(texts), self._dim)
            except CacheEntryError as exc:
                self.rejected += 1
                logger.warning("bad embedding cache entry %s (%s): deleting it and recomputing", path, exc)
                try:
                    path.unlink(missing_ok=True)
                except OSError as err:
                    logger.warning("could not delete %s: %s", path, err)
            else:
                self.hits += 1
                logger.info("embedding cache hit: %d %s texts (%s)", len(texts), kind, path.name[:12])
                return torch.from_numpy(arr)
        self.misses += 1
        out = self.encoder.encode(texts, kind, **kwargs)
        arr = out.detach().cpu().numpy()
        reason = check_embeddings(arr, len(texts), self._dim)
        if reason is not None:
            logger.warning("not caching the embeddings of %d %s texts: %s", len(texts), kind, reason)
            return out
        try:
            write_entry(path, arr)
        except OSError as exc:  # ENOSPC, EROFS, EACCES ...: go on without this entry
            self.write_failures += 1
            logger.warning("could not write embedding cache entry %s (%s); continuing without caching it", path, exc)
        return out
