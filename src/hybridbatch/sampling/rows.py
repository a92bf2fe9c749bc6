"""The strategies' batch samplers over a user's own table of rows (numpy only, the light core).

A *row* is one question in one language: ``qid`` (the question id, shared by its translations), ``lang``,
the query text and the passage text (its answer in that language), and optionally an answer ``group``.
Only ``qid``, ``lang`` and ``group`` matter here; the texts stay with the caller (a ``datasets.Dataset``, a
DataFrame, lists). A training pair of a strategy is (qid, query language, passage language)
(:class:`hybridbatch.sampling.pools.Pair`); over rows it is::

    (query_row, passage_row) = (the row of qid in the query language, the row of qid in the passage language)

the query text read from ``query_row`` and the passage text from ``passage_row`` (the same row for a
monolingual pair). :class:`RowSampler` builds the project's own sampler (:func:`build_sampler`) over the
table's questions and translates each of its batches, so for the same settings and seed it gives exactly the
batches of ``build_sampler`` and keeps every guarantee of :mod:`hybridbatch.sampling.samplers`: exact alpha
for ``hybrid`` (``alpha_schedule="exact"``), no answer group twice in a batch, one kind (and, for ``xx``, one
language) per *global* batch -- under data parallelism every rank builds the same sampler and keeps
``RowBatch.shard(rank, world_size)``.

Requirements on the table: every (qid, lang) appears once; a question's rows agree on its group. Without
groups, questions are linked (like ``answer_groups`` does for the vendored data) when they share a passage
text, if passages are given, else every question is its own group. Memory: O(rows) (one index entry per row).
"""

from __future__ import annotations

import dataclasses
from typing import Hashable, Iterator, Sequence

from hybridbatch.sampling.build import build_sampler
from hybridbatch.sampling.pools import Pair, answer_groups
from hybridbatch.sampling.samplers import Batch, BatchSampler


@dataclasses.dataclass(frozen=True)
class RowBatch:
    """One batch as row indices: pair ``i`` is (``query_rows[i]``, ``passage_rows[i]``).

    ``kind`` / ``lang`` are the drawn batch's (``Batch``); ``pairs`` the strategy's pairs in the same order.
    """

    kind: str
    lang: str | None
    query_rows: tuple[int, ...]
    passage_rows: tuple[int, ...]
    pairs: tuple[Pair, ...]

    def __len__(self) -> int:
        return len(self.pairs)

    def shard(self, rank: int, world_size: int) -> "RowBatch":
        """This rank's contiguous slice of a global batch (rank order = global order), as ``Batch.shard``."""
        n = len(self.pairs)
        if not 0 <= rank < world_size or n % world_size:
            raise ValueError(f"cannot split a batch of {n} pairs into {world_size} equal shards (rank {rank})")
        k = n // world_size
        cut = slice(rank * k, (rank + 1) * k)
        return dataclasses.replace(self, query_rows=self.query_rows[cut], passage_rows=self.passage_rows[cut],
                                   pairs=self.pairs[cut])


class RowTable:
    """The index of a table of rows: ``row_of[(qid, lang)]``, each question's languages, its answer group.

    ``qids`` and ``langs`` are the row columns (any sequences of the same length; qids are compared as
    strings). ``groups`` (optional, one per row, hashable) are the answer groups; ``passages`` (optional, one
    per row) derive them when ``groups`` is None (questions sharing a passage text share a group). Raises
    ``ValueError`` for columns of different lengths, a duplicate (qid, lang) or a question whose rows
    disagree on its group.
    """

    def __init__(self, qids: Sequence, langs: Sequence, groups: Sequence[Hashable] | None = None,
                 passages: Sequence[str] | None = None) -> None:
        n = len(qids)
        for name, col in (("langs", langs), ("groups", groups), ("passages", passages)):
            if col is not None and len(col) != n:
                raise ValueError(f"{name} has {len(col)} values for {n} rows")
        self.n_rows = n
        self.row_of: dict[tuple[str, str], int] = {}
        self.langs_of: dict[str, list[str]] = {}
        for i, (q, lang) in enumerate(zip(map(str, qids), map(str, langs))):
            if (q, lang) in self.row_of:
                raise ValueError(f"rows {self.row_of[(q, lang)]} and {i} are both question {q!r} in {lang!r}")
            self.row_of[(q, lang)] = i
            self.langs_of.setdefault(q, []).append(lang)
        self.groups = self._groups(qids, langs, groups, passages)

    def _groups(self, qids, langs, groups, passages) -> dict[str, int]:
        if groups is None and passages is None:
            return {q: i for i, q in enumerate(sorted(self.langs_of))}
        if groups is None:
            return answer_groups({(str(q), str(lang)): p for q, lang, p in zip(qids, langs, passages)})
        code: dict[Hashable, int] = {}
        out: dict[str, int] = {}
        for i, (q, g) in enumerate(zip(map(str, qids), groups)):
            c = code.setdefault(g, len(code))
            if out.setdefault(q, c) != c:
                raise ValueError(f"question {q!r} has rows in different answer groups (row {i})")
        return out

    def __len__(self) -> int:
        return self.n_rows

    def rows(self, batch: Batch) -> RowBatch:
        """``batch`` of the strategy sampler as row indices."""
        row_of = self.row_of
        return RowBatch(batch.kind, batch.lang,
                        tuple(row_of[(p.qid, p.query_lang)] for p in batch.pairs),
                        tuple(row_of[(p.qid, p.passage_lang)] for p in batch.pairs), batch.pairs)


class RowSampler:
    """Infinite batches of (query row, passage row) pairs of a registered strategy over a table of rows.

    ``strategy`` and the keyword settings (``alpha``, ``steps``, ``alpha_schedule``, ``language_sampling``,
    ``xy_sampling``) are those of :func:`hybridbatch.sampling.build.build_sampler`; ``batch_size`` is the
    *global* batch (all ranks together). ``RowSampler.from_columns(qids, langs, ...)`` indexes the columns;
    ``next_batch()`` returns a ``RowBatch``; iterating yields them forever.
    """

    def __init__(self, table: RowTable, strategy: str, batch_size: int, seed: int = 0, **settings) -> None:
        self.table, self.strategy, self.batch_size, self.seed = table, strategy, batch_size, seed
        self.settings = settings
        self.sampler: BatchSampler = build_sampler(strategy, table.langs_of, table.groups, batch_size, seed,
                                                   **settings)

    @classmethod
    def from_columns(cls, qids: Sequence, langs: Sequence, strategy: str, batch_size: int, seed: int = 0, *,
                     groups: Sequence[Hashable] | None = None, passages: Sequence[str] | None = None,
                     **settings) -> "RowSampler":
        return cls(RowTable(qids, langs, groups, passages), strategy, batch_size, seed, **settings)

    def next_batch(self) -> RowBatch:
        return self.table.rows(self.sampler.next_batch())

    def __iter__(self) -> Iterator[RowBatch]:
        while True:
            yield self.next_batch()


def flat_indices(batch: RowBatch) -> list[int]:
    """The row indices of a batch for a loader that fetches one row per index: the ``k`` query rows, then
    the ``k`` passage rows (pair ``i`` = positions ``i`` and ``k + i``; see ``integrations``)."""
    return [*batch.query_rows, *batch.passage_rows]
