"""LAReQA-style evaluation (PAPER.md §4): monolingual, cross-lingual and multilingual retrieval.

- Mo.  queries in X against the candidates of X, averaged over languages.
- Cr.  queries in X against the candidates of Y != X, averaged over ordered pairs.
- Mul. queries in X against the pooled candidates of all languages, averaged over query languages.

A question is relevant to the answer sentence of its id in every language of the pool. A query whose id
has no answer sentence in a corpus language is not evaluated against that corpus (MLQA-R is not fully
parallel). All averages are macro: first over queries, then over languages or language pairs.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .encoder import DualEncoder

logger = logging.getLogger(__name__)

CANDIDATE_TEXTS = ("sentence", "sentence+context")
SHARE_AT = (1, 10, 100)


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


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _same_language_share(scores: torch.Tensor, c_lang: np.ndarray, lang: str, ks=SHARE_AT) -> dict[int, float]:
    """Mean share of candidates in the query's language among each query's top k (ties by index)."""
    kmax = min(max(ks), scores.shape[1])
    top = torch.sort(-scores, dim=1, stable=True).indices[:, :kmax].numpy()  # stable: equal scores by index
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


def score_lareqa(q_emb: torch.Tensor, c_emb: torch.Tensor, questions: pd.DataFrame,
                 candidates: pd.DataFrame, seen_languages: list[str] | None = None) -> dict:
    """All LAReQA metrics from question and candidate embeddings (rows aligned with the frames).

    ``seen_languages`` (the run's training languages), when given, adds ``seen`` / ``unseen`` summaries:
    Mo. and Mul. by query language; Cr. pairs are *seen* when both languages are, else *unseen*.
    """
    questions = questions.reset_index(drop=True)
    candidates = candidates.reset_index(drop=True)
    langs, span, answer = lareqa_index(questions, candidates)
    c_lang = candidates["lang"].to_numpy()
    q_langs = sorted(set(questions["lang"]))
    rows = []  # one per (query, setting, corpus): every per-query value
    share: dict[str, dict[str, float]] = {f"same_lang@{k}": {} for k in SHARE_AT}
    for x in q_langs:
        qx = np.flatnonzero(questions["lang"].to_numpy() == x)
        qids = questions.loc[qx, "qid"].tolist()
        scores = q_emb[qx] @ c_emb.T  # (Qx, N)
        ranks = M.relevant_ranks(scores, [sorted(answer[q].values()) for q in qids])  # multilingual pool
        rows += [query_row("mul", x, "all", q, r) for q, r in zip(qids, ranks)]
        for k, v in _same_language_share(scores, c_lang, x).items():
            share[f"same_lang@{k}"][x] = v
        for y in langs:  # one corpus language at a time
            lo, hi = span[y]
            keep = [i for i, q in enumerate(qids) if y in answer[q]]
            if not keep:
                continue
            ranks = M.relevant_ranks(scores[keep, lo:hi], [[answer[qids[i]][y] - lo] for i in keep])
            rows += [query_row("mo" if x == y else "cr", x, y, qids[i], r) for i, r in zip(keep, ranks)]
    per_query = pd.DataFrame(rows)
    summary = _summarise(per_query, seen_languages)
    summary.update({
        **{name: _mean(list(v.values())) for name, v in share.items()},
        "n_queries": int(len(questions)), "n_candidates": int(len(candidates)),
        "n_cross_pairs": int(per_query.loc[per_query["setting"] == "cr", ["query_lang", "corpus_lang"]]
                             .drop_duplicates().shape[0]),
        "languages": langs,
    })
    summary["per_language"].update(share)
    return {"summary": summary, "per_query": per_query}


def query_row(setting: str, x: str, y: str, qid: str, ranks: np.ndarray) -> dict:
    """Every per-query value of one query against one corpus (a row of ``per_query``)."""
    return {"setting": setting, "query_lang": x, "corpus_lang": y, "qid": qid,
            "ap": M.average_precision(ranks), "rr": M.reciprocal_rank(ranks), "ndcg10": M.ndcg_at(ranks, 10),
            "r1": M.recall_at(ranks, 1), "r10": M.recall_at(ranks, 10), "rank_distance": M.rank_distance(ranks)}


# summary key -> (setting, per-query column); every value is a macro mean over (query_lang, corpus_lang) groups
_HEADLINE = {"map_mo": ("mo", "ap"), "map_cr": ("cr", "ap"), "map_mul": ("mul", "ap"),
             "r1_mo": ("mo", "r1"), "r1_cr": ("cr", "r1"), "r10_mul": ("mul", "r10"),
             "mrr_mo": ("mo", "rr"), "mrr_cr": ("cr", "rr"), "mrr_mul": ("mul", "rr"),
             "ndcg10_mo": ("mo", "ndcg10"), "ndcg10_cr": ("cr", "ndcg10"), "ndcg10_mul": ("mul", "ndcg10"),
             "rank_distance": ("mul", "rank_distance")}


def _group_means(per_query: pd.DataFrame, setting: str, column: str) -> pd.Series:
    sub = per_query[per_query["setting"] == setting]
    return sub.groupby(["query_lang", "corpus_lang"], sort=True)[column].mean()


def _summarise(per_query: pd.DataFrame, seen_languages: list[str] | None) -> dict:
    summary: dict = {}
    per_language: dict = {}
    per_pair: dict = {}
    for name, (setting, column) in _HEADLINE.items():
        g = _group_means(per_query, setting, column)
        summary[name] = _mean(g.to_numpy())
        if setting == "cr":
            per_pair[name] = {f"{x}-{y}": float(v) for (x, y), v in g.items()}
        else:
            per_language[name] = {x: float(v) for (x, _y), v in g.items()}
    # Cr. matrix including the diagonal (Mo.), for heatmaps: "X-Y" -> mAP / R@1
    for name, column in (("map", "ap"), ("r1", "r1")):
        g = pd.concat([_group_means(per_query, "mo", column), _group_means(per_query, "cr", column)])
        per_pair[name] = {f"{x}-{y}": float(v) for (x, y), v in sorted(g.items())}
    summary["per_language"] = per_language
    summary["per_pair"] = per_pair
    if seen_languages is not None:
        seen = set(seen_languages)
        for label, keep in (("seen", lambda x, y: x in seen and (y == "all" or y in seen)),
                            ("unseen", lambda x, y: not (x in seen and (y == "all" or y in seen)))):
            block: dict = {"languages": sorted({x for x in per_query["query_lang"] if keep(x, x)})}
            for name in ("map_mo", "map_cr", "map_mul", "rank_distance"):
                setting, column = _HEADLINE[name]
                g = _group_means(per_query, setting, column)
                g = g[[keep(x, y) for x, y in g.index]]
                block[name] = _mean(g.to_numpy())
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
    result["summary"]["seconds"] = {"encode_candidates": round(t1 - t0, 1), "encode_questions": round(t2 - t1, 1),
                                    "score": round(t3 - t2, 1)}
    logger.info("evaluated %d questions x %d candidates: encode %.0f s + %.0f s, score %.0f s",
                len(questions), len(candidates), t1 - t0, t2 - t1, t3 - t2)
    return result
