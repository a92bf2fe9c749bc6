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

CANDIDATE_TEXTS = ("sentence",)


def candidate_texts(candidates: pd.DataFrame, mode: str) -> list[str]:
    if mode == "sentence":
        return candidates["sentence"].tolist()
    raise ValueError(f"candidate_text must be one of {CANDIDATE_TEXTS}, got {mode!r}")


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def score_lareqa(q_emb: torch.Tensor, c_emb: torch.Tensor, questions: pd.DataFrame,
                 candidates: pd.DataFrame) -> dict:
    """All LAReQA metrics from question and candidate embeddings (rows aligned with the frames)."""
    questions = questions.reset_index(drop=True)
    candidates = candidates.reset_index(drop=True)
    index_of = {k: i for i, k in enumerate(candidates["key"])}
    c_lang = candidates["lang"].to_numpy()
    langs = sorted(set(c_lang))
    q_langs = sorted(set(questions["lang"]))
    span = {}
    for lang in langs:
        idx = np.flatnonzero(c_lang == lang)
        if not np.array_equal(idx, np.arange(idx[0], idx[-1] + 1)):
            raise ValueError(f"candidates of {lang} are not contiguous")
        span[lang] = (int(idx[0]), int(idx[-1]) + 1)
    # qid -> {lang: candidate index of its answer sentence}
    answer: dict[str, dict[str, int]] = defaultdict(dict)
    for qid, lang, key in questions[["qid", "lang", "answer_key"]].itertuples(index=False):
        if key not in index_of:
            raise ValueError(f"answer sentence {key!r} of question {qid!r} ({lang}) is not a candidate")
        answer[qid][lang] = index_of[key]

    per_pair: dict[str, dict[str, float]] = defaultdict(dict)  # metric -> "X-Y" -> value
    per_lang: dict[str, dict[str, float]] = defaultdict(dict)  # metric -> X -> value
    per_query = []
    for x in q_langs:
        qx = np.flatnonzero(questions["lang"].to_numpy() == x)
        qids = questions.loc[qx, "qid"].tolist()
        scores = q_emb[qx] @ c_emb.T  # (Qx, N)
        # multilingual pool
        ranks = M.relevant_ranks(scores, [sorted(answer[q].values()) for q in qids])
        ap = [M.average_precision(r) for r in ranks]
        per_lang["map_mul"][x] = _mean(ap)
        per_lang["r10_mul"][x] = _mean([M.recall_at(r, 10) for r in ranks])
        per_lang["rank_distance"][x] = _mean([M.rank_distance(r) for r in ranks])
        per_lang["mrr_mul"][x] = _mean([M.reciprocal_rank(r) for r in ranks])
        per_query += [{"setting": "mul", "query_lang": x, "corpus_lang": "all", "qid": q, "ap": a,
                       "rank_distance": M.rank_distance(r)} for q, a, r in zip(qids, ap, ranks)]
        # one corpus language at a time
        for y in langs:
            lo, hi = span[y]
            rows = [i for i, q in enumerate(qids) if y in answer[q]]
            if not rows:
                continue
            sub = scores[rows, lo:hi]
            ranks = M.relevant_ranks(sub, [[answer[qids[i]][y] - lo] for i in rows])
            ap = [M.average_precision(r) for r in ranks]
            pair = f"{x}-{y}"
            per_pair["map"][pair] = _mean(ap)
            per_pair["r1"][pair] = _mean([M.recall_at(r, 1) for r in ranks])
            per_query += [{"setting": "mo" if x == y else "cr", "query_lang": x, "corpus_lang": y,
                           "qid": qids[i], "ap": a, "rank_distance": 0.0} for i, a in zip(rows, ap)]
    mo = [p for p in per_pair["map"] if p.split("-")[0] == p.split("-")[1]]
    cr = [p for p in per_pair["map"] if p.split("-")[0] != p.split("-")[1]]
    for p in mo:
        per_lang["map_mo"][p.split("-")[0]] = per_pair["map"][p]
        per_lang["r1_mo"][p.split("-")[0]] = per_pair["r1"][p]
    summary = {
        "map_mo": _mean([per_pair["map"][p] for p in mo]),
        "map_cr": _mean([per_pair["map"][p] for p in cr]),
        "map_mul": _mean(list(per_lang["map_mul"].values())),
        "r1_mo": _mean([per_pair["r1"][p] for p in mo]),
        "r1_cr": _mean([per_pair["r1"][p] for p in cr]),
        "r10_mul": _mean(list(per_lang["r10_mul"].values())),
        "mrr_mul": _mean(list(per_lang["mrr_mul"].values())),
        "rank_distance": _mean(list(per_lang["rank_distance"].values())),
        "n_queries": int(len(questions)), "n_candidates": int(len(candidates)),
        "n_cross_pairs": len(cr), "languages": langs,
        "per_language": {k: dict(sorted(v.items())) for k, v in sorted(per_lang.items())},
        "per_pair": {k: dict(sorted(v.items())) for k, v in sorted(per_pair.items())},
    }
    return {"summary": summary, "per_query": pd.DataFrame(per_query)}


def evaluate_lareqa(encoder: DualEncoder, questions: pd.DataFrame, candidates: pd.DataFrame,
                    candidate_text: str = "sentence", max_tokens: int = 8192) -> dict:
    """Encode once, then score every setting; returns ``score_lareqa``'s result plus timings."""
    t0 = time.perf_counter()
    c_emb = encoder.encode(candidate_texts(candidates, candidate_text), "passage", max_tokens=max_tokens,
                           progress="encode candidates")
    t1 = time.perf_counter()
    q_emb = encoder.encode(questions["question"].tolist(), "query", max_tokens=max_tokens,
                           progress="encode questions")
    t2 = time.perf_counter()
    result = score_lareqa(q_emb, c_emb, questions, candidates)
    t3 = time.perf_counter()
    result["summary"]["seconds"] = {"encode_candidates": round(t1 - t0, 1), "encode_questions": round(t2 - t1, 1),
                                    "score": round(t3 - t2, 1)}
    logger.info("evaluated %d questions x %d candidates: encode %.0f s + %.0f s, score %.0f s",
                len(questions), len(candidates), t1 - t0, t2 - t1, t3 - t2)
    return result
