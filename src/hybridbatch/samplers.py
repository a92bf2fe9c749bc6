"""Batch sampling strategies for contrastive training (PAPER.md §2).

A training *pair* is (question id, query language, passage language): the question in one language and
its answer sentence in another (or the same) language. Strategies:

- ``xx``       X-X-mono: the whole batch in one language (query and passage), the language drawn per batch.
- ``xx-mixed`` X-X (LAReQA): every pair monolingual, languages mixed inside the batch.
- ``xy``       X-Y: every pair cross-lingual (query language != passage language); how a pair's language
               pair is drawn is a setting (``xy_sampling``): ``pairs`` (uniform over all cross-lingual pairs,
               i.e. in proportion to the data), ``language-pairs`` (uniform over the ordered language pairs),
               ``languages`` (query language uniform, then passage language uniform over the others).
- ``hybrid``   per batch, ``xx`` with probability alpha, else ``xy``.

Several training sources: ``MultiSourceSampler`` draws the source of each batch (in proportion to its
pairs, the paper's "sampled based on dataset size", or uniformly) and delegates to that source's sampler,
so a batch never mixes sources (FlagEmbedding's same-source batches). Under data parallelism every rank
builds the same sampler from the same seed, draws the same *global* batch and keeps its own shard
(``Batch.shard``), so all ranks agree on source, batch type and language at every step.

Every batch is conflict-free: no two pairs share a *positive group* -- the question ids linked by a
shared answer sentence in any language (several questions share one answer sentence, and answer sentences
are parallel across languages, so such pairs would be false in-batch negatives). Each pool walks through
its pairs in a seeded shuffled order, epoch after epoch, so every pair is used before any repeats.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from typing import Iterator, Mapping, Sequence

import numpy as np

STRATEGIES = ("xx", "xx-mixed", "xy", "hybrid")
XY_SAMPLINGS = ("pairs", "language-pairs", "languages")
SOURCE_SAMPLINGS = ("proportional", "uniform")


@dataclasses.dataclass(frozen=True)
class Pair:
    qid: str
    query_lang: str
    passage_lang: str


@dataclasses.dataclass(frozen=True)
class Batch:
    kind: str  # "xx", "xx-mixed" or "xy": the kind of batch actually drawn
    lang: str | None  # the batch language of an "xx" batch, else None
    pairs: tuple[Pair, ...]
    source: str | None = None  # the training source it was drawn from (MultiSourceSampler)

    def shard(self, rank: int, world_size: int) -> "Batch":
        """This rank's contiguous slice of a global batch (rank order = global order)."""
        n = len(self.pairs)
        if not 0 <= rank < world_size or n % world_size:
            raise ValueError(f"cannot split a batch of {n} pairs into {world_size} equal shards (rank {rank})")
        k = n // world_size
        return dataclasses.replace(self, pairs=self.pairs[rank * k:(rank + 1) * k])


class PairPool:
    """Conflict-free batches from a fixed set of pairs, each pair once per epoch, seeded order."""

    def __init__(self, pairs: Sequence[Pair], groups: Mapping[str, int], rng: np.random.Generator,
                 name: str = "pool") -> None:
        if not pairs:
            raise ValueError(f"{name}: no training pairs")
        self.pairs = list(pairs)
        self.group = np.array([groups[p.qid] for p in self.pairs])
        self.n_groups = len(set(self.group.tolist()))
        self.name = name
        self.rng = rng
        self.epoch = 0
        self._queue: list[int] = []

    def _refill(self) -> None:
        self._queue.extend(self.rng.permutation(len(self.pairs)).tolist())
        self.epoch += 1

    def check_fits(self, n: int) -> None:
        if n > self.n_groups:
            raise ValueError(f"{self.name}: batch size {n} exceeds the {self.n_groups} distinct answer "
                             f"groups available; lower the batch size or drop this language")

    def take(self, n: int, exclude: set[int] | None = None) -> list[Pair]:
        """The next ``n`` pairs of the epoch order whose groups are pairwise distinct (and not in ``exclude``).

        A pair that would conflict is not dropped: it keeps its place at the head of the queue for the
        next batch. ``exclude`` is updated with the groups taken.
        """
        self.check_fits(n + len(exclude or ()))
        chosen: list[int] = []
        used: set[int] = exclude if exclude is not None else set()
        deferred: list[int] = []
        scanned_refills = 0
        while len(chosen) < n:
            if not self._queue:
                if scanned_refills > 1:  # cannot happen when n <= n_groups; guards against bugs
                    raise RuntimeError(f"{self.name}: could not fill a batch of {n}")
                self._refill()
                scanned_refills += 1
            i = self._queue.pop(0)
            g = int(self.group[i])
            if g in used:
                deferred.append(i)
            else:
                used.add(g)
                chosen.append(i)
        self._queue[:0] = deferred
        return [self.pairs[i] for i in chosen]


class BatchSampler:
    """Infinite iterator of batches; subclasses implement ``next_batch``."""

    def __init__(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size

    def next_batch(self) -> Batch:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.next_batch()


class MonolingualSampler(BatchSampler):
    """``xx`` (X-X-mono): one language per batch, drawn uniformly or in proportion to its pairs."""

    def __init__(self, pools: Mapping[str, PairPool], batch_size: int, rng: np.random.Generator,
                 language_sampling: str = "uniform") -> None:
        super().__init__(batch_size)
        self.langs = sorted(pools)
        self.pools = pools
        self.rng = rng
        for pool in pools.values():
            pool.check_fits(batch_size)
        sizes = np.array([len(pools[lang].pairs) for lang in self.langs], dtype=float)
        if language_sampling == "uniform":
            self.p = np.full(len(self.langs), 1.0 / len(self.langs))
        elif language_sampling == "proportional":
            self.p = sizes / sizes.sum()
        else:
            raise ValueError(f"language_sampling must be 'uniform' or 'proportional', got {language_sampling!r}")

    def next_batch(self) -> Batch:
        lang = self.langs[int(self.rng.choice(len(self.langs), p=self.p))]
        return Batch("xx", lang, tuple(self.pools[lang].take(self.batch_size)))


class PoolSampler(BatchSampler):
    """``xx-mixed`` or ``xy``: batches drawn from one pool of pairs (uniform over the pairs)."""

    def __init__(self, kind: str, pool: PairPool, batch_size: int) -> None:
        super().__init__(batch_size)
        self.kind = kind
        self.pool = pool
        pool.check_fits(batch_size)

    def next_batch(self) -> Batch:
        return Batch(self.kind, None, tuple(self.pool.take(self.batch_size)))


class CrossLingualSampler(BatchSampler):
    """``xy`` drawn pair by pair: first an ordered language pair, then the next pair of its pool.

    ``xy_sampling="language-pairs"``: the language pair is uniform over the ordered pairs with data;
    ``"languages"``: the query language is uniform, then the passage language uniform among those it has
    pairs with. (``"pairs"`` -- uniform over all pairs -- is a plain ``PoolSampler``.)
    """

    def __init__(self, pools: Mapping[tuple[str, str], PairPool], batch_size: int, rng: np.random.Generator,
                 xy_sampling: str = "language-pairs") -> None:
        super().__init__(batch_size)
        self.keys = sorted(pools)
        self.pools = pools
        self.rng = rng
        for pool in pools.values():
            pool.check_fits(batch_size)
        if xy_sampling == "language-pairs":
            self.p = np.full(len(self.keys), 1.0 / len(self.keys))
        elif xy_sampling == "languages":
            query_langs = sorted({a for a, _ in self.keys})
            n_targets = Counter(a for a, _ in self.keys)
            self.p = np.array([1.0 / len(query_langs) / n_targets[a] for a, _ in self.keys])
        else:
            raise ValueError(f"xy_sampling must be one of {XY_SAMPLINGS}, got {xy_sampling!r}")

    def next_batch(self) -> Batch:
        used: set[int] = set()
        pairs = []
        for _ in range(self.batch_size):
            key = self.keys[int(self.rng.choice(len(self.keys), p=self.p))]
            pairs += self.pools[key].take(1, exclude=used)
        return Batch("xy", None, tuple(pairs))


class MultiSourceSampler(BatchSampler):
    """Each batch from one source: the source drawn in proportion to its pairs, or uniformly."""

    def __init__(self, samplers: Mapping[str, BatchSampler], sizes: Mapping[str, int], rng: np.random.Generator,
                 source_sampling: str = "proportional") -> None:
        batch_sizes = {s.batch_size for s in samplers.values()}
        if len(batch_sizes) != 1:
            raise ValueError(f"every source's sampler needs the same batch size, got {sorted(batch_sizes)}")
        super().__init__(batch_sizes.pop())
        self.names = sorted(samplers)
        self.samplers = samplers
        self.rng = rng
        if source_sampling == "proportional":
            w = np.array([sizes[n] for n in self.names], dtype=float)
            self.p = w / w.sum()
        elif source_sampling == "uniform":
            self.p = np.full(len(self.names), 1.0 / len(self.names))
        else:
            raise ValueError(f"source_sampling must be one of {SOURCE_SAMPLINGS}, got {source_sampling!r}")

    def next_batch(self) -> Batch:
        name = self.names[int(self.rng.choice(len(self.names), p=self.p))]
        return dataclasses.replace(self.samplers[name].next_batch(), source=name)


class HybridSampler(BatchSampler):
    """``hybrid``: each batch is monolingual with probability ``alpha``, else cross-lingual."""

    def __init__(self, mono: BatchSampler, cross: BatchSampler, alpha: float, rng: np.random.Generator) -> None:
        super().__init__(mono.batch_size)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.mono, self.cross, self.alpha, self.rng = mono, cross, alpha, rng

    def next_batch(self) -> Batch:
        return self.mono.next_batch() if self.rng.random() < self.alpha else self.cross.next_batch()


# -- building pairs from data ------------------------------------------------------------------

def answer_groups(answers: Mapping[tuple[str, str], str]) -> dict[str, int]:
    """Union question ids that share an answer sentence in any language.

    ``answers`` maps (qid, lang) -> answer sentence key. Returns qid -> group number (numbered by first
    appearance in sorted qid order, so the result is deterministic).
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    by_sentence: dict[str, list[str]] = defaultdict(list)
    for (qid, _lang), key in answers.items():
        parent.setdefault(qid, qid)
        by_sentence[key].append(qid)
    for qids in by_sentence.values():
        root = find(qids[0])
        for q in qids[1:]:
            r = find(q)
            if r != root:
                parent[r] = root
    numbering: dict[str, int] = {}
    out = {}
    for qid in sorted(parent):
        out[qid] = numbering.setdefault(find(qid), len(numbering))
    return out


def monolingual_pairs(langs_of: Mapping[str, Sequence[str]]) -> list[Pair]:
    return [Pair(q, lang, lang) for q in sorted(langs_of) for lang in sorted(langs_of[q])]


def crosslingual_pairs(langs_of: Mapping[str, Sequence[str]]) -> list[Pair]:
    return [Pair(q, a, b) for q in sorted(langs_of) for a in sorted(langs_of[q]) for b in sorted(langs_of[q])
            if a != b]


def build_sampler(strategy: str, langs_of: Mapping[str, Sequence[str]], groups: Mapping[str, int],
                  batch_size: int, seed: int, alpha: float = 0.5,
                  language_sampling: str = "uniform", xy_sampling: str = "pairs") -> BatchSampler:
    """The sampler of a named strategy over the questions ``langs_of`` (qid -> languages it exists in).

    Every random stream is derived from ``seed``; the same arguments give the same batches.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    if xy_sampling not in XY_SAMPLINGS:
        raise ValueError(f"xy_sampling must be one of {XY_SAMPLINGS}, got {xy_sampling!r}")
    ss = np.random.SeedSequence(seed)
    r_choice, r_mono, r_cross, r_mixed = (np.random.default_rng(s) for s in ss.spawn(4))

    def mono() -> MonolingualSampler:
        by_lang: dict[str, list[Pair]] = defaultdict(list)
        for p in monolingual_pairs(langs_of):
            by_lang[p.query_lang].append(p)
        child = r_mono.spawn(len(by_lang) + 1)
        pools = {lang: PairPool(ps, groups, child[i], name=f"xx[{lang}]")
                 for i, (lang, ps) in enumerate(sorted(by_lang.items()))}
        return MonolingualSampler(pools, batch_size, child[-1], language_sampling)

    def cross() -> BatchSampler:
        if xy_sampling == "pairs":
            return PoolSampler("xy", PairPool(crosslingual_pairs(langs_of), groups, r_cross, name="xy"),
                               batch_size)
        by_pair: dict[tuple[str, str], list[Pair]] = defaultdict(list)
        for p in crosslingual_pairs(langs_of):
            by_pair[p.query_lang, p.passage_lang].append(p)
        child = r_cross.spawn(len(by_pair) + 1)
        pools = {key: PairPool(ps, groups, child[i], name=f"xy[{key[0]}-{key[1]}]")
                 for i, (key, ps) in enumerate(sorted(by_pair.items()))}
        return CrossLingualSampler(pools, batch_size, child[-1], xy_sampling)

    if strategy == "xx":
        return mono()
    if strategy == "xy":
        return cross()
    if strategy == "xx-mixed":
        return PoolSampler("xx-mixed", PairPool(monolingual_pairs(langs_of), groups, r_mixed, name="xx-mixed"),
                           batch_size)
    return HybridSampler(mono(), cross(), alpha, r_choice)
