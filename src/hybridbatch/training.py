"""Contrastive fine-tuning of a dual encoder with a batch sampling strategy (PAPER.md §2)."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from .encoder import DualEncoder
from .io import atomic_dir, write_json
from .losses import info_nce
from .samplers import Batch, build_sampler, answer_groups

logger = logging.getLogger(__name__)


class TrainConfig(BaseModel):
    """The ``train`` section of params.yaml (every field documented there)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = "mlqa_r"
    languages: list[str] | None = None
    alpha: float = Field(0.5, ge=0.0, le=1.0)
    language_sampling: Literal["uniform", "proportional"] = "uniform"
    batch_size: int = Field(32, ge=2)
    steps: int = Field(120, ge=1)
    lr: float = Field(3e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int = Field(12, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    temperature: float = Field(0.05, gt=0)
    negatives: Literal["in-batch", "paper"] = "in-batch"
    max_query_length: int = Field(64, ge=8)
    max_passage_length: int = Field(128, ge=8)
    freeze_word_embeddings: bool = False
    chunk_tokens: int = Field(1024, ge=64)
    val_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    val_batches: int = Field(4, ge=0)
    eval_every: int = Field(40, ge=1)
    seed: int = 13
    threads: int | None = None


@dataclasses.dataclass
class TrainingData:
    """Parallel questions with their answer sentences: everything a sampler and a collator need."""

    questions: dict[tuple[str, str], str]  # (qid, lang) -> question text
    answers: dict[tuple[str, str], str]  # (qid, lang) -> answer sentence text
    answer_keys: dict[tuple[str, str], str]  # (qid, lang) -> answer sentence key
    langs_of: dict[str, list[str]]  # qid -> languages it exists in

    @classmethod
    def from_prepared(cls, prepared_dir: str | os.PathLike, dataset: str,
                      languages: list[str] | None = None) -> "TrainingData":
        prepared_dir = Path(prepared_dir)
        qs = pd.read_parquet(prepared_dir / "questions.parquet")
        cs = pd.read_parquet(prepared_dir / "candidates.parquet", columns=["dataset", "key", "sentence"])
        qs = qs[qs["dataset"] == dataset]
        if qs.empty:
            raise ValueError(f"{prepared_dir / 'questions.parquet'}: no questions of dataset {dataset!r}")
        if languages is not None:
            missing = sorted(set(languages) - set(qs["lang"]))
            if missing:
                raise ValueError(f"train.languages {missing} are not in dataset {dataset!r} "
                                 f"(has {sorted(set(qs['lang']))})")
            qs = qs[qs["lang"].isin(languages)]
        sentence = dict(zip(cs.loc[cs["dataset"] == dataset, "key"], cs.loc[cs["dataset"] == dataset, "sentence"]))
        data = cls({}, {}, {}, defaultdict(list))
        for qid, lang, question, key in qs[["qid", "lang", "question", "answer_key"]].itertuples(index=False):
            data.questions[qid, lang] = question
            data.answers[qid, lang] = sentence[key]
            data.answer_keys[qid, lang] = key
            data.langs_of[qid].append(lang)
        data.langs_of = dict(data.langs_of)
        return data

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
                            {q: ls for q, ls in self.langs_of.items() if q in qids})

    def texts(self, batch: Batch) -> tuple[list[str], list[str]]:
        return ([self.questions[p.qid, p.query_lang] for p in batch.pairs],
                [self.answers[p.qid, p.passage_lang] for p in batch.pairs])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_lambda(warmup: int, total: int):
    """Linear warm-up to the peak learning rate, then linear decay to 0."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))
    return f


class Trainer:
    def __init__(self, encoder: DualEncoder, cfg: TrainConfig) -> None:
        self.encoder, self.cfg = encoder, cfg
        if cfg.freeze_word_embeddings:
            self.encoder.model.get_input_embeddings().weight.requires_grad_(False)
        params = [p for p in encoder.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]  # biases and LayerNorm weights: no weight decay
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr,
                                     fused=True)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(cfg.warmup_steps, cfg.steps))

    def loss(self, data: TrainingData, batch: Batch) -> torch.Tensor:
        queries, passages = data.texts(batch)
        q = self.encoder.embed(queries, "query", max_length=self.cfg.max_query_length,
                               max_tokens=self.cfg.chunk_tokens)
        p = self.encoder.embed(passages, "passage", max_length=self.cfg.max_passage_length,
                               max_tokens=self.cfg.chunk_tokens)
        return info_nce(q, p, temperature=self.cfg.temperature, negatives=self.cfg.negatives)

    def step(self, data: TrainingData, batch: Batch) -> float:
        self.encoder.train()
        loss = self.loss(data, batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.encoder.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        return float(loss.detach())

    @torch.no_grad()
    def validate(self, data: TrainingData, batches: list[Batch]) -> float:
        self.encoder.eval()
        return float(np.mean([float(self.loss(data, b)) for b in batches]))


def validation_batches(data: TrainingData, cfg: TrainConfig) -> list[Batch]:
    """A fixed set of held-out batches, half monolingual and half cross-lingual, the same for every strategy."""
    if not data.langs_of or cfg.val_batches == 0:
        return []
    groups = answer_groups(data.answer_keys)
    size = min(cfg.batch_size, len(set(groups.values())))
    out: list[Batch] = []
    for kind in ("xx", "xy"):
        try:
            sampler = build_sampler(kind, data.langs_of, groups, size, seed=cfg.seed + 1)
        except ValueError:  # e.g. no cross-lingual pair in a one-language run
            continue
        out += [sampler.next_batch() for _ in range((cfg.val_batches + 1) // 2)]
    return out


def train(base_model: str | os.PathLike, prepared_dir: str | os.PathLike, strategy: str, cfg: TrainConfig,
          out_dir: str | os.PathLike, live_dir: str | os.PathLike) -> dict:
    """Fine-tune ``base_model`` with ``strategy``; write the checkpoint to ``out_dir`` atomically.

    Logs curves with dvclive to ``live_dir`` and returns a summary dict.
    """
    from dvclive import Live

    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    seed_everything(cfg.seed)
    data = TrainingData.from_prepared(prepared_dir, cfg.dataset, cfg.languages)
    train_data, val_data = data.split(cfg.val_fraction, cfg.seed)
    groups = answer_groups(train_data.answer_keys)
    sampler = build_sampler(strategy, train_data.langs_of, groups, cfg.batch_size, cfg.seed, cfg.alpha,
                            cfg.language_sampling)
    val = validation_batches(val_data, cfg)
    logger.info("train %s on %s: %d questions (%d languages), %d held out; %d steps x %d pairs",
                strategy, cfg.dataset, len(train_data.langs_of),
                len({lang for ls in train_data.langs_of.values() for lang in ls}),
                len(val_data.langs_of), cfg.steps, cfg.batch_size)

    encoder = DualEncoder(base_model)
    trainer = Trainer(encoder, cfg)
    kinds: Counter[str] = Counter()
    langs: Counter[str] = Counter()
    history = []
    start = time.perf_counter()
    with Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None) as live:
        live.log_params({"strategy": strategy, **cfg.model_dump()})
        if val:
            val_loss = trainer.validate(val_data, val)
            live.log_metric("val/loss", val_loss)
            history.append({"step": 0, "val_loss": val_loss})
        bar = tqdm(range(cfg.steps), desc=f"train {strategy}", unit="step", mininterval=10)
        for step in bar:
            batch = sampler.next_batch()
            kinds[batch.kind] += 1
            for p in batch.pairs:
                langs[f"{p.query_lang}-{p.passage_lang}"] += 1
            lr = trainer.sched.get_last_lr()[0]
            loss = trainer.step(train_data, batch)
            elapsed = time.perf_counter() - start
            live.log_metric("train/loss", loss)
            live.log_metric("train/lr", lr)
            live.log_metric("train/pairs_per_s", (step + 1) * cfg.batch_size / elapsed)
            for k in ("xx", "xx-mixed", "xy"):
                live.log_metric(f"batches/{k}", kinds[k])
            if val and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
                val_loss = trainer.validate(val_data, val)
                live.log_metric("val/loss", val_loss)
                history.append({"step": step + 1, "val_loss": val_loss})
            bar.set_postfix(loss=f"{loss:.3f}", kind=batch.kind)
            live.next_step()
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at step {step}")
        seconds = time.perf_counter() - start
        summary = {"strategy": strategy, "steps": cfg.steps, "batch_size": cfg.batch_size,
                   "batches": dict(kinds), "pairs_by_language": dict(sorted(langs.items())),
                   "train_seconds": round(seconds, 1), "pairs_per_s": round(cfg.steps * cfg.batch_size / seconds, 2),
                   "validation": history, "train_questions": len(train_data.langs_of),
                   "parameters": encoder.num_parameters()}
        live.summary["train_seconds"] = summary["train_seconds"]
    with atomic_dir(out_dir) as tmp:
        encoder.save(tmp)
        write_json(Path(tmp) / "training_summary.json", summary)
    logger.info("trained %s in %.0f s (%.1f pairs/s); batches %s", strategy, seconds, summary["pairs_per_s"],
                dict(kinds))
    return summary
