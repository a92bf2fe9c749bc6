"""Export one trained checkpoint with its model card, ready for the Hugging Face hub (nothing is uploaded).

    python src/stages/export_model.py --model models/R --card cards/R/README.md --out export/R \\
        [--repo-id NAMESPACE/NAME]

Copies every file of the checkpoint directory (weights, config, tokenizer, sentence-transformers and
hybridbatch configs, training_summary.json) and the card, as ``README.md``, into ``--out`` (replaced
atomically), then prints the command that would upload it. With ``--repo-id`` the exported card's usage
snippets load that hub id (``hybridbatch.model.card.with_repo_id``; the committed card loads
``models/<run>``). Refuses, with exit status 2 and one line on
stderr, when a required file is missing, when the card's run (front matter ``model-index`` name, or
``model_name`` for a card without evaluation) is not the
checkpoint's (``training_summary.json`` ``config.run``), or when the card names other weights (SHA-256).
Not a DVC stage: the export is a disposable copy (keep ``export/`` out of git).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from hybridbatch.io import atomic_dir, sha256_file
from hybridbatch.model.card import WEIGHTS_FILE, card_run_name, card_weights_sha256, parse_card, with_repo_id

#: what a checkpoint directory must hold to be exported
REQUIRED = (WEIGHTS_FILE, "config.json", "tokenizer.json", "tokenizer_config.json", "training_summary.json")


class ExportError(ValueError):
    pass


def check(model: Path, card: Path) -> tuple[str, str]:
    """(run, card text) when ``card`` describes checkpoint ``model``; :class:`ExportError` otherwise."""
    import json  # noqa: PLC0415

    if not model.is_dir():
        raise ExportError(f"model directory {model} not found")
    missing = [name for name in REQUIRED if not (model / name).is_file()]
    if missing:
        raise ExportError(f"{model} lacks {', '.join(missing)}")
    if not card.is_file():
        raise ExportError(f"model card {card} not found (run `dvc repro model_card` or src/stages/model_card.py)")
    try:
        summary = json.loads((model / "training_summary.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{model / 'training_summary.json'} is not valid JSON: {exc}") from None
    run = (summary.get("config") or {}).get("run") or model.name
    text = card.read_text(encoding="utf-8")
    try:
        meta, _ = parse_card(text)
    except ValueError as exc:
        raise ExportError(f"{card}: {exc}") from None
    card_run = card_run_name(meta)
    if card_run is None:
        raise ExportError(f"{card} names no run (front matter `model-index` name or `model_name`)")
    if card_run != run:
        raise ExportError(f"{card} is the card of run {card_run!r} but {model} holds run {run!r}")
    sha = card_weights_sha256(text)
    if sha is not None and sha != sha256_file(model / WEIGHTS_FILE):
        raise ExportError(f"{card} describes other weights than {model / WEIGHTS_FILE} (SHA-256 differs): "
                          "re-run the model_card stage")
    return run, text


def export(model: Path, card: Path, out: Path, repo_id: str | None = None) -> str:
    """Write ``out`` = the checkpoint's files + ``README.md`` (the card, its snippets loading ``repo_id``
    when given); return the run name."""
    run, text = check(model, card)
    if repo_id is not None:
        try:
            text = with_repo_id(text, repo_id)
        except ValueError as exc:
            raise ExportError(str(exc)) from None
    with atomic_dir(out) as tmp:
        # plain copies (never hard links into DVC's read-only cache), without the card of any earlier export
        shutil.copytree(model, tmp, dirs_exist_ok=True, copy_function=shutil.copyfile,
                        ignore=lambda d, names: [n for n in names if n.startswith(".") or
                                                 (Path(d) == model and n == "README.md")])
        (tmp / "README.md").write_text(text, encoding="utf-8")
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path, help="checkpoint directory (models/<run>)")
    ap.add_argument("--card", required=True, type=Path, help="its model card (cards/<run>/README.md)")
    ap.add_argument("--out", required=True, type=Path, help="export directory (export/<run>), replaced")
    ap.add_argument("--repo-id", default=None, help="hub repository: what the card's snippets load, and the "
                                                     "printed command's target (default <namespace>/hybridbatch-<run>)")
    args = ap.parse_args(argv)
    try:
        run = export(args.model, args.card, args.out, args.repo_id)
    except ExportError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    repo = args.repo_id or f"<namespace>/hybridbatch-{run}"
    print(f"exported {run} to {args.out}; to publish it (after `hf auth login`), run:")
    print(f"  python -c \"from huggingface_hub import create_repo, upload_folder; "
          f"create_repo('{repo}', repo_type='model', exist_ok=True); "
          f"upload_folder(folder_path='{args.out}', repo_id='{repo}', repo_type='model')\"")
    print(f"  # or, creating the repository if needed: hf upload {repo} {args.out} . --repo-type model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
