"""The experiment grid's building blocks: folds, the evaluation sample, the size ladder, alpha endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from helpers.tiny import make_tiny_model
from hybridbatch.data.raw import DATASET_LANGS, load_prepared, paragraph_of, prepare, sample_paragraphs
from hybridbatch.model.encoder import DualEncoder
from hybridbatch.params import FoldError, load_fold
from hybridbatch.sampling.samplers import answer_groups
from hybridbatch.sampling.build import build_sampler

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------- folds
def write_params(tmp_path: Path, folds: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"folds": folds}))
    return path


def test_repository_folds_are_valid_and_cross_dataset(repo: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for name in params["folds"]:
        fold = load_fold(repo / "params.yaml", name)
        assert fold.train != fold.eval
        assert set(fold.language_order) == set(DATASET_LANGS[fold.train])  # the order covers every language
    for name in params["grid"]["folds"] + [params["grid"]["scaling_fold"]]:
        assert name in params["folds"]
    fold = load_fold(repo / "params.yaml", "mlqa2xquad")
    assert fold.first_languages(None) is None
    assert fold.first_languages(2) == list(fold.language_order[:2])
    assert all(n <= len(fold.language_order) for n in params["grid"]["n_languages"])


@pytest.mark.parametrize("spec, message", [
    ({"train": "mlqa_r", "eval": "xquad_r"}, "exactly the keys"),
    ({"train": "mlqa_r", "eval": "mlqa_r", "language_order": ["en"]}, "cross-dataset"),
    ({"train": "mlqa_r", "eval": "xquad_r", "language_order": ["en", "en"]}, "distinct"),
    ({"train": "mlqa_r", "eval": "xquad_r", "language_order": []}, "non-empty"),
])
def test_bad_fold_names_the_file_and_key(tmp_path: Path, spec: dict, message: str) -> None:
    path = write_params(tmp_path, {"f": spec})
    with pytest.raises(FoldError, match=message) as err:
        load_fold(path, "f")
    assert str(path) in str(err.value) and "folds.f" in str(err.value)


def test_unknown_fold_and_too_many_languages(tmp_path: Path) -> None:
    path = write_params(tmp_path, {"f": {"train": "mlqa_r", "eval": "xquad_r", "language_order": ["en", "de"]}})
    with pytest.raises(FoldError, match="'g' is not in the `folds` section"):
        load_fold(path, "g")
    with pytest.raises(FoldError, match="cannot take 3"):
        load_fold(path, "f").first_languages(3)


# --------------------------------------------------------------------------------- evaluation sample
@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    prepare(ROOT / "data" / "raw", out, tatoeba_langs=[])
    return out


@pytest.mark.parametrize("dataset", ["xquad_r", "mlqa_r"])
def test_sample_keeps_whole_parallel_questions_and_their_paragraphs(prepared: Path, dataset: str) -> None:
    qs, cs = load_prepared(prepared, dataset)
    q, c = sample_paragraphs(qs, cs, 0.15, seed=0)
    # every kept question id is kept in every language it exists in
    kept = set(q["qid"])
    assert len(q) == int(qs["qid"].isin(kept).sum())
    # the drawn share of English paragraphs
    en_paras = paragraph_of(qs.loc[qs["lang"] == "en", "answer_key"]).nunique()
    assert paragraph_of(q.loc[q["lang"] == "en", "answer_key"]).nunique() == round(0.15 * en_paras)
    # every answer is a candidate, and every sentence of an answer's paragraph is too
    assert set(q["answer_key"]) <= set(c["key"])
    paragraphs = set(paragraph_of(q["answer_key"]))
    assert set(paragraph_of(c["key"])) == paragraphs
    assert int(paragraph_of(cs["key"]).isin(paragraphs).sum()) == len(c)
    # seeded and deterministic; another seed draws other paragraphs
    q2, c2 = sample_paragraphs(qs, cs, 0.15, seed=0)
    pd.testing.assert_frame_equal(q, q2)
    pd.testing.assert_frame_equal(c, c2)
    assert set(sample_paragraphs(qs, cs, 0.15, seed=1)[0]["qid"]) != kept


def test_sample_fraction_one_is_the_full_set_and_bad_fractions_fail(prepared: Path) -> None:
    qs, cs = load_prepared(prepared, "xquad_r")
    q, c = sample_paragraphs(qs, cs, 1.0, seed=0)
    assert q is qs and c is cs
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"in \(0, 1\]"):
            sample_paragraphs(qs, cs, bad, seed=0)


# ---------------------------------------------------------------------------------------- size ladder
def test_keep_layers_equals_the_base_models_intermediate_layer(tmp_path: Path) -> None:
    """A k-layer model embeds exactly like the first k layers of the base (hidden_states[k], pooled)."""
    base = make_tiny_model(tmp_path / "base", dropout=0.0)
    texts = ["Wie alt ist sie?", "The river flows north into the sea.", "水は北へ流れる。"]
    full = DualEncoder(base).eval()
    tok = full.tokenizer(full.prefix(texts, "passage"), padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = full.model(**tok, output_hidden_states=True).hidden_states[1]
        expected = full.pool(hidden, tok["attention_mask"])
    out = tmp_path / "L1"
    proc = subprocess.run([sys.executable, str(ROOT / "src/stages/shrink_model.py"), "--base", str(base),
                           "--layers", "1", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    small = DualEncoder(out).eval()
    assert small.model.config.num_hidden_layers == 1
    got = small.encode(texts, "passage")
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    ladder = json.loads((out / "ladder.json").read_text())
    counts = full.parameter_counts()
    assert ladder["layers"] == 1 and ladder["parameters"] < counts["parameters"]
    per_layer = counts["non_embedding_parameters"] - ladder["non_embedding_parameters"]
    layer_params = sum(p.numel() for p in full.model.encoder.layer[1].parameters())
    assert per_layer == layer_params  # exactly one layer's parameters removed
    assert ladder["parameters"] - ladder["non_embedding_parameters"] == \
        sum(p.numel() for p in full.model.embeddings.parameters())


def test_shrink_rejects_impossible_sizes(tmp_path: Path) -> None:
    base = make_tiny_model(tmp_path / "base")
    for k in ("0", "3"):
        proc = subprocess.run([sys.executable, str(ROOT / "src/stages/shrink_model.py"), "--base", str(base),
                               "--layers", k, "--out", str(tmp_path / "out")], capture_output=True, text=True)
        assert proc.returncode == 2 and "cannot keep" in proc.stderr and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------- alpha sweep
def test_hybrid_alpha_endpoints_are_exactly_xy_and_xx() -> None:
    """alpha = 0 draws the xy run's batch sequence and alpha = 1 the xx run's: the sweep's endpoints are
    the main runs (each sub-sampler has its own random stream; the coin has another)."""
    rng = np.random.default_rng(0)
    langs = ["ar", "de", "en", "es"]
    langs_of = {f"q{i:03d}": sorted(rng.choice(langs, size=int(rng.integers(2, 5)), replace=False).tolist())
                for i in range(200)}
    answers = {(q, lang): f"{lang}:{q}" for q, ls in langs_of.items() for lang in ls}
    groups = answer_groups(answers)

    def batches(strategy: str, alpha: float = 0.5):
        s = build_sampler(strategy, langs_of, groups, batch_size=8, seed=5, alpha=alpha, steps=30)
        return [s.next_batch() for _ in range(30)]

    assert batches("hybrid", 0.0) == batches("xy")
    assert batches("hybrid", 1.0) == batches("xx")
    mixed = batches("hybrid", 0.5)
    assert {b.kind for b in mixed} == {"xx", "xy"}


def test_train_stage_rejects_alpha_for_other_strategies(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "src/stages/train.py"), "--params", str(ROOT / "params.yaml"),
                           "--run", "r", "--fold", "mlqa2xquad", "--strategy", "xx", "--seed", "1",
                           "--alpha", "0.3"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "--alpha only applies to --strategy hybrid" in proc.stderr
    proc = subprocess.run([sys.executable, str(ROOT / "src/stages/train.py"), "--params", str(ROOT / "params.yaml"),
                           "--run", "r", "--fold", "nofold", "--strategy", "xx", "--seed", "1"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "'nofold' is not in the `folds` section" in proc.stderr
