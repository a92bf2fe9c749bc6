"""LAReQA-style evaluation (docs/PROTOCOL.md §4): monolingual, cross-lingual and multilingual retrieval.

- Mo.  queries in X against the candidates of X, averaged over languages.
- Cr.  queries in X against the candidates of Y != X, averaged over ordered pairs.
- Mul. queries in X against the pooled candidates of all languages, averaged over query languages.

A question is relevant to the answer sentence of its id in every language of the pool. A query whose id
has no answer sentence in a corpus language is not evaluated against that corpus (MLQA-R is not fully
parallel). All averages are macro: first over queries, then over languages or language pairs.

One protocol for every retrieval method (BEIR style): a *retriever* (:class:`Retriever`) only scores
questions against candidates and declares the settings it supports; :func:`evaluate_retriever` ranks
(``metrics.relevant_ranks``), writes one ``per_query`` row per (query, setting, corpus) with every metric of
``metrics.PER_QUERY`` (:func:`query_row`) and summarises them with :func:`summarise` (``HEADLINE``; every
value range-checked, so a metric outside its range stops the stage). :class:`DenseRetriever` scores
embeddings (:func:`score_lareqa`, :func:`evaluate_lareqa`); ``baselines.BM25Retriever`` is the Mo.-only
lexical one (``baselines.bm25_lareqa``).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from hybridbatch.evaluation import metrics as M
from hybridbatch.model.encoder import DualEncoder

logger = logging.getLogger(__name__)

CANDIDATE_TEXTS = ("sentence", "sentence+context")
SETTINGS = ("mo", "cr", "mul")
SHARE_AT = (1, 10, 100)
#: the columns of every ``per_query`` frame: where the row was evaluated, then ``metrics.PER_QUERY``
PER_QUERY_COLUMNS = ("setting", "query_lang", "corpus_lang", "qid", *M.PER_QUERY)
#: summary key -> (setting, per-query column): the one list of headline metrics of every retriever;
#: each value is a macro mean over (query_lang, corpus_lang) groups
HEADLINE = {"map_mo": ("mo", "ap"), "map_cr": ("cr", "ap"), "map_mul": ("mul", "ap"),
            "r1_mo": ("mo", "r1"), "r1_cr": ("cr", "r1"), "r10_mul": ("mul", "r10"),
            "mrr_mo": ("mo", "rr"), "mrr_cr": ("cr", "rr"), "mrr_mul": ("mul", "rr"),
            "ndcg10_mo": ("mo", "ndcg10"), "ndcg10_cr": ("cr", "ndcg10"), "ndcg10_mul": ("mul", "ndcg10"),
            "rank_distance": ("mul", "rank_distance")}


def candidate_texts(candidates: pd.DataFrame, mode: str) -> list[str]:
    """The text each candidate is encoded from.

    ``sentence``: the answer sentence alone. ``sentence+context``: the sentence followed by its paragraph
    (LAReQA encodes the pair; a single-segment encoder sees the concatenation, truncated at max_length).
    """
    if mode == "sentence":
        return candidates["sentence"].tolist()
    if mode == "sentence+context":
        return (candidates["sentence"] + " \n " + candidates["context"]).tolist()
    raise ValueError(f"candidate_text must be one of {CANDIDATE_TEXTS}, got {mode!r}")


def _same_language_share(scores: torch.Tensor, c_lang: np.ndarray, lang: str, ks=SHARE_AT) -> dict[int, float]:
    """Mean share of candidates in the query's language among each query's top k (ties by index)."""
    kmax = min(max(ks), scores.shape[1])
    top = M.top_k(scores, kmax)  # an exact top k, equal scores by index (no full sort)
    same = c_lang[top] == lang
    return {k: float(same[:, :min(k, kmax)].mean()) for k in ks}


def lareqa_index(questions: pd.DataFrame, candidates: pd.DataFrame
                 ) -> tuple[list[str], dict[str, tuple[int, int]], dict[str, dict[str, int]]]:
    """Corpus languages, each language's ``[lo, hi)`` candidate span, and qid -> {lang: answer candidate index}.

    Frames must be index-aligned from 0 (``reset_index``); candidate keys unique; each language contiguous.
    """
    if not candidates["key"].is_unique:
        dup = candidates["key"][candidates["key"].duplicated()].iloc[0]
        raise ValueError(f"candidate key {dup!r} is not unique (several datasets in one frame?)")
    index_of = {k: i for i, k in enumerate(candidates["key"])}
    c_lang = candidates["lang"].to_numpy()
    langs = sorted(set(c_lang))
    span = {}
    for lang in langs:
        idx = np.flatnonzero(c_lang == lang)
        if not np.array_equal(idx, np.arange(idx[0], idx[-1] + 1)):
            raise ValueError(f"candidates of {lang} are not contiguous")
        span[lang] = (int(idx[0]), int(idx[-1]) + 1)
    answer: dict[str, dict[str, int]] = defaultdict(dict)
    for qid, lang, key in questions[["qid", "lang", "answer_key"]].itertuples(index=False):
        if key not in index_of:
            raise ValueError(f"answer sentence {key!r} of question {qid!r} ({lang}) is not a candidate")
        answer[qid][lang] = index_of[key]
    return langs, span, answer


# ------------------------------------------------------------------------------------------ retrievers
class Retriever(Protocol):
    """What the LAReQA scorer needs of a retrieval method (BEIR's "search" step): scores, nothing else.

    ``settings``: the settings it is evaluated in, a subset of ``SETTINGS``. A retriever with ``"mul"`` is
    asked once per query language for the whole pool (``lo, hi = 0, n_candidates``), and Mo./Cr. are read
    from slices of that matrix; one without is asked per corpus language it can score (Mo.: the query's own).

    ``scores(rows, lang, lo, hi)``: a ``(len(rows), hi - lo)`` float tensor, the scores of the questions at
    positions ``rows`` of the (0-indexed) questions frame -- all in language ``lang`` -- against the
    candidates at positions ``[lo, hi)``; higher is better, no NaN (checked).
    """

    settings: tuple[str, ...]

    def scores(self, rows: np.ndarray, lang: str, lo: int, hi: int) -> torch.Tensor: ...


class DenseRetriever:
    """Dot products of question and candidate embeddings (cosines for L2-normalised rows); every setting."""

    settings = SETTINGS

    def __init__(self, q_emb: torch.Tensor, c_emb: torch.Tensor) -> None:
        for name, emb in (("question", q_emb), ("candidate", c_emb)):
            if emb.ndim != 2:
                raise ValueError(f"{name} embeddings must be a 2-d tensor, got shape {tuple(emb.shape)}")
            bad = ~torch.isfinite(emb).all(dim=1)
            if bad.any():  # a NaN score has no rank: the ranking convention would silently give it rank 1
                raise ValueError(f"{int(bad.sum())} {name} embedding(s) are not finite (first: row "
                                 f"{int(torch.nonzero(bad)[0])})")
        self.q_emb, self.c_emb = q_emb, c_emb

    def scores(self, rows: np.ndarray, lang: str, lo: int, hi: int) -> torch.Tensor:
        c = self.c_emb if (lo, hi) == (0, len(self.c_emb)) else self.c_emb[lo:hi]
        return self.q_emb[rows] @ c.T


# --------------------------------------------------------------------------------------------- scoring
def evaluate_retriever(retriever: Retriever, questions: pd.DataFrame, candidates: pd.DataFrame,
                       seen_languages: list[str] | None = None, timings: dict[str, float] | None = None) -> dict:
    """The LAReQA protocol for any retriever: rank, one ``per_query`` row per (query, setting, corpus), summary.

    Settings the retriever lacks are not computed (no rows, no summary keys). ``timings``, when given, is
    filled with the seconds spent per evaluated query language (scoring and ranking). Returns
    ``{"summary": summarise(...) + counts, "per_query": DataFrame}`` (columns ``PER_QUERY_COLUMNS``).
    """
    settings = tuple(retriever.settings)
    if not settings or set(settings) - set(SETTINGS):
        raise ValueError(f"retriever settings must be a non-empty subset of {SETTINGS}, got {settings}")
    questions = questions.reset_index(drop=True)
    candidates = candidates.reset_index(drop=True)
    langs, span, answer = lareqa_index(questions, candidates)
    c_lang = candidates["lang"].to_numpy()
    q_lang = questions["lang"].to_numpy()
    rows: list[dict] = []  # one per (query, setting, corpus): every per-query value
    share: dict[str, dict[str, float]] = {f"same_lang@{k}": {} for k in SHARE_AT}
    evaluated = np.zeros(len(questions), dtype=bool)
    for x in sorted(set(q_lang)):
        t0 = time.perf_counter()
        qx = np.flatnonzero(q_lang == x)
        qids = questions.loc[qx, "qid"].tolist()
        pool = None
        if "mul" in settings:  # the multilingual pool; Mo. and Cr. are slices of it
            pool = _checked(retriever.scores(qx, x, 0, len(candidates)), retriever, x, qids, len(candidates))
            ranks = M.relevant_ranks(pool, [sorted(answer[q].values()) for q in qids])
            rows += [query_row("mul", x, "all", q, r) for q, r in zip(qids, ranks)]
            evaluated[qx] = True
            for k, v in _same_language_share(pool, c_lang, x).items():
                share[f"same_lang@{k}"][x] = v
        for y in langs:  # one corpus language at a time
            setting = "mo" if x == y else "cr"
            if setting not in settings:
                continue
            lo, hi = span[y]
            keep = [i for i, q in enumerate(qids) if y in answer[q]]
            if not keep:
                continue
            scores = (pool[keep, lo:hi] if pool is not None else
                      _checked(retriever.scores(qx[keep], x, lo, hi), retriever, x, [qids[i] for i in keep], hi - lo))
            ranks = M.relevant_ranks(scores, [[answer[qids[i]][y] - lo] for i in keep])
            rows += [query_row(setting, x, y, qids[i], r) for i, r in zip(keep, ranks)]
            evaluated[qx[keep]] = True
        if not evaluated[qx].any():
            logger.warning("no candidates to score for %s in %s: its %d questions are not evaluated",
                           x, "/".join(settings), len(qx))
        elif timings is not None:
            timings[x] = time.perf_counter() - t0
    per_query = pd.DataFrame(rows, columns=list(PER_QUERY_COLUMNS))
    summary = summarise(per_query, settings, seen_languages)
    if "mul" in settings:
        for name, v in share.items():
            for x, value in v.items():
                M.check_metric(name, value, f"mul, query language {x}", kind="same_lang")
            summary[name] = M.mean(v.values(), name, "macro mean over query languages", kind="same_lang")
        summary["per_language"].update(share)
    summary.update({"n_queries": int(evaluated.sum()), "n_candidates": int(len(candidates))})
    if "cr" in settings:
        summary["n_cross_pairs"] = int(per_query.loc[per_query["setting"] == "cr", ["query_lang", "corpus_lang"]]
                                       .drop_duplicates().shape[0])
    summary["languages"] = langs
    return {"summary": summary, "per_query": per_query}


def _checked(scores: torch.Tensor, retriever: Retriever, lang: str, qids: list[str], width: int) -> torch.Tensor:
    """``scores`` if its shape is ``(len(qids), width)`` and no value is NaN (a NaN has no rank: every
    comparison with it is false, so it would silently rank first)."""
    if tuple(scores.shape) != (len(qids), width):
        raise ValueError(f"{type(retriever).__name__} returned scores of shape {tuple(scores.shape)} for {lang}, "
                         f"expected {(len(qids), width)}")
    nan = torch.isnan(scores).any(dim=1)
    if nan.any():
        raise ValueError(f"{type(retriever).__name__} returned NaN scores for {int(nan.sum())} question(s) in "
                         f"{lang} (first: {qids[int(torch.nonzero(nan)[0])]!r})")
    return scores


def score_lareqa(q_emb: torch.Tensor, c_emb: torch.Tensor, questions: pd.DataFrame,
                 candidates: pd.DataFrame, seen_languages: list[str] | None = None) -> dict:
    """All LAReQA metrics from question and candidate embeddings (rows aligned with the frames).

    ``seen_languages`` (the run's training languages), when given, adds ``seen`` / ``unseen`` summaries:
    Mo. and Mul. by query language; Cr. pairs are *seen* when both languages are, else *unseen*.
    """
    return evaluate_retriever(DenseRetriever(q_emb, c_emb), questions, candidates, seen_languages)


def query_row(setting: str, x: str, y: str, qid: str, ranks: np.ndarray) -> dict:
    """Every per-query value of one query against one corpus (a row of ``per_query``)."""
    return {"setting": setting, "query_lang": x, "corpus_lang": y, "qid": qid,
            **{name: f(ranks) for name, (f, _bounds) in M.PER_QUERY.items()}}


# ------------------------------------------------------------------------------------------- summaries
def _group_means(per_query: pd.DataFrame, setting: str, column: str) -> pd.Series:
    sub = per_query[per_query["setting"] == setting]
    return sub.groupby(["query_lang", "corpus_lang"], sort=True)[column].mean()


def check_per_query(per_query: pd.DataFrame) -> None:
    """``ValueError`` naming the metric, query and languages of the first per-query value out of its range."""
    for column, (_f, (lo, hi)) in M.PER_QUERY.items():
        v = per_query[column].to_numpy(dtype=float)
        bad = ~(np.isfinite(v) & (v >= lo) & (v <= hi))
        if bad.any():
            r = per_query.iloc[int(np.flatnonzero(bad)[0])]
            M.check_metric(column, r[column], f"setting {r['setting']}, query language {r['query_lang']}, corpus "
                           f"{r['corpus_lang']}, query {r['qid']!r}; {int(bad.sum())} value(s) out of range")


def summarise(per_query: pd.DataFrame, settings: tuple[str, ...] = SETTINGS,
              seen_languages: list[str] | None = None) -> dict:
    """The summary of ``per_query`` in ``settings``: every ``HEADLINE`` metric, per language / pair, seen/unseen.

    Every value is a macro mean over (query_lang, corpus_lang) groups of per-query means. All values are
    range-checked (``metrics.check_metric``): a metric outside its range, NaN or inf raises ``ValueError``
    naming it; NaN is only reported where nothing was evaluated (e.g. no Cr. pair among seen languages).
    """
    check_per_query(per_query)
    summary: dict = {}
    per_language: dict = {}
    per_pair: dict = {}
    headline = {name: sc for name, sc in HEADLINE.items() if sc[0] in settings}
    for name, (setting, column) in headline.items():
        g = _group_means(per_query, setting, column)
        summary[name] = M.mean(g.to_numpy(), name, f"macro mean over {setting} languages", kind=column)
        if setting == "cr":
            per_pair[name] = {f"{x}-{y}": M.check_metric(name, v, f"cr, pair {x}-{y}", column)
                              for (x, y), v in g.items()}
        else:
            per_language[name] = {x: M.check_metric(name, v, f"{setting}, language {x}", column)
                                  for (x, _y), v in g.items()}
    # Cr. matrix including the diagonal (Mo.), for heatmaps: "X-Y" -> mAP / R@1
    diagonal_and_cross = [s for s in ("mo", "cr") if s in settings]
    for name, column in (("map", "ap"), ("r1", "r1")) if diagonal_and_cross else ():
        g = pd.concat([_group_means(per_query, s, column) for s in diagonal_and_cross])
        per_pair[name] = {f"{x}-{y}": M.check_metric(name, v, f"pair {x}-{y}", column)
                          for (x, y), v in sorted(g.items())}
    summary["per_language"] = per_language
    summary["per_pair"] = per_pair
    if seen_languages is not None:
        seen = set(seen_languages)
        for label, keep in (("seen", lambda x, y: x in seen and (y == "all" or y in seen)),
                            ("unseen", lambda x, y: not (x in seen and (y == "all" or y in seen)))):
            block: dict = {"languages": sorted({x for x in per_query["query_lang"] if keep(x, x)})}
            for name in ("map_mo", "map_cr", "map_mul", "rank_distance"):
                if name not in headline:
                    continue
                setting, column = headline[name]
                g = _group_means(per_query, setting, column)
                g = g[[keep(x, y) for x, y in g.index]]
                block[name] = M.mean(g.to_numpy(), f"{label}.{name}", f"{setting}, {label} languages",
                                     kind=column)
            summary[label] = block
        summary["seen_languages"] = sorted(seen)
    return summary


def evaluate_lareqa(encoder: DualEncoder, questions: pd.DataFrame, candidates: pd.DataFrame,
                    candidate_text: str = "sentence", max_tokens: int = 8192,
                    seen_languages: list[str] | None = None) -> dict:
    """Encode once, then score every setting; returns ``score_lareqa``'s result plus timings."""
    t0 = time.perf_counter()
    c_emb = encoder.encode(candidate_texts(candidates, candidate_text), "passage", max_tokens=max_tokens,
                           progress="encode candidates")
    t1 = time.perf_counter()
    q_emb = encoder.encode(questions["question"].tolist(), "query", max_tokens=max_tokens,
                           progress="encode questions")
    t2 = time.perf_counter()
    result = score_lareqa(q_emb, c_emb, questions, candidates, seen_languages)
    t3 = time.perf_counter()
    # wall-clock figures stay out of the summary (a tracked output must be a function of the inputs only)
    result["timings"] = {"encode_candidates": round(t1 - t0, 1), "encode_questions": round(t2 - t1, 1),
                         "score": round(t3 - t2, 1)}
    logger.info("evaluated %d questions x %d candidates: encode %.0f s + %.0f s, score %.0f s",
                len(questions), len(candidates), t1 - t0, t2 - t1, t3 - t2)
    return result


def headline(run: str, dataset: str, scores: dict, tatoeba: dict | None = None) -> str:
    """The run's headline numbers as a short table (Mo./Cr./Mul. mAP, rank distance, Tatoeba where computed;
    -- for a number the run has not), printed at the end of the evaluate and bm25 stages."""
    def num(value, digits: int = 3) -> str:
        return "--" if value is None else f"{value:.{digits}f}"

    cells = [("Mo. mAP", num(scores.get("map_mo"))), ("Cr. mAP", num(scores.get("map_cr"))),
             ("Mul. mAP", num(scores.get("map_mul"))), ("rank distance", num(scores.get("rank_distance"), 1))]
    if tatoeba is not None:
        cells.append(("Tatoeba", num(tatoeba.get("mean"))))
    widths = [max(len(name), len(value)) for name, value in cells]
    return "\n".join([f"{run} on {dataset} (results/{run}/metrics.json):",
                      "  " + "  ".join(name.rjust(w) for (name, _), w in zip(cells, widths)),
                      "  " + "  ".join(value.rjust(w) for (_, value), w in zip(cells, widths))])
