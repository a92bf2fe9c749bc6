"""Batch samplers for contrastive training (docs/PROTOCOL.md §3.2–§3.4): the building blocks of the strategies.

The named strategies (``xx``, ``xx-mixed``, ``xy``, ``hybrid``) and ``build_sampler`` live in
:mod:`hybridbatch.strategies`, which imports this module (never the other way round); the pairs, the
per-source arrays and the pools the samplers draw from live in :mod:`hybridbatch.sampling.pools`.

A training *pair* is (question id, query language, passage language): the question in one language and
its answer sentence in another (or the same) language. The samplers:

- ``MonolingualSampler``  X-X-mono (``xx``): the whole batch in one language (query and passage), the
  language drawn per batch, uniformly or in proportion to its pairs (``language_sampling``).
- ``PoolSampler``         one pool of pairs, uniform over its pairs: ``xx-mixed`` (X-X of LAReQA: every pair
  monolingual, languages mixed inside the batch) and ``xy`` with ``xy_sampling="pairs"`` (uniform over
  all cross-lingual pairs, i.e. language pairs in proportion to the data).
- ``CrossLingualSampler`` ``xy`` drawn pair by pair: ``xy_sampling="language-pairs"`` (uniform over the
  ordered language pairs with data) or ``"languages"`` (query language uniform, then the passage language
  uniform over those it has pairs with).
- ``HybridSampler``       ``hybrid``: each batch is the monolingual sampler's or the cross-lingual one's.
  ``schedule="exact"`` (default): over every block of ``steps`` batches exactly ``round(alpha * steps)``
  (Python's ``round``, half to even) are monolingual, in a seeded shuffled order; each further block of
  the same length is reshuffled from the same random stream. ``schedule="coin"``: a coin per batch,
  monolingual with probability ``alpha``. At alpha 0 (1) every batch is the cross-lingual (monolingual)
  sampler's own sequence, whatever the schedule.
- ``MultiSourceSampler``  several training sources: the source of each batch drawn in proportion to its
  pairs (the paper's "sampled based on dataset size") or uniformly, so a batch never mixes sources
  (FlagEmbedding's same-source batches).

Every batch is a ``Batch`` whose ``kind`` ("xx", "xx-mixed" or "xy") says what was drawn, so a trainer can
count the realised monolingual share; its ``pairs`` are ``Pair`` objects, built for the drawn batch only.
Under data parallelism every rank builds the same sampler from the same seed, draws the same *global*
batch and keeps its own shard (``Batch.shard``), so all ranks agree on source, kind and language.

Requirements on the data (checked when a sampler is built, with a ``ValueError`` naming the pool):

- ``langs_of`` maps every question id to the languages the question (and its answer) exists in;
  ``groups`` maps every such question id to its *positive group* (``answer_groups``): the question ids
  linked by a shared answer sentence in any language.
- Every pool a sampler draws from (a language for ``xx``, an ordered language pair for ``xy`` in the
  ``language-pairs``/``languages`` modes, all monolingual or all cross-lingual pairs otherwise) must hold
  at least ``batch_size`` distinct answer groups -- lower the batch size or drop the language otherwise.

Guarantees:

- *Conflict-free batches*: no two pairs of a batch share a positive group (several questions share one
  answer sentence, and answer sentences are parallel across languages, so such pairs would be false
  in-batch negatives); in particular no question id appears twice in a batch.
- *Coverage*: each pool walks through its pairs epoch after epoch; every epoch visits every pair of the
  pool exactly once, in a seeded pseudo-random order (a fresh ``rng.permutation`` for pools of up to
  65,536 pairs, a keyed Feistel permutation with cycle walking -- same guarantee, O(1) memory -- above).
  A pair whose group is already in the batch is not dropped: it waits at the head of the queue for the
  next batch. Hence after a pool has handed out ``k * size`` pairs, every pair has been handed out exactly
  ``k`` times except at most ``w`` pairs handed out ``k - 1`` times and ``w`` handed out ``k + 1`` times,
  ``w`` being the pairs waiting at the head (``PairPool.waiting``, usually 0 or a few).
- *Replay*: every random stream is derived from the seed; the same arguments give the same batches.
- *Scale*: a source is held as numpy arrays (``QuestionTable``: O(questions x languages) bytes); no
  per-pair Python object exists except the pairs of drawn batches and a bounded read-ahead (<= 256 per
  pool), so memory and build time do not grow with the number of language pairs, and a batch costs
  O(batch size) whatever the data size.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Iterator, Mapping

import numpy as np

from hybridbatch.sampling.pools import (CrossLingualPool, LanguagePool, MonolingualPool, Pair, PairPool, QuestionTable,  # noqa: F401
                    answer_groups, crosslingual_pairs, monolingual_pairs)  # re-exported: the samplers' data side

XY_SAMPLINGS = ("pairs", "language-pairs", "languages")
LANGUAGE_SAMPLINGS = ("uniform", "proportional")
SOURCE_SAMPLINGS = ("proportional", "uniform")
ALPHA_SCHEDULES = ("exact", "coin")


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


# -- samplers ------------------------------------------------------------------------------------------

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
        if not pools:
            raise ValueError("xx: no training pairs")
        self.langs = sorted(pools)
        self.pools = pools
        self.rng = rng
        for pool in pools.values():
            pool.check_fits(batch_size)
        sizes = np.array([len(pools[lang]) for lang in self.langs], dtype=float)
        if language_sampling == "uniform":
            self.p = np.full(len(self.langs), 1.0 / len(self.langs))
        elif language_sampling == "proportional":
            self.p = sizes / sizes.sum()
        else:
            raise ValueError(f"language_sampling must be one of {LANGUAGE_SAMPLINGS}, got {language_sampling!r}")

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
    pairs with. (``"pairs"`` -- uniform over all pairs -- is a plain ``PoolSampler``.) The batch's language
    pairs are drawn at once (one per position); then each drawn pool, in the order first drawn, fills its
    positions with its next pairs whose groups are not yet in the batch.
    """

    def __init__(self, pools: Mapping[tuple[str, str], PairPool], batch_size: int, rng: np.random.Generator,
                 xy_sampling: str = "language-pairs") -> None:
        super().__init__(batch_size)
        if not pools:
            raise ValueError("xy: no cross-lingual pairs")
        self.keys = sorted(pools)
        self.pools = pools
        self._pool_list = [pools[k] for k in self.keys]
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
            raise ValueError(f"xy_sampling must be 'language-pairs' or 'languages' here, got {xy_sampling!r}")

    def next_batch(self) -> Batch:
        slots: dict[int, list[int]] = {}  # pool -> the batch positions drawn for it, pools in first-drawn order
        for i, k in enumerate(self.rng.choice(len(self.keys), size=self.batch_size, p=self.p).tolist()):
            slots.setdefault(k, []).append(i)
        used: set[int] = set()
        pairs: list[Pair | None] = [None] * self.batch_size
        for k, positions in slots.items():
            for i, pair in zip(positions, self._pool_list[k].take(len(positions), exclude=used)):
                pairs[i] = pair
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
    """``hybrid``: each batch is the monolingual sampler's (share ``alpha``) or the cross-lingual one's.

    ``schedule="exact"``: every block of ``steps`` batches holds exactly ``round(alpha * steps)``
    monolingual ones, in an order shuffled by ``rng`` (each block reshuffled); ``steps`` is required when
    0 < alpha < 1. ``schedule="coin"``: monolingual with probability ``alpha``, a coin per batch.
    """

    def __init__(self, mono: BatchSampler, cross: BatchSampler, alpha: float, rng: np.random.Generator, *,
                 schedule: str = "exact", steps: int | None = None) -> None:
        super().__init__(mono.batch_size)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if schedule not in ALPHA_SCHEDULES:
            raise ValueError(f"alpha_schedule must be one of {ALPHA_SCHEDULES}, got {schedule!r}")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                                  or steps < 1):
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        if schedule == "exact" and 0.0 < alpha < 1.0 and steps is None:
            raise ValueError(f"alpha_schedule='exact' with alpha={alpha} needs steps (the number of batches "
                             f"per block of exactly round(alpha * steps) monolingual ones)")
        self.mono, self.cross, self.alpha, self.rng = mono, cross, alpha, rng
        self.schedule, self.steps = schedule, steps
        self.n_mono = None if steps is None else round(alpha * steps)  # monolingual batches per block
        self._plan = np.zeros(0, dtype=bool)
        self._i = 0

    def _next_is_mono(self) -> bool:
        if self.schedule == "coin":
            return bool(self.rng.random() < self.alpha)
        if self.alpha in (0.0, 1.0):
            return self.alpha == 1.0
        if self._i == len(self._plan):
            self._plan = self.rng.permutation(self.steps) < self.n_mono
            self._i = 0
        self._i += 1
        return bool(self._plan[self._i - 1])

    def next_batch(self) -> Batch:
        return self.mono.next_batch() if self._next_is_mono() else self.cross.next_batch()


# -- samplers of a table (the strategies' building blocks) ----------------------------------------------

def monolingual_sampler(table: QuestionTable, batch_size: int, rng: np.random.Generator,
                        language_sampling: str = "uniform") -> MonolingualSampler:
    """``xx``: one pool per language; pool i gets ``rng.spawn(L + 1)[i]``, the language choice the last."""
    langs = [i for i in range(len(table.langs)) if table.has[:, i].any()]
    child = rng.spawn(len(langs) + 1)
    pools = {table.langs[l]: LanguagePool(table, l, l, child[i], name=f"xx[{table.langs[l]}]")
             for i, l in enumerate(langs)}
    return MonolingualSampler(pools, batch_size, child[-1], language_sampling)


def mixed_sampler(table: QuestionTable, batch_size: int, rng: np.random.Generator) -> PoolSampler:
    """``xx-mixed``: one pool of every monolingual pair."""
    return PoolSampler("xx-mixed", MonolingualPool(table, rng, name="xx-mixed"), batch_size)


def crosslingual_sampler(table: QuestionTable, batch_size: int, rng: np.random.Generator,
                         xy_sampling: str = "pairs") -> BatchSampler:
    """``xy``: one pool of every cross-lingual pair (``pairs``), or one pool per ordered language pair."""
    if xy_sampling not in XY_SAMPLINGS:
        raise ValueError(f"xy_sampling must be one of {XY_SAMPLINGS}, got {xy_sampling!r}")
    if xy_sampling == "pairs":
        return PoolSampler("xy", CrossLingualPool(table, rng, name="xy"), batch_size)
    n_l = len(table.langs)
    has = table.has
    keys = [(a, b) for a in range(n_l) for b in range(n_l) if a != b and bool((has[:, a] & has[:, b]).any())]
    child = rng.spawn(len(keys) + 1)
    pools = {(table.langs[a], table.langs[b]):
             LanguagePool(table, a, b, child[i], name=f"xy[{table.langs[a]}-{table.langs[b]}]")
             for i, (a, b) in enumerate(keys)}
    return CrossLingualSampler(pools, batch_size, child[-1], xy_sampling)


