"""Reading ``params.yaml``: one section per stage (iterative/example-get-started style)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import yaml


def load_section(path: str | os.PathLike, section: str) -> dict[str, Any]:
    """The ``section`` mapping of the params file, with a clear error if the file or section is missing."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"error: params file {path} not found")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SystemExit(f"error: {path} is not valid YAML: {exc}") from None
    if not isinstance(params.get(section), dict):
        raise SystemExit(f"error: {path} has no '{section}' section")
    return params[section]


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
