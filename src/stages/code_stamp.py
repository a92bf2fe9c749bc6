"""Stage `code_<family>`: the source files a stage family runs, declared once, as one file of hashes.

    python src/stages/code_stamp.py --stage code_train --entry src/stages/train.py --out build/code/train.json

Several stages run the same script (the four training families, the six evaluation families). Their code
is declared once, as the deps of this stage in dvc.yaml; they depend on its output, whose content changes
exactly when one of those files does. The stage refuses to run (one-line ``error:``, exit 2) when the deps
dvc.yaml declares for it differ from the files ``--entry`` imports (hybridbatch.pipeline.deps), so the declaration
cannot drift from the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from hybridbatch.pipeline.deps import STAMP_CODE, file_hashes, project_imports
from hybridbatch.io import write_json
from hybridbatch.params import fail


def declared_deps(stage: str, dvc_yaml: str | Path = "dvc.yaml") -> list[str]:
    stages = yaml.safe_load(Path(dvc_yaml).read_text(encoding="utf-8"))["stages"]
    if stage not in stages:
        raise KeyError(f"{dvc_yaml}: no stage {stage!r}")
    return [d for d in stages[stage].get("deps", []) if isinstance(d, str) and d.startswith("src/")]  # code only


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", required=True, help="this stage's name in dvc.yaml")
    ap.add_argument("--entry", required=True, help="the script the family runs")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    imported = project_imports(args.entry)
    declared = sorted(set(declared_deps(args.stage)))
    expected = sorted(set(imported) | set(STAMP_CODE))
    if declared != expected:
        missing, extra = sorted(set(expected) - set(declared)), sorted(set(declared) - set(expected))
        fail(f"dvc.yaml: stage {args.stage} declares deps that differ from what {args.entry} imports: "
             f"missing {missing}, not imported {extra}")
    write_json(args.out, {"entry": args.entry, "files": file_hashes(imported)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
