"""Batch sampling strategies for contrastive training (PAPER.md §2).

A training *pair* is (question id, query language, passage language): the question in one language and
its answer sentence in another (or the same) language. Strategies:

- ``xx``       X-X-mono: the whole batch in one language (query and passage), the language drawn per batch.
- ``xx-mixed`` X-X (LAReQA): every pair monolingual, languages mixed inside the batch.
- ``xy``       X-Y: every pair cross-lingual (query language != passage language).
- ``hybrid``   per batch, ``xx`` with probability alpha, else ``xy``.

Every batch is conflict-free: no two pairs share a *positive group* -- the question ids linked by a
shared answer sentence in any language (several questions share one answer sentence, and answer sentences
are parallel across languages, so such pairs would be false in-batch negatives). Each pool walks through
its pairs in a seeded shuffled order, epoch after epoch, so every pair is used before any repeats.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Iterator, Mapping, Sequence

import numpy as np

STRATEGIES = ("xx", "xx-mixed", "xy", "hybrid")


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

    def take(self, n: int) -> list[Pair]:
        """The next ``n`` pairs of the epoch order whose groups are pairwise distinct.

        A pair that would conflict is not dropped: it keeps its place at the head of the queue for the
        next batch.
        """
        self.check_fits(n)
        chosen: list[int] = []
        used: set[int] = set()
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
                  language_sampling: str = "uniform") -> BatchSampler:
    """The sampler of a named strategy over the questions ``langs_of`` (qid -> languages it exists in).

    Every random stream is derived from ``seed``; the same arguments give the same batches.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
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

    def cross() -> PoolSampler:
        return PoolSampler("xy", PairPool(crosslingual_pairs(langs_of), groups, r_cross, name="xy"), batch_size)

    if strategy == "xx":
        return mono()
    if strategy == "xy":
        return cross()
    if strategy == "xx-mixed":
        return PoolSampler("xx-mixed", PairPool(monolingual_pairs(langs_of), groups, r_mixed, name="xx-mixed"),
                           batch_size)
    return HybridSampler(mono(), cross(), alpha, r_choice)
