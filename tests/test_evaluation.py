"""One evaluation protocol for every retriever: dense and BM25 go through ``evaluate_retriever``; every
metric outside its range (or NaN / inf) stops the evaluation with a message naming it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from hybridbatch.evaluation import metrics as M
from hybridbatch.evaluation.bm25 import BM25Retriever, bm25_lareqa
from hybridbatch.evaluation.lareqa import (HEADLINE, PER_QUERY_COLUMNS, SETTINGS, DenseRetriever, evaluate_retriever,
                                    score_lareqa, summarise)

LANGS = ("de", "en", "es")
SENTENCES = {
    "en": ["The cat sat on the mat.", "Paris is the capital of France.", "Water boils at one hundred degrees.",
           "The river is long."],
    "de": ["Die Katze saß auf der Matte.", "Paris ist die Hauptstadt von Frankreich.",
           "Wasser kocht bei hundert Grad.", "Der Fluss ist lang."],
    "es": ["El gato se sentó en la alfombra.", "París es la capital de Francia.",
           "El agua hierve a cien grados.", "El río es largo."],
}
QUESTIONS = {
    "en": ["Where did the cat sit?", "What is the capital of France?", "When does water boil?", "Is the river long?"],
    "de": ["Wo saß die Katze?", "Was ist die Hauptstadt von Frankreich?", "Wann kocht Wasser?", "Ist der Fluss lang?"],
    "es": ["¿Dónde se sentó el gato?", "¿Cuál es la capital de Francia?", "¿Cuándo hierve el agua?",
           "¿Es largo el río?"],
}


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three languages, four parallel questions each; es lacks the answer of q3 (not fully parallel)."""
    cands = [(x, f"{x}:{i}", s) for x in LANGS for i, s in enumerate(SENTENCES[x]) if (x, i) != ("es", 3)]
    qs = [(x, f"q{i}", q, f"{x}:{i}") for x in LANGS for i, q in enumerate(QUESTIONS[x]) if (x, i) != ("es", 3)]
    questions = pd.DataFrame(qs, columns=["lang", "qid", "question", "answer_key"]).assign(dataset="toy")
    candidates = pd.DataFrame(cands, columns=["lang", "key", "sentence"]).assign(dataset="toy", context="")
    return questions, candidates


def embeddings(questions, candidates, seed=0, round_to=1) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy embeddings, coarsely rounded so that exact ties occur."""
    rng = np.random.default_rng(seed)
    base = {f"q{i}": rng.normal(size=6) for i in range(4)}
    c = np.stack([base["q" + k.split(":")[1]] + rng.normal(scale=0.8, size=6) for k in candidates["key"]])
    q = np.stack([base[qid] + rng.normal(scale=0.8, size=6) for qid in questions["qid"]])
    return torch.tensor(np.round(q, round_to), dtype=torch.float32), torch.tensor(np.round(c, round_to),
                                                                                  dtype=torch.float32)


def same(a: dict, b: dict) -> bool:
    """Equal summaries, NaN included (``nan != nan``)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class Restricted:
    """A dense retriever evaluated in fewer settings; records what it was asked to score."""

    def __init__(self, dense: DenseRetriever, settings, candidates) -> None:
        self.dense, self.settings, self.c_lang, self.calls = dense, settings, candidates["lang"].to_numpy(), []

    def scores(self, rows, lang, lo, hi):
        self.calls.append((lang, tuple(sorted(set(self.c_lang[lo:hi]))), len(rows)))
        return self.dense.scores(rows, lang, lo, hi)


# -------------------------------------------------------------------------------- one protocol, any retriever

def test_score_lareqa_is_the_dense_retriever_through_the_shared_scorer():
    qs, cs = frames()
    q, c = embeddings(qs, cs)
    a = score_lareqa(q, c, qs, cs, seen_languages=["en"])
    b = evaluate_retriever(DenseRetriever(q, c), qs, cs, seen_languages=["en"])
    pd.testing.assert_frame_equal(a["per_query"], b["per_query"])
    assert same(a["summary"], b["summary"])
    assert tuple(a["per_query"].columns) == PER_QUERY_COLUMNS
    assert set(HEADLINE) <= set(a["summary"]) and a["summary"]["n_cross_pairs"] == 6
    assert a["summary"]["n_queries"] == len(qs)


@pytest.mark.parametrize("settings", [("mo",), ("mo", "cr"), ("cr",), ("mul",)])
def test_fewer_settings_give_the_same_rows_and_only_their_keys(settings):
    qs, cs = frames()
    q, c = embeddings(qs, cs, seed=1)
    full = score_lareqa(q, c, qs, cs)
    retriever = Restricted(DenseRetriever(q, c), settings, cs)
    res = evaluate_retriever(retriever, qs, cs)
    want = full["per_query"][full["per_query"]["setting"].isin(settings)].reset_index(drop=True)
    pd.testing.assert_frame_equal(res["per_query"], want)
    s = res["summary"]
    for name, (setting, _column) in HEADLINE.items():
        assert (name in s) == (setting in settings)
        if name in s:
            assert s[name] == full["summary"][name]
            assert s["per_language" if setting != "cr" else "per_pair"][name] == \
                full["summary"]["per_language" if setting != "cr" else "per_pair"][name]
    assert ("same_lang@1" in s) == ("mul" in settings) and ("n_cross_pairs" in s) == ("cr" in settings)
    if "mul" in settings:  # one pool per query language
        assert [lang for lang, _c, _n in retriever.calls] == list(LANGS)
        assert all(c == LANGS for _l, c, _n in retriever.calls)
    else:  # one corpus language at a time, only those of its settings
        asked = sorted((lang, c) for lang, c, _n in retriever.calls)
        assert asked == sorted((x, (y,)) for x in LANGS for y in LANGS
                               if ("mo" if x == y else "cr") in settings)
    if settings == ("mo",):  # the BM25 layout: the diagonal of the X-Y matrix
        assert s["per_pair"] == {"map": {f"{x}-{x}": v for x, v in s["per_language"]["map_mo"].items()},
                                 "r1": {f"{x}-{x}": v for x, v in s["per_language"]["r1_mo"].items()}}


def test_bm25_is_evaluated_by_the_shared_scorer():
    qs, cs = frames()
    res = bm25_lareqa(qs, cs, k1=1.2, b=0.75)
    shared = evaluate_retriever(BM25Retriever(qs, cs, k1=1.2, b=0.75), qs, cs)
    pd.testing.assert_frame_equal(res["per_query"], shared["per_query"])
    s = res["summary"]
    extra = {"method", "settings", "not_computed", "bm25"}
    assert same({k: v for k, v in s.items() if k not in extra}, shared["summary"])
    assert s["settings"] == ["mo"] and set(s["not_computed"]) == {"cr", "mul"}
    assert set(res["timings"]["per_language"]) == set(LANGS) and "seconds" not in s
    assert {k for k in HEADLINE if k in s} == {"map_mo", "r1_mo", "mrr_mo", "ndcg10_mo"}
    assert s["n_queries"] == len(qs) == len(res["per_query"])


def test_bm25_retriever_scores_only_its_own_language():
    qs, cs = frames()
    r = BM25Retriever(qs, cs)
    assert r.scores(np.arange(4), "de", 0, 4).shape == (4, 4)
    with pytest.raises(ValueError, match="Mo."):
        r.scores(np.arange(4), "de", 0, len(cs))


def test_a_query_language_without_candidates_is_skipped_with_a_warning(caplog):
    qs, cs = frames()
    fr = qs[qs["lang"] == "en"].assign(lang="fr")  # questions labelled fr, their answers among the en candidates
    res = bm25_lareqa(pd.concat([qs[qs["lang"] != "es"], fr]), cs[cs["lang"] != "es"])
    assert set(res["per_query"]["query_lang"]) == {"de", "en"} and "not evaluated" in caplog.text
    assert set(res["timings"]["per_language"]) == {"de", "en"}


def test_retriever_settings_and_scores_are_checked():
    qs, cs = frames()
    q, c = embeddings(qs, cs)

    class Bad(Restricted):
        def scores(self, rows, lang, lo, hi):
            return super().scores(rows, lang, lo, hi)[:, 1:]

    with pytest.raises(ValueError, match="subset of"):
        evaluate_retriever(Restricted(DenseRetriever(q, c), ("mo", "xx"), cs), qs, cs)
    with pytest.raises(ValueError, match="shape"):
        evaluate_retriever(Bad(DenseRetriever(q, c), SETTINGS, cs), qs, cs)


# ------------------------------------------------------------------------------------------- range checks

def test_nan_scores_stop_the_evaluation_for_any_retriever(monkeypatch):
    """A NaN score ranks first (every comparison is false): Mo. AP would be a silent 1.0, Mul. AP > 1."""
    qs, cs = frames()
    q, c = embeddings(qs, cs)
    with pytest.raises(ValueError, match=r"question embedding\(s\) are not finite \(first: row 2\)"):
        score_lareqa(q.index_put((torch.tensor([2]), torch.tensor([0])), torch.tensor(float("nan"))), c, qs, cs)
    with pytest.raises(ValueError, match="candidate embedding"):
        score_lareqa(q, c.index_put((torch.tensor([5]),), torch.tensor(float("inf"))), qs, cs)
    import hybridbatch.evaluation.bm25 as B

    monkeypatch.setattr(B, "bm25_scores", lambda qt, dt, k1, b: np.full((len(qt), len(dt)), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"BM25Retriever returned NaN scores for 4 question\(s\) in de"):
        bm25_lareqa(qs, cs)


@pytest.mark.parametrize("which", ["dense", "bm25"])
def test_out_of_range_per_query_metric_stops_dense_and_bm25(monkeypatch, which):
    qs, cs = frames()
    monkeypatch.setitem(M.PER_QUERY, "ap", (lambda ranks: 6.0, M.UNIT))
    with pytest.raises(ValueError, match=r"metric ap = 6.0 outside \[0, 1\] \(setting m\w+, query language de"):
        if which == "dense":
            score_lareqa(*embeddings(qs, cs), qs, cs)
        else:
            bm25_lareqa(qs, cs)


def per_query_frame() -> pd.DataFrame:
    qs, cs = frames()
    return score_lareqa(*embeddings(qs, cs), qs, cs)["per_query"]


@pytest.mark.parametrize("column,value,pattern", [
    ("ap", 1.5, r"metric ap = 1.5 outside \[0, 1\]"),
    ("ap", -0.1, r"metric ap = -0.1 outside"),
    ("rr", float("nan"), r"metric rr = nan outside"),
    ("ndcg10", float("inf"), r"metric ndcg10 = inf outside"),
    ("r1", 2.0, r"metric r1 = 2.0"),
    ("r10", float("-inf"), r"metric r10 = -inf"),
    ("rank_distance", -1.0, r"metric rank_distance = -1.0 outside \[0, inf\]"),
    ("rank_distance", float("inf"), r"metric rank_distance = inf"),
])
def test_summarise_names_metric_setting_languages_query_and_value(column, value, pattern):
    pq = per_query_frame()
    i = int(np.flatnonzero((pq["setting"] == "cr") & (pq["query_lang"] == "es"))[1])
    pq.loc[i, column] = value
    where = rf"setting cr, query language es, corpus {pq.loc[i, 'corpus_lang']}, query '{pq.loc[i, 'qid']}'"
    with pytest.raises(ValueError, match=pattern + r".*" + where):
        summarise(pq)


def test_summarise_accepts_in_range_values_and_reports_empty_groups_as_nan():
    pq = per_query_frame()
    s = summarise(pq[pq["setting"] == "mo"], ("mo", "cr"), seen_languages=["en"])
    assert np.isnan(s["map_cr"]) and s["per_pair"]["map_cr"] == {}  # nothing evaluated: not computed
    assert np.isnan(s["seen"]["map_cr"]) and 0 <= s["seen"]["map_mo"] <= 1
    edge = pq.assign(ap=1.0, rr=0.0, rank_distance=0.0)  # the bounds themselves are valid
    assert summarise(edge)["map_mul"] == 1.0


# ------------------------------------------------------------------------------- with the embedding cache

class HashEncoder:
    """Deterministic normalised vectors from a hash of (kind, text); ``DualEncoder.encode``'s signature."""

    name_or_path, settings, dim = "fake/hash-encoder", None, 6

    def encode(self, texts, kind, *, max_tokens=8192, max_batch=256, progress=False):
        import hashlib

        rows = [np.random.default_rng(int.from_bytes(hashlib.sha256(f"{kind}|{t[:8]}".encode()).digest()[:8],
                                                     "little")).normal(size=self.dim) for t in texts]
        return torch.nn.functional.normalize(torch.tensor(np.array(rows), dtype=torch.float32), dim=-1)


@pytest.mark.parametrize("poison", ["nan", "zeros"])
def test_poisoned_cache_entries_do_not_reach_the_metrics(tmp_path, poison):
    """Formerly a NaN entry gave map_mo 1.0 and map_mul 6.0 (exit 0): now it is detected and recomputed."""
    from hybridbatch.evaluation.cache import CachingEncoder, write_entry
    from hybridbatch.evaluation.lareqa import evaluate_lareqa

    qs, cs = frames()
    plain = evaluate_lareqa(HashEncoder(), qs, cs, seen_languages=["en"])
    cached = CachingEncoder(HashEncoder(), tmp_path)
    first = evaluate_lareqa(cached, qs, cs, seen_languages=["en"])
    for entry in tmp_path.glob("*.npz"):  # poison both entries (candidates and questions)
        with np.load(entry) as z:
            arr = z["embeddings"]
        write_entry(entry, np.full_like(arr, np.nan) if poison == "nan" else np.zeros_like(arr))
    again = CachingEncoder(HashEncoder(), tmp_path)
    second = evaluate_lareqa(again, qs, cs, seen_languages=["en"])
    assert again.rejected == 2 and again.misses == 2
    for res in (first, second):
        pd.testing.assert_frame_equal(res["per_query"], plain["per_query"])
        assert same({k: v for k, v in res["summary"].items() if k != "seconds"},
                    {k: v for k, v in plain["summary"].items() if k != "seconds"})
    third = CachingEncoder(HashEncoder(), tmp_path)
    evaluate_lareqa(third, qs, cs)
    assert third.hits == 2 and third.misses == 0  # rewritten entries are valid


# ------------------------------------------- issue 22 item 7: the faster scoring gives the same evaluation
def _text_vectors(texts, dim=8) -> np.ndarray:
    """Deterministic fake embeddings: one per distinct text (equal texts tie exactly), coarsely rounded."""
    import zlib

    return np.stack([np.random.default_rng(zlib.crc32(t.encode("utf-8"))).normal(size=dim) for t in texts])


def test_fast_scoring_equals_the_old_scoring_on_vendored_xquad_r():
    """Real XQuAD-R questions and candidates (4 languages, a paragraph sample) with fake embeddings full of
    ties (rounded; repeated sentences embed identically): every per-query value and every summary value of
    the new scoring (no full sort) equals the old one's bit for bit."""
    from helpers.reference_scoring import old_scoring
    from helpers.tiny import REPO

    from hybridbatch.data.raw import load_lareqa, sample_paragraphs

    loaded = [load_lareqa(REPO / "data" / "raw" / "xquad-r" / f"{x}.json.gz", "xquad_r", x)
              for x in ("ar", "de", "en", "zh")]
    qs, cs = sample_paragraphs(pd.concat([q for q, _ in loaded], ignore_index=True),
                               pd.concat([c for _, c in loaded], ignore_index=True), 0.08, seed=0)
    c_vec = _text_vectors(cs["sentence"])
    answer = {k: i for i, k in enumerate(cs["key"])}
    q_vec = _text_vectors(qs["question"]) + c_vec[[answer[k] for k in qs["answer_key"]]]
    q_emb, c_emb = (torch.tensor(np.round(v, 0), dtype=torch.float32) for v in (q_vec, c_vec))
    scores = q_emb @ c_emb.T
    ties = sum(len(row) - len(torch.unique(row)) for row in scores)
    assert ties > scores.numel() // 2, "the case must be full of ties"
    new = score_lareqa(q_emb, c_emb, qs, cs, seen_languages=["de", "en"])
    with old_scoring():
        old = score_lareqa(q_emb, c_emb, qs, cs, seen_languages=["de", "en"])
    assert len(new["per_query"]) > 1000
    pd.testing.assert_frame_equal(new["per_query"], old["per_query"], check_exact=True)
    assert same(new["summary"], old["summary"])


def test_headline_prints_the_runs_numbers_and_marks_what_it_lacks():
    """The table the evaluate and bm25 stages print at their end (one function for both)."""
    from hybridbatch.evaluation.lareqa import headline

    full = headline("r", "xquad_r", {"map_mo": 0.7712, "map_cr": 0.68149, "map_mul": 0.5, "rank_distance": 344.12},
                    {"mean": 0.9})
    lines = full.splitlines()
    assert lines[0] == "r on xquad_r (results/r/metrics.json):" and len(lines) == 3
    assert lines[1].split() == ["Mo.", "mAP", "Cr.", "mAP", "Mul.", "mAP", "rank", "distance", "Tatoeba"]
    assert lines[2].split() == ["0.771", "0.681", "0.500", "344.1", "0.900"]
    mo_only = headline("b", "mlqa_r", {"map_mo": 0.5214}).splitlines()  # BM25: monolingual only, no Tatoeba
    assert mo_only[2].split() == ["0.521", "--", "--", "--"] and "Tatoeba" not in mo_only[1]
