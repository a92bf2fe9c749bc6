"""Sampler invariants (PAPER.md §2): batch kinds, languages, conflict-free batches, coverage, seeding."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.stats import binom

from hybridbatch.samplers import PairPool, Pair, answer_groups, build_sampler, crosslingual_pairs

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


def take(sampler, n):
    return [sampler.next_batch() for _ in range(n)]


@pytest.fixture(scope="module")
def data():
    langs_of, answers = synthetic()
    return langs_of, answers, answer_groups(answers)


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


def test_xx_batches_are_single_language(data):
    langs_of, _, groups = data
    s = build_sampler("xx", langs_of, groups, batch_size=8, seed=1)
    for b in take(s, 200):
        assert b.kind == "xx"
        assert {p.query_lang for p in b.pairs} == {p.passage_lang for p in b.pairs} == {b.lang}
        assert len(b.pairs) == 8
        assert_conflict_free(b, groups)


def test_xx_language_choice_is_uniform(data):
    langs_of, _, groups = data
    s = build_sampler("xx", langs_of, groups, batch_size=4, seed=2)
    n = 2000
    counts = Counter(b.lang for b in take(s, n))
    lo, hi = binom.ppf([0.0005, 0.9995], n, 1 / len(LANGS))
    assert all(lo <= counts[lang] <= hi for lang in LANGS), counts


def test_xy_pairs_are_cross_lingual(data):
    langs_of, _, groups = data
    s = build_sampler("xy", langs_of, groups, batch_size=8, seed=1)
    for b in take(s, 200):
        assert b.kind == "xy"
        assert all(p.query_lang != p.passage_lang for p in b.pairs)
        assert all(p.query_lang in langs_of[p.qid] and p.passage_lang in langs_of[p.qid] for p in b.pairs)
        assert_conflict_free(b, groups)


def test_xx_mixed_pairs_monolingual_languages_mixed(data):
    langs_of, _, groups = data
    s = build_sampler("xx-mixed", langs_of, groups, batch_size=16, seed=1)
    batches = take(s, 100)
    assert all(p.query_lang == p.passage_lang for b in batches for p in b.pairs)
    assert np.mean([len({p.query_lang for p in b.pairs}) > 1 for b in batches]) > 0.9


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
def test_hybrid_ratio_within_binomial_bounds(data, alpha):
    langs_of, _, groups = data
    s = build_sampler("hybrid", langs_of, groups, batch_size=4, seed=3, alpha=alpha)
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


def test_epoch_covers_every_pair_before_repeating(data):
    langs_of, _, groups = data
    pairs = crosslingual_pairs(langs_of)
    pool = PairPool(pairs, groups, np.random.default_rng(0))
    seen: Counter[Pair] = Counter()
    drawn = 0
    while drawn + 10 <= len(pairs) - 10:  # stay inside the first epoch (deferrals can cross its end)
        batch = pool.take(10)
        seen.update(batch)
        drawn += 10
    assert max(seen.values()) == 1, "a pair repeated inside an epoch"
    for _ in range(3 * len(pairs) // 10):
        seen.update(pool.take(10))
    assert set(seen) == set(pairs), "some pair was never drawn"


def test_same_seed_same_batches_other_seed_other_batches(data):
    langs_of, _, groups = data
    a = take(build_sampler("hybrid", langs_of, groups, 8, seed=5), 50)
    b = take(build_sampler("hybrid", langs_of, groups, 8, seed=5), 50)
    c = take(build_sampler("hybrid", langs_of, groups, 8, seed=6), 50)
    assert a == b
    assert a != c


def test_batch_larger_than_groups_is_a_clear_error():
    langs_of = {"a": ["en", "de"], "b": ["en", "de"]}
    answers = {("a", "en"): "en:1", ("a", "de"): "de:1", ("b", "en"): "en:1", ("b", "de"): "de:1"}
    with pytest.raises(ValueError, match="batch size 2 exceeds the 1 distinct answer groups"):
        build_sampler("xy", langs_of, answer_groups(answers), 2, seed=0)  # at construction, not mid-training


def test_unknown_strategy_and_bad_alpha(data):
    langs_of, _, groups = data
    with pytest.raises(ValueError, match="unknown strategy"):
        build_sampler("yy", langs_of, groups, 4, seed=0)
    with pytest.raises(ValueError, match="alpha"):
        build_sampler("hybrid", langs_of, groups, 4, seed=0, alpha=1.5)


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
    from hybridbatch.samplers import MultiSourceSampler
    la, aa = synthetic(120, seed=0)
    lb, ab = synthetic(40, seed=1)
    la = {f"a:{q}": v for q, v in la.items()}
    lb = {f"b:{q}": v for q, v in lb.items()}
    ga = answer_groups({(f"a:{q}", lang): f"a:{k}" for (q, lang), k in aa.items()})
    gb = answer_groups({(f"b:{q}", lang): f"b:{k}" for (q, lang), k in ab.items()})
    samplers = {"a": build_sampler("hybrid", la, ga, batch_size, seed), "b": build_sampler("hybrid", lb, gb, batch_size, seed + 1)}
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
    from hybridbatch.samplers import MultiSourceSampler
    with pytest.raises(ValueError, match="source_sampling"):
        MultiSourceSampler(a.samplers, {"a": 1, "b": 1}, np.random.default_rng(0), "by-size")


def test_shards_partition_the_global_batch(data):
    langs_of, _, groups = data
    batch = build_sampler("hybrid", langs_of, groups, batch_size=8, seed=2).next_batch()
    shards = [batch.shard(r, 4) for r in range(4)]
    assert sum((s.pairs for s in shards), ()) == batch.pairs
    assert all(s.kind == batch.kind and s.lang == batch.lang for s in shards)
    with pytest.raises(ValueError, match="equal shards"):
        batch.shard(0, 3)
