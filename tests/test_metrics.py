"""Metric values against pytrec_eval (trec_eval) on the same rankings, and LAReQA settings by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import pytrec_eval
import torch

from hybridbatch.evaluation import metrics as M
from hybridbatch.evaluation.lareqa import score_lareqa


def random_case(n_q=40, n_c=300, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_q, n_c)).astype(np.float32)
    if ties:  # coarse rounding creates many equal scores
        scores = np.round(scores, 1)
    relevant = [sorted(rng.choice(n_c, size=int(rng.integers(1, 12)), replace=False).tolist()) for _ in range(n_q)]
    return torch.from_numpy(scores), relevant


def reference_order(row: np.ndarray) -> np.ndarray:
    """Candidates by decreasing score, equal scores by increasing index (the documented convention)."""
    return np.lexsort((np.arange(len(row)), -row))


def test_ranks_follow_documented_tie_breaking():
    scores, relevant = random_case()
    ranks = M.relevant_ranks(scores, relevant, chunk=7)
    for q, rel in enumerate(relevant):
        order = reference_order(scores[q].numpy())
        pos = np.empty_like(order)
        pos[order] = np.arange(1, len(order) + 1)
        assert np.array_equal(ranks[q], np.sort(pos[rel]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_trec_eval(seed):
    scores, relevant = random_case(seed=seed)
    ranks = M.relevant_ranks(scores, relevant)
    n_c = scores.shape[1]
    qrels, run = {}, {}
    for q, rel in enumerate(relevant):
        qrels[f"q{q}"] = {f"d{c}": 1 for c in rel}
        order = reference_order(scores[q].numpy())
        # trec_eval breaks ties its own way: give it strictly decreasing scores in our order
        run[f"q{q}"] = {f"d{c}": float(n_c - i) for i, c in enumerate(order)}
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recall", "recip_rank", "ndcg_cut"})
    res = ev.evaluate(run)
    for q, r in enumerate(ranks):
        t = res[f"q{q}"]
        assert M.average_precision(r) == pytest.approx(t["map"], abs=1e-4)
        assert M.recall_at(r, 10) == pytest.approx(t["recall_10"], abs=1e-4)
        assert M.recall_at(r, 100) == pytest.approx(t["recall_100"], abs=1e-4)
        assert M.reciprocal_rank(r) == pytest.approx(t["recip_rank"], abs=1e-4)
        assert M.ndcg_at(r, 10) == pytest.approx(t["ndcg_cut_10"], abs=1e-4)


def test_rank_distance_by_hand():
    assert M.rank_distance(np.array([1, 4, 9])) == 8
    assert M.rank_distance(np.array([3])) == 0


def test_bad_relevance_is_rejected():
    with pytest.raises(ValueError, match="no relevant"):
        M.relevant_ranks(torch.zeros(1, 3), [[]])
    with pytest.raises(ValueError, match="out of range"):
        M.relevant_ranks(torch.zeros(1, 3), [[3]])


def lareqa_fixture():
    """Two languages, two questions each, two candidates each; embeddings chosen so ranks are known.

    Candidates (pool order): en:0 en:1 de:0 de:1. Question a -> en:0 / de:0, question b -> en:1 / de:1.
    """
    questions = pd.DataFrame({"qid": ["a", "b", "a", "b"], "lang": ["en", "en", "de", "de"],
                              "question": ["", "", "", ""],
                              "answer_key": ["en:0", "en:1", "de:0", "de:1"]})
    candidates = pd.DataFrame({"key": ["en:0", "en:1", "de:0", "de:1"], "lang": ["en", "en", "de", "de"],
                               "sentence": ["", "", "", ""]})
    c = torch.eye(4)
    # scores of each question against the 4 candidates are its embedding's coordinates
    q = torch.tensor([[0.9, 0.8, 0.1, 0.7],   # en a: pool ranks en:0 1st, de:0 4th
                      [0.5, 0.9, 0.2, 0.6],   # en b: en:1 1st, de:1 2nd
                      [0.3, 0.4, 0.2, 0.1],   # de a: en:0 2nd, de:0 3rd; in de corpus de:0 1st
                      [0.2, 0.1, 0.9, 0.8]])  # de b: de:1 2nd, en:1 4th; in de corpus de:1 2nd
    return q, c, questions, candidates


def test_lareqa_settings_by_hand():
    q, c, questions, candidates = lareqa_fixture()
    s = score_lareqa(q, c, questions, candidates)["summary"]
    # Mo: en (a rank 1, b rank 1) -> 1; de (a: de corpus [0.2, 0.1] -> rank 1; b: [0.9, 0.8] -> rank 2) -> .75
    assert s["per_language"]["map_mo"] == pytest.approx({"de": 0.75, "en": 1.0})
    assert s["map_mo"] == pytest.approx(0.875)
    # Cr en->de: a [0.1, 0.7] -> de:0 rank 2; b [0.2, 0.6] -> de:1 rank 1 => (0.5 + 1) / 2
    # Cr de->en: a [0.3, 0.4] -> en:0 rank 2; b [0.2, 0.1] -> en:1 rank 2 => 0.5
    assert s["per_pair"]["map"]["en-de"] == pytest.approx(0.75)
    assert s["per_pair"]["map"]["de-en"] == pytest.approx(0.5)
    assert s["map_cr"] == pytest.approx(0.625)
    # Mul: en a ranks (1, 4): AP = (1/1 + 2/4)/2 = .75, RD 3; en b ranks (1, 2): AP 1, RD 1
    #      de a ranks (2, 3): AP = (1/2 + 2/3)/2, RD 1; de b ranks (2, 4): AP = (1/2 + 2/4)/2 = .5, RD 2
    assert s["per_language"]["map_mul"]["en"] == pytest.approx((0.75 + 1) / 2)
    assert s["per_language"]["map_mul"]["de"] == pytest.approx(((0.5 + 2 / 3) / 2 + 0.5) / 2)
    assert s["per_language"]["rank_distance"] == pytest.approx({"en": 2.0, "de": 1.5})
    assert s["rank_distance"] == pytest.approx(1.75)
    assert s["r1_mo"] == pytest.approx(0.75)
    assert s["n_cross_pairs"] == 2


def test_lareqa_skips_missing_translations():
    q, c, questions, candidates = lareqa_fixture()
    keep = ~((questions["qid"] == "b") & (questions["lang"] == "de"))
    s = score_lareqa(q[torch.tensor(keep.to_numpy())], c, questions[keep], candidates)["summary"]
    # en b has no de answer any more: en->de is evaluated on question a only
    assert s["per_pair"]["map"]["en-de"] == pytest.approx(0.5)


def test_same_language_share_and_extra_metrics_by_hand():
    q, c, questions, candidates = lareqa_fixture()
    s = score_lareqa(q, c, questions, candidates)["summary"]
    # top-1 of each query: en a -> en:0 (en), en b -> en:1 (en); de a -> en:1 (en), de b -> de:0 (de)
    assert s["per_language"]["same_lang@1"] == pytest.approx({"en": 1.0, "de": 0.5})
    # top-10 covers all 4 candidates: half of them are in each language
    assert s["per_language"]["same_lang@10"] == pytest.approx({"en": 0.5, "de": 0.5})
    # MRR Mul.: en a 1, en b 1; de a 1/2, de b 1/2 -> macro (1 + 0.5) / 2
    assert s["mrr_mul"] == pytest.approx(0.75)
    # nDCG@10 Mo. for de b (relevant at rank 2 of 2): 1/log2(3)
    assert s["per_language"]["ndcg10_mo"]["de"] == pytest.approx((1 + 1 / np.log2(3)) / 2)
    assert s["per_pair"]["map"]["en-en"] == pytest.approx(1.0)  # the Cr. matrix carries its diagonal


def test_seen_unseen_split_by_hand():
    q, c, questions, candidates = lareqa_fixture()
    s = score_lareqa(q, c, questions, candidates, seen_languages=["en"])["summary"]
    assert s["seen"]["languages"] == ["en"] and s["unseen"]["languages"] == ["de"]
    assert s["seen"]["map_mo"] == pytest.approx(1.0)
    assert s["unseen"]["map_mo"] == pytest.approx(0.75)
    assert np.isnan(s["seen"]["map_cr"])  # a Cr. pair is seen only if both languages are
    assert s["unseen"]["map_cr"] == pytest.approx(0.625)
    assert s["seen"]["rank_distance"] == pytest.approx(2.0)


def test_candidate_text_modes():
    from hybridbatch.evaluation.lareqa import candidate_texts

    cands = pd.DataFrame({"sentence": ["A b."], "context": ["A b. C d."]})
    assert candidate_texts(cands, "sentence") == ["A b."]
    assert candidate_texts(cands, "sentence+context") == ["A b. \n A b. C d."]
    with pytest.raises(ValueError, match="candidate_text must be one of"):
        candidate_texts(cands, "paragraph")


# ----------------------------------------------------------------------------- the one mean and range check

def test_mean_is_the_plain_mean_and_nan_only_when_empty():
    assert np.isnan(M.mean([])) and np.isnan(M.mean([], "ap"))
    assert M.mean([0.25, 0.5, 1.0], "ap") == float(np.mean([0.25, 0.5, 1.0]))
    assert M.mean(np.array([3.0, 5.0]), "rank_distance") == 4.0
    assert M.mean([float("nan"), 1.0]) != M.mean([float("nan"), 1.0])  # unchecked without a metric name


@pytest.mark.parametrize("metric,kind,value", [
    ("ap", None, 1.0000001), ("rr", None, -1e-9), ("ndcg10", None, float("nan")), ("r1", None, float("inf")),
    ("r10", None, 6.0), ("rank_distance", None, -1.0), ("rank_distance", None, float("inf")),
    ("same_lang@10", "same_lang", 1.5), ("tatoeba x2en", "accuracy", float("nan")),
])
def test_check_metric_rejects_values_outside_their_range(metric, kind, value):
    with pytest.raises(ValueError, match=rf"metric {metric} = {value!r} outside .*\(mul, language de\)"):
        M.check_metric(metric, value, "mul, language de", kind=kind)
    with pytest.raises(ValueError, match=rf"metric {metric} = "):
        M.mean([0.5, value], metric, kind=kind)


def test_check_metric_accepts_the_bounds():
    for metric in ("ap", "rr", "ndcg10", "r1", "r10"):
        assert M.check_metric(metric, 0) == 0.0 and M.check_metric(metric, 1) == 1.0
    assert M.check_metric("rank_distance", 299.0) == 299.0
    assert M.check_metric("mine", np.float32(0.5), kind="accuracy") == 0.5


def test_per_query_metric_table_matches_the_functions():
    ranks = np.array([2, 5, 40])
    got = {name: f(ranks) for name, (f, _b) in M.PER_QUERY.items()}
    assert got == {"ap": M.average_precision(ranks), "rr": 0.5, "ndcg10": M.ndcg_at(ranks, 10),
                   "r1": 0.0, "r10": M.recall_at(ranks, 10), "rank_distance": 38.0}


# ------------------------------------------- issue 22 item 7: no full sort, the same values bit for bit
def tie_heavy_scores(n_q=37, n_c=211, seed=0, dtype=np.float32) -> np.ndarray:
    """Scores with every kind of tie: coarse rounding, duplicated candidate columns, +0.0 / -0.0, a row
    that is constant (every candidate tied) and a row tied at the k-th place."""
    rng = np.random.default_rng(seed)
    s = np.round(rng.normal(size=(n_q, n_c)), 1).astype(dtype)
    s[:, 150:170] = s[:, 10:30]  # duplicated candidates (identical texts embed identically)
    s[0] = 0.0
    s[1, ::2] = -0.0
    s[2] = 1.0
    s[3, :120] = 5.0  # far more than k tied at the top
    return s


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", [0, 1])
def test_relevant_ranks_equal_the_old_implementation_with_ties(seed, dtype):
    from helpers.reference_scoring import relevant_ranks as old

    s = tie_heavy_scores(seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 10)
    relevant = [sorted(rng.choice(s.shape[1], size=int(rng.integers(1, 12)), replace=False).tolist())
                for _ in range(len(s))]
    for chunk in (1, 5, 32):
        new = M.relevant_ranks(torch.from_numpy(s), relevant, chunk=chunk)
        ref = old(torch.from_numpy(s), relevant)
        assert len(new) == len(ref)
        for a, b in zip(new, ref):
            assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("k", [1, 10, 100, 211, 500])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_top_k_is_the_head_of_a_full_stable_sort(k, dtype):
    from helpers.reference_scoring import top_k as old

    for seed in (0, 1, 2):
        s = tie_heavy_scores(seed=seed, dtype=dtype)
        for chunk in (3, 256):
            assert np.array_equal(M.top_k(torch.from_numpy(s), k, chunk=chunk), old(torch.from_numpy(s), k))
