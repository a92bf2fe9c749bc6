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

from hybridbatch.evaluation import miracl, miracl_corpus
from hybridbatch.data.raw import DataError

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


# ----------------------------------------------------------------------------------- whole-corpus reference
def _top_k(queries: torch.Tensor, passages: torch.Tensor, k: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` (scores, passage indices) per query by dot product, passage chunk by passage chunk.

    Equal scores are ordered by increasing passage index, also across chunks (stable sorts and merges).
    """
    best_v = queries.new_empty((queries.shape[0], 0))
    best_i = torch.empty((queries.shape[0], 0), dtype=torch.long)
    for start in range(0, passages.shape[0], chunk):
        v, i = torch.sort(queries @ passages[start:start + chunk].T, dim=1, descending=True, stable=True)
        v, i = torch.cat([best_v, v[:, :k]], 1), torch.cat([best_i, i[:, :k] + start], 1)
        v, order = torch.sort(v, dim=1, descending=True, stable=True)
        best_v, best_i = v[:, :k], torch.gather(i, 1, order)[:, :k]
    return best_v, best_i


def dense_search_in_memory(encoder, topics, corpus_df: pd.DataFrame, k: int = 100, max_tokens: int = 8192,
                           passage_format: str = "title+text", query_chunk: int = 256,
                           passage_chunk: int = 65536) -> dict[str, dict[str, float]]:
    """The earlier whole-corpus search (every embedding in memory), the reference of ``miracl.dense_search``.

    The run is ``{qid: {docid: score}}`` (float32 dot products), best first. Passages are held in
    docid-descending order, so scores tied at the ``k``-th place are cut the way trec_eval orders them: the
    run equals the first ``k`` of a full ranking evaluated with ``-M k``.
    """
    if not corpus_df["docid"].is_unique:
        raise ValueError("corpus docids are not unique")
    corpus = corpus_df.sort_values("docid", ascending=False, kind="stable")
    docids = corpus["docid"].tolist()
    passages = encoder.encode(miracl.passage_texts(corpus, passage_format), kind="passage",
                              max_tokens=max_tokens).float()
    qids = list(topics)
    queries = encoder.encode([topics[q] for q in qids], kind="query", max_tokens=max_tokens).float()
    run: dict[str, dict[str, float]] = {}
    for start in range(0, len(qids), query_chunk):
        values, index = _top_k(queries[start:start + query_chunk], passages, k, passage_chunk)
        for qid, vs, ix in zip(qids[start:start + query_chunk], values.tolist(), index.tolist()):
            run[qid] = {docids[j]: v for v, j in zip(vs, ix)}
    return run


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
@pytest.mark.parametrize("search", ["in-memory", "streamed"])
def test_dense_search_top_k_is_the_trec_eval_prefix_of_a_full_ranking(search):
    enc = HashEncoder(dim=3)  # few small integers: many exact ties, also at the k-th place
    topics = miracl.load_topics(TOPICS)
    corpus = miracl.load_corpus(CORPUS_DIR)
    if search == "in-memory":
        run = dense_search_in_memory(enc, topics, corpus, k=5, query_chunk=4, passage_chunk=7)
    else:
        run = miracl.dense_search(enc, topics, CORPUS_DIR, k=5, query_chunk=4, chunk_size=4).run
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
        dense_search_in_memory(HashEncoder(), {"q": "x"}, corpus)


def test_evaluate_miracl_end_to_end_on_the_fixture():
    enc = HashEncoder()
    out = miracl.evaluate_miracl(enc, TOPICS, QRELS, FIXTURE)
    assert out["status"] == "ok" and out["lang"] == "xx"
    assert 0.0 <= out["ndcg@10"] <= 1.0 and 0.0 <= out["recall@100"] <= 1.0
    assert (out["n_queries"], out["n_queries_searched"], out["n_passages"]) == (7, 6, 30)
    # the same numbers as pytrec_eval on the same run, with -c over the 7 judged queries
    qrels = miracl.load_qrels(QRELS)
    run = dense_search_in_memory(enc, miracl.load_topics(TOPICS), miracl.load_corpus(CORPUS_DIR))
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


# ------------------------------------------------------------------------------ synthetic MIRACL, streaming
SYNTH_LANGS = {"xa": (180, [70, 60, 50]), "xb": (150, [150])}  # passages, docs-<n> file sizes
WORDS = [f"{a}{b}" for a in ("ka", "mi", "to", "ru", "se", "no", "fa", "li") for b in ("", "ma", "ti", "so", "ne")]


def write_synthetic_miracl(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """``root/raw`` (topics and qrels, gzipped, as in data/raw/miracl) and ``root/corpus`` (the hub's layout).

    Per language of :data:`SYNTH_LANGS`: docids ``<article>#<n>`` whose string and numeric orders differ;
    every 6th passage copies an earlier one's title and text (an exact score tie under any encoder); some
    titles are empty. Topics are words of one passage (relevant, with its copies) plus 3 judged
    non-relevant passages; one judged query has only rel 0, one qrels query has no topic, one topic is not
    judged. ``xc`` has topics and qrels but no corpus. Returns ``(raw_dir, corpus_dir)``.
    """
    raw, corpus_dir = root / "raw", root / "corpus"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for lang, (n, sizes) in {**SYNTH_LANGS, "xc": (20, [])}.items():
        docids = sorted({f"{rng.integers(1, 3000)}#{rng.integers(0, 12)}" for _ in range(3 * n)})
        docids = [str(d) for d in rng.permutation(docids)[:n]]
        passages = []
        for i, docid in enumerate(docids):
            if i % 6 == 5:
                title, text = passages[int(rng.integers(0, i))][1:]
            else:
                title = "" if i % 7 == 3 else " ".join(rng.choice(WORDS, 2))
                text = " ".join(rng.choice(WORDS, int(rng.integers(5, 14))))
            passages.append((docid, title, text))
        folder = corpus_dir / f"miracl-corpus-v1.0-{lang}"
        start = 0
        for f, size in enumerate(sizes):
            folder.mkdir(parents=True, exist_ok=True)
            with gzip.open(folder / f"docs-{f}.jsonl.gz", "wt", encoding="utf-8") as out:
                for docid, title, text in passages[start:start + size]:
                    out.write(json.dumps({"docid": docid, "title": title, "text": text}, ensure_ascii=False) + "\n")
            start += size
        topics, qrels = [], []
        for q in range(24):
            qid = str(100 + 7 * q)
            target = passages[int(rng.integers(0, n))]
            words = target[2].split()
            topics.append(f"{qid}\t{' '.join(rng.choice(words, min(4, len(words)), replace=False))}")
            relevant = [] if q == 5 else [d for d, t, x in passages if (t, x) == target[1:]]
            others = [d for d in rng.choice(docids, 3, replace=False) if d not in relevant]
            qrels += [f"{qid}\tQ0\t{d}\t1" for d in relevant] + [f"{qid}\tQ0\t{d}\t0" for d in others]
        topics.append("999\tnot judged")
        qrels.append(f"998\tQ0\t{docids[0]}\t1")  # judged, no topic: scores 0 under -c
        for name, lines in (("topics", topics), ("qrels", qrels)):
            with gzip.open(raw / f"{name}.miracl-v1.0-{lang}-dev.tsv.gz", "wt", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
    return raw, corpus_dir


class BowEncoder:
    """Tiny stand-in encoder: hashed bag of words (crc32 of each lower-cased token mod ``dim``), L2-normalised.

    Same ``encode(texts, kind, **kw)`` interface as DualEncoder, float32 torch rows. Values are rounded to
    multiples of 2**-10, so dot products are exact in float32 whatever the summation order. Records every
    call's ``(kind, n_texts)`` in ``calls``.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim, self.calls = dim, []

    def encode(self, texts, kind, **kw) -> torch.Tensor:
        self.calls.append((kind, len(texts)))
        m = np.zeros((len(texts), self.dim))
        for i, text in enumerate(texts):
            for token in text.lower().split():
                m[i, zlib.crc32(token.encode()) % self.dim] += 1.0
        m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
        return torch.from_numpy((np.round(m * 1024) / 1024).astype(np.float32))


class CountingHashEncoder(HashEncoder):
    def __init__(self, dim: int = 3) -> None:
        super().__init__(dim)
        self.calls = []

    def encode(self, texts, kind, **kw):
        self.calls.append((kind, len(texts)))
        return super().encode(texts, kind, **kw)


@pytest.fixture
def synthetic(tmp_path) -> tuple[Path, Path]:
    return write_synthetic_miracl(tmp_path / "miracl")


def synth_paths(raw: Path, lang: str) -> tuple[Path, Path]:
    return raw / f"topics.miracl-v1.0-{lang}-dev.tsv.gz", raw / f"qrels.miracl-v1.0-{lang}-dev.tsv.gz"


def ordered(run: dict) -> dict:
    """A run with each query's results as a list: comparisons then check the order too."""
    return {qid: list(results.items()) for qid, results in run.items()}


def test_synthetic_corpus_has_the_real_layout(synthetic):
    raw, corpus_dir = synthetic
    for lang, (n, sizes) in SYNTH_LANGS.items():
        files = miracl.corpus_files(corpus_dir, lang)
        assert [f.name for f in files] == [f"docs-{i}.jsonl.gz" for i in range(len(sizes))]
        corpus = miracl.load_corpus(corpus_dir, lang)
        assert len(corpus) == n and corpus["docid"].is_unique
        assert corpus.duplicated(["title", "text"]).sum() >= n // 7  # copied passages: exact ties
        topics_path, qrels_path = synth_paths(raw, lang)
        topics, qrels = miracl.load_topics(topics_path), miracl.load_qrels(qrels_path)
        assert len(topics) == 25 and len(qrels) == 25 and set(qrels["998"]) <= set(corpus["docid"])
    assert miracl.corpus_files(corpus_dir, "xc") == []


@pytest.mark.parametrize("chunk", [1, 7, 40, 1000])
@pytest.mark.parametrize("k", [5, 100])
def test_streamed_search_equals_the_in_memory_search(synthetic, chunk, k):
    raw, corpus_dir = synthetic
    topics_path, qrels_path = synth_paths(raw, "xa")
    topics, qrels = miracl.load_topics(topics_path), miracl.load_qrels(qrels_path)
    corpus = miracl.load_corpus(corpus_dir, "xa")
    enc = CountingHashEncoder(dim=3)  # few small integers: many exact ties, also at the k-th place
    reference = dense_search_in_memory(enc, topics, corpus, k=k)
    enc.calls.clear()
    result = miracl.dense_search(enc, topics, corpus_dir, lang="xa", k=k, chunk_size=chunk, query_chunk=4)
    assert result.run.keys() == reference.keys()
    for qid in reference:  # same docids in the same order (ties included), same scores
        assert list(result.run[qid].items()) == list(reference[qid].items()), qid
    assert miracl.trec_eval_metrics(qrels, result.run) == miracl.trec_eval_metrics(qrels, reference)
    sizes = [n for kind, n in enc.calls if kind == "passage"]
    assert max(sizes) <= chunk and sum(sizes) == result.n_passages == 180  # encoded chunk by chunk
    assert result.n_chunks == sum(-(-size // chunk) for size in SYNTH_LANGS["xa"][1])  # chunks stay in a file
    # not vacuous: the k-th score is tied with a passage left out, for some query
    p = enc.encode(miracl.passage_texts(corpus), "passage")
    full = (enc.encode(list(topics.values()), "query") @ p.T).numpy()
    assert any(sorted(row, reverse=True)[k - 1] == sorted(row, reverse=True)[k] for row in full)


def test_streamed_search_with_query_blocks_and_limit(synthetic):
    raw, corpus_dir = synthetic
    topics = miracl.load_topics(synth_paths(raw, "xb")[0])
    enc = BowEncoder()
    reference = dense_search_in_memory(enc, topics, miracl.load_corpus(corpus_dir, "xb", limit=101), k=10)
    for chunk, query_chunk in ((13, 1), (101, 7), (500, 256)):
        result = miracl.dense_search(enc, topics, corpus_dir, lang="xb", k=10, limit=101, chunk_size=chunk,
                                     query_chunk=query_chunk)
        assert result.n_passages == 101
        assert ordered(result.run) == ordered(reference)


def test_iter_corpus_chunks(synthetic):
    _, corpus_dir = synthetic
    corpus = miracl.load_corpus(corpus_dir, "xa")
    chunks = list(miracl.iter_corpus_chunks(corpus_dir, "xa", chunk_size=30, passage_format="text"))
    assert [(Path(c.source).name, c.start, len(c.docids)) for c in chunks] == [
        ("docs-0.jsonl.gz", 0, 30), ("docs-0.jsonl.gz", 30, 30), ("docs-0.jsonl.gz", 60, 10),
        ("docs-1.jsonl.gz", 0, 30), ("docs-1.jsonl.gz", 30, 30), ("docs-2.jsonl.gz", 0, 30),
        ("docs-2.jsonl.gz", 30, 20)]
    assert [d for c in chunks for d in c.docids] == corpus["docid"].tolist()
    assert [t for c in chunks for t in c.texts] == corpus["text"].tolist()
    titled = list(miracl.iter_corpus_chunks(corpus_dir, "xa", chunk_size=1000, limit=75))
    assert [len(c.docids) for c in titled] == [70, 5]
    assert [t for c in titled for t in c.texts] == miracl.passage_texts(corpus.head(75))
    with pytest.raises(ValueError, match="chunk_size"):
        next(miracl.iter_corpus_chunks(corpus_dir, "xa", chunk_size=0))
    with pytest.raises(ValueError, match="passage_format"):
        next(miracl.iter_corpus_chunks(corpus_dir, "xa", passage_format="title"))


@pytest.mark.parametrize("collide", [False, True])
def test_streamed_reader_finds_repeated_docids_across_files(tmp_path, monkeypatch, collide):
    if collide:  # every docid hash collides: each is confirmed by re-reading, only true repeats raise
        monkeypatch.setattr(miracl_corpus, "_docid_hashes", lambda docids: np.zeros(len(docids), dtype=np.uint64))
    rows = [{"docid": f"{i}#0", "title": "", "text": f"t{i}"} for i in range(12)]
    for f, part in enumerate((rows[:5], rows[5:])):
        (tmp_path / f"docs-{f}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    assert sum(len(c.docids) for c in miracl.iter_corpus_chunks(tmp_path, chunk_size=3)) == 12
    with open(tmp_path / "docs-1.jsonl", "a") as f:
        f.write(json.dumps({"docid": "3#0", "title": "", "text": "again"}) + "\n")
    for chunk in (1, 4, 100):
        with pytest.raises(DataError, match=r"duplicate docid '3#0' \(first at .*docs-0.jsonl line 4\)") as info:
            list(miracl.iter_corpus_chunks(tmp_path, chunk_size=chunk))
        assert info.value.record == "line 8" and info.value.path == str(tmp_path / "docs-1.jsonl")


def test_chunk_cache_reuses_verified_embeddings(synthetic, tmp_path, caplog):
    raw, corpus_dir = synthetic
    topics = miracl.load_topics(synth_paths(raw, "xa")[0])
    cache_dir = tmp_path / "cache"

    def search(enc=None, **kw):
        enc = enc or CountingHashEncoder()
        result = miracl.dense_search(enc, topics, corpus_dir, lang="xa", k=20, chunk_size=25, cache_dir=cache_dir,
                                     cache_identity="model-A", **kw)
        return result, sum(n for kind, n in enc.calls if kind == "passage")

    first, encoded = search()
    entries = sorted(cache_dir.rglob("*.npz"))
    assert (first.cache_hits, first.cache_misses, encoded) == (0, first.n_chunks, 180) and len(entries) == 8
    again, encoded = search()
    assert (again.cache_hits, again.cache_misses, encoded) == (8, 0, 0) and ordered(again.run) == ordered(first.run)
    other_model = miracl.dense_search(CountingHashEncoder(), topics, corpus_dir, lang="xa", k=20, chunk_size=25,
                                      cache_dir=cache_dir, cache_identity="model-B")
    assert other_model.cache_hits == 0  # another model: other entries

    # damaged entries: truncated, wrong shape, NaN (with a valid checksum), checksum mismatch
    def rewrite(path, arr, digest=None):
        with np.load(path) as e:
            texts = str(e["texts_sha256"][()])
        with open(path, "wb") as f:
            np.savez(f, embeddings=arr, sha256=np.array(digest or miracl._array_digest(arr)),
                     texts_sha256=np.array(texts))

    good = []
    for entry in entries[:4]:
        with np.load(entry) as e:
            good.append(e["embeddings"])
    entries[0].write_bytes(entries[0].read_bytes()[:50])
    rewrite(entries[1], good[1][:, :2])
    nan = good[2].copy()
    nan[0, 0] = np.nan
    rewrite(entries[2], nan)
    rewrite(entries[3], good[3] * 2, digest=miracl._array_digest(good[3]))
    caplog.clear()
    repaired, encoded = search()
    assert ordered(repaired.run) == ordered(first.run) and repaired.cache_hits == 4 and encoded == 25 + 25 + 20 + 25
    reasons = " ".join(r.getMessage() for r in caplog.records if "bad MIRACL chunk" in r.getMessage())
    for reason in ("unreadable", "shape", "NaN", "checksum mismatch"):
        assert reason in reasons
    assert search()[0].cache_hits == 8  # rewritten

    # a corpus file edited in place (same size): its chunk is recomputed, not read stale
    path = corpus_dir / "miracl-corpus-v1.0-xa" / "docs-1.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.readlines()
    lines[3] = json.dumps({**json.loads(lines[3]), "text": "kama tito kama tito"}) + "\n"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(lines)
    edited, encoded = search()
    assert edited.cache_hits == 7 and encoded == 25
    ref = dense_search_in_memory(HashEncoder(3), topics, miracl.load_corpus(corpus_dir, "xa"), k=20)
    assert ordered(edited.run) == ordered(ref)


def test_chunk_cache_write_failure_and_identity(synthetic, tmp_path):
    raw, corpus_dir = synthetic
    topics = miracl.load_topics(synth_paths(raw, "xb")[0])
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    result = miracl.dense_search(BowEncoder(), topics, corpus_dir, lang="xb", chunk_size=40, cache_dir=blocked,
                                 cache_identity="m")
    reference = dense_search_in_memory(BowEncoder(), topics, miracl.load_corpus(corpus_dir, "xb"))
    assert ordered(result.run) == ordered(reference)  # the cache cannot be written: logged, the search goes on
    with pytest.raises(ValueError, match="identity"):
        miracl.dense_search(BowEncoder(), topics, corpus_dir, lang="xb", cache_dir=tmp_path / "c")


def test_search_rejects_bad_embeddings(synthetic):
    raw, corpus_dir = synthetic
    topics = miracl.load_topics(synth_paths(raw, "xb")[0])

    class Broken(BowEncoder):
        def encode(self, texts, kind, **kw):
            out = super().encode(texts, kind, **kw)
            if kind == "passage":
                out[0, 0] = float("nan")
            return out

    with pytest.raises(ValueError, match="NaN"):
        miracl.dense_search(Broken(), topics, corpus_dir, lang="xb")


def test_evaluate_miracl_end_to_end_on_synthetic_miracl(synthetic):
    raw, corpus_dir = synthetic
    for lang, (n, _) in SYNTH_LANGS.items():
        topics_path, qrels_path = synth_paths(raw, lang)
        enc = BowEncoder()
        outs = [miracl.evaluate_miracl(enc, topics_path, qrels_path, corpus_dir, chunk_size=c)
                for c in (1, 17, 10**6)]
        assert outs[0] == outs[1] == outs[2]  # the chunk size never changes the result
        out = outs[0]
        assert out["status"] == "ok" and out["lang"] == lang and out["limit"] is None
        assert (out["n_queries"], out["n_queries_searched"], out["n_passages"]) == (25, 24, n)
        qrels = miracl.load_qrels(qrels_path)
        topics = {q: t for q, t in miracl.load_topics(topics_path).items() if q in qrels}
        _, ref = pytrec_means(qrels, dense_search_in_memory(enc, topics, miracl.load_corpus(corpus_dir, lang)))
        assert out["ndcg@10"] == pytest.approx(ref["ndcg_cut_10"], abs=1e-12)
        assert out["recall@100"] == pytest.approx(ref["recall_100"], abs=1e-12)
        # the bag of words finds the passage the query words come from; 2 of 25 queries score 0 (-c)
        assert 0.5 < out["ndcg@10"] <= 23 / 25 and 0.8 < out["recall@100"] <= 23 / 25


def _load_stage():
    spec = importlib.util.spec_from_file_location("miracl_stage", REPO / "src" / "stages" / "miracl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stage_params(tmp_path, raw, corpus_dir, **execution) -> Path:
    params = {"miracl": {"raw_dir": str(raw), "corpus_dir": str(corpus_dir), "languages": ["xa", "xc", "xb"],
                         "max_tokens": 2048}, "execution": {"threads": None, "cache_dir": None, **execution}}
    path = tmp_path / f"params-{len(list(tmp_path.glob('params-*.yaml')))}.yaml"  # a new file: read_params caches
    path.write_text(yaml.safe_dump(params))
    return path


def test_stage_end_to_end_on_synthetic_miracl(synthetic, tmp_path, monkeypatch):
    raw, corpus_dir = synthetic
    stage = _load_stage()
    monkeypatch.chdir(tmp_path)
    params = _stage_params(tmp_path, raw, corpus_dir, miracl_chunk=7)
    assert stage.miracl_chunk(params) == 7
    enc = BowEncoder()
    assert stage.main(["--run", "r", "--model", "none", "--params", str(params)], encoder=enc) == 0
    out = json.loads((tmp_path / "results" / "r" / "miracl.json").read_text())["miracl_dev"]
    assert out["languages_with_corpus"] == ["xa", "xb"]
    assert max(n for kind, n in enc.calls if kind == "passage") == 7
    for lang in ("xa", "xb"):
        expected = miracl.evaluate_miracl(BowEncoder(), *synth_paths(raw, lang), corpus_dir, max_tokens=2048)
        assert out["per_language"][lang] == {"topics": 25, "judged_queries": 25, **expected}
    assert out["per_language"]["xc"]["status"] == "corpus-absent" and out["per_language"]["xc"]["topics"] == 25
    assert "miracl_chunk" not in json.dumps(out)  # an execution setting: not recorded
    # the default chunk, and the optional embedding cache: a second run encodes no passage
    plain = _stage_params(tmp_path, raw, corpus_dir)
    assert stage.miracl_chunk(plain) == miracl.DEFAULT_CHUNK
    args = ["--run", "c", "--model", "none", "--params", str(plain), "--embedding-cache", str(tmp_path / "cache")]
    stage.main(args, encoder=BowEncoder())
    again = BowEncoder()
    stage.main(args, encoder=again)
    assert [kind for kind, _ in again.calls] == ["query", "query"]
    cached = json.loads((tmp_path / "results" / "c" / "miracl.json").read_text())["miracl_dev"]["per_language"]
    assert cached == out["per_language"]


@pytest.mark.parametrize("value", [0, -3, 2.5, "big", True])
def test_stage_rejects_a_bad_miracl_chunk(synthetic, tmp_path, monkeypatch, capsys, value):
    raw, corpus_dir = synthetic
    stage = _load_stage()
    monkeypatch.chdir(tmp_path)
    params = _stage_params(tmp_path, raw, corpus_dir, miracl_chunk=value)
    enc = BowEncoder()
    with pytest.raises(SystemExit) as info:
        stage.main(["--run", "r", "--model", "none", "--params", str(params)], encoder=enc)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert info.value.code == 2 and len(lines) == 1 and "execution.miracl_chunk" in lines[0] and enc.calls == []


def test_stage_reads_miracl_chunk_from_the_execution_section(synthetic, tmp_path):
    stage = _load_stage()
    raw, corpus_dir = synthetic
    assert stage.miracl_chunk(_stage_params(tmp_path, raw, corpus_dir, miracl_chunk=7)) == 7
    assert stage.miracl_chunk(_stage_params(tmp_path, raw, corpus_dir)) == miracl.DEFAULT_CHUNK  # the default
