"""BM25 lexical reference for **monolingual** LAReQA retrieval (the Mo. setting only).

BM25 matches surface terms, so it is a reference point for Mo. (queries in X against the candidates of X)
and is not computed for Cr. or Mul.: across languages it can only match shared strings (numbers, names),
which says nothing about cross-lingual retrieval. ``bm25_lareqa`` states this in its result
(``"settings": ["mo"]`` and ``"not_computed"``).

Scoring is ``bm25s``'s ``method="lucene"`` (Lucene's BM25 as used by Pyserini/Anserini, defaults k1 = 0.9,
b = 0.4)::

    score(q, d) = sum_{t in q} idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

A repeated query term counts once per occurrence. Lucene >= 8 drops the constant (k1 + 1) factor from the
numerator (it does not change the ranking); unlike Lucene, document lengths are exact, not quantised to one
byte, so scores can differ from Pyserini's in the last digits. A document sharing no term with the query
scores 0; ties are ordered by ``hybridbatch.metrics`` like every dense score (increasing candidate index).

Tokenisation (``tokenize``) uses only the standard library: NFKC normalisation, Unicode case folding, and
word tokens = maximal runs of letters, digits and combining marks (punctuation and ``_`` dropped). Combining
marks are part of the word because Python's ``\\w`` leaves them out, which would break Devanagari or Thai
words at every vowel sign. For languages written without spaces between words (zh, th, and ja/ko if given)
the runs of those scripts become overlapping character bigrams (a single character stays a unigram), while
Latin words and numbers inside them stay whole: the standard lexical baseline for CJK/Thai (Lucene's
CJKAnalyzer-style bigrams), which needs no word segmenter.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import time
import unicodedata
from typing import Iterable, Sequence

import bm25s
import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .evaluation import lareqa_index, query_row

logger = logging.getLogger(__name__)

BIGRAM_LANGS = frozenset({"zh", "th", "ja", "ko"})
# Scripts written without spaces between words (bigrammed for BIGRAM_LANGS).
_NOSPACE_RANGES = (
    (0x0E00, 0x0E7F),  # Thai
    (0x0E80, 0x0EFF),  # Lao
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3005, 0x3007),  # ideographic iteration mark, closing mark, number zero
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFFDC),  # half-width Katakana and Hangul
    (0x20000, 0x3FFFF),  # CJK extensions B-H, compatibility supplement
)


def _char_class(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" if hi > lo else re.escape(chr(lo))
                   for lo, hi in ranges)


@functools.cache
def _patterns() -> tuple[re.Pattern, re.Pattern]:
    """(word pattern, no-space-script pattern), built once: combining marks are collected from unicodedata."""
    ranges: list[list[int]] = []
    for cp in range(sys.maxunicode + 1):
        if unicodedata.category(chr(cp))[0] == "M":
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    marks = _char_class([(lo, hi) for lo, hi in ranges] + [(0x200C, 0x200D)])  # + ZWNJ, ZWJ
    word = re.compile(rf"(?:[^\W_]|[{marks}])+")
    nospace = re.compile(rf"[{_char_class(_NOSPACE_RANGES)}]+")
    return word, nospace


def _bigrams(run: str) -> list[str]:
    return [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]


def _split_nospace(word: str, nospace: re.Pattern) -> list[str]:
    """Bigrams of the no-space-script parts of ``word``; other parts (Latin, digits) stay whole."""
    out: list[str] = []
    pos = 0
    for m in nospace.finditer(word):
        if m.start() > pos:
            out.append(word[pos:m.start()])
        out += _bigrams(m.group())
        pos = m.end()
    if pos < len(word):
        out.append(word[pos:])
    return out


def tokenize(texts: Sequence[str], lang: str, stopwords: Iterable[str] | None = None) -> list[list[str]]:
    """Lexical tokens of each text (see the module docstring); ``stopwords`` are matched after case folding."""
    word, nospace = _patterns()
    bigram = lang.lower().split("-")[0] in BIGRAM_LANGS
    stop = {unicodedata.normalize("NFKC", s).casefold() for s in stopwords} if stopwords else set()
    out = []
    for text in texts:
        words = word.findall(unicodedata.normalize("NFKC", text).casefold())
        if bigram:
            words = [t for w in words for t in _split_nospace(w, nospace)]
        out.append([w for w in words if w not in stop] if stop else words)
    return out


def bm25_scores(query_tokens: Sequence[Sequence[str]], doc_tokens: Sequence[Sequence[str]],
                k1: float = 0.9, b: float = 0.4) -> np.ndarray:
    """(Q, D) float32 Lucene BM25 scores of every document for every query (0 where no term is shared)."""
    out = np.zeros((len(query_tokens), len(doc_tokens)), dtype=np.float32)
    if not len(doc_tokens) or not len(query_tokens):
        return out
    retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
    retriever.index([list(d) for d in doc_tokens], show_progress=False)
    for i, q in enumerate(query_tokens):
        ids = retriever.get_tokens_ids(list(q))  # out-of-vocabulary terms score nothing
        if ids:
            out[i] = retriever.get_scores_from_ids(ids)
    return out


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


# as in evaluation.score_lareqa: one row per (query, corpus) with every per-query value
PER_QUERY_COLUMNS = ("setting", "query_lang", "corpus_lang", "qid", "ap", "rr", "ndcg10", "r1", "r10",
                     "rank_distance")
# summary key (macro mean over languages of the per-query mean) -> per-query column
_MO_METRICS = {"map_mo": "ap", "r1_mo": "r1", "mrr_mo": "rr", "ndcg10_mo": "ndcg10"}


def bm25_lareqa(questions: pd.DataFrame, candidates: pd.DataFrame, k1: float = 0.9, b: float = 0.4,
                stopwords: dict[str, Iterable[str]] | None = None) -> dict:
    """Mo. metrics of BM25: for each language X, index the candidates of X and rank them for X's questions.

    Frames as for ``evaluation.score_lareqa`` (one dataset; candidates of a language contiguous); the same
    answer mapping, ranking convention and metric functions are used, so ``map_mo``/``r1_mo`` are directly
    comparable with a dense model's. ``stopwords`` optionally maps a language to its stopword list.
    Returns ``{"summary": ..., "per_query": DataFrame}`` with ``per_query`` columns as in ``score_lareqa``
    (all rows ``setting == "mo"``).
    """
    t_start = time.perf_counter()
    questions = questions.reset_index(drop=True)
    candidates = candidates.reset_index(drop=True)
    langs, span, answer = lareqa_index(questions, candidates)
    q_langs = sorted(set(questions["lang"]))
    rows = []  # one per (query, corpus language), as in score_lareqa's per_query
    seconds: dict[str, float] = {}
    q_lang_arr = questions["lang"].to_numpy()
    for x in q_langs:
        if x not in span:
            logger.warning("no candidates in %s: its %d questions are not evaluated",
                           x, int((q_lang_arr == x).sum()))
            continue
        t0 = time.perf_counter()
        qx = np.flatnonzero(q_lang_arr == x)
        qids = questions.loc[qx, "qid"].tolist()
        lo, hi = span[x]
        stop = (stopwords or {}).get(x)
        doc_tok = tokenize(candidates["sentence"].iloc[lo:hi].tolist(), x, stop)
        q_tok = tokenize(questions.loc[qx, "question"].tolist(), x, stop)
        t1 = time.perf_counter()
        scores = torch.from_numpy(bm25_scores(q_tok, doc_tok, k1=k1, b=b))  # (Qx, hi - lo)
        t2 = time.perf_counter()
        keep = [i for i, q in enumerate(qids) if x in answer[q]]
        ranks = M.relevant_ranks(scores[keep], [[answer[qids[i]][x] - lo] for i in keep])
        new = [query_row("mo", x, x, qids[i], r) for i, r in zip(keep, ranks)]
        rows += new
        t3 = time.perf_counter()
        seconds[x] = round(t3 - t0, 2)
        empty_q = sum(not t for t in q_tok)
        logger.info("BM25 %s: %d questions x %d candidates, mAP %.4f, R@1 %.4f (tokenize %.2f s, score %.2f s, "
                    "rank %.2f s%s)", x, len(qx), hi - lo, _mean([r["ap"] for r in new]),
                    _mean([r["r1"] for r in new]), t1 - t0, t2 - t1, t3 - t2,
                    f", {empty_q} questions without tokens" if empty_q else "")
    per_query = pd.DataFrame(rows, columns=list(PER_QUERY_COLUMNS))
    by_lang = per_query.groupby("query_lang", sort=True)
    per_language = {name: {x: float(v) for x, v in by_lang[col].mean().items()} for name, col in _MO_METRICS.items()}
    summary = {
        "method": "bm25",
        "settings": ["mo"],
        "not_computed": {s: "BM25 is a lexical, monolingual method; cross-lingual settings are not evaluated"
                         for s in ("cr", "mul")},
        **{name: _mean(list(v.values())) for name, v in per_language.items()},
        "n_queries": int(len(per_query)), "n_candidates": int(len(candidates)), "languages": langs,
        "bm25": {"implementation": f"bm25s {bm25s.__version__}", "method": "lucene", "k1": k1, "b": b,
                 "tokenizer": "nfkc+casefold word runs; char bigrams for " + "/".join(sorted(BIGRAM_LANGS)),
                 "stopwords": sorted(stopwords) if stopwords else None},
        "per_language": per_language,
        # the diagonal of score_lareqa's "X-Y" matrix
        "per_pair": {name: {f"{x}-{x}": v for x, v in per_language[f"{name}_mo"].items()} for name in ("map", "r1")},
        "seconds": {"per_language": seconds, "total": round(time.perf_counter() - t_start, 2)},
    }
    logger.info("BM25 Mo.: mAP %.4f, R@1 %.4f over %d languages, %d questions (%.1f s)", summary["map_mo"],
                summary["r1_mo"], len(per_language["map_mo"]), len(per_query), summary["seconds"]["total"])
    return {"summary": summary, "per_query": per_query}
