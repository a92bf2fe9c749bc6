"""Batch samplers for contrastive training (docs/PROTOCOL.md §3.2–§3.4): the building blocks of the strategies.

The named strategies (``xx``, ``xx-mixed``, ``xy``, ``hybrid``) and ``build_sampler`` live in
:mod:`hybridbatch.strategies`, which imports this module (never the other way round).

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
import math
from collections import Counter, defaultdict, deque
from itertools import chain
from typing import Iterator, Mapping, Sequence

import numpy as np

XY_SAMPLINGS = ("pairs", "language-pairs", "languages")
LANGUAGE_SAMPLINGS = ("uniform", "proportional")
SOURCE_SAMPLINGS = ("proportional", "uniform")
ALPHA_SCHEDULES = ("exact", "coin")


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


# -- one source as arrays ----------------------------------------------------------------------------

_BLOCK = 64  # questions per block of the rank directories of language pools


class QuestionTable:
    """The questions of one training source as numpy arrays; no per-pair objects.

    ``qids`` (sorted), ``langs`` (sorted), ``has[q, l]`` (bool, rows padded to a multiple of 64), the same
    bits packed per block of 64 questions (``words[block, l]``, uint64), ``n_langs[q]``, ``ptr``/``lang_idx``
    (each question's sorted language indices, CSR), ``group[q]`` (answer groups renumbered
    0..n_groups-1). Pair enumeration order matches ``monolingual_pairs`` and
    ``crosslingual_pairs`` (questions sorted, then languages sorted).
    """

    def __init__(self, langs_of: Mapping[str, Sequence[str]], groups: Mapping[str, int]) -> None:
        self.qids: list[str] = sorted(langs_of)
        n = len(self.qids)
        # questions share few language lists: code each distinct list (C-level passes, O(questions))
        combos: dict[tuple, int] = dict.fromkeys(map(tuple, map(langs_of.__getitem__, self.qids)))
        for i, combo in enumerate(combos):
            combos[combo] = i
        code = np.fromiter(map(combos.__getitem__, map(tuple, map(langs_of.__getitem__, self.qids))), np.int64, n)
        self.langs: list[str] = sorted(set(chain.from_iterable(combos)))
        n_l = len(self.langs)
        index = {lang: i for i, lang in enumerate(self.langs)}
        combo_has = np.zeros((len(combos), n_l), dtype=bool)
        combo_has[np.repeat(np.arange(len(combos)), [len(c) for c in combos]),
                  [index[lang] for c in combos for lang in c]] = True  # duplicates in a language list collapse
        n_pad = -(-n // _BLOCK) * _BLOCK
        self.has = np.zeros((n_pad, n_l), dtype=bool)
        self.has[:n] = combo_has[code]
        del code, combos, combo_has
        self.n_langs = self.has[:n].sum(axis=1).astype(np.int64)
        self.ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(self.n_langs, out=self.ptr[1:])
        self.lang_idx = np.nonzero(self.has[:n])[1].astype(np.int16 if n_l < 2 ** 15 else np.int32)
        # words[block, l]: bit j set iff question 64 * block + j exists in language l
        n_blocks = n_pad // _BLOCK
        packed = np.packbits(self.has.reshape(n_blocks, _BLOCK, n_l).transpose(0, 2, 1), axis=-1, bitorder="little")
        self.words = np.ascontiguousarray(packed).view("<u8").reshape(n_blocks, n_l)
        del packed
        try:
            raw = np.fromiter(map(groups.__getitem__, self.qids), np.int64, n)
        except KeyError as exc:
            raise ValueError(f"question {exc.args[0]!r} has no answer group") from None
        uniq, code = np.unique(raw, return_inverse=True)
        self.group = code.astype(np.int32 if len(uniq) < 2 ** 31 else np.int64)
        self.n_groups_total = len(uniq)

    def __len__(self) -> int:
        return len(self.qids)

    def distinct_groups(self, questions: np.ndarray) -> int:
        """Distinct answer groups among ``questions`` (a bool mask over questions or an index array)."""
        seen = np.zeros(self.n_groups_total, dtype=bool)
        seen[self.group[questions]] = True
        return int(np.count_nonzero(seen))

    def pair(self, q: int, a: int, b: int) -> Pair:
        return Pair(self.qids[q], self.langs[a], self.langs[b])


# -- epoch orders --------------------------------------------------------------------------------------

_EXPLICIT_MAX = 1 << 16  # pools up to this size get an explicit rng.permutation per epoch
_ROUNDS = 6
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


class _FeistelOrder:
    """A keyed pseudo-random permutation of range(n), evaluated on any positions in O(1) memory.

    A balanced Feistel network on the square domain [0, m)^2, m = ceil(sqrt(n)) (rounds
    (L, R) -> (R, (L + F_k(R)) mod m), F_k = splitmix64(R ^ k)), with cycle walking for the few values
    of [n, m^2) (fewer than 2 sqrt(n) + 1, so walks are rare and short).
    """

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.n = n
        self.m = np.uint64(math.isqrt(n - 1) + 1)
        self.keys = [np.uint64(k) for k in rng.integers(0, 2 ** 63, size=_ROUNDS, dtype=np.int64)]

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        m = self.m
        left, right = x // m, x % m
        for k in self.keys:
            left, right = right, (left + _mix(right ^ k) % m) % m
        return left * m + right

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        out = self._encrypt(np.arange(lo, hi, dtype=np.uint64))
        bad = np.flatnonzero(out >= self.n)
        while bad.size:
            out[bad] = self._encrypt(out[bad])
            bad = bad[out[bad] >= self.n]
        return out.astype(np.int64)


class _ExplicitOrder:
    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.perm = rng.permutation(n)

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        return self.perm[lo:hi]


def epoch_order(n: int, rng: np.random.Generator):
    """One epoch's order of range(n): ``order(lo, hi)`` gives positions lo..hi-1 of the permutation."""
    return _ExplicitOrder(n, rng) if n <= _EXPLICIT_MAX else _FeistelOrder(n, rng)


# -- pools ---------------------------------------------------------------------------------------------

class PairPool:
    """Conflict-free draws from a fixed set of pairs, each pair once per epoch, seeded order.

    Subclasses define the set: ``size`` and ``_decode(positions) -> (question, query lang, passage lang)``
    index arrays, positions being 0..size-1 in the enumeration order of the set. Only a read-ahead of at
    most ``CHUNK`` decoded pairs (plus the pairs waiting after a conflict) is held at a time.
    """

    CHUNK = 256

    def __init__(self, table: QuestionTable, size: int, n_groups: int, rng: np.random.Generator,
                 name: str) -> None:
        if size == 0:
            raise ValueError(f"{name}: no training pairs")
        self.table, self.size, self.n_groups, self.rng, self.name = table, size, n_groups, rng, name
        self.epoch = 0  # epochs started
        self._order = None
        self._pos = size  # position in the current epoch's order; == size: start a new epoch on next read
        self._head: deque[tuple[int, int, int, int]] = deque()  # (group, question, query lang, passage lang)
        self.waiting = 0  # entries at the head of the queue deferred by a conflict (already scanned)

    def __len__(self) -> int:
        return self.size

    def _decode(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def pairs_at(self, pos: Sequence[int] | np.ndarray) -> list[Pair]:
        """The pairs at enumeration positions ``pos`` (``pairs_at(range(len(pool)))``: the whole set)."""
        q, a, b = self._decode(np.asarray(pos, dtype=np.int64))
        return [self.table.pair(*t) for t in zip(q.tolist(), a.tolist(), b.tolist())]

    def _fill(self, want: int) -> None:
        if self._pos >= self.size:
            self._order = epoch_order(self.size, self.rng)
            self._pos = 0
            self.epoch += 1
        hi = min(self.size, self._pos + max(want, self.CHUNK))
        q, a, b = self._decode(self._order(self._pos, hi))
        self._pos = hi
        self._head.extend(zip(self.table.group[q].tolist(), q.tolist(), a.tolist(), b.tolist()))

    def check_fits(self, n: int) -> None:
        if n > self.n_groups:
            raise ValueError(f"{self.name}: batch size {n} exceeds the {self.n_groups} distinct answer "
                             f"groups available; lower the batch size or drop this language")

    def take_indices(self, n: int, exclude: set[int] | None = None) -> list[tuple[int, int, int, int]]:
        """The next ``n`` entries (group, question, query lang, passage lang) of the epoch order whose groups
        are pairwise distinct and not in ``exclude`` (which is updated with the groups taken).

        A pair that would conflict is not dropped: it keeps its place at the head of the queue for the
        next batch.
        """
        self.check_fits(n + len(exclude or ()))
        used = exclude if exclude is not None else set()
        head = self._head
        chosen: list[tuple[int, int, int, int]] = []
        deferred: list[tuple[int, int, int, int]] = []
        scanned, limit = 0, 2 * self.size + len(head) + n
        while len(chosen) < n:
            if not head:
                if scanned > limit:  # cannot happen when n + len(exclude) <= n_groups; guards against bugs
                    raise RuntimeError(f"{self.name}: could not fill a batch of {n}")
                self._fill(n - len(chosen))
            e = head.popleft()
            scanned += 1
            if e[0] in used:
                deferred.append(e)
            else:
                used.add(e[0])
                chosen.append(e)
        head.extendleft(reversed(deferred))
        self.waiting = len(deferred) + max(0, self.waiting - scanned)
        return chosen

    def take(self, n: int, exclude: set[int] | None = None) -> list[Pair]:
        """``take_indices`` as ``Pair`` objects."""
        pair = self.table.pair
        return [pair(q, a, b) for _, q, a, b in self.take_indices(n, exclude)]


class LanguagePool(PairPool):
    """The questions that exist in language ``query_lang`` and in ``passage_lang`` (the same language for
    a monolingual pool), as pairs (qid, query_lang, passage_lang).

    Stored as a rank directory (pool members before each block of 64 questions): O(questions / 64).
    """

    def __init__(self, table: QuestionTable, query_lang: int, passage_lang: int, rng: np.random.Generator,
                 name: str) -> None:
        self.a, self.b = query_lang, passage_lang
        member = table.has[:, query_lang] & table.has[:, passage_lang]
        self.rank = np.zeros(len(member) // _BLOCK + 1, dtype=np.int64)
        np.cumsum(member.reshape(len(member) // _BLOCK, _BLOCK).sum(axis=1), out=self.rank[1:])
        super().__init__(table, int(self.rank[-1]), table.distinct_groups(member[:len(table)]), rng, name)

    def _decode(self, pos):
        blk = np.searchsorted(self.rank, pos, side="right") - 1
        words = self.table.words[blk, self.a] & self.table.words[blk, self.b]
        member = np.unpackbits(words.astype("<u8").view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
        q = blk * _BLOCK + np.argmax(np.cumsum(member, axis=1) > (pos - self.rank[blk])[:, None], axis=1)
        return q, np.full(len(q), self.a), np.full(len(q), self.b)


class MonolingualPool(PairPool):
    """Every monolingual pair (qid, lang, lang) of the table (``monolingual_pairs`` order)."""

    def __init__(self, table: QuestionTable, rng: np.random.Generator, name: str = "xx-mixed") -> None:
        super().__init__(table, int(table.ptr[-1]), table.distinct_groups(table.n_langs > 0), rng, name)

    def _decode(self, pos):
        q = np.searchsorted(self.table.ptr, pos, side="right") - 1
        lang = self.table.lang_idx[pos]
        return q, lang, lang


class CrossLingualPool(PairPool):
    """Every cross-lingual pair (qid, a, b), a != b, of the table (``crosslingual_pairs`` order).

    Pair ``j`` of a question with ``k`` languages is (language ``j // (k-1)``, the ``j % (k-1)``-th of the
    others); ``cum`` holds the first position of each question: O(questions).
    """

    def __init__(self, table: QuestionTable, rng: np.random.Generator, name: str = "xy") -> None:
        k = table.n_langs
        self.cum = np.zeros(len(k) + 1, dtype=np.int64)
        np.cumsum(k * (k - 1), out=self.cum[1:])
        super().__init__(table, int(self.cum[-1]), table.distinct_groups(k > 1), rng, name)

    def _decode(self, pos):
        t = self.table
        q = np.searchsorted(self.cum, pos, side="right") - 1
        j = pos - self.cum[q]
        others = t.n_langs[q] - 1
        ai = j // others
        bi = j % others
        bi += bi >= ai
        start = t.ptr[q]
        return q, t.lang_idx[start + ai], t.lang_idx[start + bi]


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
    """Every monolingual pair as a list (reference enumeration for tests and small data; the samplers
    never build it)."""
    return [Pair(q, lang, lang) for q in sorted(langs_of) for lang in sorted(set(langs_of[q]))]


def crosslingual_pairs(langs_of: Mapping[str, Sequence[str]]) -> list[Pair]:
    """Every cross-lingual pair as a list (reference enumeration for tests and small data)."""
    return [Pair(q, a, b) for q in sorted(langs_of) for a in sorted(set(langs_of[q]))
            for b in sorted(set(langs_of[q])) if a != b]
