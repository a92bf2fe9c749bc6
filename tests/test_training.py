"""Training loop: exact resume after SIGKILL, best checkpoint, GradCache = plain step, bf16, hard negatives,
sentence-transformers compatibility of the saved checkpoints. Tiny random model, real tokenizer, real data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from helpers.tiny import REPO, make_prepared, make_tiny_model
from hybridbatch.model.encoder import DualEncoder
from hybridbatch.params import TrainConfig
from hybridbatch.sampling.samplers import answer_groups
from hybridbatch.sampling.build import build_sampler
from hybridbatch.training.loop import KILL_ENV, Trainer, validation_batches
from hybridbatch.data.training import TrainingData

BASE = dict(batch_size=4, steps=6, warmup_steps=1, lr=1e-3, max_query_length=32, max_passage_length=48,
            val_batches=2, eval_every=2, checkpoint_every=2, threads=1, seed=3)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return make_prepared(tmp_path_factory.mktemp("prepared"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tiny_nodropout(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny0") / "model", dropout=0.0)


def run_train(tmp: Path, model: Path, prepared: Path, name: str, cfg: dict, env_extra: dict | None = None,
              checkpoint_dir: Path | None = None) -> subprocess.CompletedProcess:
    code = ("import json, sys; from hybridbatch.training.loop import train; from hybridbatch.params import TrainConfig; "
            "from hybridbatch.params import setup_logging; setup_logging(); "
            "a = json.loads(sys.argv[1]); "
            "train(a['model'], a['prepared'], 'hybrid', TrainConfig(**a['cfg']), a['out'], a['live'], a['ckpt'])")
    args = {"model": str(model), "prepared": str(prepared), "cfg": cfg, "out": str(tmp / name / "model"),
            "live": str(tmp / name / "live"), "ckpt": str(checkpoint_dir or tmp / name / "ckpt")}
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}", **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", code, json.dumps(args)], env=env, capture_output=True, text=True)


def losses(live: Path) -> list[float]:
    return pd.read_csv(live / "plots" / "metrics" / "train" / "loss.tsv", sep="\t")["loss"].tolist()


@pytest.mark.parametrize("freeze", [False, True], ids=["all-trained", "frozen-word-embeddings"])
def test_sigkilled_run_resumes_to_identical_weights(tmp_path, tiny, prepared, freeze):
    cfg = {**BASE, "freeze_word_embeddings": freeze}
    ref = run_train(tmp_path, tiny, prepared, "ref", cfg)
    assert ref.returncode == 0, ref.stderr[-3000:]

    killed = run_train(tmp_path, tiny, prepared, "run", cfg, {KILL_ENV: "5"})
    assert killed.returncode == -9, killed.stderr[-3000:]  # SIGKILL after step 5; last checkpoint at 4
    assert not (tmp_path / "run" / "model").exists() and not (tmp_path / "run" / "live").exists()
    assert sorted(p.name for p in (tmp_path / "run" / "ckpt").glob("step-*")) == ["step-000002", "step-000004"]
    # the checkpoint holds the trainable parameters only: frozen word embeddings come from the base model
    stored = torch.load(tmp_path / "run" / "ckpt" / "step-000004" / "state.pt", weights_only=False)["trainer"]["model"]
    assert ("embeddings.word_embeddings.weight" in stored) is not freeze and len(stored) > 10

    resumed = run_train(tmp_path, tiny, prepared, "run", cfg)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from the checkpoint at step 4" in resumed.stderr
    a = load_file(tmp_path / "ref" / "model" / "model.safetensors")
    b = load_file(tmp_path / "run" / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the whole checkpoint directory is a function of the inputs (no timings): DVC sees the same output
    for name in ("training_summary.json", "config.json", "tokenizer.json", "hybridbatch_encoder.json"):
        assert (tmp_path / "ref" / "model" / name).read_bytes() == (tmp_path / "run" / "model" / name).read_bytes()
    assert losses(tmp_path / "run" / "live") == losses(tmp_path / "ref" / "live")  # 6 rows, no duplicates
    assert len(losses(tmp_path / "ref" / "live")) == 6
    assert not (tmp_path / "run" / "ckpt").exists()  # removed after success


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path, tiny, prepared):
    killed = run_train(tmp_path, tiny, prepared, "run", BASE, {KILL_ENV: "3"})
    assert killed.returncode == -9
    other = run_train(tmp_path, tiny, prepared, "run", {**BASE, "lr": 5e-4})
    assert other.returncode == 0, other.stderr[-3000:]
    assert "ignoring checkpoint" in other.stderr and "resuming" not in other.stderr


def test_best_checkpoint_is_the_one_kept(tmp_path, tiny, prepared):
    cfg = {**BASE, "lr": 5e-2, "warmup_steps": 0, "eval_every": 1, "steps": 5}  # a too-large lr: val loss rises
    done = run_train(tmp_path, tiny, prepared, "best", cfg)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "best" / "model" / "training_summary.json").read_text())
    history = {h["step"]: h["val_loss"] for h in summary["validation"] if h["step"] > 0}
    assert summary["best_step"] == min(history, key=history.get)
    # the saved weights really are the best step's: recompute their validation loss
    c = TrainConfig(**cfg)
    data = TrainingData.from_prepared(prepared, c.dataset, c.languages)
    _, val_data = data.split(c.val_fraction, c.seed)
    trainer = Trainer(DualEncoder(tmp_path / "best" / "model"), c)
    assert trainer.validate(val_data, validation_batches(val_data, c)) == pytest.approx(
        history[summary["best_step"]], rel=1e-5)


def _steps(model: Path, prepared: Path, n: int, **overrides) -> tuple[list[float], dict]:
    cfg = TrainConfig(**{**BASE, **overrides})
    data = TrainingData.from_prepared(prepared, cfg.dataset)
    sampler = build_sampler("hybrid", data.langs_of, answer_groups(data.answer_keys), cfg.batch_size, 0,
                            steps=cfg.steps)
    torch.manual_seed(0)
    trainer = Trainer(DualEncoder(model), cfg)
    out = [trainer.step(data, sampler.next_batch(), i) for i in range(n)]
    grads = {k: v.grad.clone() for k, v in trainer.encoder.model.named_parameters() if v.grad is not None}
    return out, grads  # the (clipped) gradients of the last step


@pytest.mark.parametrize("hard_negatives", [0, 2])
def test_grad_cache_step_equals_plain_step(tiny_nodropout, prepared, hard_negatives):
    """Same loss trajectory over 3 steps; same gradients at the first step (same weights going in)."""
    plain_loss, _ = _steps(tiny_nodropout, prepared, 3, hard_negatives=hard_negatives)
    cached_loss, _ = _steps(tiny_nodropout, prepared, 3, hard_negatives=hard_negatives, grad_cache_chunk=1)
    np.testing.assert_allclose(cached_loss, plain_loss, rtol=1e-4)
    _, plain = _steps(tiny_nodropout, prepared, 1, hard_negatives=hard_negatives)
    _, cached = _steps(tiny_nodropout, prepared, 1, hard_negatives=hard_negatives, grad_cache_chunk=1)
    assert plain.keys() == cached.keys() and len(plain) > 10
    for k in plain:
        torch.testing.assert_close(cached[k], plain[k], rtol=1e-4, atol=1e-6)  # float summation order


def test_bf16_autocast_runs_and_stays_close_to_fp32(tiny_nodropout, prepared):
    fp32, _ = _steps(tiny_nodropout, prepared, 1)
    bf16, _ = _steps(tiny_nodropout, prepared, 1, precision="bf16")
    assert bf16[0] == pytest.approx(fp32[0], rel=0.05) and bf16[0] != fp32[0]


def test_hard_negatives_are_the_answer_paragraphs_other_sentences(prepared):
    data = TrainingData.from_prepared(prepared, "mlqa_r")
    cands = pd.read_parquet(prepared / "candidates.parquet")
    cands = cands[cands["dataset"] == "mlqa_r"]
    for (qid, lang), key in list(data.answer_keys.items())[:50]:
        paragraph = key.rsplit(":", 1)[0]
        expected = cands[(cands["key"].str.rsplit(":", n=1).str[0] == paragraph) & (cands["key"] != key)]
        assert sorted(data.negatives[qid, lang]) == sorted(expected["sentence"])
        assert data.answers[qid, lang] not in data.negatives[qid, lang]
    batch = build_sampler("xy", data.langs_of, answer_groups(data.answer_keys), 4, 0).next_batch()
    q, p, n = data.texts(batch, 3, np.random.default_rng(0))
    assert len(q) == len(p) == 4 and len(n) == 12
    for i, pair in enumerate(batch.pairs):  # pair i's negatives come from its passage-language paragraph
        pool = data.negatives[pair.qid, pair.passage_lang] or None
        if pool:
            assert set(n[3 * i:3 * i + 3]) <= set(pool)
    assert data.texts(batch, 3, np.random.default_rng(0)) == (q, p, n)


def test_saved_checkpoint_loads_in_sentence_transformers(tmp_path, tiny):
    from sentence_transformers import SentenceTransformer

    enc = DualEncoder(tiny)
    enc.save(tmp_path / "saved")
    texts = ["Wie viele Punkte gab die Verteidigung ab?", "黑豹队的防守只丢了308分。", "x"]
    st = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    ours = DualEncoder(tmp_path / "saved")
    for kind in ("query", "passage"):
        theirs = torch.as_tensor(st.encode(texts, prompt_name=kind, convert_to_numpy=True))
        torch.testing.assert_close(theirs, ours.encode(texts, kind), rtol=1e-4, atol=1e-5)


def test_validation_with_hard_negatives_is_deterministic(tiny_nodropout, prepared):
    cfg = TrainConfig(**{**BASE, "hard_negatives": 2})
    data = TrainingData.from_prepared(prepared, cfg.dataset)
    _, val_data = data.split(0.2, cfg.seed)
    batches = validation_batches(val_data, cfg)
    trainer = Trainer(DualEncoder(tiny_nodropout), cfg)
    first = trainer.validate(val_data, batches)
    assert np.isfinite(first) and trainer.validate(val_data, batches) == first
    plain = Trainer(DualEncoder(tiny_nodropout), TrainConfig(**BASE)).validate(val_data, batches)
    assert plain != first  # the negatives enter the loss


def test_validation_parts_are_the_mono_and_cross_batches_of_the_same_loss(tiny_nodropout, prepared):
    """The monolingual and cross-lingual validation losses come from the same batches as the combined one, which
    stays exactly the mean that early stopping compares."""
    cfg = TrainConfig(**{**BASE, "val_batches": 4})
    data = TrainingData.from_prepared(prepared, cfg.dataset)
    _, val_data = data.split(0.2, cfg.seed)
    batches = validation_batches(val_data, cfg)
    assert [b.kind for b in batches] == ["xx", "xx", "xy", "xy"]
    trainer = Trainer(DualEncoder(tiny_nodropout), cfg)
    per_batch = trainer.validation_losses(val_data, batches)
    combined, parts = trainer.validate_parts(val_data, batches)
    assert combined == trainer.validate(val_data, batches) == float(np.mean(per_batch))
    assert parts == {"mono": float(np.mean(per_batch[:2])), "cross": float(np.mean(per_batch[2:]))}
    only_mono = trainer.validate_parts(val_data, batches[:2])[1]
    assert only_mono["cross"] is None and only_mono["mono"] == parts["mono"]


def test_training_shows_the_validation_parts_and_leaves_no_checkpoint_directory(tmp_path, tiny, prepared):
    """A fresh run: the validation loss, monolingual and cross-lingual, in the log lines and as separate dvclive
    curves (the combined curve unchanged: the mean of the two, one batch each); checkpoints/<run>/ removed."""
    done = run_train(tmp_path, tiny, prepared, "run", BASE)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "run" / "ckpt").exists()
    val = tmp_path / "run" / "live" / "plots" / "metrics" / "val"
    curves = {name: pd.read_csv(val / f"{name}.tsv", sep="\t") for name in ("loss", "loss_mono", "loss_cross")}
    steps = curves["loss"]["step"].tolist()
    assert len(steps) == 4 and curves["loss_mono"]["step"].tolist() == curves["loss_cross"]["step"].tolist() == steps
    both = (curves["loss_mono"]["loss_mono"] + curves["loss_cross"]["loss_cross"]) / 2
    np.testing.assert_allclose(curves["loss"]["loss"], both, rtol=1e-6)
    summary = json.loads((tmp_path / "run" / "model" / "training_summary.json").read_text())
    assert [h["val_loss"] for h in summary["validation"]] == pytest.approx(curves["loss"]["loss"].tolist())
    assert all(set(h) == {"step", "val_loss"} for h in summary["validation"])  # the saved record is unchanged
    logged = [line for line in done.stderr.splitlines() if "/6: validation loss" in line]
    assert len(logged) == 4 and "step 6/6: validation loss" in logged[-1]
    assert "monolingual" in logged[-1] and "cross-lingual" in logged[-1]
