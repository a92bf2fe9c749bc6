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

from hybridbatch.data.raw import prepare
from hybridbatch.params import section

logger = logging.getLogger("stages.prepare")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        p = section(args.params, "prepare")
        stats = prepare(p.raw_dir, p.out_dir, datasets=p.datasets, tatoeba_langs=p.tatoeba,
                        max_questions=p.max_questions)
    except ValueError as e:  # DataError, ParamsError or unusable settings
        print(f"prepare: error: {e}", file=sys.stderr)
        return 2
    logger.info("done in %.1f s: %s", time.perf_counter() - started, stats["totals"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
