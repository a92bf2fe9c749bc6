"""Model cards (hybridbatch.model.card, src/stages/model_card.py) and the hub export (src/stages/export_model.py),
offline, on a tiny checkpoint with a fake training summary and metrics."""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import json
import re
import tomllib

import pytest
import yaml

from helpers.tiny import REPO, make_tiny_model
from hybridbatch.model import card as modelcard
from hybridbatch.model.card import (BASELINE_PREFIX, TEMPLATE, base_model_info, card_run_name, card_weights_sha256,
                                   combined_license, parse_card, render, run_config, with_repo_id)

RUN = "mlqa2xquad-hybrid-s13"
# no `datasets`: the training set, MLQA-R, is not on the Hugging Face hub (facebook/mlqa is the QA set, not it)
FRONT_MATTER_KEYS = {"language", "license", "library_name", "tags", "base_model", "pipeline_tag", "model-index"}


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


def fake_baseline() -> dict:
    """The fold's zero-shot baseline on the same pool: every number 0.05 off the run's."""
    metrics = fake_metrics("mlqa2xquad-zeroshot")
    metrics["config"] = {"run": "mlqa2xquad-zeroshot", "strategy": "zeroshot", "fold": "mlqa2xquad",
                         "base_model": "models/e5-small", "eval_dataset": "xquad_r"}
    block = metrics["xquad_r"]
    for key in ("map_mo", "r1_mo", "map_cr", "map_mul", "r10_mul"):
        block[key] += 0.05 if key.endswith("_mo") else -0.05
    block["rank_distance"] *= 3
    metrics["tatoeba"]["mean"] += 0.01
    return metrics


def index_metrics(text: str) -> dict[tuple[str, str], float]:
    """(dataset type, metric type) -> value, as the hub's own parser reads a card's model-index."""
    from huggingface_hub import ModelCard

    return {(r.dataset_type, r.metric_type): r.metric_value for r in ModelCard(text).data.eval_results}


def usage_code(text: str) -> list[str]:
    """The Python code blocks of a card's Usage section."""
    usage = text.split("\n## Usage\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", usage, re.DOTALL)


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
    baseline = root / "results" / "mlqa2xquad-zeroshot" / "metrics.json"
    baseline.parent.mkdir(parents=True)
    baseline.write_text(json.dumps(fake_baseline(), indent=2, sort_keys=True))
    return model_dir, metrics


# -- render ------------------------------------------------------------------------------------------------

def test_render_front_matter_is_hugging_face_metadata():
    text = render(fake_summary(), fake_metrics(), baseline=fake_baseline())
    meta, body = parse_card(text)
    assert set(meta) == FRONT_MATTER_KEYS
    assert meta["pipeline_tag"] == "sentence-similarity"
    assert meta["library_name"] == "sentence-transformers"
    assert meta["license"] == "cc-by-nc-4.0"  # MLQA-R is non-commercial
    assert meta["base_model"] == "intfloat/multilingual-e5-small"
    assert card_run_name(meta) == RUN and meta["model-index"][0]["name"] == RUN
    assert meta["language"] == ["ar", "de", "el", "en", "es"]  # trained on + evaluated on
    assert "sentence-transformers" in meta["tags"] and "batch-strategy-hybrid" in meta["tags"]
    assert body.lstrip().startswith(f"# {RUN}")
    assert "facebook/mlqa" not in text and "<namespace>" not in text
    assert not re.search(r"\{\{ |\{%", text)  # the template fully rendered
    # the hub's own parser reads the same metadata
    from huggingface_hub import ModelCard

    data = ModelCard(text).data
    assert data.license == "cc-by-nc-4.0" and data.pipeline_tag == "sentence-similarity"
    assert data.base_model == "intfloat/multilingual-e5-small" and data.model_name == RUN


def test_model_index_holds_the_run_and_its_zero_shot_baseline():
    metrics, baseline = fake_metrics(), fake_baseline()
    got = index_metrics(render(fake_summary(), metrics, baseline=baseline))
    xquad = "google-research-datasets/xquad_r"
    for key in ("map_mo", "map_cr", "map_mul", "r1_mo", "r1_cr", "r10_mul", "rank_distance"):
        assert got[(xquad, key)] == pytest.approx(metrics["xquad_r"][key], abs=1e-4), key
        assert got[(xquad, BASELINE_PREFIX + key)] == pytest.approx(baseline["xquad_r"][key], abs=1e-4), key
    assert got[("laser-tatoeba-v1", "acc1_mean")] == pytest.approx(metrics["tatoeba"]["mean"], abs=1e-4)
    assert got[("laser-tatoeba-v1", BASELINE_PREFIX + "acc1_mean")] == pytest.approx(baseline["tatoeba"]["mean"],
                                                                                     abs=1e-4)
    assert ("google-research-datasets/xquad_r", "ndcg10_mo") not in got  # mAP, R@k and rank distance only
    # without a baseline: only the run's own numbers
    alone = index_metrics(render(fake_summary(), metrics))
    assert alone and not any(t.startswith(BASELINE_PREFIX) for _, t in alone)


def test_model_index_names_the_retrieval_sets_never_a_wrong_hub_id():
    from huggingface_hub import ModelCard

    metrics = fake_metrics()
    metrics["mlqa_r"] = dict(metrics.pop("xquad_r"), languages=["ar", "de"])
    results = ModelCard(render(fake_summary(), metrics)).data.eval_results
    mlqa = {(r.dataset_name, r.dataset_type, r.dataset_split) for r in results if r.dataset_name == "MLQA-R"}
    assert mlqa == {("MLQA-R", "mlqa-r", None)}  # not on the hub: a plain name, no hub id, no split
    results = ModelCard(render(fake_summary(), fake_metrics())).data.eval_results
    xquad = {(r.dataset_name, r.dataset_type, r.dataset_split) for r in results if r.dataset_name == "XQuAD-R"}
    assert xquad == {("XQuAD-R", "google-research-datasets/xquad_r", "validation")}


def test_baseline_sits_beside_the_run_and_regressions_are_named():
    metrics, baseline = fake_metrics(), fake_baseline()
    text = render(fake_summary(), metrics, baseline=baseline)
    run_mo, base_mo = metrics["xquad_r"]["map_mo"], baseline["xquad_r"]["map_mo"]
    assert f"| mAP Mo. | {run_mo:.3f} | {base_mo:.3f} | {run_mo - base_mo:+.3f} |" in text
    assert "| metric | this run | base model, zero-shot | change |" in text
    assert "`mlqa2xquad-zeroshot`" in text
    limitations = text.split("## Limitations", 1)[1].split("## Citation")[0]
    assert f"mAP Mo. {base_mo:.3f} -> {run_mo:.3f}" in limitations  # fell: named
    assert "mAP Cr." not in limitations  # rose: not a regression
    assert "On Tatoeba it is worse" in limitations
    # a baseline evaluated on another pool is not compared
    other = fake_baseline()
    other["xquad_r"]["n_queries"] += 1
    text = render(fake_summary(), metrics, baseline=other)
    assert "base model, zero-shot | change" not in text and "another pool" in text
    assert not any(t.startswith(BASELINE_PREFIX) and d != "laser-tatoeba-v1" for d, t in index_metrics(text))


def test_limitations_follow_the_runs_own_record():
    metrics = fake_metrics()
    text = render(fake_summary(), metrics)
    assert "a seeded 10% sample of the set's paragraphs (40 queries against 120 candidate sentences" in text
    assert "usually on a sample" not in text
    assert "20 optimiser steps of 16 question-answer pairs (320 pairs in all, from 237 training questions" in text
    assert "A single training run (seed 13)" in text
    metrics["xquad_r"]["sample_fraction"] = 1.0
    summary = fake_summary()
    summary["config"].update(steps=30, batch_size=8, seed=14)
    text = render(summary, metrics)
    assert "the full pool (40 queries against 120 candidate sentences)" in text and "seeded" not in text
    assert "30 optimiser steps of 8 question-answer pairs (240 pairs in all" in text and "(seed 14)" in text


def test_a_fixed_budget_run_names_its_evaluated_step_not_early_stopping():
    summary = fake_summary()
    summary["config"].update(steps=20, best_step=20)
    text = render(summary, fake_metrics(), hyperparameters={"keep_best": False})
    assert "| evaluated step (fixed budget: the last step) | 20 |" in text and "early stopping" not in text
    assert "| keep_best | no |" in text


def test_render_shows_settings_and_metrics():
    text = render(fake_summary(), fake_metrics(), hyperparameters={"lr": 3e-5, "temperature": 0.05, "other": 1})
    for needle in ("| strategy | `hybrid` (Hybrid) |", "| alpha (P(monolingual batch), hybrid only) | 0.5 |",
                   "| alpha schedule | `exact` |", "| realised monolingual share (all steps) | 0.55 |",
                   "| monolingual share of the kept steps | 0.6 |",
                   "| kept step (early stopping on validation loss) | 10 |",
                   "| batch size (pairs) | 16 |", "| batches by kind | xx: 11, xy: 9 |", "| seed | 13 |",
                   "| 10 (kept) | 0.4321 |", "| lr | 3e-05 |", "| temperature | 0.05 |",
                   "| mAP Mo. | 0.812 |", "| R@1 Cr. | 0.655 |", "| R@10 Mul. | 0.543 |", "| nDCG@10 Mo. | 0.850 |",
                   "| rank distance Mul. (lower = less language bias) | 57.7 |",
                   "| same-language share of the top 10 (Mul.) | 0.250 |",
                   "**Unseen languages** (el): mAP Mo. 0.790", "Mean 0.916", "a seeded 10% sample",
                   "CC BY-NC 4.0", "Elmahdy, Adel and Lin, Sheng-Chieh and Ahmad, Amin", "2408.10536",
                   "research use only"):
        assert needle in text, needle
    assert "| other |" not in text  # only the declared hyperparameters


def test_render_is_deterministic_and_dateless():
    a = render(fake_summary(), fake_metrics(), baseline=fake_baseline())
    assert a == render(fake_summary(), fake_metrics(), baseline=fake_baseline())
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
    assert "The training seed is not in this run's record." in text  # never guessed
    meta, _ = parse_card(text)
    assert card_run_name(meta) == RUN and meta["base_model"] == "intfloat/multilingual-e5-small"
    # no metrics at all: a card without an evaluation section, named by model_name
    bare = render(summary, None)
    meta, _ = parse_card(bare)
    assert "## Evaluation" not in bare and meta["model_name"] == RUN and "model-index" not in meta
    assert card_run_name(meta) == RUN


def test_render_reads_the_committed_metrics_and_baseline():
    path, base_path = REPO / "results" / RUN / "metrics.json", REPO / "results" / "mlqa2xquad-zeroshot" / "metrics.json"
    if not (path.is_file() and base_path.is_file()):
        pytest.skip(f"{path} or {base_path} not present")
    metrics, baseline = json.loads(path.read_text()), json.loads(base_path.read_text())
    text = render(fake_summary(), metrics, baseline=baseline)
    name, block = next(iter(modelcard.eval_blocks(metrics).items()))
    base = baseline[name]
    assert f"| mAP Mo. | {block['map_mo']:.3f} | {base['map_mo']:.3f} |" in text
    got = index_metrics(text)
    dataset = modelcard.DATASETS[name].index_type
    assert got[(dataset, "map_mul")] == pytest.approx(block["map_mul"], abs=1e-4)
    assert got[(dataset, BASELINE_PREFIX + "map_mul")] == pytest.approx(base["map_mul"], abs=1e-4)
    pool = "the full pool" if block["sample_fraction"] == 1 else "a seeded"
    assert f"Evaluated zero-shot on {modelcard.DATASETS[name].name}: {pool}" in text
    assert run_config(fake_summary(), metrics)["mono_share"] == 0.55  # the checkpoint's record wins


def test_usage_snippets_run_and_agree_with_the_encoder(checkpoint):
    """Both snippets of a rendered card, executed as written against a small local checkpoint."""
    import numpy as np
    import torch

    from hybridbatch.model.encoder import DualEncoder

    model_dir, _ = checkpoint
    settings = json.loads((model_dir / "hybridbatch_encoder.json").read_text())
    text = render(fake_summary(), fake_metrics(), settings=settings, repo_id=str(model_dir))
    sentence_transformers, plain = usage_code(text)
    assert "SentenceTransformer" in sentence_transformers and "AutoModel" in plain
    assert repr(settings["query_prefix"]) in plain and "mean pooling" in plain
    texts = [ast.literal_eval(m) for m in re.findall(r"embed\((\[.*?\]), ", plain)]
    encoder = DualEncoder(model_dir)
    expected = [encoder.encode(texts[0], "query"), encoder.encode(texts[1], "passage")]
    for code in (sentence_transformers, plain):
        space: dict = {}
        exec(compile(code, "<card snippet>", "exec"), space)  # noqa: S102 (the card's own code)
        for got, want in zip((space["queries"], space["passages"]), expected):
            got = torch.as_tensor(np.asarray(got))
            assert got.shape == want.shape
            torch.testing.assert_close(got, want.float(), atol=1e-5, rtol=1e-4)


def test_snippets_follow_the_checkpoints_pooling_and_prefixes():
    settings = {"pooling": "cls", "normalize": False, "query_prefix": "", "passage_prefix": "", "max_length": 64}
    plain = usage_code(render(fake_summary(), fake_metrics(), settings=settings, library_name="transformers"))
    assert len(plain) == 1  # no sentence-transformers snippet without modules.json
    assert "hidden[:, 0]" in plain[0] and "mean pooling" not in plain[0] and "F.normalize" not in plain[0]
    assert "max_length=64" in plain[0] and "embed([\"Where is the Eiffel Tower?\"], '')" in plain[0]


def test_with_repo_id_points_the_snippets_at_the_hub():
    text = render(fake_summary(), fake_metrics())
    assert text.count(f'model_id = "models/{RUN}"') == 2  # no placeholder: the checkpoint's directory
    hub = with_repo_id(text, "org/hybridbatch-run")
    assert hub.count('model_id = "org/hybridbatch-run"') == 2 and f"models/{RUN}\"" not in hub
    with pytest.raises(ValueError):
        with_repo_id(text, 'x"; import os')
    assert render(fake_summary(), fake_metrics(), repo_id="org/name").count('model_id = "org/name"') == 2


def test_the_template_ships_with_the_package():
    assert TEMPLATE.is_file() and TEMPLATE.parent == REPO / "src" / "hybridbatch" / "model"
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    relative = TEMPLATE.relative_to(REPO / "src" / "hybridbatch").as_posix()
    assert any(fnmatch.fnmatch(relative, p) for p in patterns["hybridbatch"])


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
    summary["sources"] = ["mlqa_r"]
    assert "datasets" not in parse_card(render(summary, fake_metrics()))[0]  # MLQA-R: not on the hub
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

def _card_args(model_dir, metrics, out, run=RUN, baseline=True):
    base = metrics.parent.parent / "mlqa2xquad-zeroshot" / "metrics.json"
    return ["--run", run, "--model", str(model_dir), "--metrics", str(metrics), "--out", str(out),
            *(["--baseline", str(base)] if baseline else [])]


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
    assert "query prefix `query: `" in text and "| mAP Mo. | 0.812 | 0.862 | -0.050 |" in text
    assert index_metrics(text)[("google-research-datasets/xquad_r", BASELINE_PREFIX + "map_mo")] == \
        pytest.approx(fake_baseline()["xquad_r"]["map_mo"], abs=1e-4)
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


@pytest.mark.parametrize("change, reason", [
    ({"strategy": "hybrid"}, "not a zero-shot baseline"),
    ({"base_model": "models/xlm-roberta-base"}, "base_model"),
    ({"eval_dataset": "mlqa_r"}, "eval_dataset"),
])
def test_stage_refuses_a_baseline_of_another_model_or_set(checkpoint, tmp_path, capsys, change, reason):
    model_dir, metrics = checkpoint
    wrong = fake_baseline()
    wrong["config"].update(change)
    path = tmp_path / "results" / "mlqa2xquad-zeroshot" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(wrong))
    args = _card_args(model_dir, metrics, tmp_path / "README.md", baseline=False)
    assert model_card.main([*args, "--baseline", str(path)]) == 2
    assert reason in capsys.readouterr().err
    assert model_card.main(args) == 0  # without a baseline the card is made, with the run's numbers only


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
    # exporting again replaces the directory; --repo-id makes the exported card's snippets load the hub id
    args = ["--model", str(model_dir), "--card", str(card), "--out", str(out), "--repo-id", "org/my-model"]
    assert export_model.main(args) == 0
    exported_card = (out / "README.md").read_text()
    assert exported_card == with_repo_id(card.read_text(), "org/my-model") != card.read_text()
    assert exported_card.count('model_id = "org/my-model"') == 2 and "org/my-model" in capsys.readouterr().out
    assert export_model.main([*args[:-1], "bad id"]) == 2


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
