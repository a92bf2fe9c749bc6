"""Training curves of every run side by side: one long table per curve, for `dvc plots show` / `dvc plots diff`.

Each training stage writes its dvclive curves under ``results/<run>/training/plots/metrics/`` (declared as
that stage's plots). :func:`collect` stacks one curve over every run into rows ``step, run, strategy, seed,
<value>`` (strategy and seed read from the run's record when the run has been evaluated, else from its name),
sorted by run then step, so the comparison plots of dvc.yaml (template ``.dvc/plots/by_run.json``: one line
per run, coloured by run) compare strategies and seeds in one figure.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

CURVES = {"val_loss": "val/loss.tsv", "train_loss": "train/loss.tsv", "mono_share": "batches/mono_share.tsv"}
_NAME = re.compile(r"^(?P<prefix>.*?)-(?P<strategy>xx-mixed|xx|xy|hybrid)(?:-a[0-9.]+)?-s(?P<seed>\d+)$")


def _identity(results: Path, run: str) -> tuple[str, int | None]:
    metrics = results / run / "metrics.json"
    if metrics.is_file():
        config = json.loads(metrics.read_text(encoding="utf-8")).get("config", {})
        if config.get("strategy"):
            return config["strategy"], config.get("seed")
    m = _NAME.match(run)
    return (m["strategy"], int(m["seed"])) if m else ("", None)


def collect(results_dir: str | os.PathLike, curve: str) -> pd.DataFrame:
    """``curve`` (a key of :data:`CURVES`) of every run with training curves, as one long table."""
    if curve not in CURVES:
        raise ValueError(f"unknown curve {curve!r}; choose one of {sorted(CURVES)}")
    results = Path(results_dir)
    frames = []
    for path in sorted(results.glob(f"*/training/plots/metrics/{CURVES[curve]}")):
        run = path.relative_to(results).parts[0]
        df = pd.read_csv(path, sep="\t")
        value = [c for c in df.columns if c not in ("step", "timestamp")][-1]
        strategy, seed = _identity(results, run)
        frames.append(pd.DataFrame({"step": df["step"], "run": run, "strategy": strategy, "seed": seed,
                                    curve: df[value]}))
    columns = ["step", "run", "strategy", "seed", curve]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns].sort_values(["run", "step"], kind="stable")
