"""The one definition of a cross-dataset fold (params.yaml ``folds``; docs/PROTOCOL.md §1.3): train on one
LAReQA set, evaluate zero-shot on the other. :func:`fold_from` validates one entry of the section; the stages read
it through :func:`hybridbatch.params.load_fold`, the report through :func:`hybridbatch.grid.fold_spec`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


class FoldError(ValueError):
    """A `folds` entry of params.yaml that is missing or malformed."""


@dataclass(frozen=True)
class Fold:
    """One cross-dataset fold: train on ``train``, evaluate zero-shot on ``eval`` (docs/PROTOCOL.md §1)."""

    name: str
    train: str  # training dataset (prepared table name, e.g. mlqa_r)
    eval: str  # evaluation dataset, never seen in training
    language_order: tuple[str, ...]  # the fixed order of the nested training-language subsets

    def first_languages(self, n: int | None) -> list[str] | None:
        """The first ``n`` languages of ``language_order`` (``None``: all of the training dataset)."""
        if n is None:
            return None
        if not 1 <= n <= len(self.language_order):
            raise FoldError(f"fold {self.name}: cannot take {n} training languages from language_order "
                            f"{list(self.language_order)}")
        return list(self.language_order[:n])

    def training_languages(self, prepared_dir: str | os.PathLike, n: int | None = None) -> list[str]:
        """The languages a run of this fold trains on: the first ``n`` of ``language_order``, or (``None``)
        every language of the training dataset in the prepared tables -- also the "seen" languages of the
        zero-shot and BM25 references, so their seen/unseen split lines up with the trained runs'."""
        if n is not None:
            return sorted(self.first_languages(n))
        import pandas as pd  # noqa: PLC0415 -- only stages that need the tables pay for pandas

        questions = pd.read_parquet(Path(prepared_dir) / "questions.parquet", columns=["dataset", "lang"])
        return sorted(set(questions.loc[questions["dataset"] == self.train, "lang"]))


def fold_from(folds: Mapping, name: str, source: str) -> Fold:
    """``folds[name]`` validated; :class:`FoldError` names ``source`` (the params file), the fold and the value."""
    if name not in folds:
        raise FoldError(f"{source}: fold {name!r} is not in the `folds` section (has {sorted(folds)})")
    spec = folds[name]
    where = f"{source}: folds.{name}"
    if not isinstance(spec, dict) or set(spec) != {"train", "eval", "language_order"}:
        raise FoldError(f"{where} must be a mapping with exactly the keys train, eval, language_order; got {spec!r}")
    if not all(isinstance(spec[k], str) for k in ("train", "eval")):
        raise FoldError(f"{where}: train and eval must be dataset names, got {spec['train']!r}, {spec['eval']!r}")
    if spec["train"] == spec["eval"]:
        raise FoldError(f"{where}: train and eval are both {spec['train']!r}; the protocol is cross-dataset")
    order = spec["language_order"]
    if not isinstance(order, list) or not order or not all(isinstance(x, str) for x in order) \
            or len(set(order)) != len(order):
        raise FoldError(f"{where}.language_order must be a non-empty list of distinct language codes, got {order!r}")
    return Fold(name, spec["train"], spec["eval"], tuple(order))


