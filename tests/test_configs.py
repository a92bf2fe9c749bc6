"""Named configurations (configs/*.yaml overlays): every key exists in params.yaml, the merged sections
validate, and the offline two-source configuration really trains from two sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers.tiny import REPO, make_prepared, make_tiny_model
from hybridbatch.overlays import overlay_overrides
from hybridbatch.params import SECTIONS, TrainParams
from hybridbatch.data.sources import load_source
from hybridbatch.params import TrainConfig
from hybridbatch.training.loop import build_training_sampler, train
from hybridbatch.data.training import TrainingData

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def merged(overlay: Path) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in (yaml.safe_load(overlay.read_text()) or {}).items():
        params[section].update(values)
    return params


def train_config(params: dict) -> TrainConfig:
    """Every section of the merged params validated by the one validator, then the train section's config."""
    for name, model in SECTIONS.items():
        if name in params:
            model.model_validate(params[name])
    section = TrainParams.model_validate(params["train"]).model_dump(exclude={"base_model", "prepared_dir"})
    return TrainConfig(**section)


@pytest.mark.parametrize("overlay", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_overlay_keys_exist_and_sections_validate(overlay):
    sets = overlay_overrides(overlay, REPO / "params.yaml")
    assert sets and all("=" in s for s in sets)
    for s in sets:  # DVC parses each value as YAML: JSON round-trips
        path, value = s.split("=", 1)
        section, key = path.split(".", 1)
        assert yaml.safe_load(value) == yaml.safe_load(overlay.read_text())[section][key]
    train_config(merged(overlay))


def test_paper_config_is_the_papers_setting():
    cfg = train_config(merged(REPO / "configs" / "paper.yaml"))
    assert (cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.keep_best) == (100, 3e-5, 0.01, True)
    assert not cfg.freeze_word_embeddings


def test_overlay_typo_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  batchsize: 100\n")
    with pytest.raises(SystemExit, match="train.batchsize is not a key"):
        overlay_overrides(bad, REPO / "params.yaml")


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two")
    params = merged(REPO / "configs" / "two-sources.yaml")
    spec = params["train"]["sources"][0]
    spec = {**spec, "raw_dir": str(REPO / spec["raw_dir"]),
            "exclude_from": [str(REPO / p) for p in spec["exclude_from"]]}
    cfg = TrainConfig(**{**train_config(params).model_dump(), "sources": [spec], "batch_size": 4, "steps": 3,
                         "warmup_steps": 0, "max_query_length": 32, "max_passage_length": 48, "val_batches": 2,
                         "eval_every": 3, "threads": 1, "languages": ["ar", "de", "en", "es"]})
    return tmp, cfg, make_prepared(tmp / "prepared")


def test_two_source_batches_each_come_from_one_source(two_sources):
    _, cfg, prepared = two_sources
    sources = {"mlqa_r": TrainingData.from_prepared(prepared, "mlqa_r", cfg.languages),
               "squad": load_source(cfg.sources[0])}
    sampler = build_training_sampler("hybrid", sources, cfg)
    batches = [sampler.next_batch() for _ in range(300)]
    for b in batches:
        assert {p.qid.startswith("squad:") for p in b.pairs} == {b.source == "squad"}
    share = np.mean([b.source == "squad" for b in batches])
    expected = sources["squad"].pair_count() / sum(s.pair_count() for s in sources.values())
    assert abs(share - expected) < 0.1, (share, expected)


def test_train_with_two_sources_end_to_end(two_sources):
    tmp, cfg, prepared = two_sources
    model = make_tiny_model(tmp / "model")
    summary = train(model, prepared, "hybrid", cfg, tmp / "out", tmp / "live")
    assert summary["sources"] == ["mlqa_r", "squad"] and sum(summary["batches"].values()) == 3
    assert "it" in summary["train_languages"]  # Italian comes only from the second source
    saved = json.loads((tmp / "out" / "training_summary.json").read_text())
    assert saved["sources"] == ["mlqa_r", "squad"]


def test_the_study_overlay_is_the_preregistered_design(tmp_path):
    """configs/study.yaml is docs/PREREGISTRATION.md §5: a fixed budget, X-X-mono / X-Y / Hybrid x 10 seeds on
    mlqa2xquad and x 5 on xquad2mlqa, X-X (mixed) x 3 on both, a 4x budget ladder x 3 seeds; it validates."""
    from helpers.study import write_study_params
    from hybridbatch import grid
    from hybridbatch.params import read_params, validate_all
    from hybridbatch.strategies import TRAINED

    path = write_study_params(tmp_path / "params.yaml")
    validate_all(path, strategies=TRAINED)
    params = read_params(path)
    assert params["train"]["keep_best"] is False
    runs = grid.grid_runs(params, "main")
    trained = runs[runs["seed"].notna()]
    cells = trained.groupby(["fold", "strategy"])["seed"].nunique().to_dict()
    for strategy in ("xx", "xy", "hybrid"):
        assert cells[("mlqa2xquad", strategy)] == 10 and cells[("xquad2mlqa", strategy)] >= 5
    assert cells[("mlqa2xquad", "xx-mixed")] == cells[("xquad2mlqa", "xx-mixed")] == 3
    ladder = params["grid"]["ladder"]
    assert ladder["steps"] == [4 * params["train"]["steps"]] and len(ladder["seeds"]) == 3
    assert set(ladder["strategies"]) == {"xx", "xy", "hybrid"}
    assert len(grid.trained_runs(params)) == 78
    assert "configs/study.yaml" in (REPO / "docs" / "PREREGISTRATION.md").read_text()
