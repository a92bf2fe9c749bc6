"""The LAReQA evaluation of any encoder on the vendored XQuAD-R / MLQA-R (docs/PROTOCOL.md §4).

    python -m hybridbatch.evaluation.any_model --model DIR [--dataset xquad_r] [--langs de,en,es]
        [--max-questions N] [--sample-fraction F] [--json]

prints Mo./Cr./Mul. mAP, R@1, R@10 and the rank distance. ``DIR`` is a sentence-transformers model (it has
``modules.json``) or a Hugging Face encoder checkpoint (loaded as the project's ``DualEncoder``, prefixes and
pooling from ``hybridbatch_encoder.json``). Exit status 2 with a one-line ``error:`` for a missing directory
or bad arguments.

The metrics are the project's own: the texts and frames are those of the ``prepare`` stage (``data.raw``) and
the scoring is :func:`hybridbatch.evaluation.lareqa.evaluate_lareqa`, the function the ``evaluate`` stage
calls, so a model's numbers here equal the stage's on the same questions. In Python:

- :func:`evaluate_model` -- any encoder: a ``SentenceTransformer``, the project's ``DualEncoder``, or a
  callable ``texts -> embeddings`` (rows: one per text; a 2-d array or tensor). A callable or a
  ``SentenceTransformer`` gets the texts with the E5 prefixes ``"query: "`` / ``"passage: "`` (change them
  with ``query_prefix`` / ``passage_prefix``; ``""`` for none); a ``DualEncoder`` adds its own.
- :func:`load_eval_set` -- the questions and candidates of a dataset (verified against ``SHA256SUMS``).
- ``hybridbatch.integrations.sentence_transformers.LAReQAEvaluator`` -- the same as a sentence-transformers
  evaluator (``SentenceTransformerTrainer(evaluator=...)``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from hybridbatch.data.raw import (CANDIDATE_COLUMNS, DATASET_LANGS, QUESTION_COLUMNS, _load_dataset, sample_paragraphs,
                                  verify_checksums)
from hybridbatch.evaluation.lareqa import CANDIDATE_TEXTS, evaluate_lareqa

REPO = Path(__file__).resolve().parents[3]
RAW_DIR = REPO / "data" / "raw"
E5_PREFIXES = {"query": "query: ", "passage": "passage: "}
#: (column of the printed table, summary key of ``lareqa.HEADLINE``)
TABLE: tuple[tuple[str, str], ...] = (("Mo. mAP", "map_mo"), ("Cr. mAP", "map_cr"), ("Mul. mAP", "map_mul"),
                                      ("Mo. R@1", "r1_mo"), ("Cr. R@1", "r1_cr"), ("Mul. R@10", "r10_mul"),
                                      ("rank dist.", "rank_distance"))


def load_eval_set(dataset: str = "xquad_r", langs: Sequence[str] | None = None, raw_dir: str | Path = RAW_DIR,
                  max_questions: int | None = None, sample_fraction: float = 1.0,
                  sample_seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Questions and candidates of ``dataset`` in ``langs`` (default: all), as the ``prepare`` stage writes them.

    ``max_questions``: the first N questions of the English file in every language (``prepare``'s subset);
    ``sample_fraction`` < 1: the evaluate stage's seeded paragraph sample. Raises ``ValueError`` for an unknown
    dataset or language, ``DataError`` for files that fail their checksums.
    """
    if dataset not in DATASET_LANGS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASET_LANGS)}")
    langs = list(DATASET_LANGS[dataset] if langs is None else langs)
    unknown = sorted(set(langs) - set(DATASET_LANGS[dataset]))
    if unknown or not langs:
        raise ValueError(f"{dataset} has no language(s) {unknown or langs}; it has {', '.join(DATASET_LANGS[dataset])}")
    raw_dir = Path(raw_dir)
    verified = {p.resolve() for p in verify_checksums(raw_dir)}
    qs, cs = _load_dataset(raw_dir, dataset, langs, verified, max_questions)
    questions = pd.concat(qs, ignore_index=True)[QUESTION_COLUMNS]
    candidates = pd.concat(cs, ignore_index=True)[CANDIDATE_COLUMNS]
    return sample_paragraphs(questions, candidates, sample_fraction, sample_seed)


class TextEncoder:
    """``encode(texts, kind)`` over any model, the interface ``evaluate_lareqa`` encodes with.

    ``model``: a ``SentenceTransformer`` (``encode(texts, prompt=...)``) or a callable ``texts -> embeddings``.
    ``prefixes``: the text put before queries / passages. Embeddings are returned as a float32 CPU tensor.
    """

    def __init__(self, model: Any, prefixes: dict[str, str] = E5_PREFIXES, batch_size: int = 64) -> None:
        if not callable(model) and not hasattr(model, "encode"):
            raise TypeError(f"expected a SentenceTransformer or a callable texts -> embeddings, got {type(model)}")
        self.model, self.prefixes, self.batch_size = model, dict(prefixes), batch_size

    def _is_sentence_transformer(self) -> bool:
        return type(self.model).__module__.startswith("sentence_transformers")

    def encode(self, texts: Sequence[str], kind: str, **_ignored) -> torch.Tensor:
        if kind not in self.prefixes:
            raise ValueError(f"kind must be one of {sorted(self.prefixes)}, got {kind!r}")
        texts = list(texts)
        if self._is_sentence_transformer():
            emb = self.model.encode(texts, prompt=self.prefixes[kind], batch_size=self.batch_size,
                                    convert_to_tensor=True, show_progress_bar=False)
        else:
            emb = self.model([self.prefixes[kind] + t for t in texts])
        emb = torch.as_tensor(np.asarray(emb) if not isinstance(emb, torch.Tensor) else emb)
        if emb.ndim != 2 or emb.shape[0] != len(texts):
            raise ValueError(f"the encoder returned shape {tuple(emb.shape)} for {len(texts)} texts "
                             f"(expected one row per text)")
        return emb.detach().to("cpu", torch.float32)


def as_encoder(model: Any, query_prefix: str = "query: ", passage_prefix: str = "passage: ") -> Any:
    """``model`` as an object with ``encode(texts, kind, ...)``: a ``DualEncoder`` (or anything with that
    signature, e.g. the stage's ``CachingEncoder``) as is, else a :class:`TextEncoder`."""
    from hybridbatch.model.encoder import DualEncoder

    if isinstance(model, DualEncoder) or hasattr(model, "embed"):
        return model
    return TextEncoder(model, {"query": query_prefix, "passage": passage_prefix})


def evaluate_model(model: Any, questions: pd.DataFrame | None = None, candidates: pd.DataFrame | None = None, *,
                   dataset: str = "xquad_r", langs: Sequence[str] | None = None,
                   candidate_text: str = "sentence", query_prefix: str = "query: ",
                   passage_prefix: str = "passage: ", max_tokens: int = 8192, **load) -> dict:
    """The LAReQA summary of ``model`` (``lareqa.summarise``: ``map_mo``, ``map_cr``, ``map_mul``, ``r1_mo``,
    ``r1_cr``, ``r10_mul``, ``rank_distance``, ... per language and pair).

    ``questions`` / ``candidates``: frames as :func:`load_eval_set` returns; when omitted they are loaded
    (``dataset``, ``langs`` and ``load``: ``raw_dir``, ``max_questions``, ``sample_fraction``, ``sample_seed``).
    """
    if candidate_text not in CANDIDATE_TEXTS:
        raise ValueError(f"candidate_text must be one of {CANDIDATE_TEXTS}, got {candidate_text!r}")
    if questions is None or candidates is None:
        questions, candidates = load_eval_set(dataset, langs, **load)
    encoder = as_encoder(model, query_prefix, passage_prefix)
    return evaluate_lareqa(encoder, questions, candidates, candidate_text=candidate_text,
                           max_tokens=max_tokens)["summary"]


def format_table(summary: dict, title: str = "") -> str:
    """The headline metrics as a fixed-width text table (mAP and recall in %, rank distance as is)."""
    head = " | ".join(f"{name:>10}" for name, _ in TABLE)
    cells = []
    for name, key in TABLE:
        v = summary.get(key, float("nan"))
        cells.append(f"{v:>10.2f}" if key == "rank_distance" else f"{100 * v:>10.2f}")
    lines = ([title] if title else []) + [head, "-" * len(head), " | ".join(cells)]
    return "\n".join(lines)


def load_model(path: str | Path) -> Any:
    """A sentence-transformers model (a directory with ``modules.json``) or the project's ``DualEncoder``."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model directory {str(path)!r} does not exist")
    if (path / "modules.json").is_file():
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(path), device="cpu")
    from hybridbatch.model.encoder import DualEncoder

    return DualEncoder(path)


def main(argv: list[str] | None = None, load: Callable[[str | Path], Any] = load_model) -> int:
    ap = argparse.ArgumentParser(prog="python -m hybridbatch.evaluation.any_model", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a sentence-transformers or Hugging Face model directory")
    ap.add_argument("--dataset", default="xquad_r", choices=sorted(DATASET_LANGS))
    ap.add_argument("--langs", default=None, help="comma-separated languages (default: all of the dataset)")
    ap.add_argument("--max-questions", type=int, default=None, help="the first N questions (a quick look)")
    ap.add_argument("--sample-fraction", type=float, default=1.0, help="seeded share of paragraphs")
    ap.add_argument("--candidate-text", default="sentence", choices=CANDIDATE_TEXTS)
    ap.add_argument("--raw-dir", default=str(RAW_DIR))
    ap.add_argument("--json", action="store_true", help="print the whole summary as JSON")
    args = ap.parse_args(argv)
    try:
        if not Path(args.model).is_dir():
            raise FileNotFoundError(f"model directory {args.model!r} does not exist")
        langs = args.langs.split(",") if args.langs else None
        questions, candidates = load_eval_set(args.dataset, langs, args.raw_dir, args.max_questions,
                                              args.sample_fraction)
        model = load(args.model)
        summary = evaluate_model(model, questions, candidates, candidate_text=args.candidate_text)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2, default=float))
    else:
        print(format_table(summary, f"{args.model} on {args.dataset} ({summary['n_queries']} queries, "
                                    f"{summary['n_candidates']} candidates)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
