"""Grid points in parallel (hybridbatch.pipeline.workers): worker copies sharing one DVC cache reproduce the grid, the
main workspace's `dvc repro` then restores every grid stage from DVC's run cache and runs none, and the results
equal a plain sequential `dvc repro`.

The end-to-end tests (slow) run a tiny profile of the pipeline -- one fold, two strategies, one seed, no scaling
study, a random 2-layer encoder with the real tokenizer instead of E5 (a stage's time is then mostly its imports)
-- with `parallel run --workers 2`, and one whole run of it with a plain sequential `dvc repro` from the same
upstream state for reference.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hybridbatch.pipeline import dvcrun
from hybridbatch.pipeline import workers as parallel

TINY = {
    # as tests/test_pipeline.py, smaller: MLQA-R keeps four languages (enough answer groups for a batch of 4)
    "prepare": {"max_questions": 40, "tatoeba": ["deu"],
                "datasets": {"xquad_r": ["de", "en"], "mlqa_r": ["ar", "en", "es", "hi"]}},
    "folds": {"mlqa2xquad": {"train": "mlqa_r", "eval": "xquad_r", "language_order": ["en", "ar", "es", "hi"]}},
    "grid": {"folds": ["mlqa2xquad"], "strategies": ["xx", "hybrid"],
             "main": {"primary": {"folds": ["mlqa2xquad"], "strategies": ["xx", "hybrid"], "seeds": [1]},
                      "secondary": {"folds": [], "strategies": [], "seeds": []},
                      "mixed": {"folds": [], "strategies": [], "seeds": []}},
             "tatoeba_seeds": [1], "ladder": {"fold": "mlqa2xquad", "steps": [], "strategies": [], "seeds": []},
             "scaling_fold": "mlqa2xquad", "scaling_seeds": [1], "scaling_strategies": [],
             "layers": [], "n_languages": [], "alphas": [], "alpha_seeds": []},
    "train": {"steps": 2, "batch_size": 4, "warmup_steps": 1, "val_batches": 2, "eval_every": 1,
              "max_passage_length": 64},
    "execution": {"checkpoint_every": 1},
    "evaluate": {"sample_fraction": 1.0, "tatoeba_pairs": 20},
    "miracl": {"languages": ["sw"], "runs": {"mlqa2xquad-zeroshot": "models/e5-small"}},
}
# the shared upstream: the params check, data, base model, code stamps, and the fold's zero-shot evaluation (the
# baseline of every model card, so it feeds several runs)
UPSTREAM = ["validate", "prepare", "import_model", "code_train", "code_evaluate", "evaluate_zeroshot@mlqa2xquad"]
TARGETS = ["bm25@mlqa2xquad", "miracl@mlqa2xquad-zeroshot",
           "model_card@mlqa2xquad-xx-1", "model_card@mlqa2xquad-hybrid-1"]
GRID = ["train@mlqa2xquad-xx-1", "train@mlqa2xquad-hybrid-1", "evaluate@mlqa2xquad-xx-1",
        "evaluate@mlqa2xquad-hybrid-1", *TARGETS]
SEQUENTIAL = "model_card@mlqa2xquad-hybrid-1"  # the reference: one whole run (train, evaluate, model card)
SEQUENTIAL_STAGES = ["train@mlqa2xquad-hybrid-1", "evaluate@mlqa2xquad-hybrid-1", SEQUENTIAL]


def run(cmd: list[str], cwd: Path, env: dict, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if ok:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return proc


def hp(*args: str) -> list[str]:
    return [sys.executable, "-m", "hybridbatch.pipeline.workers", *args]


def _env(root: Path) -> dict:
    return dict(os.environ, PYTHONPATH=str(root / "src"),
                PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def _study(tmp: Path, repo: Path) -> Path:
    """An empty DVC repository with dvc.yaml and the pre-registered study's params (for the plan)."""
    from helpers.study import write_study_params

    shutil.copy(repo / "dvc.yaml", tmp / "dvc.yaml")
    write_study_params(tmp / "params.yaml", repo)
    run(["dvc", "init", "--no-scm", "-q"], tmp, _env(repo))
    return tmp


# ------------------------------------------------------------------------------------------------ plan (fast)
def test_plan_of_the_study_keeps_runs_whole(tmp_path, repo):
    graph = parallel.load_graph(_study(tmp_path, repo))
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    grid = params["grid"]
    plan = parallel.make_plan(graph, None, 4)
    # the shared upstream: every non-matrix ancestor, and the shrunk encoders (each under several train_size runs)
    assert set(plan.upstream) == {"prepare", "import_model", "code_train", "code_evaluate",
                                  *(f"shrink_model@{k}" for k in grid["layers"]),
                                  *(f"evaluate_zeroshot@{f}" for f in grid["folds"]),  # every card's baseline
                                  *(["validate"] if "validate" in graph.order else [])}  # the params check, if any
    # targets: the leaves of the grid -- no training, no aggregate stage
    assert plan.targets and all("@" in t and not t.startswith(("train", "shrink")) for t in plan.targets)
    assert {t.split("@")[0] for t in plan.targets} >= {"model_card", "model_card_secondary", "model_card_mixed",
                                                       "evaluate_ladder", "evaluate_size",
                                                       "evaluate_size_zeroshot", "evaluate_languages",
                                                       "evaluate_alpha", "bm25", "miracl"}
    assert not any(t.startswith("evaluate@") for t in plan.targets)  # evaluate is upstream of model_card
    # every target and every grid stage on exactly one worker
    shares = [set(s) for s in plan.share_stages]
    assert sum(len(s) for s in shares) == len(set().union(*shares)) == len(plan.grid)
    assert sorted(t for s in plan.shares for t in s) == sorted(plan.targets)
    assert all(plan.shares)  # 4 workers all busy on the full grid
    # whole runs: a run's training, evaluation and model card share a worker
    where = {n: i for i, s in enumerate(plan.share_stages) for n in s}
    from hybridbatch.params import MAIN_BLOCKS

    for name, block in grid["main"].items():  # one train / evaluate / model_card family per block
        x = MAIN_BLOCKS[name]
        for key in (f"{f}-{s}-{seed}" for f in block["folds"] for s in block["strategies"] for seed in block["seeds"]):
            assert where[f"train{x}@{key}"] == where[f"evaluate{x}@{key}"] == where[f"model_card{x}@{key}"], key
    for name in where:
        if name.startswith("train_size@"):
            assert where[name] == where[name.replace("train_size@", "evaluate_size@")]
    # deterministic (every SLURM array task computes its own share), and idle workers beyond the units
    assert parallel.make_plan(graph, None, 4).shares == plan.shares
    wide = parallel.make_plan(graph, None, len(plan.units) + 3)
    assert sum(1 for s in wide.shares if not s) == 3
    # explicit targets: a family name or a glob
    bm25 = parallel.make_plan(graph, ["bm25"], 2)
    assert bm25.targets == [f"bm25@{f}" for f in grid["folds"]] and set(bm25.upstream) <= {"validate", "prepare"}
    assert "prepare" in bm25.upstream
    assert parallel.make_plan(graph, ["model_card@*"], 1).targets == [t for t in plan.targets if t.startswith("model_card@")]
    with pytest.raises(parallel.ParallelError, match="no stage matches"):
        parallel.make_plan(graph, ["nonexistent"], 1)


def test_worker_threads_is_a_one_line_edit(tmp_path, repo):
    params = tmp_path / "params.yaml"
    shutil.copy(repo / "params.yaml", params)
    before = params.read_text().splitlines()
    assert parallel._set_threads(params, 3)
    after = params.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and len(changed) == 1 and re.match(r"\s+threads:\s+3\b", changed[0][1])
    assert yaml.safe_load(params.read_text())["execution"]["threads"] == 3


# ---------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def runs(repo: Path, tmp_path_factory) -> dict:
    """The tiny profile's upstream, then (par) `parallel run --workers 2` and (seq) a plain `dvc repro` of one
    run in a copy of the same upstream state, with the workers' `execution.threads` (the thread count changes
    the last bits of a training's floating-point sums, hence of the weights)."""
    from helpers.tiny import make_tiny_model

    tmp = tmp_path_factory.mktemp("parallel")
    encoder = make_tiny_model(tmp / "encoder")
    par = tmp / "par"
    par.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(repo / name, par / name)
    for name in ("src", "data/raw", "data/external"):
        shutil.copytree(repo / name, par / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    params = yaml.safe_load((par / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    params["model"].update({"source": "hub", "name": str(encoder), "pooling": "mean"})
    (par / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = _env(par)
    run(["dvc", "init", "--no-scm", "-q"], par, env)
    up = run(hp("upstream"), par, env)
    assert f"upstream: ran {len(UPSTREAM)}" in up.stdout, up.stdout

    seq = tmp / "seq"  # the same upstream state; its own cache (no run-cache entries of the grid)
    shutil.copytree(par, seq, symlinks=True, ignore=shutil.ignore_patterns("tmp", "logs"))
    threads = max(1, parallel.cores() // 2)
    assert parallel._set_threads(seq / "params.yaml", threads)
    seq_out = run(["dvc", "repro", SEQUENTIAL], seq, _env(seq)).stdout

    par_out = run(hp("run", "--workers", "2"), par, env).stdout
    return {"par": par, "seq": seq, "env": env, "par_out": par_out, "seq_out": seq_out, "threads": threads}


@pytest.mark.slow
def test_two_workers_reproduce_the_grid_and_the_main_workspace_only_restores_it(runs):
    par, out = runs["par"], runs["par_out"]
    assert f"(execution.threads={runs['threads']})" in out
    logs = {i: (par / "logs" / "parallel" / f"worker-{i}.log").read_text() for i in (0, 1)}
    ran = {i: dvcrun.RUNNING.findall(text) for i, text in logs.items()}
    # every grid stage ran exactly once, in one worker; no worker redid the upstream
    assert sorted(ran[0] + ran[1]) == sorted(GRID), ran
    assert ran[0] and ran[1]
    for run_name in ("mlqa2xquad-xx-1", "mlqa2xquad-hybrid-1"):  # whole runs
        worker = next(i for i in ran if f"train@{run_name}" in ran[i])
        assert {f"evaluate@{run_name}", f"model_card@{run_name}"} <= set(ran[worker])
    # the main workspace's dvc repro: upstream unchanged, every grid stage restored from the run cache, none run
    collect = (par / "logs" / "parallel" / "collect.log").read_text()
    assert dvcrun.RUNNING.findall(collect) == []
    assert sorted(dvcrun.RESTORED.findall(collect)) == sorted(GRID)
    assert sorted(dvcrun.UNCHANGED.findall(collect)) == sorted(UPSTREAM)
    summary = f"collect: restored {len(GRID)} from the run cache, unchanged {len(UPSTREAM)}, ran 0; dvc status clean"
    assert summary in out
    # the worker copies are gone; the workspace is up to date
    assert not (par / parallel.WORKDIR).exists()
    status = run(["dvc", "status", "--json", *TARGETS], par, runs["env"]).stdout
    assert json.loads(status) == {}
    out = run(["dvc", "repro", *TARGETS], par, runs["env"]).stdout
    assert "Running stage" not in out and "is cached" not in out


def _without_seconds(value):
    """Metrics less their wall-clock seconds (evaluation.py writes them into metrics.json)."""
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value


@pytest.mark.slow
def test_results_equal_a_sequential_run(runs):
    """The run's lock entries, model weights, per-query results and model card equal the sequential run's
    byte for byte; its metrics.json too, less the wall-clock `seconds` evaluation.py writes into it."""
    par, seq = runs["par"], runs["seq"]
    assert sorted(dvcrun.RUNNING.findall(runs["seq_out"])) == sorted(SEQUENTIAL_STAGES)
    lock = {r: yaml.safe_load((r / "dvc.lock").read_text())["stages"] for r in (par, seq)}
    assert set(lock[seq]) == set(UPSTREAM) | set(SEQUENTIAL_STAGES) and set(lock[par]) == set(UPSTREAM) | set(GRID)

    def timeless(entries: list[dict]) -> list[dict]:  # a metrics.json's hash and size follow its seconds
        return [{k: v for k, v in e.items() if not e["path"].endswith("metrics.json") or k == "path"}
                for e in entries]

    for name in lock[seq]:
        a, b = lock[par][name], lock[seq][name]
        assert a["cmd"] == b["cmd"] and a.get("params") == b.get("params"), name
        assert timeless(a["deps"]) == timeless(b["deps"]) and timeless(a["outs"]) == timeless(b["outs"]), name
    assert lock[par]["train@mlqa2xquad-hybrid-1"]["outs"] == lock[seq]["train@mlqa2xquad-hybrid-1"]["outs"]
    files = [p.relative_to(par) for d in ("results/mlqa2xquad-hybrid-s1", "models/mlqa2xquad-hybrid-s1")
             for p in (par / d).rglob("*") if p.is_file()]
    files.append(Path("cards/mlqa2xquad-hybrid-s1/README.md"))
    assert Path("models/mlqa2xquad-hybrid-s1/model.safetensors") in files
    for path in files:
        a, b = par / path, seq / path
        if path.name == "metrics.json":
            assert _without_seconds(json.loads(a.read_text())) == _without_seconds(json.loads(b.read_text())), path
        else:
            assert a.read_bytes() == b.read_bytes(), path



@pytest.mark.slow
def test_a_failing_worker_and_a_missing_run_cache_entry_fail_loudly(runs):
    """Last test of this module (it breaks the bm25 stage's script in the workspace, then restores it)."""
    par, env = runs["par"], runs["env"]
    script = par / "src" / "stages" / "bm25.py"
    original = script.read_text()
    # a stage that fails in its worker (a bad params value would now stop at the upstream `validate` stage)
    future = "from __future__ import annotations\n"
    assert future in original
    script.write_text(original.replace(future, future + 'raise SystemExit("error: bm25.k1: simulated failure")\n', 1))
    try:
        failed = run(hp("run", "--workers", "2", "--targets", "bm25"), par, env, ok=False)
        assert failed.returncode == 1
        assert re.search(r"worker 0 failed \(exit \d+\)", failed.stderr) and "last lines of" in failed.stderr
        assert "k1" in failed.stderr, failed.stderr  # the stage's own error, among the log's last lines
        kept = par / parallel.WORKDIR / "worker-0"
        assert kept.is_dir() and str(kept) in failed.stderr  # kept for inspection
        shutil.rmtree(kept)
        # collect never runs a stage: bm25 with this code has no run-cache entry
        refused = run(hp("collect", "--targets", "bm25"), par, env, ok=False)
        assert refused.returncode == 1
        assert "'bm25@mlqa2xquad' has no run-cache entry" in refused.stderr, refused.stderr
        assert "refusing to run" in (par / "logs" / "parallel" / "collect.log").read_text()
    finally:
        script.write_text(original)
    # back to the code the workers ran: restored from the run cache again, nothing runs
    out = run(hp("collect"), par, env).stdout
    assert "ran 0; dvc status clean" in out
    assert json.loads(run(["dvc", "status", "--json", *TARGETS], par, env).stdout) == {}


def test_run_dvc_returns_output_and_measures_the_command(tmp_path):
    """One runner for every `dvc` command (grid workers and the study): output appended to the log, and the
    command's wall time, CPU time and peak memory measured (children included)."""
    log = tmp_path / "dvc.log"
    result = dvcrun.run_dvc(tmp_path, ["--version"], log=log)
    assert result.rc == 0
    version = result.out.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", version), version
    assert log.read_text(encoding="utf-8") == f"$ dvc --version\n{result.out}"
    assert result.wall > 0 and result.cpu > 0 and result.rss_mib > 10  # a Python process: > 10 MiB resident
    assert dvcrun.dvc(tmp_path, ["--version"]) == (0, result.out)
    failed = dvcrun.run_dvc(tmp_path, ["no-such-command"])
    assert failed.rc != 0 and "no-such-command" in failed.out
