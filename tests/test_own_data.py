"""The "Use it on your own data" text runs: the python block of docs/own-data.md and README's copy."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from helpers.tiny import REPO

BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def own_data_block(text: str) -> str:
    blocks = BLOCK.findall(text)
    assert len(blocks) == 1, f"expected one python block, found {len(blocks)}"
    return blocks[0]


def readme_section() -> str | None:
    readme = (REPO / "README.md").read_text()
    m = re.search(r"<!-- own-data:start -->(.*?)<!-- own-data:end -->", readme, re.S)
    return m.group(1) if m else None


def test_docs_code_runs_and_shows_the_strategy(tmp_path):
    code = own_data_block((REPO / "docs" / "own-data.md").read_text())
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    kinds = [ln.split()[0] for ln in out.stdout.splitlines()[:4]]
    assert sorted(kinds) == ["xx", "xx", "xy", "xy"], out.stdout
    assert "Mul. mAP" in out.stdout


def test_readme_section_is_the_docs_section():
    section = readme_section()
    if section is None:
        pytest.skip("README.md has no own-data markers")
    assert own_data_block(section) == own_data_block((REPO / "docs" / "own-data.md").read_text())
