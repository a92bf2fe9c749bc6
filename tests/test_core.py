"""The light core: `pip install .` is numpy only, and the samplers and metrics run without the extras."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib

from helpers.tiny import REPO

BLOCKED = ("torch", "transformers", "pandas", "scipy", "pydantic", "yaml", "sentence_transformers", "datasets")
CORE_MODULES = ("hybridbatch", "hybridbatch.strategies", "hybridbatch.sampling", "hybridbatch.sampling.pools",
                "hybridbatch.sampling.samplers", "hybridbatch.sampling.build", "hybridbatch.sampling.rows",
                "hybridbatch.evaluation.metrics")

SCRIPT = textwrap.dedent('''
    import importlib, sys
    BLOCKED = {blocked!r}

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked for the core test: {{name}}")

    sys.meta_path.insert(0, Block())
    for name in {modules!r}:
        importlib.import_module(name)
    import numpy as np
    from hybridbatch.strategies import TRAINED
    from hybridbatch.sampling.build import build_sampler
    from hybridbatch.sampling.rows import RowSampler
    from hybridbatch.evaluation import metrics as M
    langs_of = {{f"q{{i}}": ["de", "en", "es"] for i in range(20)}}
    groups = {{q: i for i, q in enumerate(langs_of)}}
    for strategy in TRAINED:
        batch = build_sampler(strategy, langs_of, groups, 4, seed=0, steps=4).next_batch()
        assert len(batch.pairs) == 4
    rows = RowSampler.from_columns([q for q in langs_of for _ in range(3)], ["de", "en", "es"] * 20, "hybrid", 4,
                                   steps=2).next_batch()
    assert len(rows.query_rows) == 4
    ranks = np.array([1, 3])
    assert abs(M.PER_QUERY["ap"][0](ranks) - (1 + 2 / 3) / 2) < 1e-12 and M.recall_at(ranks, 1) == 0.5
    assert not BLOCKED & set(m.split(".")[0] for m in sys.modules), sorted(BLOCKED & set(sys.modules))
    print("core ok")
''')


def test_core_modules_import_and_run_with_numpy_only():
    script = SCRIPT.format(blocked=set(BLOCKED), modules=CORE_MODULES)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "core ok" in out.stdout, out.stderr[-3000:]


def test_the_block_really_blocks():
    script = SCRIPT.format(blocked=set(BLOCKED), modules=("hybridbatch.evaluation.lareqa",))
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "blocked for the core test" in out.stderr


def test_core_dependencies_are_numpy_only():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert [d.split("==")[0] for d in project["dependencies"]] == ["numpy"]
    assert project["dependencies"][0].startswith("numpy==")
