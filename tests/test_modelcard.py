"""Model cards (hybridbatch.model.card, src/stages/model_card.py) and the hub export (src/stages/export_model.py),
offline, on a tiny checkpoint with a fake training summary and metrics."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
import yaml

from helpers.tiny import REPO, make_tiny_model
from hybridbatch.model import card as modelcard
from hybridbatch.model.card import (base_model_info, card_weights_sha256, combined_license, parse_card, render,
                                   run_config)

RUN = "mlqa2xquad-hybrid-s13"
FRONT_MATTER_KEYS = {"language", "license", "library_name", "tags", "base_model", "datasets", "pipeline_tag",
                     "model_name"}


def _load_stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "src" / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


model_card = _load_stage("model_card")
export_model = _load_stage("export_model")


def fake_summary(run: str = RUN, strategy: str = "hybrid") -> dict:
    hybrid = strategy == "hybrid"
    config = {"alpha": 0.5 if hybrid else None, "alpha_schedule": "exact" if hybrid else None,
              "base_model": "models/e5-small", "batch_size": 16, "best_step": 10, "eval_dataset": "xquad_r",
              "fold": "mlqa2xquad", "layers": 2, "mono_share": 0.55, "mono_share_kept": 0.6, "n_languages": None,
              "non_embedding_parameters": 25000, "parameters": 8_000_000, "run": run, "seed": 13, "steps": 20,
              "strategy": strategy, "train_dataset": "mlqa_r", "train_languages": ["ar", "de", "en", "es"]}
    return {"config": config, "strategy": strategy, "steps": 20, "batch_size": 16, "sources": ["mlqa_r"],
            "train_languages": ["ar", "de", "en", "es"], "batches": {"xx": 11, "xy": 9},
            "pairs_by_language": {"ar-ar": 16}, "best_step": 10, "train_questions": 237,
            "validation": [{"step": 0, "val_loss": 0.91}, {"step": 10, "val_loss": 0.4321},
                           {"step": 20, "val_loss": 0.5}],
            "parameters": 8_000_000, "non_embedding_parameters": 25000}


def fake_metrics(run: str = RUN) -> dict:
    return {"config": {"run": run, "strategy": "hybrid", "fold": "mlqa2xquad", "seed": 13, "alpha": 0.5},
            "xquad_r": {"run": run, "languages": ["ar", "de", "el", "en"], "candidate_text": "sentence",
                        "map_mo": 0.8123, "map_cr": 0.7456, "map_mul": 0.6789, "r1_mo": 0.701, "r1_cr": 0.655,
                        "r10_mul": 0.5432, "ndcg10_mo": 0.85, "rank_distance": 57.678, "same_lang@1": 0.9,
                        "same_lang@10": 0.25, "n_queries": 40, "n_candidates": 120, "sample_fraction": 0.1,
                        "seen": {"languages": ["ar", "de", "en"], "map_mo": 0.82, "map_cr": 0.75, "map_mul": 0.68,
                                 "rank_distance": 50.0},
                        "unseen": {"languages": ["el"], "map_mo": 0.79, "map_cr": 0.73, "map_mul": 0.66,
                                   "rank_distance": 60.0}},
            "tatoeba": {"mean": 0.9161, "x2en": 0.92, "en2x": 0.91, "per_language": {"ar": {}, "de": {}}}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny checkpoint in the layout training writes: DualEncoder.save + training_summary.json."""
    from hybridbatch.model.encoder import DualEncoder

    root = tmp_path_factory.mktemp("card")
    tiny = make_tiny_model(root / "tiny", dropout=0.0)
    model_dir = root / "models" / RUN
    DualEncoder(tiny).save(model_dir)
    (model_dir / "training_summary.json").write_text(json.dumps(fake_summary(), indent=2, sort_keys=True))
    metrics = root / "results" / RUN / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps(fake_metrics(), indent=2, sort_keys=True))
    return model_dir, metrics


# -- render ------------------------------------------------------------------------------------------------

def test_render_front_matter_is_hugging_face_metadata():
    text = render(fake_summary(), fake_metrics())
    meta, body = parse_card(text)
    assert set(meta) == FRONT_MATTER_KEYS
    assert meta["pipeline_tag"] == "sentence-similarity"
    assert meta["library_name"] == "sentence-transformers"
    assert meta["license"] == "cc-by-nc-4.0"  # MLQA-R is non-commercial
    assert meta["base_model"] == "intfloat/multilingual-e5-small"
    assert meta["datasets"] == ["facebook/mlqa"]
    assert meta["model_name"] == RUN
    assert meta["language"] == ["ar", "de", "el", "en", "es"]  # trained on + evaluated on
    assert "sentence-transformers" in meta["tags"] and "batch-strategy-hybrid" in meta["tags"]
    assert body.lstrip().startswith(f"# {RUN}")
    # the hub's own parser reads the same metadata
    from huggingface_hub import ModelCard

    data = ModelCard(text).data.to_dict()
    assert data["license"] == "cc-by-nc-4.0" and data["pipeline_tag"] == "sentence-similarity"
    assert data["base_model"] == "intfloat/multilingual-e5-small"


def test_render_shows_settings_and_metrics():
    text = render(fake_summary(), fake_metrics(), hyperparameters={"lr": 3e-5, "temperature": 0.05, "other": 1})
    for needle in ("| strategy | `hybrid` (Hybrid) |", "| alpha (P(monolingual batch), hybrid only) | 0.5 |",
                   "| alpha schedule | `exact` |", "| realised monolingual share (all steps) | 0.55 |",
                   "| monolingual share of the kept steps | 0.6 |",
                   "| kept step (early stopping on validation loss) | 10 |",
                   "| batch size (pairs) | 16 |", "| batches by kind | xx: 11, xy: 9 |", "| seed | 13 |",
                   "| 10 (kept) | 0.4321 |", "| lr | 3e-05 |", "| temperature | 0.05 |",
                   "| Mo. (monolingual) | 0.812 | 0.701 | n/a | 0.850 | n/a |",
                   "| Cr. (cross-lingual) | 0.746 | 0.655 |", "| Mul. (multilingual) | 0.679 | n/a | 0.543 |",
                   "Rank distance** (Mul.; lower = less language bias): 57.7", "k=1: 0.900, k=10: 0.250",
                   "**Unseen languages** (el): mAP Mo. 0.790", "Mean 0.916", "a seeded 10% sample",
                   "CC BY-NC 4.0", "Elmahdy, Adel and Lin, Sheng-Chieh and Ahmad, Amin", "2408.10536",
                   "research use only"):
        assert needle in text, needle
    assert "| other |" not in text  # only the declared hyperparameters


def test_render_is_deterministic_and_dateless():
    a, b = render(fake_summary(), fake_metrics()), render(fake_summary(), fake_metrics())
    assert a == b
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", a)


def test_render_reads_older_records_tolerantly():
    """Results committed before alpha_schedule / mono_share existed, and a summary without a config block."""
    summary = fake_summary()
    old_summary = {k: v for k, v in summary.items() if k != "config"}
    old_metrics = fake_metrics()
    old_metrics["config"] = {"run": RUN, "strategy": "hybrid", "alpha": 0.5, "base_model": "models/e5-small",
                             "train_languages": ["ar", "de"]}
    text = render(old_summary, old_metrics)
    assert "| alpha schedule | n/a |" in text and "| realised monolingual share (all steps) | n/a |" in text
    assert "| optimiser steps | 20 |" in text  # from the summary's top level
    meta, _ = parse_card(text)
    assert meta["model_name"] == RUN and meta["base_model"] == "intfloat/multilingual-e5-small"
    # no metrics at all: a card without an evaluation section
    bare = render(summary, None)
    assert "## Evaluation" not in bare and parse_card(bare)[0]["model_name"] == RUN


def test_render_reads_a_committed_metrics_file():
    path = REPO / "results" / RUN / "metrics.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    metrics = json.loads(path.read_text())
    text = render(fake_summary(), metrics)
    block = next(iter(modelcard.eval_blocks(metrics).values()))
    assert f"{block['map_mo']:.3f}" in text and f"{block['map_mul']:.3f}" in text
    assert run_config(fake_summary(), metrics)["mono_share"] == 0.55  # the checkpoint's record wins


@pytest.mark.parametrize("licences, expected", [
    (["cc-by-nc-4.0", "mit"], "cc-by-nc-4.0"),
    (["cc-by-sa-4.0", "mit"], "cc-by-sa-4.0"),
    (["cc-by-4.0", "cc-by-sa-4.0"], "cc-by-sa-4.0"),
    (["cc-by-nc-4.0", "cc-by-sa-4.0"], "other"),  # NC and SA cannot be combined into one
    (["mit", None], "other"),
    ([], "other"),
])
def test_combined_license(licences, expected):
    assert combined_license(licences) == expected


def test_licence_and_datasets_follow_the_training_data():
    summary = fake_summary()
    summary["sources"] = ["xquad_r"]
    meta, _ = parse_card(render(summary, fake_metrics()))
    assert meta["license"] == "cc-by-sa-4.0" and meta["datasets"] == ["google-research-datasets/xquad_r"]
    summary["sources"] = ["mlqa_r", "custom"]
    meta, _ = parse_card(render(summary, fake_metrics()))
    assert meta["license"] == "other" and meta["license_name"]
    assert parse_card(render(summary, fake_metrics(), license="mit"))[0]["license"] == "mit"


def test_base_model_info():
    assert base_model_info("models/e5-small")[0] == "intfloat/multilingual-e5-small"
    hub, licence, note = base_model_info("models/e5-small-L4")
    assert hub == "intfloat/multilingual-e5-small" and licence == "mit" and "first 4" in note
    assert base_model_info("models/xlm-roberta-large")[0] == "FacebookAI/xlm-roberta-large"
    assert base_model_info("sentence-transformers/LaBSE")[0] == "sentence-transformers/LaBSE"
    assert base_model_info("models/something-else") == (None, None, "")
    summary = fake_summary()
    summary["config"]["base_model"] = "models/something-else"
    meta, _ = parse_card(render(summary, fake_metrics()))
    assert "base_model" not in meta  # never a guessed hub id


def test_parse_card_rejects_a_card_without_front_matter():
    with pytest.raises(ValueError):
        parse_card("# no metadata\n")
    with pytest.raises(ValueError):
        parse_card("---\nlicense: [unclosed\n---\n")


# -- the stage ---------------------------------------------------------------------------------------------

def _card_args(model_dir, metrics, out, run=RUN):
    return ["--run", run, "--model", str(model_dir), "--metrics", str(metrics), "--out", str(out)]


def test_stage_writes_the_card_deterministically(checkpoint, tmp_path):
    model_dir, metrics = checkpoint
    out = tmp_path / "cards" / RUN / "README.md"
    assert model_card.main(_card_args(model_dir, metrics, out)) == 0
    first = out.read_bytes()
    assert model_card.main(_card_args(model_dir, metrics, out)) == 0
    assert out.read_bytes() == first
    text = first.decode()
    meta, _ = parse_card(text)
    assert set(meta) == FRONT_MATTER_KEYS and meta["library_name"] == "sentence-transformers"
    assert card_weights_sha256(text) == model_card.sha256_file(model_dir / "model.safetensors")
    assert "query prefix `query: `" in text and "0.812" in text
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no temporary left behind
    assert not (model_dir / "README.md").exists()  # the checkpoint directory is never written to


def test_stage_shows_params_hyperparameters(checkpoint, tmp_path):
    model_dir, metrics = checkpoint
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": {"base_model": "models/e5-small", "prepared_dir": "data/prepared",
                                                "lr": 1.0e-4, "temperature": 0.02}}))
    out = tmp_path / "README.md"
    assert model_card.main([*_card_args(model_dir, metrics, out), "--params", str(params)]) == 0
    text = out.read_text()
    assert "| lr | 0.0001 |" in text and "| temperature | 0.02 |" in text


def test_stage_refuses_mismatched_or_missing_inputs(checkpoint, tmp_path, capsys):
    model_dir, metrics = checkpoint
    out = tmp_path / "README.md"
    assert model_card.main(_card_args(model_dir, metrics, out, run="xquad2mlqa-xy-s14")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "mlqa2xquad-hybrid-s13" in err
    other = tmp_path / "metrics.json"
    other.write_text(json.dumps(fake_metrics("xquad2mlqa-xy-s14")))
    assert model_card.main(_card_args(model_dir, other, out)) == 2
    assert "xquad2mlqa-xy-s14" in capsys.readouterr().err
    assert model_card.main(_card_args(tmp_path / "nope", metrics, out)) == 2
    assert model_card.main(_card_args(model_dir, tmp_path / "absent.json", out)) == 2
    assert not out.exists()


# -- the export --------------------------------------------------------------------------------------------

def test_export_bundles_model_and_card_and_loads(checkpoint, tmp_path, capsys):
    from hybridbatch.model.encoder import DualEncoder
    import torch

    model_dir, metrics = checkpoint
    card = tmp_path / "cards" / RUN / "README.md"
    assert model_card.main(_card_args(model_dir, metrics, card)) == 0
    out = tmp_path / "export" / RUN
    assert export_model.main(["--model", str(model_dir), "--card", str(card), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "upload_folder(folder_path=" in printed and f"hybridbatch-{RUN}" in printed
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "README.md",
            "modules.json", "hybridbatch_encoder.json", "training_summary.json"} <= names
    assert (out / "README.md").read_text() == card.read_text()
    assert (out / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
    texts = ["Where is the Eiffel Tower?", "La tour Eiffel est à Paris."]
    exported, original = DualEncoder(out), DualEncoder(model_dir)
    assert exported.settings == original.settings
    assert torch.equal(exported.encode(texts, "query"), original.encode(texts, "query"))
    # exporting again replaces the directory
    assert export_model.main(["--model", str(model_dir), "--card", str(card), "--out", str(out)]) == 0


def test_export_refuses_a_card_of_another_run_or_other_weights(checkpoint, tmp_path, capsys):
    model_dir, metrics = checkpoint
    out = tmp_path / "export"
    other = tmp_path / "other.md"
    other.write_text(render(fake_summary("xquad2mlqa-xy-s14", "xy"), fake_metrics("xquad2mlqa-xy-s14")))
    assert export_model.main(["--model", str(model_dir), "--card", str(other), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "xquad2mlqa-xy-s14" in err
    stale = tmp_path / "stale.md"
    stale.write_text(render(fake_summary(), fake_metrics(), weights_sha256="0" * 64))
    assert export_model.main(["--model", str(model_dir), "--card", str(stale), "--out", str(out)]) == 2
    assert "SHA-256" in capsys.readouterr().err
    assert export_model.main(["--model", str(model_dir), "--card", str(tmp_path / "none.md"), "--out", str(out)]) == 2
    no_meta = tmp_path / "plain.md"
    no_meta.write_text("# a card without metadata\n")
    assert export_model.main(["--model", str(model_dir), "--card", str(no_meta), "--out", str(out)]) == 2
    assert not out.exists()


def test_export_refuses_an_incomplete_checkpoint(checkpoint, tmp_path, capsys):
    import shutil

    model_dir, metrics = checkpoint
    card = tmp_path / "README.md"
    assert model_card.main(_card_args(model_dir, metrics, card)) == 0
    broken = tmp_path / RUN
    shutil.copytree(model_dir, broken)
    (broken / "tokenizer.json").unlink()
    assert export_model.main(["--model", str(broken), "--card", str(card), "--out", str(tmp_path / "x")]) == 2
    assert "tokenizer.json" in capsys.readouterr().err
