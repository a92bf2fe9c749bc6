"""The whole DVC pipeline, end to end, on a tiny profile in a temporary copy of the repository.

Real data (a parallel subset of the vendored files), the real embedded model, real training steps,
real evaluation and the papermill report -- only small. Takes a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

pytestmark = pytest.mark.slow

TINY = {
    # MLQA-R is not fully parallel: among its first 40 questions some languages hold too few answer groups
    # for a batch of 4, so the tiny profile keeps four of its languages
    "prepare": {"max_questions": 40, "tatoeba": ["deu"],
                "datasets": {"xquad_r": ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"],
                             "mlqa_r": ["ar", "en", "es", "hi"]}},
    "folds": {"mlqa2xquad": {"train": "mlqa_r", "eval": "xquad_r", "language_order": ["en", "ar", "es", "hi"]}},
    "grid": {"folds": ["mlqa2xquad", "xquad2mlqa"], "strategies": ["xx", "xy", "hybrid"],
             "main": {"primary": {"folds": ["mlqa2xquad"], "strategies": ["xx", "xy", "hybrid"], "seeds": [1, 2]},
                      "secondary": {"folds": ["xquad2mlqa"], "strategies": ["xx", "xy"], "seeds": [1, 2]},
                      "mixed": {"folds": ["xquad2mlqa"], "strategies": ["hybrid"], "seeds": [1, 2]}},
             "tatoeba_seeds": [1],  # seed 2's main runs skip Tatoeba
             "ladder": {"fold": "mlqa2xquad", "steps": [3], "strategies": ["hybrid"], "seeds": [1]},
             "scaling_fold": "mlqa2xquad", "scaling_seeds": [1], "scaling_strategies": ["xx", "hybrid"],
             "layers": [2], "n_languages": [2], "alphas": [0.25], "alpha_seeds": [1, 2]},
    "train": {"steps": 2, "batch_size": 4, "warmup_steps": 1, "val_batches": 2, "eval_every": 1,
              "max_passage_length": 64},
    "execution": {"checkpoint_every": 1},
    "evaluate": {"sample_fraction": 1.0, "tatoeba_pairs": 20},
    "miracl": {"runs": {"mlqa2xquad-zeroshot": "models/e5-small"}},
}
MAIN = [f"{fold}-{s}-s{seed}" for fold in ("mlqa2xquad", "xquad2mlqa") for s in ("xx", "xy", "hybrid") for seed in (1, 2)]
SCALING = ["mlqa2xquad-L2-xx-s1", "mlqa2xquad-L2-hybrid-s1", "mlqa2xquad-n2-xx-s1", "mlqa2xquad-n2-hybrid-s1",
           "mlqa2xquad-hybrid-a0.25-s1", "mlqa2xquad-hybrid-a0.25-s2"]  # the alpha sweep: grid.alpha_seeds
LADDER = ["mlqa2xquad-steps3-hybrid-s1"]  # the budget ladder: 3 steps instead of train.steps (2)
EVAL_DATASET = {"mlqa2xquad": "xquad_r", "xquad2mlqa": "mlqa_r"}
N_CROSS_PAIRS = {"xquad_r": 110, "mlqa_r": 12}  # 11 x 10 and 4 x 3 ordered language pairs
MLQA_LANGS = ["ar", "en", "es", "hi"]


def run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    return proc


@pytest.fixture(scope="module")
def tiny_repo(repo: Path, tmp_path_factory) -> Iterator[tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("repo")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(repo / name, root / name)
    for name in ("src", "notebooks", "data/raw", "data/external"):
        shutil.copytree(repo / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "executed"))
    (root / "paper").mkdir()
    for name in ("main.tex", "reported.yaml"):  # sources only: every table, figure and the PDF are made here
        shutil.copy(repo / "paper" / name, root / "paper" / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PYTHONPATH=str(root / "src"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    run(["dvc", "init", "--no-scm", "-q"], root, env)
    # every trained model is ~470 MB (E5's 250k-token embedding matrix): a hardlinked cache keeps one copy of
    # each instead of two, and the whole repository goes at teardown, passed or not -- ~10 GB in all
    run(["dvc", "config", "cache.type", "hardlink"], root, env)
    try:
        run(["dvc", "repro"], root, env)
        yield root, env
    finally:
        shutil.rmtree(root, ignore_errors=True)


def metrics(root: Path, run: str) -> dict:
    return json.loads((root / "results" / run / "metrics.json").read_text())


def test_every_run_of_the_grid_is_evaluated(tiny_repo):
    root, _ = tiny_repo
    zeroshot = ["mlqa2xquad-zeroshot", "xquad2mlqa-zeroshot", "mlqa2xquad-L2-zeroshot"]
    for run in MAIN + SCALING + LADDER + zeroshot:
        data = metrics(root, run)
        config = data["config"]
        assert config["run"] == run
        ds = EVAL_DATASET[config["fold"]]
        assert config["eval_dataset"] == ds
        m = data[ds]
        for key in ("map_mo", "map_cr", "map_mul", "r1_mo", "r1_cr", "r10_mul"):
            assert 0.0 < m[key] <= 1.0, (run, key, m[key])
        assert m["rank_distance"] >= 0 and 0.0 <= m["same_lang@10"] <= 1.0
        assert m["n_cross_pairs"] == N_CROSS_PAIRS[ds]
        assert set(m["per_language"]["map_mo"]) == set(m["languages"])
        with_tatoeba = (run in MAIN and run.endswith("-s1")) or run in zeroshot[:2]  # grid.tatoeba_seeds, zero-shot
        assert ("tatoeba" in data) == with_tatoeba, run
        if "tatoeba" in data:
            assert set(data["tatoeba"]["per_language"]) == {"de"} and 0.0 < data["tatoeba"]["mean"] <= 1.0
        assert config["layers"] == (2 if "-L2-" in run else 12)
        assert config["parameters"] > config["non_embedding_parameters"] > 0
    # seen languages: a run's own training languages; the zero-shot encoder is split by the fold's
    assert metrics(root, "mlqa2xquad-zeroshot")["xquad_r"]["seen_languages"] == MLQA_LANGS
    assert metrics(root, "mlqa2xquad-hybrid-s1")["config"]["train_languages"] == MLQA_LANGS
    n2 = metrics(root, "mlqa2xquad-n2-hybrid-s1")
    assert n2["config"]["train_languages"] == ["ar", "en"] and n2["config"]["n_languages"] == 2  # language_order[:2]
    assert n2["xquad_r"]["seen"]["languages"] == ["ar", "en"] and "de" in n2["xquad_r"]["unseen"]["languages"]
    assert metrics(root, "mlqa2xquad-hybrid-a0.25-s1")["config"]["alpha"] == 0.25
    for run in MAIN + SCALING + LADDER:  # every trained run records its steps, the step it kept, its mono share
        config = metrics(root, run)["config"]
        steps = 3 if run in LADDER else 2
        assert config["steps"] == steps and 1 <= config["best_step"] <= steps, run
        share = {"xx": 1.0, "xy": 0.0}.get(config["strategy"])
        if share is not None:
            assert config["mono_share"] == share == config["mono_share_kept"], run
        else:  # hybrid, exact schedule: round(alpha * 2) of 2 batches
            assert config["alpha_schedule"] == "exact"
            assert config["mono_share"] == pytest.approx(round(config["alpha"] * steps) / steps, abs=1e-6), run
    assert metrics(root, "mlqa2xquad-hybrid-s1")["config"]["alpha"] == 0.5
    assert metrics(root, "xquad2mlqa-xy-s2")["config"]["seed"] == 2
    for fold, ds in EVAL_DATASET.items():
        bm25 = metrics(root, f"{fold}-bm25")
        assert bm25["config"]["strategy"] == "bm25" and 0.0 < bm25[ds]["map_mo"] <= 1.0
        assert bm25[ds]["settings"] == ["mo"]


def test_training_runs_follow_their_configuration(tiny_repo):
    root, _ = tiny_repo
    for run in MAIN + SCALING + LADDER:
        model = root / "models" / run
        assert (model / "model.safetensors").is_file() and (model / "tokenizer.json").is_file()
        summary = json.loads((model / "training_summary.json").read_text())
        assert summary["steps"] == (3 if run in LADDER else 2) and summary["config"]["run"] == run
        assert not (root / "checkpoints" / run).exists()  # resumable state removed after success
        assert (root / "results" / run / "training" / "metrics.json").is_file()
    xx = json.loads((root / "models" / "mlqa2xquad-xx-s1" / "training_summary.json").read_text())
    assert set(xx["batches"]) == {"xx"}
    assert all(k.split("-")[0] == k.split("-")[1] for k in xx["pairs_by_language"])
    xy = json.loads((root / "models" / "xquad2mlqa-xy-s1" / "training_summary.json").read_text())
    assert all(k.split("-")[0] != k.split("-")[1] for k in xy["pairs_by_language"])
    assert len(xy["train_languages"]) == 11  # trained on XQuAD-R
    small = json.loads((root / "models" / "mlqa2xquad-L2-xx-s1" / "training_summary.json").read_text())
    assert small["config"]["layers"] == 2 and small["config"]["base_model"] == "models/e5-small-L2"


def test_reports_and_paper(tiny_repo):
    root, _ = tiny_repo
    dvc = yaml.safe_load((root / "dvc.yaml").read_text())
    report_stages = [name for name in dvc["stages"] if name.startswith("report_")]
    assert len(report_stages) == 4
    for name in report_stages + ["paper"]:
        for out in dvc["stages"][name]["outs"]:
            path = root / (next(iter(out)) if isinstance(out, dict) else out)
            assert path.is_file() and path.stat().st_size > 200, path
    main = (root / "paper" / "tables" / "main.tex").read_text()
    for label in ("X-X-mono", "X-Y", "Hybrid", "zero-shot", "BM25", r"\toprule"):
        assert label in main
    miracl = json.loads((root / "results" / "mlqa2xquad-zeroshot" / "miracl.json").read_text())["miracl_dev"]
    assert miracl["languages_with_corpus"] == []  # passages are not available offline
    assert miracl["per_language"]["sw"]["status"] == "corpus-absent"
    assert miracl["per_language"]["sw"]["judged_queries"] == 482  # MIRACL dev sw, as in docs/PROTOCOL.md §1.4
    assert (root / "paper" / "main.pdf").read_bytes()[:5] == b"%PDF-"
    executed = json.loads((root / "notebooks" / "executed" / "main.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["params_file"] == "params.yaml"


def test_trained_models_differ_from_the_base(tiny_repo):
    from safetensors.torch import load_file

    root, _ = tiny_repo
    base = load_file(root / "models" / "e5-small" / "model.safetensors")
    tuned = load_file(root / "models" / "mlqa2xquad-hybrid-s1" / "model.safetensors")
    name = next(k for k in base if k.endswith("attention.self.query.weight"))
    assert not (base[name] == tuned[name]).all()


def test_second_repro_is_a_no_op(tiny_repo):
    root, env = tiny_repo
    out = run(["dvc", "status"], root, env).stdout
    assert "changed" not in out and "modified" not in out, out
    out = run(["dvc", "repro"], root, env).stdout
    assert "didn't change, skipping" in out
    assert "Running stage" not in out


TRACKED = ("dvc.lock", "results", "notebooks/executed", "figures", "paper/tables", "build/code")


def _snapshot(root: Path) -> dict[str, bytes]:
    out = {}
    for name in TRACKED:
        path = root / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        out.update({str(f.relative_to(root)): f.read_bytes() for f in files})
    return out


def test_forced_rerun_with_other_execution_settings_changes_no_tracked_byte(tiny_repo):
    """Execution settings are not dependencies (changing them leaves every stage up to date), and forcing a
    training, an evaluation, a report and the paper to run again under other settings -- another checkpoint
    interval, no embedding cache -- rewrites every tracked output byte for byte (no timings,
    timestamps or temporary paths in tracked files: a forced re-run leaves `git status` clean)."""
    root, env = tiny_repo
    before = _snapshot(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    original = (root / "params.yaml").read_text()
    # (not `threads`: torch's thread count changes the last bits of trained weights -- documented in params.yaml)
    params["execution"].update({"checkpoint_every": 2, "cache_dir": None})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        out = run(["dvc", "status"], root, env).stdout
        assert "changed" not in out and "modified" not in out, out
        stages = ["train@mlqa2xquad-hybrid-1", "evaluate@mlqa2xquad-hybrid-1", "evaluate_zeroshot@mlqa2xquad",
                  "train_alpha@0.25-1", "bm25@mlqa2xquad", "report_main", "report_scaling", "paper"]
        for stage in stages:
            run(["dvc", "repro", "-f", "-s", stage], root, env)
        after = _snapshot(root)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        assert not changed, changed
    finally:
        (root / "params.yaml").write_text(original)


def test_two_training_processes_give_the_one_process_model(tiny_repo):
    """`execution.processes: 2` runs the train stage under torchrun (2 gloo processes): without dropout (whose
    masks depend on how a batch is split) the model equals the 1-process one within the data-parallel tests'
    tolerance, and the setting is not a dependency. Last test of this module: it rewrites one model."""
    from safetensors.torch import load_file

    root, env = tiny_repo
    run_name, stage = "mlqa2xquad-hybrid-s1", "train@mlqa2xquad-hybrid-1"
    original = (root / "params.yaml").read_text()

    def train(processes: int) -> dict:
        params = yaml.safe_load(original)
        params["train"]["dropout"] = 0.0
        params["execution"].update({"processes": processes, "threads": 1})
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        if processes > 1:  # after the 1-process run, only `processes` changed: not a dependency
            out = run(["dvc", "status", stage], root, env).stdout
            assert "changed" not in out and "modified" not in out, out
        run(["dvc", "repro", "-f", "-s", stage], root, env)
        timing = json.loads((root / "logs" / "train" / f"{run_name}.json").read_text())
        assert timing["processes"] == processes
        return load_file(root / "models" / run_name / "model.safetensors")

    try:
        one = train(1)
        two = train(2)
        assert one.keys() == two.keys()
        for k in one:
            torch.testing.assert_close(two[k], one[k], rtol=1e-3, atol=1e-4)
    finally:
        (root / "params.yaml").write_text(original)
