"""Building the batch sampler of a trained strategy of the registry (:mod:`hybridbatch.strategies`).

Random streams: ``SeedSequence(seed)`` child 0 draws the hybrid schedule, child 1 the ``xx`` sampler, child 2
the ``xy`` sampler and child 3 the ``xx-mixed`` sampler, so a hybrid's monolingual (cross-lingual) batches are
exactly the ``xx`` (``xy``) run's with the same seed; in particular alpha = 1 (0) gives the ``xx`` (``xy``)
batch sequence. Needs numpy only.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from hybridbatch.sampling.samplers import (ALPHA_SCHEDULES, LANGUAGE_SAMPLINGS, XY_SAMPLINGS, BatchSampler,
                                           HybridSampler, QuestionTable, crosslingual_sampler, mixed_sampler,
                                           monolingual_sampler)
from hybridbatch.strategies import TRAINED, get

# child index of SeedSequence(seed) for each random stream (fixed: changing one changes every run's batches)
CHOICE_STREAM, MONO_STREAM, CROSS_STREAM, MIXED_STREAM = range(4)


class BuildContext:
    """The arguments of ``build_sampler`` for a builder: the source as a ``QuestionTable`` (built on first
    use, shared by the builders of one call), the settings, and the seeded random streams (``rng``)."""

    def __init__(self, langs_of: Mapping[str, Sequence[str]], groups: Mapping[str, int], batch_size: int,
                 seed: int, alpha: float, language_sampling: str, xy_sampling: str, steps: int | None,
                 alpha_schedule: str) -> None:
        self.langs_of, self.groups = langs_of, groups
        self.batch_size, self.seed, self.alpha = batch_size, seed, alpha
        self.language_sampling, self.xy_sampling = language_sampling, xy_sampling
        self.steps, self.alpha_schedule = steps, alpha_schedule
        self._table: QuestionTable | None = None

    @property
    def table(self) -> QuestionTable:
        if self._table is None:
            self._table = QuestionTable(self.langs_of, self.groups)
        return self._table

    def rng(self, stream: int) -> np.random.Generator:
        """Child ``stream`` of ``SeedSequence(seed)`` (the same as ``SeedSequence(seed).spawn(n)[stream]``)."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(stream,)))


def build_xx(ctx: BuildContext) -> BatchSampler:
    return monolingual_sampler(ctx.table, ctx.batch_size, ctx.rng(MONO_STREAM), ctx.language_sampling)


def build_xx_mixed(ctx: BuildContext) -> BatchSampler:
    return mixed_sampler(ctx.table, ctx.batch_size, ctx.rng(MIXED_STREAM))


def build_xy(ctx: BuildContext) -> BatchSampler:
    return crosslingual_sampler(ctx.table, ctx.batch_size, ctx.rng(CROSS_STREAM), ctx.xy_sampling)


def build_hybrid(ctx: BuildContext) -> BatchSampler:
    if ctx.alpha_schedule == "exact" and 0.0 < ctx.alpha < 1.0 and ctx.steps is None:
        raise ValueError(f"hybrid with alpha_schedule='exact' and alpha={ctx.alpha} needs steps (the number "
                         f"of batches per block of exactly round(alpha * steps) monolingual ones)")
    return HybridSampler(build_xx(ctx), build_xy(ctx), ctx.alpha, ctx.rng(CHOICE_STREAM),
                         schedule=ctx.alpha_schedule, steps=ctx.steps)


def build_sampler(strategy: str, langs_of: Mapping[str, Sequence[str]], groups: Mapping[str, int],
                  batch_size: int, seed: int, alpha: float = 0.5, language_sampling: str = "uniform",
                  xy_sampling: str = "pairs", *, steps: int | None = None,
                  alpha_schedule: str = "exact") -> BatchSampler:
    """The sampler of a trained strategy over the questions ``langs_of`` (qid -> languages it exists in).

    ``groups``: qid -> answer group (``samplers.answer_groups``). ``alpha``, ``steps`` and
    ``alpha_schedule`` apply to ``hybrid``: with ``alpha_schedule="exact"`` (default) each block of
    ``steps`` batches holds exactly ``round(alpha * steps)`` monolingual ones (``steps`` required when
    0 < alpha < 1); ``"coin"`` draws each batch's kind independently. Every random stream is derived from
    ``seed``; the same arguments give the same batches. Raises ``ValueError`` for an unknown or untrained
    strategy, a bad setting, or a batch size above the distinct answer groups of a pool (naming it).
    """
    spec = get(strategy)
    if not spec.trained:
        raise ValueError(f"strategy {strategy!r} ({spec.label}) is a reference system; it has no sampler "
                         f"(trained strategies: {', '.join(TRAINED)})")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if alpha_schedule not in ALPHA_SCHEDULES:
        raise ValueError(f"alpha_schedule must be one of {ALPHA_SCHEDULES}, got {alpha_schedule!r}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if xy_sampling not in XY_SAMPLINGS:
        raise ValueError(f"xy_sampling must be one of {XY_SAMPLINGS}, got {xy_sampling!r}")
    if language_sampling not in LANGUAGE_SAMPLINGS:
        raise ValueError(f"language_sampling must be one of {LANGUAGE_SAMPLINGS}, got {language_sampling!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ctx = BuildContext(langs_of, groups, batch_size, seed, alpha, language_sampling, xy_sampling, steps,
                       alpha_schedule)
    return spec.builder()(ctx)
