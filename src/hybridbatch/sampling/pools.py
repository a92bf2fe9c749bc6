"""Pools of training pairs held as arrays: the data side of the samplers (docs/PROTOCOL.md §3.2).

A training *pair* is (question id, query language, passage language). ``QuestionTable`` holds one source as
numpy arrays (O(questions x languages) bytes); a pool is a set of pairs defined by a rule over that table
(a language, an ordered language pair, all monolingual or all cross-lingual pairs), walked epoch after epoch
in a seeded order (``epoch_order``) without materialising the pairs. ``answer_groups`` computes the
positive groups that make a batch conflict-free. Guarantees: see :mod:`hybridbatch.sampling.samplers`.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict, deque
from itertools import chain
from typing import Mapping, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Pair:
    qid: str
    query_lang: str
    passage_lang: str



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

