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


# ------------------------------------------------------------------- only the trainable part is stored
def _frozen_embeddings_model(seed: int = 0) -> torch.nn.Module:
    """A tiny BERT whose word embeddings (frozen, as with train.freeze_word_embeddings) dominate its size."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=8000, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=64), add_pooling_layer=False)
    model.get_input_embeddings().weight.requires_grad_(False)
    return model


def test_a_checkpoint_stores_the_trainable_parameters_only(tmp_path, capsys):
    model = _frozen_embeddings_model()
    ck = C.Checkpoints(tmp_path / "ck", FP, frozen=C.frozen_sha256(model))
    (tmp_path / "live").mkdir()
    assert ck.save(2, {"model": C.trainable_state(model)}, tmp_path / "live")
    torch.save({"model": model.state_dict()}, tmp_path / "full.pt")  # what a checkpoint held before
    small = (tmp_path / "ck" / "step-000002" / "state.pt").stat().st_size
    full = (tmp_path / "full.pt").stat().st_size
    with capsys.disabled():
        print(f"\ncheckpoint weights: {full / 1e6:.2f} MB full model -> {small / 1e6:.2f} MB trainable only")
    assert small < full / 4  # 8000 x 32 frozen embeddings of ~300k parameters
    state = ck.latest()
    assert "embeddings.word_embeddings.weight" not in state["model"]
    assert set(state["model"]) == {n for n, p in model.named_parameters() if p.requires_grad}

    # resume: the base model (another in-memory copy of it), then the stored parameters -> the same model
    trained = _frozen_embeddings_model()
    with torch.no_grad():
        for p in trained.parameters():
            if p.requires_grad:
                p.add_(1.0)
    ck.save(4, {"model": C.trainable_state(trained)}, tmp_path / "live")
    resumed = _frozen_embeddings_model()
    C.load_trainable(resumed, ck.latest()["model"])
    a, b = trained.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_of_another_frozen_part_is_refused(tmp_path, caplog):
    """A step checkpoint whose frozen tensors are not those of the base model loaded now is refused like a
    damaged one: an older one is tried, and with none usable the run starts afresh."""
    model = _frozen_embeddings_model()
    (tmp_path / "live").mkdir()
    ck = C.Checkpoints(tmp_path / "ck", FP, frozen=C.frozen_sha256(model))
    ck.save(2, {"model": C.trainable_state(model)}, tmp_path / "live")
    other = _frozen_embeddings_model()
    with torch.no_grad():
        other.get_input_embeddings().weight[0, 0] += 1e-3  # one frozen value differs
    assert C.frozen_sha256(other) != ck.frozen
    C.Checkpoints(tmp_path / "ck", FP, frozen=C.frozen_sha256(other)).save(4, {"model": {}}, tmp_path / "live")
    with caplog.at_level(logging.WARNING):
        state = ck.latest()
    assert state["step"] == 2  # the newer one (other frozen part) refused, the older one used
    assert "ignoring checkpoint" in caplog.text and "step-000004" in caplog.text and "frozen" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert C.Checkpoints(tmp_path / "ck", FP, frozen="0" * 64).latest() is None
    assert "starting afresh" in caplog.text
    # the hash covers which parameters are trainable, and the buffers
    unfrozen = _frozen_embeddings_model()
    unfrozen.get_input_embeddings().weight.requires_grad_(True)
    assert C.frozen_sha256(unfrozen) != ck.frozen
    assert C.frozen_sha256(_frozen_embeddings_model()) == ck.frozen  # deterministic


def test_stored_parameters_of_another_model_are_refused(tmp_path):
    model = _frozen_embeddings_model()
    state = C.trainable_state(model)
    with pytest.raises(C.CheckpointError, match="not this model's trainable"):
        C.load_trainable(model, {k: v for k, v in state.items() if "pooler" not in k and "layer.0." not in k})
    with pytest.raises(C.CheckpointError, match="shape"):
        C.load_trainable(model, {**state, "encoder.layer.0.output.dense.bias": torch.zeros(3)})
