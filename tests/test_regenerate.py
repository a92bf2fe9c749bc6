"""``python -m hybridbatch.pipeline.regenerate``: refuses in one line, before DVC removes any output, while a run
of the study has no results; with every run present it runs the report stages through DVC."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from helpers.fake_results import make_report_root
from hybridbatch.grid import grid_runs
from hybridbatch.params import read_params
from hybridbatch.pipeline import regenerate


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_report_root(tmp_path_factory.mktemp("regen") / "repo")


def test_a_whole_study_passes_the_check(root, monkeypatch, capsys):
    monkeypatch.chdir(root)
    assert regenerate.main(["--check"]) == 0
    n = len(dict.fromkeys(grid_runs(read_params("params.yaml"))["run"]))
    assert capsys.readouterr().out.strip() == f"every one of the study's {n} runs has results"


def test_a_missing_run_is_refused_in_one_line_and_nothing_runs(root, tmp_path, monkeypatch, capsys):
    copy = tmp_path / "repo"
    shutil.copytree(root, copy)
    runs = list(dict.fromkeys(grid_runs(read_params(copy / "params.yaml"))["run"]))
    for run in (runs[3], runs[-1]):
        shutil.rmtree(copy / "results" / run)
    monkeypatch.chdir(copy)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    with pytest.raises(SystemExit) as exc:
        regenerate.main([])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: results/{runs[3]}/metrics.json is missing (and 1 more)")
    assert f"{len(runs) - 2} of the study's {len(runs)} runs have results" in err


def test_with_every_run_it_runs_the_report_stages_in_dependency_order(root, monkeypatch, capsys):
    monkeypatch.chdir(root)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **k: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    assert regenerate.main([]) == 0
    assert [list(c) for c in calls] == [["dvc", "repro", "--force", "--single-item", "validate", "curves",
                                         "report_main", "report_per_language", "report_bias", "report_scaling",
                                         "paper"]]
    assert "regenerated in" in capsys.readouterr().out


def test_the_stages_are_the_pipelines_report_stages():
    """Every stage it forces exists in dvc.yaml, and every stage that writes figures/ or paper/ is among them."""
    import yaml
    from helpers.fake_results import REPO
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert set(regenerate.STAGES) <= set(stages)
    writers = {name for name, st in stages.items() if "foreach" not in st and "matrix" not in st and any(
        str(next(iter(o)) if isinstance(o, dict) else o).startswith(("figures", "paper/")) for o in st.get("outs", []))}
    assert {"curves", "report_main", "paper"} <= writers <= set(regenerate.STAGES)
