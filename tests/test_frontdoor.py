"""The front door refuses before it touches: stage `validate` checks the whole params file and every other stage
depends on its output (so DVC stops before removing any output); the stage scripts refuse a missing checkpoint,
a missing prepared directory, a negative seed and a ``max_length`` beyond the model's positions in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers.study import study_params
from helpers.tiny import REPO
from hybridbatch.model.encoder import EncoderError, check_checkpoint, position_limit

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
VALIDATE_OUT = "build/params.ok"


def _params(tmp_path: Path, edit=None, text: str | None = None) -> Path:
    path = tmp_path / "params.yaml"
    if text is None:
        params = study_params()  # the pre-registered study: every block in use
        if edit:
            edit(params)
        text = yaml.safe_dump(params, sort_keys=False)
    path.write_text(text)
    return path


def _script(name: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "src" / "stages" / name), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# ------------------------------------------------------------------------------------------------ dvc.yaml
def test_every_other_stage_depends_on_the_validate_output():
    assert [next(iter(o)) if isinstance(o, dict) else o for o in DVC["validate"]["outs"]] == [VALIDATE_OUT]
    missing = [name for name, stage in DVC.items()
               if name != "validate" and VALIDATE_OUT not in stage.get("do", stage).get("deps", [])]
    assert not missing, missing


def test_validate_declares_every_section_it_checks_but_execution():
    params = set(yaml.safe_load((REPO / "params.yaml").read_text()))
    assert set(DVC["validate"]["params"]) == params - {"execution"}


def test_validate_output_does_not_depend_on_the_values(tmp_path):
    out = []
    for lr in (3e-5, 1e-4):
        path = _params(tmp_path, lambda p, lr=lr: p["train"].__setitem__("lr", lr))
        proc = _script("validate.py", ["--params", str(path), "--out", str(tmp_path / f"ok{lr}")], tmp_path)
        assert proc.returncode == 0, proc.stderr
        out.append((tmp_path / f"ok{lr}").read_bytes())
    assert out[0] == out[1] and out[0]


# ---------------------------------------------------------------------------------------- validate stage
def _set(section, key, value):
    return lambda p: p[section].__setitem__(key, value)


BAD = {
    "bm25.k1 a word": (_set("bm25", "k1", "high"), "bm25.k1"),
    "the earlier single seed list": (_set("grid", "seeds", [13]), "grid: seeds: replaced by main"),
    "duplicate seeds": (lambda p: p["grid"]["main"]["primary"].__setitem__("seeds", [13, 13]),
                        "grid.main.primary: seeds: 13 repeated"),
    "negative seed": (lambda p: p["grid"]["main"]["mixed"].__setitem__("seeds", [-1]),
                      "grid.main.mixed: seeds: seed -1 < 0"),
    "overlapping blocks": (lambda p: p["grid"]["main"]["secondary"].__setitem__("folds", ["mlqa2xquad"]),
                           "main.secondary: fold mlqa2xquad x strategy xx is also in block main.primary"),
    "missing block": (lambda p: p["grid"]["main"].pop("secondary"), "main: the blocks must be primary, secondary"),
    "non-positive ladder steps": (lambda p: p["grid"]["ladder"].__setitem__("steps", [0]), "grid.ladder.steps.0"),
    "unknown ladder strategy": (lambda p: p["grid"]["ladder"].__setitem__("strategies", ["bm25"]),
                                "grid.ladder.strategies: unknown strategy 'bm25'"),
    "negative tatoeba seed": (_set("grid", "tatoeba_seeds", [-3]), "tatoeba_seeds: seed -3 < 0"),
    "unknown strategy": (_set("grid", "strategies", ["xx", "xx-mixed", "xy", "hybrid", "xz"]),
                         "grid.strategies: unknown strategy 'xz'"),
    "unknown scaling strategy": (_set("grid", "scaling_strategies", ["zeroshot"]),
                                 "grid.scaling_strategies: unknown strategy 'zeroshot'"),
    "unknown fold": (_set("grid", "folds", ["mlqa2xquad", "xquad2mlqa", "nowhere"]), "grid.folds: fold 'nowhere'"),
    "block fold outside grid.folds": (_set("grid", "folds", ["mlqa2xquad"]),
                                      "grid: main.secondary.folds: 'xquad2mlqa' is not in grid.folds"),
    "unknown fold dataset": (lambda p: p["folds"]["mlqa2xquad"].__setitem__("eval", "squad"),
                             "folds.mlqa2xquad.eval: dataset 'squad' is not prepared"),
    "unprepared fold dataset": (_set("prepare", "datasets", {"xquad_r": ["en", "de"]}),
                                "folds.mlqa2xquad.train: dataset 'mlqa_r' is not prepared"),
    "too many languages": (_set("grid", "n_languages", [2, 9]), "grid.n_languages: 9 > the 7 languages"),
    "infinite lr": (_set("train", "lr", float("inf")), "train.lr: a non-finite number"),
    "nan deep in a section": (_set("miracl", "runs", {"r": float("nan")}), "miracl.runs.r: a non-finite number"),
}


@pytest.mark.parametrize("case", BAD)
def test_validate_refuses_in_one_line(tmp_path, case):
    from hybridbatch.params import ParamsError, validate_all
    from hybridbatch.data.raw import DATASET_DIRS
    from hybridbatch.strategies import TRAINED

    edit, expect = BAD[case]
    path = _params(tmp_path, edit)
    with pytest.raises(ParamsError) as err:
        validate_all(path, strategies=TRAINED, datasets=DATASET_DIRS)
    assert expect in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_validate_cli_refuses_before_writing(tmp_path):
    path = _params(tmp_path, _set("bm25", "k1", "high"))
    out = tmp_path / "build" / "params.ok"
    line = _one_error_line(_script("validate.py", ["--params", str(path), "--out", str(out)], tmp_path))
    assert "bm25.k1" in line and "'high'" in line and not out.exists(), line


def test_duplicate_keys_are_refused_with_their_line(tmp_path):
    text = (REPO / "params.yaml").read_text().replace("  k1: 0.9", "  k1: 0.9\n  k1: 1.2", 1)
    path = _params(tmp_path, text=text)
    line = _one_error_line(_script("validate.py", ["--params", str(path), "--out", str(tmp_path / "ok")], tmp_path))
    lineno = next(i for i, x in enumerate(text.splitlines(), 1) if x.startswith("  k1: 1.2"))
    assert "duplicate key 'k1'" in line and f"line {lineno}" in line and str(path) in line, line


# ------------------------------------------------------------------------------------------------ encoder
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from helpers.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")  # BERT, 160 positions


def test_position_limit_has_the_roberta_offset(tmp_path, tiny_model):
    from transformers import XLMRobertaConfig

    XLMRobertaConfig(max_position_embeddings=514, pad_token_id=1).save_pretrained(tmp_path / "xlmr")
    assert position_limit(check_checkpoint(tmp_path / "xlmr", max_length=512)) == 512
    with pytest.raises(EncoderError, match="max_length 513 exceeds the model's 512 token positions"):
        check_checkpoint(tmp_path / "xlmr", max_length=513)
    assert position_limit(check_checkpoint(tiny_model, max_length=160)) == 160  # BERT: no offset


def test_a_missing_checkpoint_is_one_line_without_network(tmp_path):
    for name in (tmp_path / "none", "models/none"):
        with pytest.raises(EncoderError, match="does not exist") as err:
            check_checkpoint(name, what="--model")
        assert f"--model {name}" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EncoderError, match="no config.json"):
        check_checkpoint(tmp_path / "empty")


# ----------------------------------------------------------------------------------------- stage scripts
EVAL = ["--run", "r", "--fold", "mlqa2xquad"]


def test_evaluate_refuses_a_missing_model_and_prepared_dir(tmp_path, tiny_model):
    path = _params(tmp_path, _set("evaluate", "prepared_dir", str(tmp_path / "no-prepared")))
    line = _one_error_line(_script("evaluate.py", ["--params", str(path), *EVAL, "--model", "models/none"], tmp_path))
    assert "--model models/none: does not exist" in line, line
    line = _one_error_line(_script("evaluate.py", ["--params", str(path), *EVAL, "--model", str(tiny_model)],
                                   tmp_path))
    assert "no-prepared/questions.parquet" in line and "missing" in line, line


def test_evaluate_max_length_beyond_the_model_is_refused_before_the_data(tmp_path, tiny_model):
    def edit(p):
        p["evaluate"].update({"max_length": 161, "prepared_dir": str(tmp_path / "no-prepared")})

    path = _params(tmp_path, edit)
    line = _one_error_line(_script("evaluate.py", ["--params", str(path), *EVAL, "--model", str(tiny_model)],
                                   tmp_path))
    assert "evaluate.max_length 161 exceeds the model's 160 token positions" in line, line


TRAIN = ["--run", "r", "--fold", "mlqa2xquad", "--strategy", "xx"]


def test_train_refuses_a_negative_seed_and_a_missing_base_model(tmp_path):
    from helpers.tiny import make_prepared

    prepared = make_prepared(tmp_path / "prepared", langs=("en", "de"), max_questions=5)
    path = _params(tmp_path, lambda p: p["train"].update({"prepared_dir": str(prepared),
                                                          "base_model": str(tmp_path / "no-model")}))
    line = _one_error_line(_script("train.py", ["--params", str(path), *TRAIN, "--seed", "-1"], tmp_path))
    assert "--seed: -1 < 0" in line, line
    line = _one_error_line(_script("train.py", ["--params", str(path), *TRAIN, "--seed", "1"], tmp_path))
    assert "train.base_model" in line and "no-model: does not exist" in line, line
    missing = _params(tmp_path, _set("train", "prepared_dir", str(tmp_path / "none")))
    line = _one_error_line(_script("train.py", ["--params", str(missing), *TRAIN, "--seed", "1"], tmp_path))
    assert "train.prepared_dir" in line and "none" in line, line
