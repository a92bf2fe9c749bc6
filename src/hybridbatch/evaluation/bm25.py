"""BM25 lexical reference for **monolingual** LAReQA retrieval (the Mo. setting only).

BM25 matches surface terms, so it is a reference point for Mo. (queries in X against the candidates of X)
and is not computed for Cr. or Mul.: across languages it can only match shared strings (numbers, names),
which says nothing about cross-lingual retrieval. ``bm25_lareqa`` states this in its result
(``"settings": ["mo"]`` and ``"not_computed"``). It is evaluated by the protocol of every retriever
(``evaluation.evaluate_retriever``): :class:`BM25Retriever` only supplies the scores.

Scoring is ``bm25s``'s ``method="lucene"`` (Lucene's BM25 as used by Pyserini/Anserini, defaults k1 = 0.9,
b = 0.4)::

    score(q, d) = sum_{t in q} idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

A repeated query term counts once per occurrence. Lucene >= 8 drops the constant (k1 + 1) factor from the
numerator (it does not change the ranking); unlike Lucene, document lengths are exact, not quantised to one
byte, so scores can differ from Pyserini's in the last digits. A document sharing no term with the query
scores 0; ties are ordered by ``hybridbatch.evaluation.metrics`` like every dense score (increasing candidate index).

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

from hybridbatch.evaluation.lareqa import SETTINGS, evaluate_retriever

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


class BM25Retriever:
    """The ``evaluation.Retriever`` of BM25: Mo. only (see the module docstring).

    For a query language X it indexes the candidate sentences of X (``[lo, hi)`` must hold only language X)
    and scores the questions of X against them with :func:`bm25_scores`; ``stopwords`` optionally maps a
    language to its stopword list. Indexes are built per call (the scorer asks once per language).
    """

    settings = ("mo",)

    def __init__(self, questions: pd.DataFrame, candidates: pd.DataFrame, k1: float = 0.9, b: float = 0.4,
                 stopwords: dict[str, Iterable[str]] | None = None) -> None:
        self.questions = questions.reset_index(drop=True)
        self.candidates = candidates.reset_index(drop=True)
        self.k1, self.b, self.stopwords = k1, b, stopwords

    def scores(self, rows: np.ndarray, lang: str, lo: int, hi: int) -> torch.Tensor:
        docs = self.candidates.iloc[lo:hi]
        if not (docs["lang"] == lang).all():
            raise ValueError(f"BM25 scores {lang} questions against {lang} candidates only (Mo.); "
                             f"candidates [{lo}, {hi}) are in {sorted(set(docs['lang']))}")
        t0 = time.perf_counter()
        stop = (self.stopwords or {}).get(lang)
        doc_tok = tokenize(docs["sentence"].tolist(), lang, stop)
        q_tok = tokenize(self.questions.loc[rows, "question"].tolist(), lang, stop)
        t1 = time.perf_counter()
        out = torch.from_numpy(bm25_scores(q_tok, doc_tok, k1=self.k1, b=self.b))
        empty_q = sum(not t for t in q_tok)
        logger.info("BM25 %s: %d questions x %d candidates (tokenize %.2f s, score %.2f s%s)", lang, len(rows),
                    hi - lo, t1 - t0, time.perf_counter() - t1,
                    f", {empty_q} questions without tokens" if empty_q else "")
        return out


def bm25_lareqa(questions: pd.DataFrame, candidates: pd.DataFrame, k1: float = 0.9, b: float = 0.4,
                stopwords: dict[str, Iterable[str]] | None = None) -> dict:
    """Mo. metrics of BM25: for each language X, index the candidates of X and rank them for X's questions.

    Frames as for ``evaluation.score_lareqa`` (one dataset; candidates of a language contiguous). The
    evaluation is ``evaluation.evaluate_retriever`` -- the same protocol, answer mapping, ranking convention,
    metric list, summary and range checks as every dense run -- so ``map_mo``/``r1_mo``/``mrr_mo``/
    ``ndcg10_mo`` are directly comparable with a dense model's. ``stopwords`` optionally maps a language to
    its stopword list. Returns ``{"summary": ..., "per_query": DataFrame}``: ``per_query`` columns as in
    ``score_lareqa`` (all rows ``setting == "mo"``); the summary holds the Mo. keys of a dense summary plus
    ``method``, ``settings``, ``not_computed`` (Cr., Mul.) and the ``bm25`` configuration; wall-clock
    ``timings`` beside the summary.
    """
    t_start = time.perf_counter()
    retriever = BM25Retriever(questions, candidates, k1=k1, b=b, stopwords=stopwords)
    seconds: dict[str, float] = {}
    result = evaluate_retriever(retriever, questions, candidates, timings=seconds)
    scored = result["summary"]
    summary = {
        "method": "bm25",
        "settings": list(retriever.settings),
        "not_computed": {s: "BM25 is a lexical, monolingual method; cross-lingual settings are not evaluated"
                         for s in SETTINGS if s not in retriever.settings},
        **scored,
        "bm25": {"implementation": f"bm25s {bm25s.__version__}", "method": "lucene", "k1": k1, "b": b,
                 "tokenizer": "nfkc+casefold word runs; char bigrams for " + "/".join(sorted(BIGRAM_LANGS)),
                 "stopwords": sorted(stopwords) if stopwords else None},
    }
    timings = {"per_language": {x: round(v, 2) for x, v in seconds.items()},
               "total": round(time.perf_counter() - t_start, 2)}  # not in the summary: a tracked output
    per_language = summary["per_language"]["map_mo"]
    logger.info("BM25 Mo.: mAP %.4f, R@1 %.4f over %d languages (%s), %d questions (%.1f s)", summary["map_mo"],
                summary["r1_mo"], len(per_language), ", ".join(f"{x} {v:.4f}" for x, v in per_language.items()),
                summary["n_queries"], timings["total"])
    return {"summary": summary, "per_query": result["per_query"], "timings": timings}
