"""BM25 Mo. baseline: tokenisation, Lucene BM25 against a hand implementation, LAReQA metrics by hand."""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hybridbatch.evaluation.bm25 import bm25_lareqa, bm25_scores, tokenize
from hybridbatch.evaluation.lareqa import score_lareqa



# ---------------------------------------------------------------- tokenisation

def test_latin_lowercased_and_split_punctuation_dropped():
    assert tokenize(["Hello, World! The NFL's 2015 season -- (Super Bowl 50)."], "en") == [
        ["hello", "world", "the", "nfl", "s", "2015", "season", "super", "bowl", "50"]]
    assert tokenize(["Größe: STRASSE", ""], "de") == [["grösse", "strasse"], []]  # casefold: ß -> ss
    assert tokenize(["a_b ... !!!"], "en") == [["a", "b"]]  # underscore is punctuation too


def test_greek_and_cyrillic_casefolded():
    assert tokenize(["ΟΔΥΣΣΕΥΣ Οδυσσεύς"], "el") == [["οδυσσευσ", "οδυσσεύσ"]]  # final sigma folded
    assert tokenize(["МОСКВА — столица России."], "ru") == [["москва", "столица", "россии"]]


def test_combining_marks_stay_inside_words():
    # Python's \w alone would split Devanagari at every vowel sign / virama
    assert tokenize(["हिन्दी भाषा।"], "hi") == [["हिन्दी", "भाषा"]]
    assert tokenize(["Tiếng Việt"], "vi") == [["tiếng", "việt"]]


def test_chinese_bigrams():
    assert tokenize(["北京大学，在2015年。NFL比赛"], "zh") == [
        ["北京", "京大", "大学", "在", "2015", "年", "nfl", "比赛"]]
    assert tokenize(["中"], "zh") == [["中"]]  # a single character stays a unigram
    # the same text is not bigrammed for a space-delimited language
    assert tokenize(["北京大学"], "en") == [["北京大学"]]


def test_thai_bigrams():
    text = "ภาษาไทย ดี"
    toks = tokenize([text], "th")[0]
    first = "ภาษาไทย"
    assert toks == [first[i:i + 2] for i in range(len(first) - 1)] + ["ดี"]
    assert all(len(t) <= 2 for t in toks)


def test_stopwords_removed_after_casefolding():
    assert tokenize(["The cat and THE dog"], "en", stopwords=["the", "AND"]) == [["cat", "dog"]]


# ---------------------------------------------------------------- BM25 scores

def lucene_bm25(query: list[str], docs: list[list[str]], k1: float, b: float) -> np.ndarray:
    """Independent Lucene BM25 (no (k1 + 1) numerator, exact lengths); a repeated query term counts each time."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    df = Counter(t for d in docs for t in set(d))
    out = np.zeros(n)
    for j, d in enumerate(docs):
        tf = Counter(d)
        for t in query:
            if tf[t] == 0:
                continue
            idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
            out[j] += idf * tf[t] / (tf[t] + k1 * (1 - b + b * len(d) / avgdl))
    return out


TOY_DOCS = [
    "the cat sat on the mat",
    "the dog chased the cat around the big garden and the cat ran",
    "a bird sang",
    "cat cat cat",
    "dogs and cats are pets but a dog is not a cat",
]
TOY_QUERIES = ["cat", "the cat", "dog garden", "bird bird sang", "unknown words only", "", "cat zebra pets"]


@pytest.mark.parametrize("k1,b", [(0.9, 0.4), (1.2, 0.75), (2.0, 0.0), (0.5, 1.0)])
def test_bm25_scores_match_hand_implementation(k1, b):
    docs = tokenize(TOY_DOCS, "en")
    queries = tokenize(TOY_QUERIES, "en")
    got = bm25_scores(queries, docs, k1=k1, b=b)
    assert got.shape == (len(queries), len(docs)) and got.dtype == np.float32
    want = np.stack([lucene_bm25(q, docs, k1, b) for q in queries])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    # no shared term -> exactly 0
    assert np.all(got[4] == 0) and np.all(got[5] == 0)
    assert got[2, 2] == 0 and got[2, 1] > 0


def test_bm25_scores_defaults_are_lucene_defaults():
    docs = tokenize(TOY_DOCS, "en")
    queries = tokenize(TOY_QUERIES, "en")
    np.testing.assert_allclose(bm25_scores(queries, docs),
                               np.stack([lucene_bm25(q, docs, 0.9, 0.4) for q in queries]), atol=1e-5)


# ---------------------------------------------------------------- LAReQA Mo. metrics

def tiny_frames(hard: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    cands = [
        ("en", "en:0", "The cat sat on the mat."),
        ("en", "en:1", "Paris is the capital of France."),
        ("en", "en:2", "Water boils at one hundred degrees."),
        ("de", "de:0", "Die Katze saß auf der Matte."),
        ("de", "de:1", "Paris ist die Hauptstadt von Frankreich."),
        ("de", "de:2", "Wasser kocht bei hundert Grad."),
    ]
    qs = [
        ("en", "q0", "Where did the cat sit?", "en:0"),
        ("en", "q1", "What is the capital of France?", "en:1"),
        ("en", "q2", "At how many degrees does water boil?", "en:2"),
        ("de", "q0", "Wo saß die Katze?", "de:0"),
        ("de", "q1", "Was ist die Hauptstadt von Frankreich?", "de:1"),
        ("de", "q2", "Bei wie viel Grad kocht Wasser?", "de:2"),
    ]
    if hard:  # the en question on water shares more (and rarer) terms with the France sentence
        qs[2] = ("en", "q2", "Is Paris the capital of France or does water boil?", "en:2")
    questions = pd.DataFrame(qs, columns=["lang", "qid", "question", "answer_key"]).assign(dataset="toy")
    candidates = pd.DataFrame(cands, columns=["lang", "key", "sentence"]).assign(dataset="toy", context="")
    return questions, candidates


def test_bm25_lareqa_obvious_answers_give_perfect_map():
    questions, candidates = tiny_frames()
    res = bm25_lareqa(questions, candidates)
    s = res["summary"]
    assert s["settings"] == ["mo"] and set(s["not_computed"]) == {"cr", "mul"}
    assert "map_cr" not in s and "map_mul" not in s
    assert s["map_mo"] == 1.0 and s["r1_mo"] == 1.0 and s["mrr_mo"] == 1.0
    assert s["per_language"]["map_mo"] == {"de": 1.0, "en": 1.0}
    assert s["per_pair"]["map"] == {"de-de": 1.0, "en-en": 1.0}
    pq = res["per_query"]
    assert list(pq.columns)[:5] == ["setting", "query_lang", "corpus_lang", "qid", "ap"]
    assert len(pq) == 6 and set(pq["setting"]) == {"mo"} and (pq["query_lang"] == pq["corpus_lang"]).all()


def test_bm25_lareqa_relevant_second_gives_ap_half():
    questions, candidates = tiny_frames(hard=True)
    en_docs = tokenize(candidates["sentence"][:3].tolist(), "en")
    q = tokenize([questions["question"][2]], "en")
    sc = bm25_scores(q, en_docs)[0]
    assert np.argsort(-sc, kind="stable").tolist()[:2] == [1, 2]  # precondition: relevant (en:2) second
    res = bm25_lareqa(questions, candidates)
    pq = res["per_query"].set_index(["query_lang", "qid"])
    assert pq.loc[("en", "q2"), "ap"] == 0.5
    s = res["summary"]
    assert s["per_language"]["map_mo"] == {"de": 1.0, "en": pytest.approx(2.5 / 3)}
    assert s["per_language"]["r1_mo"] == {"de": 1.0, "en": pytest.approx(2 / 3)}
    assert s["map_mo"] == pytest.approx((1.0 + 2.5 / 3) / 2)
    assert s["r1_mo"] == pytest.approx((1.0 + 2 / 3) / 2)


def dense_reference(questions: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    """score_lareqa's Mo. rows from the BM25 scores fed as 'embeddings' (q = scores, c = identity), per language."""
    frames = []
    for lang in sorted(set(candidates["lang"])):
        qs, cs = questions[questions["lang"] == lang], candidates[candidates["lang"] == lang]
        sc = bm25_scores(tokenize(qs["question"].tolist(), lang), tokenize(cs["sentence"].tolist(), lang))
        pq = score_lareqa(torch.from_numpy(sc), torch.eye(len(cs)), qs, cs)["per_query"]
        frames.append(pq[pq["setting"] == "mo"])
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("hard", [False, True])
def test_bm25_lareqa_agrees_with_dense_code_path(hard):
    """Same per-query columns and values as score_lareqa on the same scores; summaries are their macro means."""
    questions, candidates = tiny_frames(hard=hard)
    res = bm25_lareqa(questions, candidates)
    ref = dense_reference(questions, candidates)
    got = res["per_query"]
    assert list(got.columns) == list(ref.columns)
    pd.testing.assert_frame_equal(got.sort_values(["query_lang", "qid"]).reset_index(drop=True),
                                  ref.sort_values(["query_lang", "qid"]).reset_index(drop=True))
    s = res["summary"]
    for name, col in (("map_mo", "ap"), ("r1_mo", "r1"), ("mrr_mo", "rr")):
        by_lang = ref.groupby("query_lang")[col].mean()
        assert s["per_language"][name] == pytest.approx(by_lang.to_dict())
        assert s[name] == pytest.approx(by_lang.mean())
    assert s["per_pair"]["map"] == pytest.approx({f"{x}-{x}": v for x, v in s["per_language"]["map_mo"].items()})


def test_bm25_lareqa_rejects_bad_frames():
    questions, candidates = tiny_frames()
    with pytest.raises(ValueError, match="not unique"):
        bm25_lareqa(questions, pd.concat([candidates, candidates]))
    with pytest.raises(ValueError, match="contiguous"):
        bm25_lareqa(questions, candidates.iloc[[0, 3, 1, 4, 2, 5]])
    with pytest.raises(ValueError, match="not a candidate"):
        bm25_lareqa(questions.assign(answer_key="xx:9"), candidates)


# ---------------------------------------------------------------- real prepared data

RAW = Path(__file__).resolve().parents[1] / "data" / "raw"


def test_bm25_xquad_r_en_de_plausible_and_fast(tmp_path):
    from hybridbatch.data.raw import prepare

    prepare(RAW, tmp_path, datasets={"xquad_r": ["de", "en"]}, tatoeba_langs=[])  # the real vendored files
    qs = pd.read_parquet(tmp_path / "questions.parquet")
    cs = pd.read_parquet(tmp_path / "candidates.parquet")
    keep_q = (qs["dataset"] == "xquad_r") & qs["lang"].isin(["en", "de"])
    keep_c = (cs["dataset"] == "xquad_r") & cs["lang"].isin(["en", "de"])
    qs, cs = qs[keep_q], cs[keep_c]
    t0 = time.perf_counter()
    res = bm25_lareqa(qs, cs)
    elapsed = time.perf_counter() - t0
    s = res["summary"]
    print(f"XQuAD-R en/de BM25: map_mo {s['map_mo']:.4f} {s['per_language']['map_mo']}, "
          f"r1_mo {s['r1_mo']:.4f}, {elapsed:.1f} s")
    assert elapsed < 20
    assert s["languages"] == ["de", "en"] and s["n_queries"] == len(qs)
    assert 0.3 < s["map_mo"] < 0.9
    assert all(0.3 < v < 0.95 for v in s["per_language"]["map_mo"].values())
    assert 0.0 < s["r1_mo"] <= s["map_mo"]  # R@1 <= AP for a single relevant item
    pq = res["per_query"]
    assert len(pq) == len(qs) and pq["ap"].between(0, 1).all()
    assert pq.groupby("query_lang")["ap"].mean().to_dict() == pytest.approx(s["per_language"]["map_mo"])
    # many exact ties (zero scores) on real data: still identical to the dense code path, English here
    ref = dense_reference(qs[qs["lang"] == "en"], cs[cs["lang"] == "en"])
    got = pq[pq["query_lang"] == "en"]
    pd.testing.assert_frame_equal(got.sort_values("qid").reset_index(drop=True),
                                  ref.sort_values("qid").reset_index(drop=True))
