"""MIRACL dense retrieval evaluation with trec_eval semantics (docs/PROTOCOL.md §4.8).

The reference protocol is pyserini's: ``trec_eval -c -M 100 -m ndcg_cut.10`` and ``-c -m recall.100``.
:func:`trec_eval_metrics` and :func:`mean_metrics` reproduce it in numpy (checked against pytrec_eval):

* a query's run is ordered by score descending, equal scores by docid **descending** (``strcmp`` order,
  which for UTF-8 equals Python's code-point order), then cut to ``depth`` (``-M``) documents;
* a document is relevant when its qrels value is >= 1; judged non-relevant (0) and unjudged documents are
  simply non-relevant; nDCG uses binary gains (MIRACL qrels are 0/1; other values are rejected);
* ``-c``: the mean is over every query of the qrels; a query with no run results counts as 0;
* a query whose judgments are all 0 is *not* skipped: trec_eval 9 (and pytrec_eval) scores it 0 and
  counts it in the mean (every MIRACL dev query has at least one relevant passage, so this never bites).

Inputs (topics, qrels, the corpus read and streamed in chunks): :mod:`hybridbatch.evaluation.miracl_corpus`;
its loaders are importable from here too.

Search is streamed (:func:`dense_search`): the corpus is read, encoded and scored ``chunk_size`` passages
at a time, keeping a running top-k per query, so peak memory is set by the chunk size (one chunk's texts and
embeddings, a ``query_chunk x chunk_size`` score block, 8 bytes a passage to find repeated docids), not by
the corpus (Arabic: ~2M passages, ~3 GB of 384-d embeddings). The chunk size is an execution setting: any
value gives the same run, ties included. Chunk embeddings can be kept on disk (:class:`ChunkCache`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from hybridbatch.evaluation import metrics as M
from hybridbatch.evaluation.miracl_corpus import (  # noqa: F401 -- the loaders, re-exported for callers of this module
    CORPUS_COLUMNS, DEFAULT_CHUNK, HF_DATASET, HF_SOURCE, PASSAGE_FORMATS, CorpusChunk, corpus_files,
    iter_corpus_chunks, lang_of, load_corpus, load_qrels, load_topics, passage_texts)
from hybridbatch.evaluation.tatoeba import TextEncoder
from hybridbatch.io import atomic_path

logger = logging.getLogger(__name__)

#: trec_eval's default ``-l``: a judged value >= 1 is relevant
RELEVANCE_LEVEL = 1


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
def _array_digest(arr: np.ndarray) -> str:
    h = hashlib.sha256(f"{arr.dtype.str}{tuple(arr.shape)}\0".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _embedding_problem(arr: np.ndarray, n: int, dim: int | None) -> str | None:
    """Why ``arr`` cannot be the embeddings of ``n`` passages: shape ``(n, dim)``, float32, finite."""
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1 or (dim is not None and arr.shape[1] != dim):
        return f"shape {tuple(arr.shape)}, expected ({n}, {dim if dim is not None else 'dim'})"
    if arr.dtype != np.float32:
        return f"dtype {arr.dtype}, expected float32"
    if not np.isfinite(arr).all():
        return "NaN or inf values"
    return None


class ChunkCache:
    """Passage embeddings of corpus chunks kept on disk, for re-use by later searches with the same encoder.

    An entry is ``<cache_dir>/<encoder key>/<file name>-<path hash>/<start>+<n>.npz`` (the chunk's file,
    first passage and size: its index at a given chunk size) holding ``embeddings`` (float32, n x dim),
    ``sha256`` (their checksum) and ``texts_sha256`` (:attr:`CorpusChunk.digest`). The encoder key hashes
    ``identity`` (required: the model's fingerprint, e.g. checkpoint content and library versions) and
    ``max_tokens``.
    Requirements on read: a readable entry of this format, shape ``(n, dim)``, dtype float32, every value
    finite, matching checksum and text digest (a file edited in place is caught); otherwise it is logged,
    recomputed and rewritten. A failed write (full disk, read-only folder) is logged; the search goes on.
    """

    def __init__(self, cache_dir: str | Path, identity: str, max_tokens: int = 8192) -> None:
        if not identity:
            raise ValueError("a chunk cache needs the encoder's identity (a model fingerprint)")
        key = hashlib.sha256(json.dumps([identity, max_tokens]).encode()).hexdigest()[:24]
        self.root = Path(cache_dir) / key
        self.hits = self.misses = self.rejected = self.write_failures = 0

    def path(self, chunk: CorpusChunk) -> Path:
        where = chunk.source if "://" in chunk.source else str(Path(chunk.source).resolve())
        name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(chunk.source).name)
        folder = f"{name}-{hashlib.sha256(where.encode()).hexdigest()[:16]}"
        return self.root / folder / f"{chunk.start:09d}+{len(chunk.docids)}.npz"

    def load(self, chunk: CorpusChunk, dim: int | None) -> np.ndarray | None:
        """The verified cached embeddings of ``chunk``, or ``None`` (absent or rejected: to recompute)."""
        path = self.path(chunk)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            with np.load(path, allow_pickle=False) as entry:
                arr, stored, texts = entry["embeddings"], str(entry["sha256"][()]), str(entry["texts_sha256"][()])
            reason = (_embedding_problem(arr, len(chunk.docids), dim)
                      or ("checksum mismatch" if _array_digest(arr) != stored else None)
                      or ("the chunk's passages changed" if texts != chunk.digest else None))
        except Exception as exc:  # noqa: BLE001 -- truncated, zero bytes, another format, I/O error ...
            reason = f"unreadable: {type(exc).__name__}: {exc}"
        if reason is None:
            self.hits += 1
            return arr
        self.rejected += 1
        self.misses += 1
        logger.warning("bad MIRACL chunk embeddings %s (%s): recomputing them", path, reason)
        return None

    def store(self, chunk: CorpusChunk, arr: np.ndarray) -> None:
        path = self.path(chunk)
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.savez(f, embeddings=arr, sha256=np.array(_array_digest(arr)),
                         texts_sha256=np.array(chunk.digest))
        except OSError as exc:
            self.write_failures += 1
            logger.warning("could not write MIRACL chunk embeddings %s (%s); continuing without", path, exc)


@dataclass
class SearchResult:
    """A run ``{qid: {docid: score}}`` (best first, trec_eval order) and what the search read."""

    run: dict[str, dict[str, float]]
    n_passages: int
    n_chunks: int
    cache_hits: int = 0
    cache_misses: int = 0


def _encode_chunk(encoder: TextEncoder, chunk: CorpusChunk, max_tokens: int, dim: int,
                  cache: ChunkCache | None) -> torch.Tensor:
    arr = cache.load(chunk, dim) if cache else None
    if arr is not None:
        return torch.from_numpy(arr)
    out = encoder.encode(chunk.texts, kind="passage", max_tokens=max_tokens).detach().to("cpu", torch.float32)
    problem = _embedding_problem(out.numpy(), len(chunk.texts), dim)
    if problem:
        raise ValueError(f"passage embeddings of {chunk.source} from passage {chunk.start}: {problem}")
    if cache:
        cache.store(chunk, out.numpy())
    return out


def _candidates(queries: torch.Tensor, passages: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, passage indices) per query of every passage scoring at least the query's ``k``-th best score
    (a superset of the top ``k`` whatever the tie order; not in trec_eval order)."""
    scores = queries @ passages.T
    if scores.shape[1] <= k:
        return scores, torch.arange(scores.shape[1]).expand_as(scores)
    values, index = torch.topk(scores, k + 1, dim=1)  # sorted: a tie across the cut shows at [k - 1], [k]
    if bool((values[:, k] < values[:, k - 1]).all()):
        return values[:, :k], index[:, :k]
    width = int((scores >= values[:, k - 1:k]).sum(dim=1).max())
    return torch.topk(scores, width, dim=1, sorted=False)


def _merge(best: tuple[np.ndarray, np.ndarray], scores: np.ndarray, docids: np.ndarray,
           k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the first ``k`` of ``best`` and the candidates in trec_eval order (score, then docid, desc)."""
    s, d = np.concatenate([best[0], scores], axis=1), np.concatenate([best[1], docids], axis=1)
    ranks = np.unique(d, return_inverse=True)[1].reshape(d.shape)  # code-point order of the docids
    order = np.lexsort((-ranks, -s), axis=1)[:, :k]
    return np.take_along_axis(s, order, axis=1), np.take_along_axis(d, order, axis=1)


def search_chunks(encoder: TextEncoder, topics: Mapping[str, str], chunks: Iterable[CorpusChunk], *, k: int = 100,
                  max_tokens: int = 8192, query_chunk: int = 256, cache: ChunkCache | None = None) -> SearchResult:
    """Top-``k`` passages per topic by ``query . passage`` (float32), the passages coming chunk by chunk.

    For each chunk: encode it (or read it from ``cache``), score it against every query embedding
    (``query_chunk`` queries at a time) and merge the candidates into a running top-``k`` per query,
    ordered by score descending, then docid descending (trec_eval's order), so the run equals the first
    ``k`` of the full ranking -- ties at the cut included -- whatever the chunking; docids must be unique
    (:func:`iter_corpus_chunks` checks). Requirement: the encoder returns ``(n, dim)`` finite embeddings
    (else ``ValueError``). Given the same embeddings the chunking cannot change the run (short of a matrix
    product kernel that sums in another order for another shape: a last-bit change of a score); an encoder
    that batches by length may round a passage's embedding differently in another chunk.
    Memory: the query embeddings, one chunk's embeddings, one ``query_chunk x chunk`` score block, and
    ``k`` (score, docid) pairs per query.
    """
    if k < 1 or query_chunk < 1:
        raise ValueError(f"k and query_chunk must be >= 1, got {k} and {query_chunk}")
    qids = list(topics)
    if not qids:
        return SearchResult({}, 0, 0)
    queries = encoder.encode([topics[q] for q in qids], kind="query", max_tokens=max_tokens)
    queries = queries.detach().to("cpu", torch.float32)
    blocks = [slice(start, start + query_chunk) for start in range(0, len(qids), query_chunk)]
    best = [(np.empty((len(qids[b]), 0), np.float32), np.empty((len(qids[b]), 0), str)) for b in blocks]
    n_passages = n_chunks = 0
    for chunk in chunks:
        passages = _encode_chunk(encoder, chunk, max_tokens, queries.shape[1], cache)
        docids = np.array(chunk.docids)
        del chunk  # the texts: not kept while the next chunk is read
        for j, rows in enumerate(blocks):
            scores, index = _candidates(queries[rows], passages, k)
            best[j] = _merge(best[j], scores.numpy(), docids[index.numpy()], k)
            del scores, index
        n_passages, n_chunks = n_passages + len(docids), n_chunks + 1
        del passages, docids  # nor this chunk's embeddings while the next one is encoded
        logger.debug("MIRACL search: %d passages (%d chunks) scored", n_passages, n_chunks)
    run: dict[str, dict[str, float]] = {}
    for rows, (scores, docids) in zip(blocks, best):
        for qid, vs, ds in zip(qids[rows], scores.tolist(), docids.tolist()):
            run[qid] = dict(zip(ds, vs))
    return SearchResult(run, n_passages, n_chunks, cache.hits if cache else 0, cache.misses if cache else 0)


def dense_search(encoder: TextEncoder, topics: Mapping[str, str], corpus_source: str | Path, *,
                 lang: str | None = None, k: int = 100, chunk_size: int = DEFAULT_CHUNK, limit: int | None = None,
                 max_tokens: int = 8192, passage_format: str = "title+text", query_chunk: int = 256,
                 cache_dir: str | Path | None = None, cache_identity: str | None = None) -> SearchResult:
    """Streamed top-``k`` search of a MIRACL corpus: :func:`iter_corpus_chunks` into :func:`search_chunks`.

    Peak memory is set by ``chunk_size`` and ``query_chunk``, not by the corpus; the run is the same for every
    ``chunk_size``. ``cache_dir``: keep chunk embeddings there (:class:`ChunkCache`; needs ``cache_identity``).
    """
    cache = ChunkCache(cache_dir, cache_identity or "", max_tokens) if cache_dir is not None else None
    chunks = iter_corpus_chunks(corpus_source, lang, chunk_size, limit, passage_format)
    result = search_chunks(encoder, topics, chunks, k=k, max_tokens=max_tokens, query_chunk=query_chunk, cache=cache)
    logger.info("MIRACL search %s (%s): %d passages, %d chunks; chunk cache: %s", corpus_source, lang,
                result.n_passages, result.n_chunks, vars(cache) if cache else None)
    return result


def _absent_message(source: str | Path, lang: str | None) -> str:
    lang_dir = f"miracl-corpus-v1.0-{lang or '<lang>'}"
    return (f"MIRACL corpus not found at {source}. The passages are only on the Hugging Face hub (dataset "
            f"{HF_DATASET}): put its {lang_dir}/docs-*.jsonl.gz files in that folder (or point to one JSONL "
            f"file), or pass corpus_source={HF_SOURCE!r} to load it with datasets.load_dataset("
            f"{HF_DATASET!r}, {lang or '<lang>'!r}) where the hub is reachable.")


def evaluate_miracl(encoder: TextEncoder, topics_path: str | Path, qrels_path: str | Path,
                    corpus_source: str | Path, *, lang: str | None = None, k_ndcg: int = 10,
                    k_recall: int = 100, passage_format: str = "title+text", max_tokens: int = 8192,
                    limit: int | None = None, chunk_size: int = DEFAULT_CHUNK,
                    cache_dir: str | Path | None = None, cache_identity: str | None = None) -> dict[str, Any]:
    """nDCG@``k_ndcg`` and Recall@``k_recall`` (``trec_eval -c -M k_recall``) of dense retrieval on MIRACL.

    Returns ``{"status": "ok", "ndcg@10", "recall@100", "n_queries", ...}``; when a local corpus is absent,
    ``{"status": "corpus-absent", "message"}`` (how to provide it) instead of raising. ``lang`` defaults to
    the one in the topics file name. Only topics with judgments are searched (trec_eval ignores the rest).
    The corpus is streamed (:func:`dense_search`): ``chunk_size``, ``cache_dir`` and ``cache_identity``
    change memory and time only, never the result, and are not recorded in it.
    """
    lang = lang or lang_of(topics_path)
    if str(corpus_source) != HF_SOURCE and not corpus_files(corpus_source, lang):
        message = _absent_message(corpus_source, lang)
        logger.warning(message)
        return {"status": "corpus-absent", "lang": lang, "message": message}
    topics, qrels = load_topics(topics_path), load_qrels(qrels_path)
    judged_topics = {q: text for q, text in topics.items() if q in qrels}
    search = dense_search(encoder, judged_topics, corpus_source, lang=lang, k=k_recall, chunk_size=chunk_size,
                          limit=limit, max_tokens=max_tokens, passage_format=passage_format,
                          cache_dir=cache_dir, cache_identity=cache_identity)
    run = search.run
    means = mean_metrics(trec_eval_metrics(qrels, run, k_ndcg, k_recall, depth=k_recall), qrels)
    result = {"status": "ok", "lang": lang, f"ndcg@{k_ndcg}": means[f"ndcg_cut_{k_ndcg}"],
              f"recall@{k_recall}": means[f"recall_{k_recall}"], "n_queries": len(qrels),
              "n_queries_searched": len(run), "n_passages": search.n_passages, "limit": limit}
    logger.info("MIRACL %s: %s", lang, result)
    return result
