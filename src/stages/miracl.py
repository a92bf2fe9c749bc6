"""Stage `miracl`: nDCG@10 and Recall@100 (trec_eval -c semantics) on MIRACL dev, where the corpus is present.

    python src/stages/miracl.py --run zeroshot --model models/e5-small [--params params.yaml]

Topics and qrels are vendored (data/raw/miracl/); the passages are not available offline. For every
configured language the stage validates the topics and judgments and, if the corpus folder holds that
language, runs dense retrieval; otherwise it records "corpus-absent" instead of failing the pipeline.
Writes results/<run>/miracl.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hybridbatch.io import write_json
from hybridbatch.miracl import corpus_files, evaluate_miracl, load_qrels, load_topics
from hybridbatch.params import ParamsError, fail, section, setup_logging


class LazyEncoder:
    """Loads the checkpoint on first use: languages without a corpus never pay for the model."""

    def __init__(self, model: str) -> None:
        self.model, self._encoder = model, None

    def encode(self, texts, kind, **kw):
        if self._encoder is None:
            from hybridbatch.encoder import DualEncoder

            self._encoder = DualEncoder(self.model)
        return self._encoder.encode(texts, kind, **kw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    setup_logging()
    try:
        p = section(args.params, "miracl")
    except ParamsError as exc:
        fail(exc)
    raw = Path(p.raw_dir)
    encoder = LazyEncoder(args.model)
    out = {}
    for lang in p.languages:
        topics = raw / f"topics.miracl-v1.0-{lang}-dev.tsv.gz"
        qrels = raw / f"qrels.miracl-v1.0-{lang}-dev.tsv.gz"
        n_topics, n_judged = len(load_topics(topics)), len(load_qrels(qrels))
        result = evaluate_miracl(encoder, topics, qrels, p.corpus_dir, lang=lang, max_tokens=p.max_tokens)
        out[lang] = {"topics": n_topics, "judged_queries": n_judged, **result}
    present = [lang for lang in p.languages if corpus_files(p.corpus_dir, lang)]
    write_json(Path("results") / args.run / "miracl.json",
               {"miracl_dev": {"run": args.run, "languages_with_corpus": present, "per_language": out}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
