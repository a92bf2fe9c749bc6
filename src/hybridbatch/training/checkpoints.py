"""Resumable training state, verified when read (docs/PROTOCOL.md §3, "Resumable training").

Layout under one directory: ``step-NNNNNN/`` (the two latest kept: ``state.pt``, ``state.sha256``,
``live/`` -- the dvclive logs so far) and ``best.pt`` + ``best.sha256`` (the weights early stopping keeps).

* Only the trainable part of the model is stored (:func:`trainable_state`: the parameters that require grad;
  with ``train.freeze_word_embeddings`` the 96M-parameter word embeddings of e5-small are not, so a checkpoint
  holds 87 MB of weights instead of 471 MB). Resuming loads the base model as a fresh start does, then those
  parameters (:func:`load_trainable`). The rest -- frozen parameters and buffers -- is the base model's, and
  its hash (:func:`frozen_sha256`) is recorded in every step checkpoint: one whose frozen part differs from
  the model this run loaded is refused like a damaged one (an older one is tried, else a fresh start).

* Each checkpoint is written to a temporary directory and renamed into place, so a kill at any moment
  leaves the previous or the new checkpoint, never a partial one.
* Reading verifies the SHA-256 written beside the file and that torch can load it; a damaged latest
  checkpoint falls back to the one before it, and when none is usable the run starts afresh -- each with a
  warning naming the file and the reason. A checkpoint written under other settings (fingerprint) is
  ignored.
* A full disk says so (:class:`~hybridbatch.io.DiskFullError`): a periodic checkpoint that cannot be
  written is skipped with a warning (training does not depend on it); the early-stopping weights cannot be
  skipped, so that failure stops the run with the one-line reason.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import torch

from hybridbatch.io import atomic_dir, atomic_path, disk_full_error, is_disk_full, sha256_file

logger = logging.getLogger(__name__)

KEEP = 2  # step checkpoints kept: the latest and one to fall back to


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, truncated or does not match its checksum."""


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters of ``model`` that require grad, by name (detached): what a checkpoint stores."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def frozen_sha256(model: torch.nn.Module) -> str:
    """sha256 over what a checkpoint does not store: the names of the trainable parameters, then every other
    ``state_dict`` entry (frozen parameters, buffers) -- name, dtype, shape and bytes."""
    trainable = {name for name, p in model.named_parameters(remove_duplicate=False) if p.requires_grad}
    h = hashlib.sha256(("trainable:" + ",".join(sorted(trainable))).encode() + b"\0")
    for name, tensor in sorted(model.state_dict(keep_vars=False).items()):
        if name in trainable:
            continue
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy().data)
    return h.hexdigest()


def load_trainable(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy the stored trainable parameters into ``model`` (whose frozen part is the base model's);
    :class:`CheckpointError` when the names or shapes are not this model's trainable parameters."""
    params = dict(model.named_parameters())
    expected = {name for name, p in params.items() if p.requires_grad}
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise CheckpointError(f"the stored parameters are not this model's trainable ones (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    wrong = [n for n, t in tensors.items() if tuple(t.shape) != tuple(params[n].shape)]
    if wrong:
        raise CheckpointError(f"stored parameter {wrong[0]} has shape {tuple(tensors[wrong[0]].shape)}, "
                              f"the model's {tuple(params[wrong[0]].shape)}")
    with torch.no_grad():  # as Module.load_state_dict does: an exact copy
        for name, value in tensors.items():
            params[name].copy_(value)


def _save_verified(obj, path: Path) -> None:
    """``torch.save`` to ``path`` and its checksum to ``path.with_suffix('.sha256')`` (inside a temp dir)."""
    torch.save(obj, path)
    path.with_suffix(".sha256").write_text(sha256_file(path) + "\n", encoding="ascii")


def _load_verified(path: Path, *, weights_only: bool):
    """Load ``path`` after checking its checksum; :class:`CheckpointError` with the reason otherwise."""
    check = path.with_suffix(".sha256")
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    if not check.is_file():
        raise CheckpointError(f"{check}: missing checksum")
    expected = check.read_text(encoding="ascii").strip()
    actual = sha256_file(path)
    if actual != expected:
        raise CheckpointError(f"{path}: checksum mismatch (file {actual[:12]}..., recorded {expected[:12]}...); "
                              f"truncated or damaged")
    try:
        return torch.load(path, weights_only=weights_only, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is reported the same way
        raise CheckpointError(f"{path}: cannot be loaded ({type(exc).__name__}: {exc})") from None


class Checkpoints:
    """Resumable training state under one directory (see the module docstring). ``frozen``: the
    :func:`frozen_sha256` of the model this run loaded (a step checkpoint of another frozen part is refused)."""

    def __init__(self, root: str | os.PathLike, fingerprint: dict, frozen: str | None = None) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.frozen = frozen

    def _steps(self) -> list[Path]:
        return sorted(self.root.glob("step-[0-9]*[0-9]"))

    def latest(self) -> dict | None:
        """The newest usable checkpoint of these settings (with ``live_dir``), else ``None`` (fresh start)."""
        for path in reversed(self._steps()):
            try:
                state = _load_verified(path / "state.pt", weights_only=False)
            except CheckpointError as exc:
                logger.warning("ignoring damaged checkpoint: %s; trying an older one", exc)
                continue
            if state.get("fingerprint") != self.fingerprint:
                logger.warning("ignoring checkpoint %s: written with other settings", path)
                return None
            if state.get("frozen_sha256") != self.frozen:
                logger.warning("ignoring checkpoint %s: its frozen parameters (sha256 %.12s...) are not those of "
                               "the base model loaded now (%.12s...); trying an older one", path,
                               state.get("frozen_sha256"), self.frozen)
                continue
            if not (path / "live").is_dir():
                logger.warning("ignoring checkpoint %s: its live/ logs are missing; trying an older one", path)
                continue
            state["live_dir"] = path / "live"
            return state
        if self._steps():
            logger.warning("no usable checkpoint under %s: starting afresh", self.root)
        return None

    def save(self, step: int, state: dict, live_dir: Path) -> bool:
        """Write the checkpoint of ``step``; keep the two latest. A full disk: warn, skip, return False."""
        target = self.root / f"step-{step:06d}"
        try:
            with atomic_dir(target) as tmp:
                _save_verified({**state, "step": step, "fingerprint": self.fingerprint,
                                "frozen_sha256": self.frozen}, tmp / "state.pt")
                shutil.copytree(live_dir, tmp / "live")
        except (OSError, RuntimeError) as exc:
            if not is_disk_full(exc):
                raise
            logger.warning("checkpoint of step %d skipped: %s", step, disk_full_error(target, exc))
            return False
        for old in self._steps()[:-KEEP]:
            shutil.rmtree(old, ignore_errors=True)
        return True

    def save_best(self, model_state: dict) -> None:
        """The weights early stopping keeps (:func:`trainable_state`; a full disk stops the run: they cannot be
        skipped)."""
        target = self.root / "best.pt"
        try:
            with atomic_path(target) as tmp:
                torch.save(model_state, tmp)
                digest = sha256_file(tmp)
            with atomic_path(target.with_suffix(".sha256")) as tmp:
                tmp.write_text(digest + "\n", encoding="ascii")
        except (OSError, RuntimeError) as exc:
            if is_disk_full(exc):
                raise disk_full_error(target, exc) from None
            raise

    def load_best(self) -> dict:
        return _load_verified(self.root / "best.pt", weights_only=True)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
