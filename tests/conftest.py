"""Shared fixtures: the repository root and small synthetic parallel data."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session", autouse=True)
def _no_stale_base_dirs(tmp_path_factory) -> None:
    """Remove earlier pytest sessions' base directories (``pytest-of-<user>/pytest-<N>``) before this one writes.

    pytest keeps them between sessions, and a machine that keeps ``/tmp`` between runs (CI did) filled its disk
    with the pipeline test's trained models. Directories of sessions still running -- a ``.lock`` naming a live
    process -- are left alone; so is everything under a ``--basetemp`` the user chose.
    """
    current = tmp_path_factory.getbasetemp()
    match = re.fullmatch(r"pytest-(\d+)", current.name)
    if match is None or not current.parent.name.startswith("pytest-of-"):
        return
    for old in current.parent.iterdir():
        if old == current or old.is_symlink() or not re.fullmatch(r"pytest-\d+", old.name):
            continue
        lock = old / ".lock"
        try:
            if lock.is_file() and _alive(int(lock.read_text().strip() or 0)):
                continue
        except (OSError, ValueError):
            pass
        shutil.rmtree(old, ignore_errors=True)
