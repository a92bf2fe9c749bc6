"""MIRACL dense retrieval evaluation with trec_eval semantics (PAPER.md §4, last item).

The reference protocol is pyserini's: ``trec_eval -c -M 100 -m ndcg_cut.10`` and ``-c -m recall.100``.
:func:`trec_eval_metrics` and :func:`mean_metrics` reproduce it in numpy (checked against pytrec_eval):

* a query's run is ordered by score descending, equal scores by docid **descending** (``strcmp`` order,
  which for UTF-8 equals Python's code-point order), then cut to ``depth`` (``-M``) documents;
* a document is relevant when its qrels value is >= 1; judged non-relevant (0) and unjudged documents are
  simply non-relevant; nDCG uses binary gains (MIRACL qrels are 0/1; other values are rejected);
* ``-c``: the mean is over every query of the qrels; a query with no run results counts as 0;
* a query whose judgments are all 0 is *not* skipped: trec_eval 9 (and pytrec_eval) scores it 0 and
  counts it in the mean (every MIRACL dev query has at least one relevant passage, so this never bites).

Inputs: topics ``qid<TAB>query`` and TREC qrels ``qid Q0 docid rel`` (plain or ``.gz``) as vendored in
``shared/data/miracl/``; the corpus (JSONL lines ``{"docid", "title", "text"}``) is not available
offline and is read from a local file/folder, or from the Hugging Face hub only when asked explicitly
(``corpus_source="hf"``). Every malformed input line raises :class:`hybridbatch.data.DataError`.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import zlib
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .alignment import TextEncoder
from .data import DataError, _Where, open_text

logger = logging.getLogger(__name__)

#: ``corpus_source`` value that loads the corpus from the Hugging Face hub (network needed)
HF_SOURCE = "hf"
HF_DATASET = "miracl/miracl-corpus"
CORPUS_COLUMNS = ["docid", "title", "text"]
#: how a passage becomes text to encode: ``title + " " + text`` (default) or the text alone
PASSAGE_FORMATS = ("title+text", "text")
QRELS_FIELDS = ("qid", "iter", "docid", "rel")
#: trec_eval's default ``-l``: a judged value >= 1 is relevant
RELEVANCE_LEVEL = 1

_LANG_IN_NAME = re.compile(r"miracl-v1\.0-([a-z]+)-")
_DIGITS = re.compile(r"(\d+)")


# ----------------------------------------------------------------------------------------------- inputs
def _numbered_lines(path: Path) -> Iterator[tuple[str, str]]:
    """``("line N", text)`` for each line of a UTF-8 file (plain or ``.gz``), streamed, without line ends."""
    try:
        with open_text(path) as f:
            for n, line in enumerate(f, start=1):
                yield f"line {n}", line.rstrip("\n").removesuffix("\r")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read: {e}") from e


def load_topics(path: str | Path) -> dict[str, str]:
    """MIRACL topics ``qid<TAB>query`` (no header) as ``{qid: query}`` in file order."""
    path = Path(path)
    topics: dict[str, str] = {}
    for record, line in _numbered_lines(path):
        where = _Where(path, record)
        parts = line.split("\t")
        if len(parts) != 2:
            raise where.error("query", f"expected 'qid<TAB>query', got {len(parts)} tab-separated field(s)")
        qid, query = parts
        if not qid.strip():
            raise where.error("qid", "empty")
        if not query.strip():
            raise where.error("query", "empty")
        if qid in topics:
            raise where.error("qid", f"duplicate topic {qid!r}")
        topics[qid] = query
    if not topics:
        raise DataError(path, "no topics")
    return topics


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """TREC qrels ``qid iter docid rel`` (whitespace-separated) as ``{qid: {docid: rel}}`` in file order."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for record, line in _numbered_lines(path):
        where = _Where(path, record)
        parts = line.split()
        if len(parts) < len(QRELS_FIELDS):
            raise where.error(QRELS_FIELDS[len(parts)], f"missing (expected '{' '.join(QRELS_FIELDS)}')")
        if len(parts) > len(QRELS_FIELDS):
            raise where.error("rel", f"unexpected extra field(s) after it: {parts[4:]}")
        qid, _, docid, rel = parts
        try:
            value = int(rel)
        except ValueError:
            raise where.error("rel", f"not an integer: {rel!r}") from None
        judged = qrels.setdefault(qid, {})
        if docid in judged:
            raise where.error("docid", f"duplicate judgment of {docid!r} for query {qid!r}")
        judged[docid] = value
    if not qrels:
        raise DataError(path, "no judgments")
    return qrels


def lang_of(path: str | Path) -> str | None:
    """The language of an anserini-tools MIRACL file name (``topics.miracl-v1.0-<lang>-dev.tsv``)."""
    match = _LANG_IN_NAME.search(Path(path).name)
    return match.group(1) if match else None


def corpus_files(source: str | Path, lang: str | None = None) -> list[Path]:
    """JSONL(.gz) files of a local corpus; ``[]`` when there is none.

    ``source`` is a file, or a folder holding ``*.jsonl[.gz]`` directly or in the hub's per-language
    subfolder ``miracl-corpus-v1.0-<lang>/`` (files in natural order: ``docs-2`` before ``docs-10``).
    """
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        return []
    if lang and (source / f"miracl-corpus-v1.0-{lang}").is_dir():
        source = source / f"miracl-corpus-v1.0-{lang}"
    files = [p for p in source.iterdir() if p.is_file() and p.name.endswith((".jsonl", ".jsonl.gz"))]
    return sorted(files, key=lambda p: [int(s) if s.isdigit() else s for s in _DIGITS.split(p.name)])


def _read_jsonl(path: Path) -> Iterator[tuple[str, tuple[str, str, str]]]:
    """``(record, (docid, title, text))`` for each line of a MIRACL corpus file, validated."""
    for record, line in _numbered_lines(path):
        where = _Where(path, record)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise where.error(None, f"invalid JSON: {e.msg} (column {e.colno})") from None
        where.check(obj, dict, "(line)")
        docid = where.get(obj, "docid", str)
        if not docid:
            raise where.error("docid", "empty")
        yield record, (docid, where.get(obj, "title", str), where.get(obj, "text", str))


def _load_local_corpus(files: list[Path], limit: int | None) -> pd.DataFrame:
    """The passages of ``files`` in order (the first ``limit``); a repeated docid is an error."""
    rows = (((path, record), row) for path in files for record, row in _read_jsonl(path))
    first: dict[str, tuple[Path, str]] = {}
    kept: list[tuple[str, str, str]] = []
    for (path, record), row in itertools.islice(rows, limit):
        if row[0] in first:
            raise DataError(path, f"duplicate docid {row[0]!r} (first at {first[row[0]][0]} "
                                  f"{first[row[0]][1]})", record=record, field="docid")
        first[row[0]] = (path, record)
        kept.append(row)
    return pd.DataFrame(kept, columns=CORPUS_COLUMNS)


def _load_hub_corpus(lang: str, limit: int | None) -> pd.DataFrame:
    """The corpus from the Hugging Face hub (network needed; never used by the tests)."""
    from datasets import load_dataset

    try:
        ds = load_dataset(HF_DATASET, lang, split="train")
    except Exception as e:  # noqa: BLE001 -- datasets >= 4 no longer runs the repo's loading script
        files = f"hf://datasets/{HF_DATASET}/miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz"
        logger.warning("load_dataset(%r, %r) failed (%s); reading %s instead", HF_DATASET, lang, e, files)
        ds = load_dataset("json", data_files=files, split="train")
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return ds.to_pandas()[CORPUS_COLUMNS]


def load_corpus(source: str | Path, lang: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """MIRACL passages as a DataFrame ``docid, title, text`` (at most ``limit`` rows, in file order).

    ``source``: a local JSONL(.gz) file or folder (see :func:`corpus_files`), or :data:`HF_SOURCE` to call
    ``datasets.load_dataset("miracl/miracl-corpus", lang)``. A partial corpus (``limit``) gives numbers
    that are not comparable with published ones.
    """
    if str(source) == HF_SOURCE:
        if not lang:
            raise ValueError("loading the corpus from the hub needs a language")
        corpus = _load_hub_corpus(lang, limit)
    else:
        files = corpus_files(source, lang)
        if not files:
            raise DataError(source, "no MIRACL corpus here (a *.jsonl[.gz] file or a folder of them)")
        corpus = _load_local_corpus(files, limit)
    logger.info("MIRACL corpus %s (%s): %d passages", source, lang, len(corpus))
    return corpus


def passage_texts(corpus: pd.DataFrame, passage_format: str = "title+text") -> list[str]:
    """Texts to encode: ``title + " " + text`` (just ``text`` when the title is empty), or ``text``."""
    if passage_format == "title+text":
        return [f"{title} {text}" if title else text for title, text in zip(corpus["title"], corpus["text"])]
    if passage_format == "text":
        return corpus["text"].tolist()
    raise ValueError(f"passage_format must be one of {PASSAGE_FORMATS}, got {passage_format!r}")


# ----------------------------------------------------------------------------------------------- metrics
def trec_order(docs: Mapping[str, float]) -> list[str]:
    """Docids as trec_eval ranks them: score descending, equal scores by docid descending."""
    if not docs:
        return []
    ids = np.array(list(docs))
    scores = np.fromiter(docs.values(), dtype=np.float64, count=len(docs))
    by_docid = np.argsort(ids, kind="stable")[::-1]  # docids are distinct: a strict order
    return ids[by_docid[np.argsort(-scores[by_docid], kind="stable")]].tolist()


def _relevant_ranks(ranked: Sequence[str], judged: Mapping[str, int]) -> np.ndarray:
    """Sorted 1-based ranks of the relevant docs of ``judged``; ``inf`` for those not in ``ranked``."""
    position = {d: r for r, d in enumerate(ranked, start=1)}
    return np.sort([float(position.get(d, np.inf)) for d, rel in judged.items() if rel >= RELEVANCE_LEVEL])


def trec_eval_metrics(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
                      k_ndcg: int = 10, k_recall: int = 100, depth: int = 100) -> dict[str, dict[str, float]]:
    """Per-query ``ndcg_cut_<k_ndcg>`` and ``recall_<k_recall>`` as ``trec_eval -q -M <depth>`` gives them.

    Queries in both ``qrels`` and ``run`` (an empty run scores 0), in qrels order; see the module docstring
    for the semantics. :func:`metrics.ndcg_at` / :func:`metrics.recall_at` score the ranks, with relevant
    documents outside the (cut) run at rank ``inf``: they count in the ideal DCG and the recall denominator.
    """
    graded = {rel for judged in qrels.values() for rel in judged.values() if rel > RELEVANCE_LEVEL}
    if graded:
        raise ValueError(f"graded relevance {sorted(graded)} is not supported (binary gains only)")
    ndcg_key, recall_key = f"ndcg_cut_{k_ndcg}", f"recall_{k_recall}"
    out: dict[str, dict[str, float]] = {}
    for qid, judged in qrels.items():
        if qid not in run:
            continue
        ranks = _relevant_ranks(trec_order(run[qid])[:depth], judged)
        if len(ranks) == 0:  # no relevant document: trec_eval scores 0
            out[qid] = {ndcg_key: 0.0, recall_key: 0.0}
        else:
            out[qid] = {ndcg_key: M.ndcg_at(ranks, k_ndcg), recall_key: M.recall_at(ranks, k_recall)}
    return out


def mean_metrics(per_query: Mapping[str, Mapping[str, float]],
                 qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """``trec_eval -c`` means: over every query of ``qrels``, a query absent from ``per_query`` counting 0."""
    if not per_query:
        raise ValueError("no query has both results and judgments")
    unknown = set(per_query) - set(qrels)
    if unknown:
        raise ValueError(f"{len(unknown)} evaluated queries are not in the qrels, e.g. {sorted(unknown)[:3]}")
    names = next(iter(per_query.values())).keys()
    return {name: sum(v[name] for v in per_query.values()) / len(qrels) for name in names}


# ----------------------------------------------------------------------------------------------- search
def _top_k(queries: torch.Tensor, passages: torch.Tensor, k: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` (scores, passage indices) per query by dot product, passage chunk by passage chunk.

    Equal scores are ordered by increasing passage index, also across chunks (stable sorts and merges).
    """
    best_v = queries.new_empty((queries.shape[0], 0))
    best_i = torch.empty((queries.shape[0], 0), dtype=torch.long)
    for start in range(0, passages.shape[0], chunk):
        v, i = torch.sort(queries @ passages[start:start + chunk].T, dim=1, descending=True, stable=True)
        v, i = torch.cat([best_v, v[:, :k]], 1), torch.cat([best_i, i[:, :k] + start], 1)
        v, order = torch.sort(v, dim=1, descending=True, stable=True)
        best_v, best_i = v[:, :k], torch.gather(i, 1, order)[:, :k]
    return best_v, best_i


def dense_search(encoder: TextEncoder, topics: Mapping[str, str], corpus_df: pd.DataFrame, k: int = 100,
                 max_tokens: int = 8192, passage_format: str = "title+text", query_chunk: int = 256,
                 passage_chunk: int = 65536) -> dict[str, dict[str, float]]:
    """Top-``k`` passages per topic by ``query . passage`` (cosine for a normalising encoder).

    The run is ``{qid: {docid: score}}``, best first. Passages are held in docid-descending order, so
    scores tied at the ``k``-th place are cut the way trec_eval orders them: the run equals the first
    ``k`` of a full ranking evaluated with ``-M k``.
    """
    if not corpus_df["docid"].is_unique:
        raise ValueError("corpus docids are not unique")
    corpus = corpus_df.sort_values("docid", ascending=False, kind="stable")
    docids = corpus["docid"].tolist()
    passages = encoder.encode(passage_texts(corpus, passage_format), kind="passage", max_tokens=max_tokens)
    qids = list(topics)
    queries = encoder.encode([topics[q] for q in qids], kind="query", max_tokens=max_tokens)
    run: dict[str, dict[str, float]] = {}
    for start in range(0, len(qids), query_chunk):
        values, index = _top_k(queries[start:start + query_chunk], passages, k, passage_chunk)
        for qid, vs, ix in zip(qids[start:start + query_chunk], values.tolist(), index.tolist()):
            run[qid] = {docids[j]: v for v, j in zip(vs, ix)}
    return run


def _absent_message(source: str | Path, lang: str | None) -> str:
    lang_dir = f"miracl-corpus-v1.0-{lang or '<lang>'}"
    return (f"MIRACL corpus not found at {source}. The passages are only on the Hugging Face hub (dataset "
            f"{HF_DATASET}): put its {lang_dir}/docs-*.jsonl.gz files in that folder (or point to one JSONL "
            f"file), or pass corpus_source={HF_SOURCE!r} to load it with datasets.load_dataset("
            f"{HF_DATASET!r}, {lang or '<lang>'!r}) where the hub is reachable.")


def evaluate_miracl(encoder: TextEncoder, topics_path: str | Path, qrels_path: str | Path,
                    corpus_source: str | Path, *, lang: str | None = None, k_ndcg: int = 10,
                    k_recall: int = 100, passage_format: str = "title+text", max_tokens: int = 8192,
                    limit: int | None = None) -> dict[str, Any]:
    """nDCG@``k_ndcg`` and Recall@``k_recall`` (``trec_eval -c -M k_recall``) of dense retrieval on MIRACL.

    Returns ``{"status": "ok", "ndcg@10", "recall@100", "n_queries", ...}``; when a local corpus is absent,
    ``{"status": "corpus-absent", "message"}`` (how to provide it) instead of raising. ``lang`` defaults to
    the one in the topics file name. Only topics with judgments are searched (trec_eval ignores the rest).
    """
    lang = lang or lang_of(topics_path)
    if str(corpus_source) != HF_SOURCE and not corpus_files(corpus_source, lang):
        message = _absent_message(corpus_source, lang)
        logger.warning(message)
        return {"status": "corpus-absent", "lang": lang, "message": message}
    topics, qrels = load_topics(topics_path), load_qrels(qrels_path)
    corpus = load_corpus(corpus_source, lang, limit)
    judged_topics = {q: text for q, text in topics.items() if q in qrels}
    run = dense_search(encoder, judged_topics, corpus, k=k_recall, max_tokens=max_tokens,
                       passage_format=passage_format)
    means = mean_metrics(trec_eval_metrics(qrels, run, k_ndcg, k_recall, depth=k_recall), qrels)
    result = {"status": "ok", "lang": lang, f"ndcg@{k_ndcg}": means[f"ndcg_cut_{k_ndcg}"],
              f"recall@{k_recall}": means[f"recall_{k_recall}"], "n_queries": len(qrels),
              "n_queries_searched": len(run), "n_passages": len(corpus), "limit": limit}
    logger.info("MIRACL %s: %s", lang, result)
    return result
