"""A persistent embedding cache: texts are encoded once per (checkpoint, settings, texts) and reused.

``CachingEncoder`` wraps any encoder with an ``encode(texts, kind, **kwargs)`` method (the ``TextEncoder``
protocol of ``alignment.py``; ``DualEncoder`` is one). The key of a cached matrix hashes everything the
vectors depend on: the checkpoint's files (weights, tokenizer, config, encoder settings), the encoder's
effective settings, the kind (query/passage prefix), the encoding keyword arguments, the library versions
and the texts themselves. Evaluating one checkpoint again -- another metric, another setting, a re-run
after a code change outside the encoder -- then costs a file read instead of an encoding pass. Entries are
written atomically; a corrupt or mismatching entry is recomputed.
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

from .io import atomic_path

logger = logging.getLogger(__name__)

_CHECKPOINT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "hybridbatch_encoder.json")


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_fingerprint(path: str | os.PathLike) -> str:
    """sha256 over a checkpoint directory's weights and configuration files (names and contents)."""
    path = Path(path)
    if not path.is_dir():  # a hub name: identified by its name (and the hub revision cached locally)
        return hashlib.sha256(f"hub:{path}".encode()).hexdigest()
    files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin") or p.name in _CHECKPOINT_FILES)
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + _file_digest(p).encode() + b"\0")
    return h.hexdigest()


class CachingEncoder:
    """``encode`` with a persistent cache under ``cache_dir``; everything else is the wrapped encoder's."""

    def __init__(self, encoder: Any, cache_dir: str | os.PathLike) -> None:
        self.encoder = encoder
        self.cache_dir = Path(cache_dir)
        settings = getattr(encoder, "settings", None)
        self._identity = {
            "checkpoint": checkpoint_fingerprint(getattr(encoder, "name_or_path", "")),
            "settings": dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else repr(settings),
            "versions": {p: version(p) for p in ("torch", "transformers")},
        }
        self.hits = self.misses = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.encoder, name)

    def key(self, texts: Sequence[str], kind: str, kwargs: dict) -> str:
        h = hashlib.sha256(json.dumps({**self._identity, "kind": kind,
                                       "kwargs": {k: v for k, v in sorted(kwargs.items()) if k != "progress"}},
                                      sort_keys=True).encode())
        for t in texts:
            h.update(t.encode("utf-8") + b"\0")
        return h.hexdigest()

    def encode(self, texts: Sequence[str], kind: str, **kwargs: Any) -> torch.Tensor:
        texts = list(texts)
        path = self.cache_dir / f"{self.key(texts, kind, kwargs)}.npy"
        if path.is_file():
            try:
                arr = np.load(path, allow_pickle=False)
                if arr.shape[0] == len(texts):
                    self.hits += 1
                    logger.info("embedding cache hit: %d %s texts (%s)", len(texts), kind, path.name[:12])
                    return torch.from_numpy(arr)
            except (OSError, ValueError) as exc:
                logger.warning("recomputing unreadable cache entry %s: %s", path, exc)
        self.misses += 1
        out = self.encoder.encode(texts, kind, **kwargs)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, out.numpy(), allow_pickle=False)
        return out
