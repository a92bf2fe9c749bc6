"""The strategies' batches in sentence-transformers (``SentenceTransformerTrainer``), and the LAReQA evaluator.

Training data: a ``datasets.Dataset`` with one row per question and language -- columns ``anchor`` (the query
text), ``positive`` (the passage text), ``qid``, ``lang`` and optionally ``group`` (answer group; else questions
sharing a passage share a group, see :mod:`hybridbatch.sampling.rows`). Then::

    args = SentenceTransformerTrainingArguments(
        output_dir="out", per_device_train_batch_size=32, max_steps=1000,
        batch_sampler=strategy_batch_sampler("hybrid", alpha=0.5, steps=1000),
        prompts=E5_PROMPTS)                          # {"anchor": "query: ", "positive": "passage: "}
    trainer = StrategyTrainer(model=model, args=args, train_dataset=rows, loss=MultipleNegativesRankingLoss(model))

How a batch travels: a strategy pair (qid, query language, passage language) is two rows -- the query row and
the passage row (:class:`~hybridbatch.sampling.rows.RowBatch`). :class:`StrategyBatchSampler` yields, per batch,
the ``k`` query rows then the ``k`` passage rows (``2k`` indices, so ``sampler.batch_size == 2k``), and
:class:`PairCollator` (installed for the training loader by :class:`StrategyTrainer`) turns those ``2k`` rows
into ``k`` examples ``{anchor: query row's anchor, positive: passage row's positive}`` before the trainer's own
collator (prompts, tokenization). The ``qid`` / ``lang`` / ``group`` columns never reach the loss. The plain
``SentenceTransformerTrainer`` would tokenize the extra columns: use :class:`StrategyTrainer`.

Data parallelism: the global batch is ``per_device_train_batch_size x world_size`` pairs, one kind (and one
language for ``xx``) for all ranks. Every rank's sampler draws the same global batches (same seed) and yields
its ``world_size`` shards in rank order; accelerate's ``BatchSamplerShard`` (the default,
``split_batches=False``) hands batch ``i`` to rank ``i % world_size``, so rank ``r`` trains on shard ``r`` of
each global batch. The world size is read from ``torch.distributed`` (else ``$WORLD_SIZE``, else 1) or given
as ``world_size=``. ``accelerator_config={"split_batches": True}`` would cut pairs apart: StrategyTrainer
refuses it. With gradient accumulation each micro-batch is one strategy batch.

Epochs: the sampler is one infinite stream (as the project's trainer); "epoch" ``e`` is global batches
``[e * n, (e + 1) * n)`` with ``n = batches_per_epoch`` (default: rows // global batch). For the same seed the
sequence is ``build_sampler``'s (``RowSampler``). ``steps`` (hybrid's exact-alpha block) defaults to ``n``.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Iterator

from sentence_transformers import SentenceTransformerTrainer
from sentence_transformers.base.sampler import DefaultBatchSampler
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from hybridbatch.sampling.rows import RowSampler, RowTable, flat_indices

E5_PROMPTS = {"anchor": "query: ", "positive": "passage: "}


def _world_size() -> int:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


class StrategyBatchSampler(DefaultBatchSampler):
    """A sentence-transformers batch sampler yielding a registered strategy's batches over a rows dataset.

    The first six arguments are those the trainer passes (``batch_size`` = pairs per device). Keywords:
    ``strategy`` and the ``build_sampler`` settings (``alpha``, ``steps``, ``alpha_schedule``,
    ``language_sampling``, ``xy_sampling``), ``world_size``, ``batches_per_epoch``, ``sampler_seed``
    (default: the trainer's ``seed``) and the column names. Requires the dataset to hold ``qid`` and ``lang``
    columns, every (qid, lang) once, and every pool of the strategy at least ``batch_size x world_size``
    distinct answer groups (``ValueError`` otherwise). Bind the keywords with :func:`strategy_batch_sampler`.
    """

    def __init__(self, dataset: Any, batch_size: int, drop_last: bool = False, valid_label_columns=None,
                 generator=None, seed: int = 0, *, strategy: str = "hybrid", world_size: int | None = None,
                 batches_per_epoch: int | None = None, sampler_seed: int | None = None, qid_column: str = "qid",
                 lang_column: str = "lang", group_column: str = "group", passage_column: str = "positive",
                 **settings) -> None:
        super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
        self.world_size = _world_size() if world_size is None else int(world_size)
        if self.world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {self.world_size}")
        cols = dataset.column_names
        missing = [c for c in (qid_column, lang_column) if c not in cols]
        if missing:
            raise ValueError(f"the training dataset needs column(s) {missing}; it has {cols}")
        self.table = RowTable(list(dataset[qid_column]), list(dataset[lang_column]),
                              list(dataset[group_column]) if group_column in cols else None,
                              list(dataset[passage_column]) if group_column not in cols and passage_column in cols
                              else None)
        self.pairs_per_device = batch_size
        self.global_batch = batch_size * self.world_size
        self.batches_per_epoch = batches_per_epoch or max(1, len(self.table) // self.global_batch)
        settings.setdefault("steps", self.batches_per_epoch)
        self.strategy, self.settings = strategy, settings
        self.sampler_seed = seed if sampler_seed is None else sampler_seed
        self.batch_size = 2 * batch_size  # indices per yielded list: k query rows + k passage rows
        self._stream, self._position = self._new_stream(), 0

    def _new_stream(self) -> RowSampler:
        return RowSampler(self.table, self.strategy, self.global_batch, self.sampler_seed, **self.settings)

    def __len__(self) -> int:
        return self.batches_per_epoch * self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        start = self.epoch * self.batches_per_epoch
        if self._position != start:  # replay: rebuild the stream and skip to this epoch's first batch
            self._stream, self._position = self._new_stream(), 0
            for _ in range(start):
                self._stream.next_batch()
            self._position = start
        for _ in range(self.batches_per_epoch):
            batch = self._stream.next_batch()
            self._position += 1
            for rank in range(self.world_size):
                yield flat_indices(batch.shard(rank, self.world_size))


def strategy_batch_sampler(strategy: str = "hybrid", **settings) -> functools.partial:
    """``StrategyBatchSampler`` with its keywords bound: the value of ``batch_sampler=`` in
    ``SentenceTransformerTrainingArguments`` (the trainer calls it with the dataset and batch size)."""
    return functools.partial(StrategyBatchSampler, strategy=strategy, **settings)


class PairCollator:
    """Wraps the trainer's collator: ``2k`` rows (``k`` query rows, then ``k`` passage rows) -> ``k`` examples
    ``{anchor: query row's anchor, positive: passage row's positive}``; other columns are dropped."""

    def __init__(self, inner: Any, anchor: str = "anchor", positive: str = "positive") -> None:
        self.inner, self.anchor, self.positive = inner, anchor, positive

    def __getattr__(self, name: str) -> Any:  # valid_label_columns, prompts, ... of the inner collator
        return getattr(self.inner, name)

    def __call__(self, features: list[dict]) -> dict:
        if len(features) % 2:
            raise ValueError(f"PairCollator needs k query rows then k passage rows, got {len(features)} rows "
                             f"(use StrategyBatchSampler as the batch_sampler)")
        k = len(features) // 2
        return self.inner([{self.anchor: q[self.anchor], self.positive: p[self.positive]}
                           for q, p in zip(features[:k], features[k:])])


class StrategyTrainer(SentenceTransformerTrainer):
    """``SentenceTransformerTrainer`` whose training loader pairs the rows of a :class:`StrategyBatchSampler`
    (:class:`PairCollator`); everything else (evaluation loaders included) is the parent's."""

    def _uses_strategy_sampler(self) -> bool:
        bs = self.args.batch_sampler
        target = bs.func if isinstance(bs, functools.partial) else bs
        return isinstance(target, type) and issubclass(target, StrategyBatchSampler)

    def get_train_dataloader(self):
        if not self._uses_strategy_sampler():
            return super().get_train_dataloader()
        if getattr(self.accelerator, "split_batches", False):
            raise ValueError("StrategyBatchSampler needs accelerate's split_batches=False (each yielded list is "
                             "one rank's shard of a global batch)")
        inner = self.data_collator
        self.data_collator = PairCollator(inner)
        try:
            return super().get_train_dataloader()
        finally:
            self.data_collator = inner


class LAReQAEvaluator(SentenceEvaluator):
    """Mo./Cr./Mul. mAP, R@1, R@10 and rank distance of the model on XQuAD-R / MLQA-R (the project's protocol).

    Arguments: those of :func:`hybridbatch.evaluation.any_model.load_eval_set` (``dataset``, ``langs``,
    ``max_questions``, ...), the prefixes (E5's by default) and ``name``. Returns the headline metrics,
    prefixed with ``name``; the primary metric is ``map_mul``.
    """

    KEYS = ("map_mo", "map_cr", "map_mul", "r1_mo", "r1_cr", "r10_mul", "rank_distance")

    def __init__(self, dataset: str = "xquad_r", langs=None, *, query_prefix: str = "query: ",
                 passage_prefix: str = "passage: ", candidate_text: str = "sentence", name: str = "",
                 **load) -> None:
        super().__init__()
        from hybridbatch.evaluation.any_model import load_eval_set

        self.questions, self.candidates = load_eval_set(dataset, langs, **load)
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        self.candidate_text, self.name = candidate_text, name or dataset
        self.primary_metric = "map_mul"

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict:
        from hybridbatch.evaluation.any_model import evaluate_model

        summary = evaluate_model(model, self.questions, self.candidates, candidate_text=self.candidate_text,
                                 query_prefix=self.query_prefix, passage_prefix=self.passage_prefix)
        metrics = self.prefix_name_to_metrics({k: summary[k] for k in self.KEYS}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics
