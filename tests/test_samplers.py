"""Sampler invariants (docs/PROTOCOL.md §3.2–§3.4): batch kinds, languages, the exact alpha schedule, conflict-free batches,
coverage, seeding, the strategy registry."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from hybridbatch.sampling import pools as pools_module
from hybridbatch.sampling import samplers as samplers_module
from hybridbatch import strategies
from hybridbatch.sampling.pools import (CrossLingualPool, LanguagePool, MonolingualPool, Pair, QuestionTable, _FeistelOrder,
                               answer_groups, crosslingual_pairs, monolingual_pairs)
from hybridbatch.sampling.samplers import Batch, BatchSampler, HybridSampler, MultiSourceSampler
from hybridbatch.sampling.build import build_sampler

LANGS = ["ar", "de", "en", "es", "hi"]


def synthetic(n_q: int = 120, seed: int = 0):
    """qid -> languages (2..5 of them, like MLQA-R) and answer keys where questions 3k..3k+2 share a sentence."""
    rng = np.random.default_rng(seed)
    langs_of, answers = {}, {}
    for i in range(n_q):
        qid = f"q{i:03d}"
        k = int(rng.integers(2, len(LANGS) + 1))
        langs_of[qid] = sorted(rng.choice(LANGS, size=k, replace=False).tolist())
        for lang in langs_of[qid]:
            answers[qid, lang] = f"{lang}:s{i // 3}"  # three questions per answer sentence
    return langs_of, answers


def randomized(seed: int, n_q: int = 300):
    """Random languages (1..5 per question, in random order) and random answer sharing (chains of merges)."""
    rng = np.random.default_rng(seed)
    langs_of, answers = {}, {}
    for i in range(n_q):
        qid = f"r{rng.integers(10 ** 6):06d}-{i}"
        langs_of[qid] = rng.choice(LANGS, size=int(rng.integers(1, len(LANGS) + 1)), replace=False).tolist()
        for lang in langs_of[qid]:
            shared = rng.random() < 0.15
            answers[qid, lang] = f"{lang}:{rng.integers(n_q // 4) if shared else qid}"
    return langs_of, answers


def take(sampler, n):
    return [sampler.next_batch() for _ in range(n)]


@pytest.fixture(scope="module")
def data():
    langs_of, answers = synthetic()
    return langs_of, answers, answer_groups(answers)


@pytest.fixture(params=["explicit", "feistel"])
def order_kind(request, monkeypatch):
    """Run a test with explicit per-epoch permutations and again with the Feistel order (large pools)."""
    if request.param == "feistel":
        monkeypatch.setattr(pools_module, "_EXPLICIT_MAX", 0)
    return request.param


def assert_conflict_free(batch, groups):
    qids = [p.qid for p in batch.pairs]
    assert len(set(qids)) == len(qids), "duplicate question id in a batch"
    g = [groups[q] for q in qids]
    assert len(set(g)) == len(g), "two pairs share an answer sentence group"


def test_answer_groups_link_shared_sentences(data):
    _, _, groups = data
    assert groups["q000"] == groups["q001"] == groups["q002"]
    assert groups["q000"] != groups["q003"]
    # a sentence shared in one language links questions even if their other languages differ
    g = answer_groups({("a", "en"): "en:1", ("b", "en"): "en:1", ("b", "de"): "de:7", ("c", "de"): "de:7",
                       ("d", "de"): "de:9"})
    assert g["a"] == g["b"] == g["c"] != g["d"]


# -- batch kinds and languages ----------------------------------------------------------------------------

def test_xx_batches_are_single_language(data):
    langs_of, _, groups = data
    s = build_sampler("xx", langs_of, groups, batch_size=8, seed=1)
    for b in take(s, 200):
        assert b.kind == "xx"
        assert {p.query_lang for p in b.pairs} == {p.passage_lang for p in b.pairs} == {b.lang}
        assert all(b.lang in langs_of[p.qid] for p in b.pairs)
        assert len(b.pairs) == 8
        assert_conflict_free(b, groups)


@pytest.mark.parametrize("mode", ["uniform", "proportional"])
def test_xx_language_choice(data, mode):
    langs_of, _, groups = data
    s = build_sampler("xx", langs_of, groups, batch_size=4, seed=2, language_sampling=mode)
    n = 2000
    counts = Counter(b.lang for b in take(s, n))
    sizes = Counter(lang for ls in langs_of.values() for lang in ls)
    for lang in LANGS:
        p = 1 / len(LANGS) if mode == "uniform" else sizes[lang] / sum(sizes.values())
        lo, hi = binom.ppf([1e-6, 1 - 1e-6], n, p)
        assert lo <= counts[lang] <= hi, (lang, counts)


def test_xy_pairs_are_cross_lingual(data):
    langs_of, _, groups = data
    s = build_sampler("xy", langs_of, groups, batch_size=8, seed=1)
    for b in take(s, 200):
        assert b.kind == "xy" and b.lang is None
        assert all(p.query_lang != p.passage_lang for p in b.pairs)
        assert all(p.query_lang in langs_of[p.qid] and p.passage_lang in langs_of[p.qid] for p in b.pairs)
        assert_conflict_free(b, groups)


def test_xx_mixed_pairs_monolingual_languages_mixed(data):
    langs_of, _, groups = data
    s = build_sampler("xx-mixed", langs_of, groups, batch_size=16, seed=1)
    batches = take(s, 100)
    assert all(b.kind == "xx-mixed" for b in batches)
    assert all(p.query_lang == p.passage_lang for b in batches for p in b.pairs)
    assert np.mean([len({p.query_lang for p in b.pairs}) > 1 for b in batches]) > 0.9


# -- the hybrid schedule ------------------------------------------------------------------------------------

@pytest.mark.parametrize("alpha, steps", [(0.5, 20), (0.25, 7), (0.1, 30), (0.7, 10), (0.33, 100), (0.5, 5),
                                          (0.01, 10), (0.999, 3)])
def test_hybrid_exact_share_in_every_block(data, alpha, steps):
    langs_of, _, groups = data
    s = build_sampler("hybrid", langs_of, groups, batch_size=4, seed=3, alpha=alpha, steps=steps)
    blocks = [[b.kind for b in take(s, steps)] for _ in range(3)]
    for kinds in blocks:
        assert kinds.count("xx") == round(alpha * steps)
        assert kinds.count("xy") == steps - round(alpha * steps)
    if 0 < round(alpha * steps) < steps and steps >= 10:
        assert len({tuple(k) for k in blocks}) > 1, "every block in the same order: not reshuffled"


def test_hybrid_exact_is_a_shuffle_not_a_fixed_pattern():
    """Over many seeds the monolingual batches fall at every position of the block about alpha of the time."""
    class Const(BatchSampler):
        def __init__(self, kind):
            super().__init__(1)
            self.kind = kind

        def next_batch(self):
            return Batch(self.kind, None, ())

    steps, n = 10, 400
    hits = np.zeros(steps)
    for seed in range(n):
        s = HybridSampler(Const("xx"), Const("xy"), 0.3, np.random.default_rng(seed), steps=steps)
        hits += [b.kind == "xx" for b in take(s, steps)]
    lo, hi = binom.ppf([1e-6, 1 - 1e-6], n, 0.3)
    assert ((lo <= hits) & (hits <= hi)).all(), hits


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
def test_hybrid_coin_ratio_within_binomial_bounds(data, alpha):
    langs_of, _, groups = data
    s = build_sampler("hybrid", langs_of, groups, batch_size=4, seed=3, alpha=alpha, alpha_schedule="coin")
    n = 2000
    batches = take(s, n)
    n_xx = sum(b.kind == "xx" for b in batches)
    lo, hi = binom.ppf([0.0005, 0.9995], n, alpha)
    assert lo <= n_xx <= hi
    for b in batches:
        assert_conflict_free(b, groups)
        if b.kind == "xx":
            assert {p.query_lang for p in b.pairs} == {b.lang}
        else:
            assert b.kind == "xy" and all(p.query_lang != p.passage_lang for p in b.pairs)


@pytest.mark.parametrize("schedule, steps", [("exact", None), ("exact", 13), ("coin", None)])
@pytest.mark.parametrize("xy_sampling", ["pairs", "languages"])
def test_hybrid_alpha_endpoints_are_the_xy_and_xx_sequences(data, schedule, steps, xy_sampling):
    langs_of, _, groups = data
    kw = dict(batch_size=8, seed=5, xy_sampling=xy_sampling, language_sampling="proportional")

    def batches(strategy, alpha=0.5):
        return take(build_sampler(strategy, langs_of, groups, alpha=alpha, steps=steps, alpha_schedule=schedule,
                                  **kw), 40)

    assert batches("hybrid", 0.0) == batches("xy")
    assert batches("hybrid", 1.0) == batches("xx")


def test_hybrid_sub_sequences_are_the_standalone_runs(data):
    """The mixed run's xx batches are the xx run's batches in order, and its xy batches the xy run's."""
    langs_of, _, groups = data
    mixed = take(build_sampler("hybrid", langs_of, groups, 8, seed=9, alpha=0.4, steps=25), 50)
    xx = take(build_sampler("xx", langs_of, groups, 8, seed=9), 50)
    xy = take(build_sampler("xy", langs_of, groups, 8, seed=9), 50)
    mono = [b for b in mixed if b.kind == "xx"]
    cross = [b for b in mixed if b.kind == "xy"]
    assert len(mono) == 20 and mono == xx[:20] and cross == xy[:30]


def test_hybrid_settings_are_checked(data):
    langs_of, _, groups = data
    with pytest.raises(ValueError, match="needs steps"):
        build_sampler("hybrid", langs_of, groups, 4, seed=0, alpha=0.5)
    with pytest.raises(ValueError, match="alpha_schedule"):
        build_sampler("hybrid", langs_of, groups, 4, seed=0, alpha=0.5, steps=10, alpha_schedule="bernoulli")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            build_sampler("hybrid", langs_of, groups, 4, seed=0, alpha=0.5, steps=bad)
    for alpha in (-0.1, 1.5):
        with pytest.raises(ValueError, match="alpha must be in"):
            build_sampler("hybrid", langs_of, groups, 4, seed=0, alpha=alpha, steps=10)
    build_sampler("hybrid", langs_of, groups, 4, seed=0, alpha=0.5, alpha_schedule="coin")  # coin needs none
    build_sampler("xx", langs_of, groups, 4, seed=0, steps=10)  # steps is ignored by the other strategies


# -- conflicts, coverage, replay ------------------------------------------------------------------------

CASES = [("xx", "pairs"), ("xx-mixed", "pairs"), ("xy", "pairs"), ("xy", "language-pairs"), ("xy", "languages"),
         ("hybrid", "pairs"), ("hybrid", "language-pairs")]


@pytest.mark.parametrize("strategy, xy_sampling", CASES)
def test_no_group_conflict_on_randomized_data(order_kind, strategy, xy_sampling):
    for seed in range(2):
        langs_of, answers = randomized(seed)
        groups = answer_groups(answers)
        assert len(set(groups.values())) < len(groups)  # the data does share answers
        s = build_sampler(strategy, langs_of, groups, batch_size=6, seed=seed, xy_sampling=xy_sampling, steps=17)
        for b in take(s, 120):
            assert len(b.pairs) == 6
            assert_conflict_free(b, groups)
            assert all(p.query_lang in langs_of[p.qid] and p.passage_lang in langs_of[p.qid] for p in b.pairs)


def _pools(langs_of, groups):
    table = QuestionTable(langs_of, groups)
    rng = np.random.default_rng(0)
    yield MonolingualPool(table, rng), monolingual_pairs(langs_of)
    yield CrossLingualPool(table, rng), crosslingual_pairs(langs_of)
    de, hi = table.langs.index("de"), table.langs.index("hi")
    yield LanguagePool(table, de, hi, rng, "xy[de-hi]"), [Pair(q, "de", "hi") for q in sorted(langs_of)
                                                         if {"de", "hi"} <= set(langs_of[q])]
    yield LanguagePool(table, de, de, rng, "xx[de]"), [Pair(q, "de", "de") for q in sorted(langs_of)
                                                       if "de" in langs_of[q]]


def test_pools_enumerate_exactly_their_pairs(data):
    langs_of, _, groups = data
    for pool, expected in _pools(langs_of, groups):
        assert pool.pairs_at(range(len(pool))) == expected, pool.name
    # duplicates in a language list collapse; a question without a group is a clear error
    table = QuestionTable({"a": ["en", "de", "en"]}, {"a": 0})
    assert table.langs == ["de", "en"] and table.n_langs.tolist() == [2]
    with pytest.raises(ValueError, match="question 'b' has no answer group"):
        QuestionTable({"a": ["en"], "b": ["en"]}, {"a": 0})


@pytest.mark.parametrize("layout", ["shared-by-3", "blocks-of-10"])
def test_epoch_covers_every_pair_exactly(order_kind, data, layout):
    """The documented guarantee: after k * size pairs every pair was handed out k times, except at most w
    pairs k - 1 times and w pairs k + 1 times (w = pairs waiting after a conflict); in the first epoch's
    window (minus the pairs that may wait) no pair repeats. Blocks of 10 questions per answer group make
    pairs wait across epoch ends."""
    langs_of, _, groups = data
    if layout == "blocks-of-10":
        groups = {q: int(q[1:]) // 10 for q in langs_of}
    for pool, expected in _pools(langs_of, groups):
        seen: Counter[Pair] = Counter()
        n = 5
        drawn = 0
        while drawn + n <= len(pool) - n:  # stay inside the first epoch (waiting pairs can cross its end)
            seen.update(pool.take(n))
            drawn += n
        assert max(seen.values()) == 1, f"{pool.name}: a pair repeated inside an epoch"
        for k in (1, 2, 3):
            while drawn < k * len(pool):
                step = min(n, k * len(pool) - drawn)
                seen.update(pool.take(step))
                drawn += step
            assert set(seen) <= set(expected)
            off = [p for p in expected if seen[p] != k]
            assert all(seen[p] in (k - 1, k + 1) for p in off), pool.name
            assert len(off) <= 2 * pool.waiting, (pool.name, k, len(off), pool.waiting)
        assert len(pool._head) <= pool.CHUNK + n + pool.waiting  # a bounded read-ahead, no per-pair list


def test_feistel_order_is_a_seeded_permutation():
    for n in (1, 2, 3, 10, 1000, 65_537, 1_000_003):
        order = _FeistelOrder(n, np.random.default_rng(n))
        got = np.concatenate([order(0, n // 3), order(n // 3, n)])
        assert np.array_equal(np.sort(got), np.arange(n)), n
    a = _FeistelOrder(10_000, np.random.default_rng(1))(0, 10_000)
    b = _FeistelOrder(10_000, np.random.default_rng(1))(0, 10_000)
    c = _FeistelOrder(10_000, np.random.default_rng(2))(0, 10_000)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # looks shuffled: positions and values nearly uncorrelated, no long runs of consecutive values
    assert abs(np.corrcoef(np.arange(10_000), a)[0, 1]) < 0.05
    assert np.mean(np.diff(a) == 1) < 0.01


@pytest.mark.parametrize("strategy, xy_sampling", CASES)
def test_same_seed_same_batches_other_seed_other_batches(order_kind, data, strategy, xy_sampling):
    langs_of, _, groups = data

    def run(seed):
        return take(build_sampler(strategy, langs_of, groups, 8, seed=seed, xy_sampling=xy_sampling, steps=10), 40)

    a = run(5)
    assert a == run(5)
    assert a != run(6)


def test_batch_larger_than_groups_is_a_clear_error():
    langs_of = {"a": ["en", "de"], "b": ["en", "de"]}
    answers = {("a", "en"): "en:1", ("a", "de"): "de:1", ("b", "en"): "en:1", ("b", "de"): "de:1"}
    with pytest.raises(ValueError, match="xy: batch size 2 exceeds the 1 distinct answer groups"):
        build_sampler("xy", langs_of, answer_groups(answers), 2, seed=0)  # at construction, not mid-training
    langs_of = {"a": ["en", "de"], "b": ["en", "de"], "c": ["en"]}
    groups = {"a": 0, "b": 1, "c": 2}
    with pytest.raises(ValueError, match=r"xx\[de\]: batch size 3 exceeds the 2 distinct"):
        build_sampler("xx", langs_of, groups, 3, seed=0)
    with pytest.raises(ValueError, match=r"xy\[de-en\]: batch size 3 exceeds the 2 distinct"):
        build_sampler("xy", langs_of, groups, 3, seed=0, xy_sampling="language-pairs")
    with pytest.raises(ValueError, match="xy: no training pairs"):
        build_sampler("hybrid", {"a": ["en"], "b": ["en"]}, {"a": 0, "b": 1}, 2, seed=0, alpha=1.0)
    for langs_of in ({}, {"a": []}):
        with pytest.raises(ValueError, match="xx-mixed: no training pairs"):
            build_sampler("xx-mixed", langs_of, {"a": 0}, 1, seed=0)


def test_unknown_strategy_and_bad_settings(data):
    langs_of, _, groups = data
    with pytest.raises(ValueError, match="unknown strategy 'yy'; choose one of zeroshot, bm25, xx"):
        build_sampler("yy", langs_of, groups, 4, seed=0)
    with pytest.raises(ValueError, match="reference system"):
        build_sampler("bm25", langs_of, groups, 4, seed=0)
    with pytest.raises(ValueError, match="alpha"):
        build_sampler("hybrid", langs_of, groups, 4, seed=0, alpha=1.5)
    with pytest.raises(ValueError, match="language_sampling"):
        build_sampler("xx", langs_of, groups, 4, seed=0, language_sampling="by-size")
    with pytest.raises(ValueError, match="batch_size"):
        build_sampler("xx", langs_of, groups, 0, seed=0)


# -- the registry --------------------------------------------------------------------------------------

def test_registry_order_labels_and_builders():
    assert strategies.ORDER == ("zeroshot", "bm25", "xx", "xx-mixed", "xy", "hybrid")
    assert strategies.TRAINED == ("xx", "xx-mixed", "xy", "hybrid")
    assert [strategies.label(n) for n in strategies.ORDER] == ["zero-shot", "BM25 (Mo. only)", "X-X-mono",
                                                               "X-X (mixed)", "X-Y", "Hybrid"]
    assert strategies.STRATEGIES["hybrid"].colour == "#029e73" and strategies.get("xx").colour == "#0173b2"
    assert not strategies.get("zeroshot").trained and strategies.get("xy").trained
    assert strategies.label("my-run") == "my-run"
    with pytest.raises(ValueError, match="unknown strategy 'yy'; choose one of"):
        strategies.get("yy")
    for s in strategies.STRATEGIES.values():
        assert s.colour.startswith("#") and len(s.colour) == 7
    with pytest.raises(AttributeError):
        strategies.get("xx").label = "other"  # frozen


def test_samplers_does_not_import_strategies():
    source = Path(samplers_module.__file__).read_text()
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import) for a in node.names}
    assert not any("strategies" in (m or "") for m in imported)
    assert not hasattr(samplers_module, "STRATEGIES") and not hasattr(samplers_module, "build_sampler")


# -- xy language-pair settings, several sources, sharding -------------------------------------------------

def _pair_counts(sampler, n_batches):
    counts = Counter()
    for b in take(sampler, n_batches):
        counts.update((p.query_lang, p.passage_lang) for p in b.pairs)
    return counts


@pytest.mark.parametrize("mode", ["language-pairs", "languages"])
def test_xy_language_pair_sampling_modes(data, mode):
    langs_of, _, groups = data
    s = build_sampler("xy", langs_of, groups, batch_size=8, seed=3, xy_sampling=mode)
    batches = take(s, 250)
    for b in batches:
        assert b.kind == "xy" and all(p.query_lang != p.passage_lang for p in b.pairs)
        assert_conflict_free(b, groups)
    counts = Counter((p.query_lang, p.passage_lang) for b in batches for p in b.pairs)
    n = sum(counts.values())
    keys = sorted({(a, b) for q in langs_of for a in langs_of[q] for b in langs_of[q] if a != b})
    targets = Counter(a for a, _ in keys)
    for a, b in keys:
        p = 1 / len(keys) if mode == "language-pairs" else 1 / len(targets) / targets[a]
        lo, hi = binom.ppf([1e-6, 1 - 1e-6], n, p)
        assert lo <= counts[a, b] <= hi, (a, b, counts[a, b], n * p)


def test_xy_pairs_mode_follows_the_data(data):
    """Default ``pairs``: uniform over all cross-lingual pairs, i.e. language pairs in proportion to data."""
    langs_of, _, groups = data
    pool = Counter((p.query_lang, p.passage_lang) for p in crosslingual_pairs(langs_of))
    counts = _pair_counts(build_sampler("xy", langs_of, groups, batch_size=8, seed=4), 250)
    n = sum(counts.values())
    for key, size in pool.items():
        lo, hi = binom.ppf([1e-6, 1 - 1e-6], n, size / sum(pool.values()))
        assert lo <= counts[key] <= hi, key


def test_bad_xy_sampling_is_a_clear_error(data):
    langs_of, _, groups = data
    with pytest.raises(ValueError, match="xy_sampling"):
        build_sampler("xy", langs_of, groups, batch_size=8, seed=1, xy_sampling="random")


def _two_sources(batch_size=6, seed=5, source_sampling="proportional"):
    la, aa = synthetic(120, seed=0)
    lb, ab = synthetic(40, seed=1)
    la = {f"a:{q}": v for q, v in la.items()}
    lb = {f"b:{q}": v for q, v in lb.items()}
    ga = answer_groups({(f"a:{q}", lang): f"a:{k}" for (q, lang), k in aa.items()})
    gb = answer_groups({(f"b:{q}", lang): f"b:{k}" for (q, lang), k in ab.items()})
    samplers = {"a": build_sampler("hybrid", la, ga, batch_size, seed, steps=40),
                "b": build_sampler("hybrid", lb, gb, batch_size, seed + 1, steps=40)}
    sizes = {"a": sum(map(len, la.values())), "b": sum(map(len, lb.values()))}
    return MultiSourceSampler(samplers, sizes, np.random.default_rng(seed), source_sampling), sizes


@pytest.mark.parametrize("mode", ["proportional", "uniform"])
def test_multi_source_batches_come_from_one_source(mode):
    s, sizes = _two_sources(source_sampling=mode)
    batches = take(s, 400)
    for b in batches:
        assert {p.qid.split(":")[0] for p in b.pairs} == {b.source}
    n_a = sum(b.source == "a" for b in batches)
    p = sizes["a"] / (sizes["a"] + sizes["b"]) if mode == "proportional" else 0.5
    lo, hi = binom.ppf([1e-6, 1 - 1e-6], len(batches), p)
    assert lo <= n_a <= hi


def test_multi_source_is_seeded_and_checks_settings():
    a, _ = _two_sources(seed=7)
    b, _ = _two_sources(seed=7)
    assert take(a, 30) == take(b, 30)
    with pytest.raises(ValueError, match="source_sampling"):
        MultiSourceSampler(a.samplers, {"a": 1, "b": 1}, np.random.default_rng(0), "by-size")


def test_shards_partition_the_global_batch(data):
    langs_of, _, groups = data
    batch = build_sampler("hybrid", langs_of, groups, batch_size=8, seed=2, steps=10).next_batch()
    shards = [batch.shard(r, 4) for r in range(4)]
    assert sum((s.pairs for s in shards), ()) == batch.pairs
    assert all(s.kind == batch.kind and s.lang == batch.lang for s in shards)
    with pytest.raises(ValueError, match="equal shards"):
        batch.shard(0, 3)
