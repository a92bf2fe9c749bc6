"""Stage `miracl`: nDCG@10 and Recall@100 (trec_eval -c semantics) on MIRACL dev, where the corpus is present.

    python src/stages/miracl.py --run zeroshot --model models/e5-small [--params params.yaml]
                                [--embedding-cache cache/miracl]

Topics and qrels are vendored (data/raw/miracl/); the passages are not available offline. For every
configured language the stage validates the topics and judgments and, if the corpus folder holds that
language, runs dense retrieval; otherwise it records "corpus-absent" instead of failing the pipeline.
Writes results/<run>/miracl.json.

The corpus is streamed: read, encoded and scored ``execution.miracl_chunk`` passages at a time (default
50,000; an integer >= 1), so memory is set by that number, not by the corpus. It is an execution setting:
every value gives the same results, it is not a DVC param and not recorded in the output. With
``--embedding-cache DIR`` (off by default: n_passages x dim x 4 bytes on disk, ~3 GB for Arabic at 384-d)
each chunk's embeddings are kept under DIR, keyed by the checkpoint's content, and re-used (verified) by a
later run of the same model.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import version
from pathlib import Path

from hybridbatch.io import write_json
from hybridbatch.evaluation.miracl import corpus_files, evaluate_miracl, load_qrels, load_topics
from hybridbatch.params import ParamsError, fail, section, setup_logging


class LazyEncoder:
    """Loads the checkpoint on first use: languages without a corpus never pay for the model."""

    def __init__(self, model: str) -> None:
        self.model, self._encoder = model, None

    def encode(self, texts, kind, **kw):
        if self._encoder is None:
            from hybridbatch.model.encoder import DualEncoder

            import torch

            self._encoder = DualEncoder(self.model)
            if torch.cuda.is_available():
                self._encoder = self._encoder.to("cuda")
        return self._encoder.encode(texts, kind, **kw)


def miracl_chunk(params_path: str | Path) -> int:
    """``execution.miracl_chunk``: passages per streamed chunk (validated; :class:`ParamsError` otherwise)."""
    return section(params_path, "execution").miracl_chunk


def model_identity(model: str) -> str:
    """What the cached passage embeddings of ``model`` depend on: checkpoint content and library versions."""
    from hybridbatch.evaluation.cache import checkpoint_fingerprint

    return json.dumps({"checkpoint": checkpoint_fingerprint(model),
                       "versions": {p: version(p) for p in ("torch", "transformers")}}, sort_keys=True)


def main(argv: list[str] | None = None, encoder=None) -> int:
    """Run the stage; ``encoder`` (tests) replaces the checkpoint named by ``--model``."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--embedding-cache", default=None, metavar="DIR",
                    help="keep each corpus chunk's embeddings under DIR for re-use (off by default)")
    args = ap.parse_args(argv)
    setup_logging()
    try:
        p = section(args.params, "miracl")
        chunk_size = miracl_chunk(args.params)
    except ParamsError as exc:
        fail(exc)
    raw = Path(p.raw_dir)
    encoder = encoder if encoder is not None else LazyEncoder(args.model)
    identity = model_identity(args.model) if args.embedding_cache else None
    out = {}
    for lang in p.languages:
        topics = raw / f"topics.miracl-v1.0-{lang}-dev.tsv.gz"
        qrels = raw / f"qrels.miracl-v1.0-{lang}-dev.tsv.gz"
        n_topics, n_judged = len(load_topics(topics)), len(load_qrels(qrels))
        result = evaluate_miracl(encoder, topics, qrels, p.corpus_dir, lang=lang, max_tokens=p.max_tokens,
                                 chunk_size=chunk_size, cache_dir=args.embedding_cache, cache_identity=identity)
        out[lang] = {"topics": n_topics, "judged_queries": n_judged, **result}
    present = [lang for lang in p.languages if corpus_files(p.corpus_dir, lang)]
    write_json(Path("results") / args.run / "miracl.json",
               {"miracl_dev": {"run": args.run, "languages_with_corpus": present, "per_language": out}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
