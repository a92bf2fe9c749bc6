"""Stage `validate`: the front door -- the whole params file is checked before any stage touches an output.

    python src/stages/validate.py --params params.yaml --out build/params.ok

DVC removes a stage's outputs before it runs the stage's command, so a stage that refuses a bad value has
already lost its committed results. Every other stage of dvc.yaml depends on this stage's output, so DVC
runs it first and stops at its error. It reads every section through the one reader
(:func:`hybridbatch.params.validate_all`: types and ranges, duplicated keys, non-finite numbers, the grid's
strategies, folds, seeds and datasets) and writes a file whose content never depends on the values, so a
params change re-runs this stage but invalidates nothing downstream by itself.
Exit status 2 with a one-line ``error:`` naming the file, the key and the value.
"""

from __future__ import annotations

import argparse
import sys

from hybridbatch.data.raw import DATASET_DIRS
from hybridbatch.io import write_text
from hybridbatch.params import ParamsError, fail, validate_all
from hybridbatch.strategies import TRAINED

#: the output's fixed content (never the values: a params change must not invalidate the stages after it)
OK = "params validated by src/stages/validate.py\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="build/params.ok", help="written (fixed content) when every check passes")
    args = ap.parse_args(argv)
    try:
        validate_all(args.params, strategies=TRAINED, datasets=DATASET_DIRS)
    except ParamsError as exc:
        fail(exc)
    write_text(args.out, OK)
    return 0


if __name__ == "__main__":
    sys.exit(main())
