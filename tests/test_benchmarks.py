"""The cost benchmarks run in their smoke mode (tiny model, tiny data) and print their tables."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers.tiny import REPO


def run(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_run_cost_quick_prints_before_and_after_per_component():
    out = run("benchmarks/run_cost.py", "--quick")
    assert out.startswith("SMOKE")
    for row in ("chunk_tokens 1024 -> 256", "2 x 1-thread procs", "dropout on -> off", "old -> new",
                "Tatoeba on -> off", "per run:"):
        assert row in out
    assert "before" in out and "after" in out


def test_run_cost_full_mode_without_the_model_says_how_to_build_it(tmp_path):
    env = {**os.environ}
    out = subprocess.run([sys.executable, "benchmarks/run_cost.py", "--model", str(tmp_path / "absent")], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "dvc repro import_model" in out.stdout


def test_evaluate_benchmark_scoring_only_compares_old_and_new():
    out = run("benchmarks/evaluate.py", "--scoring-only", "--fraction", "0.03")
    assert "old" in out and "new" in out and "every value equal" in out
