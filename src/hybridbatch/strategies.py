"""The registry of batch sampling strategies (docs/PROTOCOL.md §3.3) and the reference systems shown beside them.

``STRATEGIES`` is the one definition of the strategy names, their paper labels, figure colours and
sampler builders; its insertion order is the display order. Reference systems (``zeroshot``, ``bm25``)
train nothing: their ``build`` is ``None`` (``Strategy.trained`` is False). A trained strategy names its
builder as ``"module:function"`` (``function(ctx: BuildContext) -> BatchSampler``), imported only when a
sampler is built (:func:`hybridbatch.sampling.build.build_sampler`), so that reading the registry -- the
report, the model cards -- needs no sampler code. Adding a strategy is one registry entry and its builder.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Strategy:
    name: str  # "xx"
    label: str  # paper name, e.g. "X-X-mono"
    colour: str  # hex colour for figures
    build: str | None  # "module:function" of the sampler builder (BuildContext -> BatchSampler); None: reference
    description: str = ""

    @property
    def trained(self) -> bool:
        return self.build is not None

    def builder(self) -> Callable:
        """The builder function named by ``build`` (imported now)."""
        if self.build is None:
            raise ValueError(f"strategy {self.name!r} ({self.label}) is a reference system; it has no sampler")
        module, _, function = self.build.partition(":")
        return getattr(importlib.import_module(module), function)


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("zeroshot", "zero-shot", "#7f7f7f", None, "the base encoder without fine-tuning"),
    Strategy("bm25", "BM25 (Mo. only)", "#bcbd22", None, "lexical retrieval; monolingual retrieval only"),
    Strategy("xx", "X-X-mono", "#0173b2", "hybridbatch.sampling.build:build_xx",
             "every batch in one language (query and passage), the language drawn per batch"),
    Strategy("xx-mixed", "X-X (mixed)", "#56b4e9", "hybridbatch.sampling.build:build_xx_mixed",
             "every pair monolingual, languages mixed inside the batch (LAReQA's X-X)"),
    Strategy("xy", "X-Y", "#de8f05", "hybridbatch.sampling.build:build_xy",
             "every pair cross-lingual (query language != passage language)"),
    Strategy("hybrid", "Hybrid", "#029e73", "hybridbatch.sampling.build:build_hybrid",
             "each batch X-X-mono (share alpha) or X-Y"),
)}
ORDER: tuple[str, ...] = tuple(STRATEGIES)
TRAINED: tuple[str, ...] = tuple(name for name, s in STRATEGIES.items() if s.trained)


def get(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(ORDER)}") from None


def label(name: str) -> str:
    """The paper label of a strategy, or ``name`` itself when it is not registered."""
    s = STRATEGIES.get(name)
    return s.label if s is not None else name
