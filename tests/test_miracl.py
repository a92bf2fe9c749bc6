"""MIRACL: loaders (fixture and vendored files), trec_eval semantics against pytrec_eval, dense search, evaluator.

Fixture ``tests/fixtures/miracl/`` (synthetic, real formats, made-up language ``xx``):

* ``topics.miracl-v1.0-xx-dev.tsv`` -- 6 topics ``qid<TAB>query``;
* ``qrels.miracl-v1.0-xx-dev.tsv`` -- TREC qrels of 7 queries, rel in {0, 1}: ``105#0`` has only rel-0
  judgments; ``107#0`` has no topic, so no run ever has results for it (0 under ``-c``);
* ``miracl-corpus-v1.0-xx/docs-{0,1}.jsonl`` -- 30 passages (the hub's per-language folder layout);
  ``9#0``/``90#1`` and ``88#0``/``880#0`` are identical passages (tied scores under any encoder), docids
  such as ``9#0``/``10#0``/``100#0`` sort differently as strings and as numbers, ``555#2`` has no title.

Synthetic MIRACL (:func:`write_synthetic_miracl`, made in ``tmp_path``): a corpus in the hub's layout
(``miracl-corpus-v1.0-<lang>/docs-<n>.jsonl.gz``) and gzipped topics/qrels in the vendored layout of
``data/raw/miracl`` for two languages ``xa``/``xb`` (a few hundred passages, copied passages for exact
score ties) plus ``xc`` without a corpus; :class:`BowEncoder` is a tiny stand-in encoder for it.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytrec_eval
import torch

import yaml

from hybridbatch import miracl
from hybridbatch.data import DataError

REPO = Path(__file__).resolve().parents[1]
VENDORED_MIRACL = REPO / "data" / "raw" / "miracl"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "miracl"
TOPICS = FIXTURE / "topics.miracl-v1.0-xx-dev.tsv"
QRELS = FIXTURE / "qrels.miracl-v1.0-xx-dev.tsv"
CORPUS_DIR = FIXTURE / "miracl-corpus-v1.0-xx"
MEASURES = {"ndcg_cut.10", "recall.100"}


class HashEncoder:
    """Deterministic fake encoder: small-integer vectors seeded by a hash of the text.

    Dot products of integer vectors are exact in float32 whatever the summation order, so equal texts
    tie exactly and chunked and full matrix products agree bit for bit.
    """

    def __init__(self, dim: int = 6) -> None:
        self.dim = dim

    def encode(self, texts, kind, **kw) -> torch.Tensor:
        rows = [np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little"))
                .integers(-2, 3, size=self.dim) for t in texts]
        return torch.tensor(np.array(rows).reshape(len(rows), self.dim), dtype=torch.float32)


def pytrec_means(qrels, run) -> tuple[dict, dict]:
    """pytrec_eval per-query values, and their ``-c`` means (sum over evaluated queries / all qrels queries)."""
    per_query = pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate(run)
    means = {m: sum(v[m] for v in per_query.values()) / len(qrels) for m in ("ndcg_cut_10", "recall_100")}
    return per_query, means


# ----------------------------------------------------------------------------------------------- loaders
def test_fixture_loads():
    topics = miracl.load_topics(TOPICS)
    assert list(topics) == ["101#0", "102#0", "103#0", "104#0", "105#0", "106#0"]
    assert topics["102#0"] == "Mlima Kilimanjaro una urefu gani?"
    qrels = miracl.load_qrels(QRELS)
    assert len(qrels) == 7 and qrels["102#0"] == {"9#0": 1, "90#1": 1, "100#0": 0}
    assert set(qrels["105#0"].values()) == {0}
    corpus = miracl.load_corpus(FIXTURE, "xx")  # the per-language subfolder is found
    assert list(corpus.columns) == ["docid", "title", "text"] and len(corpus) == 30
    assert corpus["docid"].is_unique and corpus["docid"].iloc[15] == "41#2"  # docs-0 then docs-1
    assert corpus.equals(miracl.load_corpus(CORPUS_DIR, "xx"))
    assert miracl.load_corpus(CORPUS_DIR / "docs-1.jsonl").equals(corpus.iloc[15:].reset_index(drop=True))
    assert miracl.load_corpus(FIXTURE, "xx", limit=17).equals(corpus.head(17))
    assert miracl.lang_of(TOPICS) == "xx"


def test_gzipped_inputs_load_the_same(tmp_path):
    for src in (TOPICS, QRELS, *CORPUS_DIR.glob("*.jsonl")):
        with open(src, "rb") as f, gzip.open(tmp_path / f"{src.name}.gz", "wb") as g:
            shutil.copyfileobj(f, g)
    assert miracl.load_topics(tmp_path / f"{TOPICS.name}.gz") == miracl.load_topics(TOPICS)
    assert miracl.load_qrels(tmp_path / f"{QRELS.name}.gz") == miracl.load_qrels(QRELS)
    assert [p.name for p in miracl.corpus_files(tmp_path)] == ["docs-0.jsonl.gz", "docs-1.jsonl.gz"]
    assert miracl.load_corpus(tmp_path).equals(miracl.load_corpus(CORPUS_DIR))


def test_corpus_files_natural_order(tmp_path):
    for i in (10, 2, 0, 1):
        (tmp_path / f"docs-{i}.jsonl.gz").touch()
    (tmp_path / "README.md").touch()
    assert [p.name for p in miracl.corpus_files(tmp_path)] == [f"docs-{i}.jsonl.gz" for i in (0, 1, 2, 10)]
    assert miracl.corpus_files(tmp_path / "absent") == []


@pytest.mark.parametrize("lang,queries,rel1,rel0", [("de", 305, 811, 2333), ("sw", 482, 910, 4182)])
def test_vendored_files_load(lang, queries, rel1, rel0):
    topics_path = VENDORED_MIRACL / f"topics.miracl-v1.0-{lang}-dev.tsv.gz"  # data/raw/miracl (gzipped)
    qrels_path = VENDORED_MIRACL / f"qrels.miracl-v1.0-{lang}-dev.tsv.gz"
    topics, qrels = miracl.load_topics(topics_path), miracl.load_qrels(qrels_path)
    assert len(topics) == queries and set(qrels) == set(topics)  # counts of docs/PROTOCOL.md §1.4
    rels = [r for judged in qrels.values() for r in judged.values()]
    assert (rels.count(1), rels.count(0)) == (rel1, rel0)
    assert miracl.lang_of(topics_path) == lang


BAD_TOPICS = [("1#0\tok\n2#0 no tab\n", 2, "query"), ("1#0\tok\n2#0\t \n", 2, "query"),
              ("1#0\ta\n\tb\n", 2, "qid"), ("1#0\ta\n1#0\tb\n", 2, "qid"), ("1#0\ta\tb\n", 1, "query"),
              ("1#0\ta\n\n2#0\tb\n", 2, "query")]
BAD_QRELS = [("1 Q0 a 1\n1 Q0 b\n", 2, "rel"), ("1 Q0\n", 1, "docid"), ("1 Q0 a 1 x\n", 1, "rel"),
             ("1 Q0 a 1\n1 Q0 b yes\n", 2, "rel"), ("1 Q0 a 1\n1 Q0 a 0\n", 2, "docid"), ("\n", 1, "qid")]
BAD_CORPUS = [('{"docid": "1#0", "title": "", "text": "x"}\n{"docid": "2#0", "text": "y"}\n', 2, "title"),
              ('{"docid": "1#0", "title": "t", "text": 3}\n', 1, "text"),
              ('{"docid": "", "title": "t", "text": "x"}\n', 1, "docid"),
              ('{"docid": "1#0", "title": "", "text": "x"}\n{"docid": "1#0", "title": "", "text": "y"}\n', 2,
               "docid"),
              ('{"docid": "1#0", "title": "", "text": "x"}\n{"docid": "2#0",\n', 2, None),
              ('["1#0", "t", "x"]\n', 1, "(line)")]


@pytest.mark.parametrize("kind,content,line,field",
                         [("topics", *c) for c in BAD_TOPICS] + [("qrels", *c) for c in BAD_QRELS]
                         + [("corpus", *c) for c in BAD_CORPUS])
def test_malformed_lines_raise_data_error(tmp_path, kind, content, line, field):
    path = tmp_path / f"bad-{kind}.{'jsonl' if kind == 'corpus' else 'tsv'}"
    path.write_text(content, encoding="utf-8")
    load = {"topics": miracl.load_topics, "qrels": miracl.load_qrels, "corpus": miracl.load_corpus}[kind]
    loaders = [load] + ([lambda p: list(miracl.iter_corpus_chunks(p, chunk_size=c)) for c in (1, 100)]
                        if kind == "corpus" else [])  # the streamed reader raises the same errors
    for load in loaders:
        with pytest.raises(DataError) as info:
            load(path)
        err = info.value
        assert err.path == str(path) and err.record == f"line {line}" and err.field == field
        assert str(path) in str(err) and f"line {line}" in str(err)


def test_unreadable_and_empty_inputs(tmp_path):
    (tmp_path / "empty.tsv").write_text("")
    (tmp_path / "broken.tsv.gz").write_bytes(b"not gzip")
    for load in (miracl.load_topics, miracl.load_qrels):
        with pytest.raises(DataError, match="no "):
            load(tmp_path / "empty.tsv")
        with pytest.raises(DataError, match="cannot read"):
            load(tmp_path / "broken.tsv.gz")
    with pytest.raises(DataError, match="no MIRACL corpus"):
        miracl.load_corpus(tmp_path / "absent")


def test_passage_texts():
    corpus = pd.DataFrame({"docid": ["a", "b"], "title": ["T", ""], "text": ["x y", "z"]})
    assert miracl.passage_texts(corpus) == ["T x y", "z"]
    assert miracl.passage_texts(corpus, "text") == ["x y", "z"]
    with pytest.raises(ValueError):
        miracl.passage_texts(corpus, "title")


# ----------------------------------------------------------------------------------------------- metrics
def test_trec_order_breaks_ties_by_docid_descending():
    run = {"9#0": 0.5, "10#0": 0.5, "100#0": 0.5, "b": 0.7, "B": 0.5, "é": 0.1}
    assert miracl.trec_order(run) == ["b", "B", "9#0", "100#0", "10#0", "é"]
    assert miracl.trec_order({}) == []


def test_hand_computed_values():
    qrels = {"q": {"a": 1, "c": 0, "z": 1}}
    run = {"q": {"a": 1.0, "b": 1.0, "c": 2.0}}  # order: c, b, a (tie a/b -> "b" first); z not retrieved
    per_query = miracl.trec_eval_metrics(qrels, run)
    ideal = 1 + 1 / np.log2(3)
    assert per_query == {"q": {"ndcg_cut_10": pytest.approx((1 / np.log2(4)) / ideal), "recall_100": 0.5}}
    assert per_query["q"] == pytest.approx(pytrec_means(qrels, run)[0]["q"], abs=1e-12)


def test_depth_cut_and_cutoffs():
    run = {"q": {f"d{i:03d}": 1000.0 - i for i in range(150)}}  # d000 best ... d149 worst
    qrels = {"q": {"d100": 1, "d005": 1}}  # ranks 101 and 6
    assert miracl.trec_eval_metrics(qrels, run)["q"]["recall_100"] == 0.5
    assert miracl.trec_eval_metrics(qrels, run, k_recall=200, depth=100)["q"]["recall_200"] == 0.5  # -M 100
    assert miracl.trec_eval_metrics(qrels, run, k_recall=200, depth=200)["q"]["recall_200"] == 1.0
    assert miracl.trec_eval_metrics(qrels, run, k_ndcg=5)["q"]["ndcg_cut_5"] == 0.0


def test_queries_without_relevant_docs_or_results():
    qrels = {"q1": {"a": 1}, "q2": {"b": 0}, "q3": {"c": 1}}
    run = {"q1": {"a": 0.3}, "q2": {"b": 0.9}, "q4": {"c": 1.0}}  # q3 has no results; q4 is not judged
    per_query = miracl.trec_eval_metrics(qrels, run)
    assert per_query == {"q1": {"ndcg_cut_10": 1.0, "recall_100": 1.0},
                         "q2": {"ndcg_cut_10": 0.0, "recall_100": 0.0}}
    assert miracl.mean_metrics(per_query, qrels) == {"ndcg_cut_10": 1 / 3, "recall_100": 1 / 3}  # -c: over 3
    ref_per_query, ref_means = pytrec_means(qrels, run)
    assert per_query == ref_per_query and miracl.mean_metrics(per_query, qrels) == pytest.approx(ref_means)
    with pytest.raises(ValueError):
        miracl.mean_metrics({}, qrels)
    with pytest.raises(ValueError):
        miracl.trec_eval_metrics({"q": {"a": 2}}, run)  # graded relevance is rejected


def random_case(seed: int) -> tuple[dict, dict]:
    """Qrels (0/1, some queries with only 0s) and runs with many tied scores and docids of mixed forms."""
    rng = np.random.default_rng(seed)
    pool = [f"{rng.integers(1, 2000)}#{rng.integers(0, 12)}" for _ in range(400)] + ["B#1", "b#1", "Ä#0", "a#10"]
    pool = sorted(set(pool))
    qrels, run = {}, {}
    for q in range(40):
        qid = f"{rng.integers(1, 10**6)}#0"
        judged = rng.choice(pool, size=int(rng.integers(1, 15)), replace=False)
        rels = rng.integers(0, 2, size=len(judged)) if q % 7 else np.zeros(len(judged), dtype=int)
        qrels[qid] = {str(d): int(r) for d, r in zip(judged, rels)}
        if q % 9 == 4:
            continue  # judged but no results
        n = int(rng.integers(0, 160)) if q % 11 else 0  # sometimes an empty run, sometimes > 100 docs
        docs = set(rng.choice(pool, size=min(n, len(pool)), replace=False).tolist())
        docs |= {d for d in qrels[qid] if rng.random() < 0.6}
        scores = np.round(rng.normal(size=len(docs)), 1)  # coarse: many ties
        run[qid] = {d: float(s) for d, s in zip(sorted(docs), scores)}
    run["not-judged#0"] = {pool[0]: 1.0}
    return qrels, run


@pytest.mark.parametrize("seed", range(5))
def test_equals_pytrec_eval_on_random_runs_with_ties(seed):
    qrels, run = random_case(seed)
    per_query = miracl.trec_eval_metrics(qrels, run)
    ref_per_query, ref_means = pytrec_means(qrels, run)
    assert per_query.keys() == ref_per_query.keys()
    for qid, values in per_query.items():
        assert values == pytest.approx(ref_per_query[qid], abs=1e-12), qid
    assert miracl.mean_metrics(per_query, qrels) == pytest.approx(ref_means, abs=1e-12)


# ----------------------------------------------------------------------------------------------- search
def test_dense_search_top_k_is_the_trec_eval_prefix_of_a_full_ranking():
    enc = HashEncoder(dim=3)  # few small integers: many exact ties, also at the k-th place
    topics = miracl.load_topics(TOPICS)
    corpus = miracl.load_corpus(CORPUS_DIR)
    run = miracl.dense_search_in_memory(enc, topics, corpus, k=5, query_chunk=4, passage_chunk=7)
    q = enc.encode(list(topics.values()), "query")
    p = enc.encode(miracl.passage_texts(corpus), "passage")
    full = (q @ p.T).numpy()
    n_boundary_ties = 0
    for i, qid in enumerate(topics):
        scores = dict(zip(corpus["docid"], full[i].tolist()))
        expected = miracl.trec_order(scores)[:5]
        assert list(run[qid]) == expected and [run[qid][d] for d in expected] == [scores[d] for d in expected]
        n_boundary_ties += sum(s == scores[expected[-1]] for s in scores.values()) > 1
    assert n_boundary_ties > 0  # the case is not vacuous


def test_dense_search_rejects_duplicate_docids():
    corpus = pd.DataFrame({"docid": ["a", "a"], "title": ["", ""], "text": ["x", "y"]})
    with pytest.raises(ValueError, match="unique"):
        miracl.dense_search_in_memory(HashEncoder(), {"q": "x"}, corpus)


def test_evaluate_miracl_end_to_end_on_the_fixture():
    enc = HashEncoder()
    out = miracl.evaluate_miracl(enc, TOPICS, QRELS, FIXTURE)
    assert out["status"] == "ok" and out["lang"] == "xx"
    assert 0.0 <= out["ndcg@10"] <= 1.0 and 0.0 <= out["recall@100"] <= 1.0
    assert (out["n_queries"], out["n_queries_searched"], out["n_passages"]) == (7, 6, 30)
    # the same numbers as pytrec_eval on the same run, with -c over the 7 judged queries
    qrels = miracl.load_qrels(QRELS)
    run = miracl.dense_search_in_memory(enc, miracl.load_topics(TOPICS), miracl.load_corpus(CORPUS_DIR))
    _, ref = pytrec_means(qrels, run)
    assert out["ndcg@10"] == pytest.approx(ref["ndcg_cut_10"])
    assert out["recall@100"] == pytest.approx(ref["recall_100"])
    # all 30 passages are retrieved: every relevant passage of a searched query is found; 105#0 and 107#0 score 0
    assert out["recall@100"] == pytest.approx(5 / 7)


def test_evaluate_miracl_perfect_encoder():
    class Oracle(HashEncoder):
        """Queries and their relevant passages share a one-hot direction."""

        def __init__(self):
            super().__init__()
            self.qrels, self.topics = miracl.load_qrels(QRELS), miracl.load_topics(TOPICS)
            corpus = miracl.load_corpus(CORPUS_DIR)
            self.passage_qid = {}
            for text, docid in zip(miracl.passage_texts(corpus), corpus["docid"]):
                self.passage_qid[text] = next((q for q, j in self.qrels.items() if j.get(docid) == 1), None)

        def encode(self, texts, kind, **kw):
            qids = list(self.qrels)
            owner = [self.passage_qid[t] if kind == "passage" else next(q for q, s in self.topics.items() if s == t)
                     for t in texts]
            return torch.tensor([[1.0 if q == o else 0.0 for q in qids] for o in owner])

    out = miracl.evaluate_miracl(Oracle(), TOPICS, QRELS, CORPUS_DIR)
    # 5 queries with relevant passages all perfect; 105#0 (only rel 0) and 107#0 (no topic) count 0
    assert out["ndcg@10"] == pytest.approx(5 / 7) and out["recall@100"] == pytest.approx(5 / 7)


def test_evaluate_miracl_corpus_absent(tmp_path):
    for source in (tmp_path / "nowhere", tmp_path):  # a missing path, and a folder without JSONL files
        out = miracl.evaluate_miracl(HashEncoder(), TOPICS, QRELS, source)
        assert out["status"] == "corpus-absent" and "ndcg@10" not in out
        assert "miracl/miracl-corpus" in out["message"] and "miracl-corpus-v1.0-xx" in out["message"]
