"""Samplers over a user's own rows (hybridbatch.sampling.rows): the strategies' invariants and the same batches
as ``build_sampler``, on the vendored MLQA-R data and on a synthetic table."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hybridbatch.sampling.build import build_sampler
from hybridbatch.sampling.pools import answer_groups
from hybridbatch.sampling.rows import RowSampler, RowTable, flat_indices
from hybridbatch.strategies import TRAINED

REPO = Path(__file__).resolve().parents[1]
STEPS = 10


@pytest.fixture(scope="module")
def mlqa_rows():
    """The first 300 questions of MLQA-R in de/en/es, one row per (question, language), shuffled."""
    from hybridbatch.data.raw import load_lareqa

    frames = []
    for lang in ("de", "en", "es"):
        q, c = load_lareqa(REPO / "data" / "raw" / "mlqa-r" / f"{lang}.json.gz", "mlqa_r", lang)
        sentence = dict(zip(c["key"], c["sentence"]))
        q = q.assign(passage=[sentence[k] for k in q["answer_key"]])
        frames.append(q)
    keep = set(frames[1]["qid"].head(300))
    rows = [r for f in frames for r in f[f["qid"].isin(keep)].itertuples(index=False)]
    order = np.random.default_rng(0).permutation(len(rows))
    return [rows[i] for i in order]


def columns(rows):
    return ([r.qid for r in rows], [r.lang for r in rows], [r.answer_key.split(":", 1)[1] for r in rows],
            [r.question for r in rows], [r.passage for r in rows])


def check_batch(batch, qids, langs, groups, strategy):
    """The strategy's invariants on one batch of rows (and that the rows are the pairs' rows)."""
    for p, qr, pr in zip(batch.pairs, batch.query_rows, batch.passage_rows):
        assert (qids[qr], langs[qr]) == (p.qid, p.query_lang) and (qids[pr], langs[pr]) == (p.qid, p.passage_lang)
    g = [groups[qids[r]] for r in batch.query_rows]
    assert len(set(g)) == len(g), "an answer group twice in a batch"
    q_l, p_l = [langs[r] for r in batch.query_rows], [langs[r] for r in batch.passage_rows]
    if batch.kind == "xx":
        assert set(q_l) == set(p_l) == {batch.lang}
    elif batch.kind == "xx-mixed":
        assert q_l == p_l
    else:
        assert batch.kind == "xy" and all(a != b for a, b in zip(q_l, p_l))
    assert batch.kind == {"xx": "xx", "xx-mixed": "xx-mixed", "xy": "xy", "hybrid": batch.kind}[strategy]


@pytest.mark.parametrize("strategy", TRAINED)
def test_rows_of_vendored_data_keep_the_invariants_and_the_batches_of_build_sampler(mlqa_rows, strategy):
    qids, langs, paragraph_keys, _questions, passages = columns(mlqa_rows)
    # answer groups of the project: questions sharing an answer sentence in any language (keys are per paragraph
    # and sentence, parallel across languages)
    groups = answer_groups({(q, lang): k for q, lang, k in zip(qids, langs, paragraph_keys)})
    sampler = RowSampler.from_columns(qids, langs, strategy, 16, seed=3, groups=[groups[q] for q in qids],
                                      alpha=0.3, steps=STEPS)
    langs_of = {}
    for q, lang in zip(qids, langs):
        langs_of.setdefault(q, []).append(lang)
    reference = build_sampler(strategy, langs_of, groups, 16, seed=3, alpha=0.3, steps=STEPS)
    kinds = []
    for _ in range(3 * STEPS):
        batch, ref = sampler.next_batch(), reference.next_batch()
        assert batch.pairs == ref.pairs and (batch.kind, batch.lang) == (ref.kind, ref.lang)
        check_batch(batch, qids, langs, groups, strategy)
        kinds.append(batch.kind)
    if strategy == "hybrid":  # exact alpha: round(0.3 * 10) = 3 monolingual batches in every block of 10
        assert [kinds[i:i + STEPS].count("xx") for i in range(0, 3 * STEPS, STEPS)] == [3, 3, 3]


def synthetic(n_q=60, langs=("a", "b", "c", "d")):
    """Rows of n_q questions in 2..4 languages; pairs of consecutive questions share a group."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n_q):
        for lang in sorted(rng.choice(langs, size=int(rng.integers(2, len(langs) + 1)), replace=False)):
            rows.append((f"q{i}", str(lang), f"g{i // 2}", f"query {i} {lang}", f"passage {i} {lang}"))
    return [rows[i] for i in np.random.default_rng(2).permutation(len(rows))]


@pytest.mark.parametrize("strategy", TRAINED)
def test_global_batches_shard_into_one_kind_per_rank(strategy):
    rows = synthetic()
    qids, langs, group_col = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    sampler = RowSampler.from_columns(qids, langs, strategy, 12, seed=0, groups=group_col, alpha=0.5, steps=4)
    table_groups = sampler.table.groups
    for _ in range(12):
        batch = sampler.next_batch()
        check_batch(batch, qids, langs, table_groups, strategy)
        shards = [batch.shard(r, 3) for r in range(3)]
        assert [p for s in shards for p in s.pairs] == list(batch.pairs)
        assert {(s.kind, s.lang) for s in shards} == {(batch.kind, batch.lang)}
        assert flat_indices(shards[1]) == [*batch.query_rows[4:8], *batch.passage_rows[4:8]]


def test_groups_default_to_shared_passages_or_one_per_question():
    qids, langs = ["1", "1", "2", "2", "3"], ["en", "de", "en", "de", "en"]
    assert len(set(RowTable(qids, langs).groups.values())) == 3
    shared = RowTable(qids, langs, passages=["p1", "x1", "p1", "x2", "p3"]).groups
    assert shared["1"] == shared["2"] != shared["3"]


def test_bad_tables_are_clear_errors():
    with pytest.raises(ValueError, match="both question '1' in 'en'"):
        RowTable(["1", "1"], ["en", "en"])
    with pytest.raises(ValueError, match="different answer groups"):
        RowTable(["1", "1"], ["en", "de"], groups=[1, 2])
    with pytest.raises(ValueError, match="langs has 1 values for 2 rows"):
        RowTable(["1", "2"], ["en"])
    with pytest.raises(ValueError, match="exceeds the 2 distinct answer groups"):
        RowSampler.from_columns(["1", "1", "2", "2"], ["en", "de", "en", "de"], "xx", 3)


def test_every_row_index_is_a_row_and_memory_is_one_entry_per_row():
    rows = synthetic(200)
    qids, langs = [r[0] for r in rows], [r[1] for r in rows]
    sampler = RowSampler.from_columns(qids, langs, "xx-mixed", 20, seed=5)
    assert len(sampler.table.row_of) == len(rows)
    seen = Counter()
    for _ in range(len(rows) // 20):  # one epoch of the monolingual pool: every row once
        seen.update(sampler.next_batch().query_rows)
    assert len(seen) >= len(rows) - 20 and max(seen.values()) <= 2
