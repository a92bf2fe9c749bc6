"""Every params section is validated before any work: an unknown key, a wrong type or a value out of range is
one line naming the file, the key and the value; data that cannot serve a run is the same kind of line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers.study import study_params
from helpers.tiny import REPO
from hybridbatch.params import SECTIONS, ParamsError, read_params, section


def _params(tmp_path: Path, edit) -> Path:
    params = study_params()  # the pre-registered study: every block in use
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_every_section_of_the_committed_params_is_valid():
    for name in SECTIONS:
        section(REPO / "params.yaml", name)
    assert set(read_params(REPO / "params.yaml")) == set(SECTIONS) | {"folds"}


@pytest.mark.parametrize("name, key, value, expect", [
    ("evaluate", "sample_fracton", 0.1, "evaluate.sample_fracton: unknown key (value 0.1)"),
    ("evaluate", "sample_fraction", "inf", "evaluate.sample_fraction: Input should be a valid number (got 'inf')"),
    ("evaluate", "sample_fraction", "1e-1x", "evaluate.sample_fraction: Input should be a valid number (got '1e-1x')"),
    ("train", "temperature", "1e999", "train.temperature: Input should be a valid number (got '1e999')"),
    ("train", "lr", float("nan"), "train.lr: a non-finite number is never a valid setting (got nan)"),
    ("bm25", "k1", float("inf"), "bm25.k1: a non-finite number is never a valid setting (got inf)"),
    ("grid", "alpha_seeds", [13, 14, 13], "grid: alpha_seeds: 13 repeated (got [13, 14, 13])"),
    ("grid", "tatoeba_seeds", [-2], "grid: tatoeba_seeds: seed -2 < 0"),
    ("grid", "seeds", [13], "grid: seeds: replaced by main (blocks of folds x strategies x seeds)"),
    ("grid", "scaling_seeds", [-1], "grid: scaling_seeds: seed -1 < 0"),
    ("evaluate", "sample_seed", -1, "evaluate.sample_seed: Input should be greater than or equal to 0 (got -1)"),
    ("evaluate", "sample_fraction", 0.0, "evaluate.sample_fraction: Input should be greater than 0 (got 0.0)"),
    ("evaluate", "candidate_text", "paragraph", "evaluate.candidate_text: Input should be 'sentence' or"),
    ("evaluate", "max_tokens", -1, "evaluate.max_tokens: Input should be greater than or equal to 64 (got -1)"),
    ("bm25", "k", 1.2, "bm25.k: unknown key (value 1.2)"),
    ("bm25", "b", 1.5, "bm25.b: Input should be less than or equal to 1 (got 1.5)"),
    ("train", "alpha_schedule", "random", "train.alpha_schedule: Input should be 'exact' or 'coin' (got 'random')"),
    ("train", "steps", "120", "train.steps: Input should be a valid integer (got '120')"),
    ("grid", "alphas", [0.5, 1.5], "grid: Value error, alphas: 1.5 is not in [0, 1]"[len("grid: Value error, "):]),
    ("execution", "processes", 0, "execution.processes: Input should be greater than or equal to 1 (got 0)"),
    ("prepare", "max_questions", 0, "prepare.max_questions: Input should be greater than or equal to 1 (got 0)"),
    ("miracl", "languages", "sw", "miracl.languages: Input should be a valid list (got 'sw')"),
    ("model", "pooling", "max", "model.pooling: Input should be 'mean' or 'cls' (got 'max')"),
])
def test_bad_values_are_one_line_naming_key_and_value(tmp_path, name, key, value, expect):
    path = _params(tmp_path, lambda p: p[name].__setitem__(key, value))
    with pytest.raises(ParamsError) as err:
        section(path, name)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)) and expect in message, message


def test_float_spellings_dvc_writes_are_numbers(tmp_path):
    """`dvc exp run -S train.lr=3e-6` writes `lr: 3e-06`, a string under YAML 1.1: a finite float spelling."""
    text = (REPO / "params.yaml").read_text()
    for old, new in (("  lr: 3.0e-5 ", "  lr: 3e-06 "), ("  k1: 0.9 ", "  k1: 1e+0 "), ("  b: 0.4", "  b: '.5'")):
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert read_params(path)["train"]["lr"] == "3e-06"  # what PyYAML (YAML 1.1) reads
    assert section(path, "train").lr == 3e-06 and type(section(path, "train").lr) is float
    assert (section(path, "bm25").k1, section(path, "bm25").b) == (1.0, 0.5)
    with pytest.raises(ParamsError, match=r"train\.steps: Input should be a valid integer \(got '1e2'\)"):
        section(_params(tmp_path, lambda p: p["train"].__setitem__("steps", "1e2")), "train")  # ints stay strict


def test_non_finite_yaml_floats_anywhere_are_refused(tmp_path):
    text = (REPO / "params.yaml").read_text().replace("  grad_clip: 1.0 ", "  grad_clip: .inf ", 1)
    path = tmp_path / "params.yaml"
    path.write_text(text)
    for name in ("train", "bm25"):  # the file is refused whichever section a stage reads
        with pytest.raises(ParamsError, match=r"train\.grad_clip: a non-finite number .* \(got inf\)"):
            section(path, name)


def test_duplicate_keys_are_refused_naming_file_key_and_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("bm25:\n  prepared_dir: d\n  k1: 0.9\n  b: 0.4\n  k1: 1.5\n")
    with pytest.raises(ParamsError) as err:
        section(path, "bm25")
    assert str(err.value) == f"{path}: duplicate key 'k1' on line 5 (first on line 3) (DVC refuses the file too)"


def test_a_missing_key_and_a_missing_section_are_named(tmp_path):
    path = _params(tmp_path, lambda p: p["evaluate"].pop("prepared_dir"))
    with pytest.raises(ParamsError, match=r"evaluate\.prepared_dir: missing"):
        section(path, "evaluate")
    path = _params(tmp_path, lambda p: p.pop("bm25"))
    with pytest.raises(ParamsError, match="has no 'bm25' section"):
        section(path, "bm25")


def _block(name: str, **values):
    def edit(p):
        p["grid"]["main"][name].update(values)
    return edit


@pytest.mark.parametrize("edit, expect", [
    (_block("primary", seeds=[13, 14, 13]), "grid.main.primary: seeds: 13 repeated (got [13, 14, 13])"),
    (_block("secondary", seeds=[-1]), "grid.main.secondary: seeds: seed -1 < 0"),
    (_block("mixed", strategies=["xx-mixed", "xx"]),
     "grid: main.mixed: fold mlqa2xquad x strategy xx is also in block main.primary (blocks may not overlap)"),
    (_block("mixed", folds=["nowhere"]), "grid: main.mixed.folds: 'nowhere' is not in grid.folds"),
    (_block("primary", strategies=["xx", "bm25"]), "grid: main.primary.strategies: 'bm25' is not in grid.strategies"),
    (lambda p: p["grid"]["main"].pop("mixed"), "grid: main: the blocks must be primary, secondary, mixed"),
    (lambda p: p["grid"]["main"].__setitem__("extra", p["grid"]["main"]["mixed"]), "got ['primary', 'secondary', "),
    (lambda p: p["grid"]["ladder"].__setitem__("steps", [480, 0]), "grid.ladder.steps.1: Input should be greater than"),
    (lambda p: p["grid"]["ladder"].__setitem__("seeds", [13, 13]), "grid.ladder: ladder.seeds: 13 repeated"),
    (lambda p: p["grid"]["ladder"].__setitem__("fold", "nowhere"),
     "grid.ladder.fold: fold 'nowhere' is not in the `folds` section"),
    (lambda p: p["grid"].__setitem__("tatoeba_seeds", 3), "grid.tatoeba_seeds: Input should be a valid list (got 3)"),
])
def test_grid_blocks_are_checked(tmp_path, edit, expect):
    """The study's grid: blocks distinct, non-overlapping and drawn from grid.folds / grid.strategies; ladder steps
    positive; every message one line naming the file and the key."""
    path = _params(tmp_path, edit)
    with pytest.raises(ParamsError) as err:
        section(path, "grid")
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)) and expect in message, message


def test_an_empty_block_is_no_run(tmp_path):
    """An empty block (seeds: []) may name folds and strategies of another block: it has no cell."""
    path = _params(tmp_path, _block("mixed", strategies=["xx"], seeds=[]))
    assert section(path, "grid").main["mixed"].seeds == []


def test_grid_folds_must_exist(tmp_path):
    path = _params(tmp_path, lambda p: p["grid"].__setitem__("scaling_fold", "nowhere"))
    with pytest.raises(ParamsError, match=r"grid\.scaling_fold: fold 'nowhere' is not in the `folds` section"):
        section(path, "grid")


def _stage(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "src" / "stages" / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("script, args, section_name, key, value", [
    ("evaluate.py", ["--run", "r", "--model", "models/none", "--fold", "mlqa2xquad"], "evaluate", "sample_fracton", 0.1),
    ("bm25.py", ["--run", "r", "--fold", "mlqa2xquad"], "bm25", "k1", "high"),
    ("train.py", ["--run", "r", "--fold", "mlqa2xquad", "--strategy", "xx", "--seed", "1"], "train", "lr", -1.0),
    ("miracl.py", ["--run", "r", "--model", "models/none"], "miracl", "max_tokens", 0),
])
def test_stages_exit_2_with_one_error_line_before_any_work(tmp_path, script, args, section_name, key, value):
    path = _params(tmp_path, lambda p: p[section_name].__setitem__(key, value))
    proc = _stage(script, ["--params", str(path), *args], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and f"{section_name}.{key}" in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_train_stage_data_fit_errors_are_one_line(tmp_path):
    """A batch larger than the answer groups, and a fold whose languages are not in the data."""
    from helpers.tiny import make_prepared

    from helpers.tiny import make_tiny_model

    prepared = make_prepared(tmp_path / "prepared")
    model = make_tiny_model(tmp_path / "model")  # the base checkpoint is checked (config only) before the data

    def edit(p, batch_size=4, order=None):
        p["train"].update({"prepared_dir": str(prepared), "base_model": str(model),
                           "batch_size": batch_size, "steps": 2})
        if order:
            p["folds"]["mlqa2xquad"]["language_order"] = order

    too_big = _params(tmp_path, lambda p: edit(p, batch_size=100000))
    proc = _stage("train.py", ["--params", str(too_big), "--run", "r", "--fold", "mlqa2xquad", "--strategy", "xx",
                               "--seed", "1"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = next(l for l in proc.stderr.splitlines() if l.startswith("error:"))
    assert "run r" in line and "100000" in line, line
    absent = _params(tmp_path, lambda p: edit(p, order=["en", "xx-lang"]))
    proc = _stage("train.py", ["--params", str(absent), "--run", "r", "--fold", "mlqa2xquad", "--strategy", "xy",
                               "--seed", "1", "--n-languages", "2"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = next(l for l in proc.stderr.splitlines() if l.startswith("error:"))
    assert "xx-lang" in line and "questions.parquet" in line, line
