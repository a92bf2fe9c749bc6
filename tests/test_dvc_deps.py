"""Every stage declares exactly the project files it runs: its script's (or notebook's) transitive imports,
inside functions too -- directly, or through the `code_*` stage of its family."""

from __future__ import annotations

import shlex

import pytest
import yaml

from helpers.tiny import REPO
from hybridbatch.pipeline.deps import STAMP_CODE as OWN, project_imports

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
CODE_OUT = {DVC[name]["outs"][0] if isinstance(DVC[name]["outs"][0], str) else next(iter(DVC[name]["outs"][0])): name
            for name in DVC if name.startswith("code_")}


def _body(stage: dict) -> dict:
    return stage.get("do", stage)


def _entry(cmd: str) -> list[str]:
    """Project files a command runs: the script and any notebook it is given."""
    words = shlex.split(cmd)
    return [w for w in words if w.startswith(("src/", "notebooks/")) and w.endswith((".py", ".ipynb"))
            and not w.startswith("notebooks/executed")]


def _declared_code(name: str) -> set[str]:
    deps = [d for d in _body(DVC[name]).get("deps", []) if isinstance(d, str)]
    out = {d for d in deps if d.startswith(("src/", "notebooks/")) and d.endswith((".py", ".ipynb"))}
    for d in deps:  # a family's code declared once, through its code_* stage (less the stamp's own code,
        if d in CODE_OUT:  # which the family does not run unless it imports it too)
            code = CODE_OUT[d]
            entry = _option(_body(DVC[code])["cmd"], "--entry")
            runs = set(project_imports(entry, REPO))
            out |= {f for f in _declared_code(code) if f not in OWN or f in runs}
    return out


def _option(cmd: str, flag: str) -> str:
    words = shlex.split(cmd)
    return words[words.index(flag) + 1]


@pytest.mark.parametrize("name", sorted(DVC))
def test_stage_code_deps_equal_its_imports(name):
    cmd = _body(DVC[name])["cmd"]
    if name.startswith("code_"):
        entry = _option(cmd, "--entry")
        expected = set(project_imports(entry, REPO)) | set(OWN)
    else:
        expected = set()
        for entry in _entry(cmd):
            expected |= set(project_imports(entry, REPO))
    assert _declared_code(name) == expected, (
        f"{name}: missing {sorted(expected - _declared_code(name))}, "
        f"not imported {sorted(_declared_code(name) - expected)}")


def test_the_drift_check_can_fail():
    """A stage that forgot a module it imports is caught."""
    imported = set(project_imports("src/stages/train.py", REPO))
    assert "src/hybridbatch/training/checkpoints.py" in imported  # imported by training.py
    assert "src/hybridbatch/evaluation/cache.py" in imported  # imported inside a function of training.py
    declared = _declared_code("train")
    assert imported <= declared and (declared - {"src/hybridbatch/evaluation/cache.py"}) != imported


def test_execution_settings_are_never_stage_params():
    for name, stage in DVC.items():
        for p in _body(stage).get("params", []):
            key = p if isinstance(p, str) else next(iter(p))
            assert not key.startswith("execution"), (name, key)
            assert key.split(".")[-1] not in ("threads", "checkpoint_every", "cache_dir", "processes"), (name, key)
        assert "${execution" not in str(_body(stage)), name
