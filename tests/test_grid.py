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


# ------------------------------------------------------------------------------------------- the study's runs
def test_grid_runs_of_the_study_follow_its_blocks(repo: Path) -> None:
    """The pre-registered study (configs/study.yaml): the main table is the union of its blocks (each cell with its
    own seeds), the ladder has its own run names and ``steps``, the alpha sweep runs grid.alpha_seeds."""
    from helpers.study import study_params
    from hybridbatch import grid

    params = study_params(repo)
    g = params["grid"]
    main = grid.grid_runs(params, "main")
    trained = main[main["seed"].notna()]
    expected = {f"{f}-{s}-s{seed}" for b in g["main"].values() for f in b["folds"] for s in b["strategies"]
                for seed in b["seeds"]}
    assert set(trained["run"]) == expected and len(trained) == len(expected)
    assert len(expected) == sum(len(b["folds"]) * len(b["strategies"]) * len(b["seeds"]) for b in g["main"].values())
    cells = grid.cell_seeds(params)
    assert cells[("mlqa2xquad", "hybrid")] == list(range(13, 23)) and cells[("xquad2mlqa", "xy")] == list(range(13, 18))
    assert cells[("xquad2mlqa", "xx-mixed")] == [13, 14, 15] and ("xquad2mlqa", "xx-mixed") in cells
    assert main["steps"].isna().all() and list(main.columns) == grid.SPEC_COLUMNS and "steps" in grid.SPEC_COLUMNS
    ladder = grid.grid_runs(params, "ladder")
    rung = ladder[ladder["steps"].notna()]
    assert len(rung) == len(g["ladder"]["steps"]) * len(g["ladder"]["strategies"]) * len(g["ladder"]["seeds"])
    assert "mlqa2xquad-steps480-hybrid-s13" in set(rung["run"]) and set(rung["steps"]) == set(g["ladder"]["steps"])
    assert set(ladder.loc[ladder["steps"].isna(), "run"]) <= expected  # the main budget: main runs
    alpha = grid.grid_runs(params, "alpha")
    assert set(alpha["seed"]) == set(g["alpha_seeds"])


def test_grid_runs_read_an_older_single_product_grid() -> None:
    """A params file of the earlier study (grid.seeds, no blocks): one block, every main run evaluated on Tatoeba,
    the alpha sweep on those seeds, no ladder."""
    from hybridbatch import grid

    folds = {"f": {"train": "mlqa_r", "eval": "xquad_r", "language_order": ["en", "de"]}}
    params = {"folds": folds, "grid": {"folds": ["f"], "strategies": ["xx", "hybrid"], "seeds": [1, 2],
                                       "scaling_fold": "f", "scaling_seeds": [1], "scaling_strategies": [],
                                       "layers": [], "n_languages": [], "alphas": [0.25]}}
    assert grid.main_blocks(params) == {"main": {"folds": ["f"], "strategies": ["xx", "hybrid"], "seeds": [1, 2]}}
    assert grid.alpha_seeds(params) == grid.tatoeba_seeds(params) == [1, 2]
    runs = grid.grid_runs(params)
    assert "ladder" not in set(runs["study"]) and len(runs[runs["study"] == "main"]) == 2 + 4
    assert len(runs[runs["study"] == "alpha"]) == 2 * 3  # per seed: alpha 0.25, the main hybrid (0.5) and xx (1) runs


def test_run_names_of_the_ladder() -> None:
    from hybridbatch import grid

    assert grid.run_name("f", "xy", 13, steps=480) == "f-steps480-xy-s13"
    assert grid.run_name("f", "xy", 13) == "f-xy-s13"
    with pytest.raises(ValueError, match="no training budget"):
        grid.run_name("f", "zeroshot", steps=480)


def test_train_stage_steps_override(tmp_path: Path) -> None:
    """--steps replaces train.steps for one run (the budget ladder) and is refused below 1 with one line."""
    proc = subprocess.run([sys.executable, str(ROOT / "src" / "stages" / "train.py"), "--params", str(ROOT / "params.yaml"),
                           "--run", "r", "--fold", "mlqa2xquad", "--strategy", "xy", "--seed", "1", "--steps", "0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: --steps: 0 < 1"), proc.stderr


def test_fixed_budget_keeps_the_last_step(tmp_path: Path) -> None:
    """train.keep_best false: the saved model is the final step's, the record's best_step is the last step, and
    validation is still logged."""
    from helpers.tiny import make_prepared
    from hybridbatch.params import TrainConfig
    from hybridbatch.training.loop import train

    prepared = make_prepared(tmp_path / "prepared")
    model = make_tiny_model(tmp_path / "model")
    cfg = TrainConfig(batch_size=4, steps=4, warmup_steps=0, max_query_length=32, max_passage_length=48,
                      val_batches=2, eval_every=2, keep_best=False, threads=1, languages=["ar", "de", "en", "es"])
    summary = train(model, prepared, "hybrid", cfg, tmp_path / "out", tmp_path / "live")
    saved = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    assert saved["config"]["best_step"] == saved["config"]["steps"] == 4 and saved["best_step"] is None
    assert [v["step"] for v in saved["validation"]] == [0, 2, 4] and summary["steps"] == 4


def test_the_fake_study_grid_is_a_valid_study_grid() -> None:
    """tests/helpers/fake_results.STUDY_GRID (for the report's tests) passes the one validator."""
    from helpers.fake_results import fake_study_params
    from hybridbatch import grid
    from hybridbatch.params import GridParams

    params = fake_study_params()
    GridParams.model_validate(params["grid"])
    runs = grid.grid_runs(params)
    assert len(runs[(runs["study"] == "main") & runs["seed"].notna()]) == 3 * 3 + 3 * 2 + 2 * 2
    assert len(runs[runs["steps"].notna()]) == 3 * 2
