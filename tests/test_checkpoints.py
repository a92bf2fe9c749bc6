"""Checkpoints verify themselves when read: a damaged latest checkpoint falls back to the one before it, none
usable means a fresh start (each with a warning); a full disk says so."""

from __future__ import annotations

import errno
import logging

import pytest
import torch

from hybridbatch.training import checkpoints as C
from hybridbatch.io import DiskFullError

FP = {"lr": 1e-3}


def _save(ck: C.Checkpoints, step: int, tmp_path) -> None:
    live = tmp_path / "live"
    live.mkdir(exist_ok=True)
    (live / "metrics.json").write_text(f'{{"step": {step}}}')
    assert ck.save(step, {"weights": torch.full((3,), float(step))}, live)


def test_two_latest_are_kept_and_the_latest_is_loaded(tmp_path):
    ck = C.Checkpoints(tmp_path / "ck", FP)
    for step in (2, 4, 6):
        _save(ck, step, tmp_path)
    assert [p.name for p in ck._steps()] == ["step-000004", "step-000006"]
    state = ck.latest()
    assert state["step"] == 6 and torch.equal(state["weights"], torch.full((3,), 6.0))
    assert (state["live_dir"] / "metrics.json").read_text() == '{"step": 6}'


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "no-checksum"])
def test_damaged_latest_falls_back_to_the_previous(tmp_path, caplog, damage):
    ck = C.Checkpoints(tmp_path / "ck", FP)
    for step in (2, 4):
        _save(ck, step, tmp_path)
    path = tmp_path / "ck" / "step-000004" / "state.pt"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        path.write_bytes(data[:-10] + bytes(b ^ 0xFF for b in data[-10:]))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.with_suffix(".sha256").unlink()
    with caplog.at_level(logging.WARNING):
        state = ck.latest()
    assert state["step"] == 2
    assert "ignoring damaged checkpoint" in caplog.text and "step-000004" in caplog.text


def test_no_usable_checkpoint_means_a_fresh_start(tmp_path, caplog):
    ck = C.Checkpoints(tmp_path / "ck", FP)
    for step in (2, 4):
        _save(ck, step, tmp_path)
    for p in (tmp_path / "ck").glob("step-*/state.pt"):
        p.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        assert ck.latest() is None
    assert "starting afresh" in caplog.text


def test_best_weights_are_verified(tmp_path):
    ck = C.Checkpoints(tmp_path / "ck", FP)
    ck.save_best({"w": torch.ones(2)})
    assert torch.equal(ck.load_best()["w"], torch.ones(2))
    best = tmp_path / "ck" / "best.pt"
    best.write_bytes(best.read_bytes()[:20])
    with pytest.raises(C.CheckpointError, match="checksum mismatch"):
        ck.load_best()


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"),
                                 RuntimeError("[enforce fail at inline_container.cc:783] . PytorchStreamWriter "
                                              "failed writing file data/0: file write failed")])
def test_full_disk_is_named(tmp_path, monkeypatch, caplog, exc):
    ck = C.Checkpoints(tmp_path / "ck", FP)

    def full(*a, **k):
        raise exc

    monkeypatch.setattr(C.torch, "save", full)
    live = tmp_path / "live"
    live.mkdir()
    with caplog.at_level(logging.WARNING):
        assert ck.save(2, {"w": 1}, live) is False  # a periodic checkpoint is skipped: training goes on
    assert "no space left on device" in caplog.text and "step-000002" in caplog.text
    assert not list((tmp_path / "ck").glob("*step-000002*"))  # no partial checkpoint left behind
    with pytest.raises(DiskFullError, match=r"no space left on device while writing .*best\.pt \(\d+ MiB free"):
        ck.save_best({"w": torch.ones(1)})


def test_other_errors_are_not_mistaken_for_a_full_disk(tmp_path, monkeypatch):
    ck = C.Checkpoints(tmp_path / "ck", FP)
    monkeypatch.setattr(C.torch, "save", lambda *a, **k: (_ for _ in ()).throw(PermissionError("denied")))
    (tmp_path / "live").mkdir()
    with pytest.raises(PermissionError):
        ck.save(2, {}, tmp_path / "live")
