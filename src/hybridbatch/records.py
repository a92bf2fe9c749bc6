"""The record of one run: the ``config`` block of ``results/<run>/metrics.json``.

One type, written by every stage that produces a run (training completes it in the checkpoint's
``training_summary.json``; evaluation, BM25 and zero-shot evaluation write it into ``metrics.json``) and
read by the report. Every field is always present (``None`` where it does not apply: a BM25 run has no
seed, a zero-shot run no alpha), so the report never guesses a key. Only values that are a function of the
run's inputs belong here: no timings, no host names (a forced re-run must leave git clean).
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class RunRecord:
    run: str
    strategy: str                       # a key of hybridbatch.strategies.STRATEGIES
    fold: str | None = None             # a key of params.yaml `folds`
    train_dataset: str | None = None
    eval_dataset: str | None = None
    seed: int | None = None
    alpha: float | None = None          # hybrid only: the configured P(monolingual batch)
    alpha_schedule: str | None = None   # hybrid only: exact | coin
    mono_share: float | None = None     # realised share of monolingual batches over the whole run
    mono_share_kept: float | None = None  # ... over the batches the kept (early-stopped) model saw
    steps: int | None = None
    best_step: int | None = None        # the saved model's step: early stopping's (keep_best off: the last step)
    batch_size: int | None = None
    n_languages: int | None = None      # --n-languages of a language-ladder run (None: all)
    train_languages: tuple[str, ...] = ()
    base_model: str | None = None
    layers: int | None = None
    parameters: int | None = None
    non_embedding_parameters: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Key-sorted plain data (lists, not tuples) for ``metrics.json``."""
        out = dataclasses.asdict(self)
        out["train_languages"] = list(self.train_languages)
        return dict(sorted(out.items()))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunRecord":
        """Read a ``config`` block; keys this version does not know are an error, missing ones are ``None``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"run record {data.get('run')!r}: unknown key(s) {unknown}")
        values = dict(data)
        values["train_languages"] = tuple(values.get("train_languages") or ())
        return cls(**values)

    def replace(self, **changes: Any) -> "RunRecord":
        if "train_languages" in changes:
            changes["train_languages"] = tuple(changes["train_languages"] or ())
        return dataclasses.replace(self, **changes)
