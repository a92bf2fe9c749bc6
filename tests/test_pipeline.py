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
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

TINY = {
    "prepare": {"max_questions": 40, "tatoeba": ["deu"]},
    "train": {"languages": ["ar", "en", "es", "hi"], "steps": 2, "batch_size": 4, "warmup_steps": 1, "val_batches": 2, "eval_every": 1,
              "max_passage_length": 64, "checkpoint_every": 1},
}


def run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    return proc


@pytest.fixture(scope="module")
def tiny_repo(repo: Path, tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("repo")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(repo / name, root / name)
    for name in ("src", "notebooks", "data/raw", "data/external"):
        shutil.copytree(repo / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "executed"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PYTHONPATH=str(root / "src"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    run(["dvc", "init", "--no-scm", "-q"], root, env)
    run(["dvc", "repro"], root, env)
    return root, env


def test_pipeline_produces_every_output(tiny_repo):
    root, _ = tiny_repo
    runs = ["zeroshot", "mlqa2xquad-xx", "mlqa2xquad-xx-mixed", "mlqa2xquad-xy", "mlqa2xquad-hybrid"]
    for r in runs:
        m = json.loads((root / "results" / r / "metrics.json").read_text())["xquad_r"]
        for key in ("map_mo", "map_cr", "map_mul", "r1_mo", "r1_cr", "r10_mul"):
            assert 0.0 < m[key] <= 1.0, (r, key, m[key])
        assert m["rank_distance"] >= 0
        assert m["n_cross_pairs"] == 110  # 11 languages of XQuAD-R: 11 x 10 ordered pairs
        assert set(m["per_language"]["map_mo"]) == set(m["languages"])
        assert 0.0 <= m["same_lang@10"] <= 1.0
        t = json.loads((root / "results" / r / "metrics.json").read_text())["tatoeba"]
        assert set(t["per_language"]) == {"de"} and 0.0 < t["mean"] <= 1.0
        # trained runs are split by their own training languages, the zero-shot run by the reference list
        seen = ["ar", "en", "es", "hi"] if r != "zeroshot" else ["ar", "de", "en", "es", "hi", "vi", "zh"]
        assert m["seen_languages"] == seen
        assert "el" in m["unseen"]["languages"] and "en" in m["seen"]["languages"]
    for s in ("xx", "xx-mixed", "xy", "hybrid"):
        model = root / "models" / f"mlqa2xquad-{s}"
        assert (model / "model.safetensors").is_file() and (model / "tokenizer.json").is_file()
        summary = json.loads((model / "training_summary.json").read_text())
        assert summary["steps"] == 2 and summary["train_languages"] == ["ar", "en", "es", "hi"]
        assert not (root / "checkpoints" / f"mlqa2xquad-{s}").exists()  # resumable state removed after success
        assert (root / "results" / f"mlqa2xquad-{s}" / "training" / "metrics.json").is_file()
    xx = json.loads((root / "models" / "mlqa2xquad-xx" / "training_summary.json").read_text())
    assert set(xx["batches"]) == {"xx"}
    assert all(k.split("-")[0] == k.split("-")[1] for k in xx["pairs_by_language"])
    xy = json.loads((root / "models" / "mlqa2xquad-xy" / "training_summary.json").read_text())
    assert all(k.split("-")[0] != k.split("-")[1] for k in xy["pairs_by_language"])
    table = (root / "paper" / "tables" / "main.tex").read_text()
    miracl = json.loads((root / "results" / "zeroshot" / "miracl.json").read_text())["miracl_dev"]
    assert miracl["languages_with_corpus"] == []  # passages are not available offline
    assert miracl["per_language"]["sw"]["status"] == "corpus-absent"
    assert miracl["per_language"]["sw"]["judged_queries"] == 482  # MIRACL dev sw, as in SOURCES.md
    bm25 = json.loads((root / "results" / "bm25" / "metrics.json").read_text())["xquad_r"]
    assert 0.0 < bm25["map_mo"] <= 1.0 and bm25["settings"] == ["mo"]
    for label in ("X-X-mono", "X-X (mixed)", "X-Y", "Hybrid", "zero-shot", "BM25", r"\toprule"):
        assert label in table
    sig = (root / "paper" / "tables" / "significance.tex").read_text()
    assert sig.count("Hybrid $-$") == 9 and "p_\\mathrm{Holm}" in sig
    for name in ("per_language_mo", "per_language_mul"):
        per_lang = (root / "paper" / "tables" / f"{name}.tex").read_text()
        assert "el$^\\dagger$" in per_lang and "X-X (mixed)" in per_lang
    assert (root / "figures" / "main.pdf").stat().st_size > 1000
    assert (root / "figures" / "main.png").stat().st_size > 1000
    executed = json.loads((root / "notebooks" / "executed" / "main.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["params_file"] == "params.yaml"


def test_trained_models_differ_from_the_base(tiny_repo):
    from safetensors.torch import load_file

    root, _ = tiny_repo
    base = load_file(root / "models" / "e5-small" / "model.safetensors")
    tuned = load_file(root / "models" / "mlqa2xquad-hybrid" / "model.safetensors")
    name = next(k for k in base if k.endswith("attention.self.query.weight"))
    assert not (base[name] == tuned[name]).all()


def test_second_repro_is_a_no_op(tiny_repo):
    root, env = tiny_repo
    out = run(["dvc", "status"], root, env).stdout
    assert "changed" not in out and "modified" not in out, out
    out = run(["dvc", "repro"], root, env).stdout
    assert "didn't change, skipping" in out
    assert "Running stage" not in out
