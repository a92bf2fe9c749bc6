"""Stage `prepare`: verify the vendored raw data and write the normalised tables.

Usage: python src/stages/prepare.py --params params.yaml   (reads the `prepare` section)
Exit status 2 on bad data or a bad `prepare` section, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from hybridbatch.data import DataError, prepare

logger = logging.getLogger("stages.prepare")


def read_section(params_path: Path) -> dict[str, Any]:
    """The `prepare` section of the params file (``raw_dir`` and ``out_dir`` required)."""
    try:
        params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise DataError(params_path, f"cannot read params: {e}") from e
    section = params.get("prepare") if isinstance(params, dict) else None
    if not isinstance(section, dict):
        raise DataError(params_path, "missing or not a mapping", field="prepare")
    unknown = sorted(set(section) - {"raw_dir", "out_dir", "datasets", "tatoeba", "max_questions"})
    if unknown:
        raise DataError(params_path, f"unknown key(s) {unknown}", field="prepare")
    for key in ("raw_dir", "out_dir"):
        if not isinstance(section.get(key), str):
            raise DataError(params_path, "missing or not a string", field=f"prepare.{key}")
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        section = read_section(args.params)
        stats = prepare(section["raw_dir"], section["out_dir"], datasets=section.get("datasets"),
                        tatoeba_langs=section.get("tatoeba"), max_questions=section.get("max_questions"))
    except ValueError as e:  # DataError or unusable settings
        print(f"prepare: error: {e}", file=sys.stderr)
        return 2
    logger.info("done in %.1f s: %s", time.perf_counter() - started, stats["totals"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
