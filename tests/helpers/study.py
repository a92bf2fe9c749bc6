"""The pre-registered study's params: params.yaml with the overlay configs/study.yaml applied, as
``python -m hybridbatch.overlays exp-run configs/study.yaml`` (``dvc exp run -S``) applies it: each overlay key
replaces the params value whole."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def study_params(repo: Path = REPO) -> dict:
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    overlay = yaml.safe_load((repo / "configs" / "study.yaml").read_text(encoding="utf-8"))
    out = copy.deepcopy(params)
    for section, values in overlay.items():
        for key, value in values.items():
            assert key in out[section], f"configs/study.yaml: {section}.{key} is not in params.yaml"
            out[section][key] = value
    return out


def write_study_params(path: Path, repo: Path = REPO) -> Path:
    path.write_text(yaml.safe_dump(study_params(repo), sort_keys=False), encoding="utf-8")
    return path
