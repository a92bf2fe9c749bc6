"""Stage `model_card`: the Hugging Face model card (README.md) of one trained checkpoint.

    python src/stages/model_card.py --run R --model models/R --metrics results/R/metrics.json \\
        --baseline results/FOLD-zeroshot/metrics.json --out cards/R/README.md [--params params.yaml] \\
        [--repo-id NAMESPACE/NAME]

Reads the checkpoint's ``training_summary.json`` (strategy, alpha, realised monolingual share, steps, kept
step, batch size, batches, validation history), its ``hybridbatch_encoder.json`` (pooling, prefixes) and
the SHA-256 of its ``model.safetensors``, the run's evaluation ``metrics.json`` and, with ``--baseline``,
its fold's zero-shot baseline (the base model before fine-tuning, shown beside the run's numbers and in the
card's ``model-index``); with ``--params`` also the ``train`` hyperparameters listed in
``hybridbatch.model.card.HYPERPARAMETERS``. Writes the card
(``hybridbatch.model.card.render``, deterministic: no dates) atomically to ``--out`` -- its own output,
never inside the model directory, so writing a card never invalidates training.

Refuses (exit 2, one line on stderr) when a file is missing, when the run named by ``--run``, the
checkpoint's summary and the metrics disagree, or when the baseline is not a zero-shot evaluation of the
run's base model on the run's evaluation set.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hybridbatch.io import sha256_file, write_text
from hybridbatch.model.card import HYPERPARAMETERS, WEIGHTS_FILE, render, run_config

SUMMARY_FILE = "training_summary.json"
SETTINGS_FILE = "hybridbatch_encoder.json"  # = hybridbatch.model.encoder.SETTINGS_FILE (not imported: torch)


class CardError(ValueError):
    """An input the card cannot be made from (one line)."""


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise CardError(f"{what} {path} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CardError(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CardError(f"{what} {path} is not a JSON object")
    return data


def _read_baseline(path: Path, config: dict) -> dict:
    """The zero-shot baseline's metrics, checked against the run's record (``config``)."""
    baseline = _read_json(path, "baseline metrics")
    base = baseline.get("config") or {}
    if base.get("strategy") != "zeroshot":
        raise CardError(f"{path} is not a zero-shot baseline (strategy {base.get('strategy')!r})")
    for key in ("base_model", "eval_dataset"):
        if config.get(key) is not None and base.get(key) != config.get(key):
            raise CardError(f"{path} has {key} {base.get(key)!r}, the run {config.get(key)!r}")
    return baseline


def build_card(run: str, model: Path, metrics_path: Path | None, params: Path | None = None,
               repo_id: str | None = None, baseline_path: Path | None = None) -> str:
    """The card text of checkpoint ``model`` (run ``run``); :class:`CardError` on a bad input."""
    if not model.is_dir():
        raise CardError(f"model directory {model} not found (run `dvc pull` or `dvc repro` for it)")
    summary = _read_json(model / SUMMARY_FILE, "training summary")
    metrics = _read_json(metrics_path, "metrics") if metrics_path is not None else {}
    trained = (summary.get("config") or {}).get("run")
    if trained is not None and trained != run:
        raise CardError(f"{model / SUMMARY_FILE} is the checkpoint of run {trained!r}, not {run!r}")
    evaluated = (metrics.get("config") or {}).get("run")
    if evaluated is not None and evaluated != run:
        raise CardError(f"{metrics_path} holds the metrics of run {evaluated!r}, not {run!r}")
    if trained is None:  # a summary older than the `config` block: name it from --run
        summary = {**summary, "config": {**run_config(summary, metrics), "run": run}}
    baseline = _read_baseline(baseline_path, run_config(summary, metrics)) if baseline_path is not None else None
    settings = _read_json(model / SETTINGS_FILE, "encoder settings") if (model / SETTINGS_FILE).is_file() else None
    weights = model / WEIGHTS_FILE
    if not weights.is_file():
        raise CardError(f"{weights} not found (a card describes safetensors weights)")
    hyper = None
    if params is not None:
        from hybridbatch.params import load_section  # noqa: PLC0415 (pydantic only when asked)

        train = load_section(params, "train")
        hyper = {k: train[k] for k in HYPERPARAMETERS if k in train}
    library = "sentence-transformers" if (model / "modules.json").is_file() else "transformers"
    return render(summary, metrics, baseline=baseline, library_name=library, settings=settings,
                  hyperparameters=hyper, weights_sha256=sha256_file(weights), repo_id=repo_id)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="run name, e.g. mlqa2xquad-hybrid-s13")
    ap.add_argument("--model", required=True, type=Path, help="checkpoint directory (models/<run>)")
    ap.add_argument("--metrics", type=Path, default=None, help="results/<run>/metrics.json (omit: no evaluation)")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="results/<fold>-zeroshot/metrics.json: the base model's numbers beside the run's")
    ap.add_argument("--out", required=True, type=Path, help="card to write (cards/<run>/README.md)")
    ap.add_argument("--params", type=Path, default=None, help="params.yaml: show its train hyperparameters")
    ap.add_argument("--repo-id", default=None,
                    help="hub id the usage snippets load (default: the checkpoint directory models/<run>)")
    args = ap.parse_args(argv)
    try:
        text = build_card(args.run, args.model, args.metrics, args.params, args.repo_id, args.baseline)
    except CardError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    write_text(args.out, text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
