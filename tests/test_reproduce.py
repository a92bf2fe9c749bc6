"""The reproducibility check (hybridbatch.pipeline.reproduce): the comparison of headline metrics on fake values
(within / outside the tolerance, a missing metric), a bad run name (exit 2, one line), the dvc command, and one
real re-run of a toy DVC pipeline (two runs, trivial stages) in a copy of its workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybridbatch.pipeline import reproduce as R

METRICS = {"config": {"run": "run-a", "steps": 120},
           "xquad_r": {"map_mo": 0.798941, "map_cr": 0.68, "rank_distance": 344.09, "n_queries": 13090,
                       "run": "run-a", "per_pair": {"map": {"en-en": 0.8}}},
           "tatoeba": {"en2x": 0.89, "x2en": 0.90, "mean": 0.895, "per_language": {"de": {"en2x": 0.9}}}}
TRAINING = {"val": {"loss": 0.38065997}, "train": {"loss": 0.3}, "step": 119}


def test_headline_metrics_are_the_summary_numbers():
    got = R.headline_metrics(METRICS, TRAINING)
    assert got == {"xquad_r.map_mo": 0.798941, "xquad_r.map_cr": 0.68, "xquad_r.rank_distance": 344.09,
                   "tatoeba.en2x": 0.89, "tatoeba.x2en": 0.90, "tatoeba.mean": 0.895,
                   "training.val_loss": 0.38065997}  # no counts, config, per-pair or per-language values
    assert "training.val_loss" not in R.headline_metrics(METRICS)  # zero-shot / BM25: no training


def test_within_and_outside_the_tolerance():
    committed = R.headline_metrics(METRICS, TRAINING)
    # the measured cross-CPU example: ~1e-7 on the validation loss, 1.3e-5 on Mo.; RD relative
    rerun = {**committed, "training.val_loss": 0.38066007, "xquad_r.map_mo": 0.798954,
             "xquad_r.rank_distance": 344.09 + 0.02}
    rows = R.compare(committed, rerun)
    table, ok = R.report("run-a", rows, 1e-4)
    assert ok and table.splitlines()[-1] == "reproduce run-a: all 7 metrics within 0.0001"
    assert "+1.30e-05" in table and "0.798954" in table
    table, ok = R.report("run-a", rows, 1e-5)  # Mo. 1.3e-5 > 1e-5; RD 0.02 > 344.09e-5
    assert not ok
    assert table.splitlines()[-1] == ("reproduce run-a: 2 of 7 metrics not within 1e-05: xquad_r.map_mo, "
                                      "xquad_r.rank_distance")
    assert [line.split()[-1] for line in table.splitlines()[1:-1]].count("NO") == 2
    _, ok = R.report("run-a", R.compare(committed, committed), 0.0)  # identical: within even a zero tolerance
    assert ok


def test_a_missing_or_extra_metric_fails():
    committed = R.headline_metrics(METRICS, TRAINING)
    rerun = {k: v for k, v in committed.items() if k != "tatoeba.mean"}
    rerun["xquad_r.map_mul"] = 0.5
    table, ok = R.report("run-a", R.compare(committed, rerun), 1.0)
    assert not ok
    lines = {line.split()[0]: line for line in table.splitlines()[1:-1]}
    assert lines["tatoeba.mean"].split()[-1] == "MISSING" and "missing" in lines["tatoeba.mean"]
    assert lines["xquad_r.map_mul"].split()[-1] == "MISSING"
    assert "2 of 8 metrics not within 1" in table
    _, ok = R.report("run-a", [], 1.0)  # nothing to compare is no success
    assert not ok
    assert R.Row("x", 1.0, float("nan")).within(1.0) is False


# ------------------------------------------------------------------------------------- a toy DVC pipeline
STAGE = """\
import json, pathlib, sys
kind, run = sys.argv[1], sys.argv[2]
bias = 0.0 if kind == "prepare" else float(pathlib.Path("data/prepared/bias.txt").read_text())
if kind == "prepare":
    pathlib.Path("data/prepared").mkdir(parents=True, exist_ok=True)
    pathlib.Path("data/prepared/bias.txt").write_text(pathlib.Path("data/raw/bias.txt").read_text())
elif kind == "train":
    pathlib.Path(f"models/{run}").mkdir(parents=True, exist_ok=True)
    pathlib.Path(f"models/{run}/w.txt").write_text(str(0.25 + bias))
    pathlib.Path(f"results/{run}/training").mkdir(parents=True, exist_ok=True)
    pathlib.Path(f"results/{run}/training/metrics.json").write_text(json.dumps({"val": {"loss": 0.5 - bias}}))
else:
    w = float(pathlib.Path(f"models/{run}/w.txt").read_text()) if pathlib.Path(f"models/{run}").exists() else 0.0
    pathlib.Path(f"results/{run}").mkdir(parents=True, exist_ok=True)
    pathlib.Path(f"results/{run}/metrics.json").write_text(json.dumps(
        {"config": {"run": run}, "xquad_r": {"map_mo": w + 0.5, "rank_distance": 300.0 + w},
         "tatoeba": {"mean": w}}))
"""

DVC_YAML = """\
stages:
  prepare:
    cmd: python stage.py prepare -
    deps: [stage.py, data/raw/bias.txt]
    outs: [data/prepared]
  train:
    cmd: python stage.py train run-a
    deps: [stage.py, data/prepared]
    outs: [models/run-a]
    metrics:
      - results/run-a/training/metrics.json:
          cache: false
  evaluate:
    cmd: python stage.py evaluate run-a
    deps: [stage.py, data/prepared, models/run-a]
    metrics:
      - results/run-a/metrics.json:
          cache: false
  evaluate_zeroshot:
    cmd: python stage.py evaluate run-z
    deps: [stage.py, data/prepared]
    metrics:
      - results/run-z/metrics.json:
          cache: false
"""


def _env() -> dict:
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """The toy workspace with its pipeline reproduced once (the "committed" results)."""
    root = tmp_path_factory.mktemp("toy")
    (root / "stage.py").write_text(STAGE)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "bias.txt").write_text("0.125")
    for cmd in (["init", "--no-scm", "-q"], ["repro", "-q"]):
        proc = subprocess.run([sys.executable, "-m", "dvc", *cmd], cwd=root, env=_env(), capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def test_the_run_stages_and_the_dvc_command(toy):
    from hybridbatch.pipeline.plan import load_graph

    graph = load_graph(toy)
    assert R.run_stages(graph, "run-a") == ["train", "evaluate"]
    assert R.run_stages(graph, "run-z") == ["evaluate_zeroshot"]
    with pytest.raises(R.ReproduceError, match=r"unknown run 'run-x'.*\(runs: run-a, run-z\)"):
        R.run_stages(graph, "run-x")
    assert R.repro_args(["train", "evaluate"]) == ["repro", "--force", "--no-commit", "train", "evaluate"]


def test_a_bad_run_name_is_one_line_exit_2(toy, monkeypatch, capsys):
    monkeypatch.chdir(toy)
    assert R.main(["nonexistent"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown run 'nonexistent'") and len(err.strip().splitlines()) == 1
    assert R.main(["run-a", "--tolerance", "-1"]) == 2
    assert "--tolerance" in capsys.readouterr().err
    assert not (toy / "build" / "reproduce").exists()  # nothing copied for a bad name


def test_reproduce_reruns_the_run_in_a_copy_and_compares(toy, monkeypatch, capsys):
    """A real re-run: the copy re-runs prepare (upstream), train and evaluate -- forced, nothing from the run
    cache, nothing committed to the shared cache -- and the metrics agree; then a drifted committed value
    fails the comparison."""
    monkeypatch.chdir(toy)
    monkeypatch.setenv("PATH", _env()["PATH"])
    cache = toy / ".dvc" / "cache"
    before = sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file())
    committed = (toy / "results" / "run-a" / "metrics.json").read_bytes()
    assert R.main(["run-a", "--tolerance", "1e-9", "--dir", "build/rep"]) == 0
    out = capsys.readouterr().out
    dest = toy / "build" / "rep"
    log = (dest / "reproduce.log").read_text()
    assert "$ dvc repro --force --no-commit train evaluate" in log
    assert all(f"Running stage '{s}'" in log for s in ("prepare", "train", "evaluate"))
    assert "evaluate_zeroshot" not in log
    assert "reproduce run-a: all 4 metrics within 1e-09" in out and "training.val_loss" in out
    assert (toy / "results" / "run-a" / "metrics.json").read_bytes() == committed  # the workspace untouched
    assert sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file()) == before  # nothing committed

    drifted = json.loads(committed)
    drifted["xquad_r"]["map_mo"] += 2e-4
    (toy / "results" / "run-a" / "metrics.json").write_text(json.dumps(drifted))
    try:
        table, ok = R.report("run-a", R.compare(R.read_metrics(toy, "run-a"), R.read_metrics(dest, "run-a")), 1e-4)
    finally:
        (toy / "results" / "run-a" / "metrics.json").write_bytes(committed)
    assert not ok and "-2.00e-04" in table and "1 of 4 metrics not within 0.0001: xquad_r.map_mo" in table
