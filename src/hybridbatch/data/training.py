"""Parallel training questions and their answer sentences: what a sampler and a collator need.

A ``TrainingData`` is built from the prepared LAReQA tables (``from_prepared``) or by a training source
(``hybridbatch.data.sources``); several are merged for multi-source training. Validation holds out whole answer
groups (docs/PROTOCOL.md §3), so no answer sentence is on both sides.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from hybridbatch.data.raw import paragraph_of
from hybridbatch.sampling.samplers import Batch, answer_groups


class DataFitError(ValueError):
    """The training data cannot serve the requested run (languages absent, too few answer groups)."""


@dataclasses.dataclass
class TrainingData:
    """Parallel questions with their answer sentences: everything a sampler and a collator need."""

    questions: dict[tuple[str, str], str]  # (qid, lang) -> question text
    answers: dict[tuple[str, str], str]  # (qid, lang) -> answer sentence text
    answer_keys: dict[tuple[str, str], str]  # (qid, lang) -> answer sentence key
    langs_of: dict[str, list[str]]  # qid -> languages it exists in
    negatives: dict[tuple[str, str], tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # (qid, lang) -> hard-negative texts: the other sentences of the answer's paragraph (LAReQA data)

    @classmethod
    def from_prepared(cls, prepared_dir: str | os.PathLike, dataset: str,
                      languages: list[str] | None = None) -> "TrainingData":
        prepared_dir = Path(prepared_dir)
        qs = pd.read_parquet(prepared_dir / "questions.parquet")
        cs = pd.read_parquet(prepared_dir / "candidates.parquet", columns=["dataset", "key", "sentence"])
        cs = cs[cs["dataset"] == dataset]
        qs = qs[qs["dataset"] == dataset]
        if qs.empty:
            raise DataFitError(f"{prepared_dir / 'questions.parquet'}: no questions of dataset {dataset!r}")
        if languages is not None:
            missing = sorted(set(languages) - set(qs["lang"]))
            if missing:
                raise DataFitError(f"{prepared_dir / 'questions.parquet'}: training languages {missing} are not in "
                                   f"dataset {dataset!r} "
                                 f"(has {sorted(set(qs['lang']))})")
            qs = qs[qs["lang"].isin(languages)]
        sentence = dict(zip(cs["key"], cs["sentence"]))
        siblings: dict[str, list[str]] = defaultdict(list)  # paragraph -> its sentence keys
        for key, paragraph in zip(cs["key"], paragraph_of(cs["key"])):
            siblings[paragraph].append(key)
        data = cls({}, {}, {}, defaultdict(list))
        for qid, lang, question, key in qs[["qid", "lang", "question", "answer_key"]].itertuples(index=False):
            data.questions[qid, lang] = question
            data.answers[qid, lang] = sentence[key]
            data.answer_keys[qid, lang] = key
            data.negatives[qid, lang] = tuple(sentence[k] for k in siblings[key.rsplit(":", 1)[0]] if k != key)
            data.langs_of[qid].append(lang)
        data.langs_of = dict(data.langs_of)
        return data

    @classmethod
    def merge(cls, parts: list["TrainingData"]) -> "TrainingData":
        """One table over several sources (their qids must be distinct: sources prefix theirs)."""
        out = cls({}, {}, {}, {})
        for part in parts:
            clash = set(out.langs_of) & set(part.langs_of)
            if clash:
                raise ValueError(f"training sources share question ids, e.g. {sorted(clash)[:3]}")
            for name in ("questions", "answers", "answer_keys", "langs_of", "negatives"):
                getattr(out, name).update(getattr(part, name))
        return out

    def pair_count(self) -> int:
        return sum(len(ls) for ls in self.langs_of.values())

    def split(self, fraction: float, seed: int) -> tuple["TrainingData", "TrainingData"]:
        """Hold out whole answer groups (never a group on both sides) for validation."""
        groups = answer_groups(self.answer_keys)
        ids = sorted(set(groups.values()))
        rng = np.random.default_rng(seed)
        n_val = int(round(fraction * len(ids)))
        val_groups = set(rng.permutation(ids)[:n_val].tolist())
        return (self.subset({q for q, g in groups.items() if g not in val_groups}),
                self.subset({q for q, g in groups.items() if g in val_groups}))

    def subset(self, qids: set[str]) -> "TrainingData":
        keep = lambda d: {k: v for k, v in d.items() if k[0] in qids}  # noqa: E731
        return TrainingData(keep(self.questions), keep(self.answers), keep(self.answer_keys),
                            {q: ls for q, ls in self.langs_of.items() if q in qids}, keep(self.negatives))

    def texts(self, batch: Batch, hard_negatives: int = 0,
              rng: np.random.Generator | None = None) -> tuple[list[str], list[str], list[str]]:
        """Queries, positives and ``hard_negatives`` negatives per pair (pair i's at ``i*k:(i+1)*k``).

        A pair's negatives are drawn (with replacement if needed) from the other sentences of its answer's
        paragraph; a pair with none gets other answers of its passage language instead.
        """
        queries = [self.questions[p.qid, p.query_lang] for p in batch.pairs]
        passages = [self.answers[p.qid, p.passage_lang] for p in batch.pairs]
        negatives: list[str] = []
        if hard_negatives:
            if rng is None:
                raise ValueError("hard negatives need a random generator")
            for p, positive in zip(batch.pairs, passages):
                pool = self.negatives.get((p.qid, p.passage_lang)) or self._fallback(p.passage_lang, positive)
                idx = rng.choice(len(pool), size=hard_negatives, replace=len(pool) < hard_negatives)
                negatives += [pool[int(i)] for i in idx]
        return queries, passages, negatives

    @functools.cached_property
    def answers_by_language(self) -> dict[str, list[str]]:
        by_lang: dict[str, set[str]] = defaultdict(set)
        for (_, lang), text in self.answers.items():
            by_lang[lang].add(text)
        return {lang: sorted(texts) for lang, texts in by_lang.items()}

    def _fallback(self, lang: str, positive: str) -> tuple[str, ...]:
        pool = tuple(t for t in self.answers_by_language[lang] if t != positive)
        if not pool:
            raise ValueError(f"no hard negative available in language {lang!r}")
        return pool
