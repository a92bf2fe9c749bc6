"""Contrastive fine-tuning of a dual encoder with a batch sampling strategy (PAPER.md §2).

One optimiser step: the sampler draws a *global* batch (one source, one batch type); under data
parallelism each rank embeds its shard. The embeddings of every rank are gathered (without gradients) and
each rank computes the same global InfoNCE loss with its own shard put back in place, back-propagates it
into its own shard, and the parameter gradients are summed across ranks -- exactly the gradient of the
single-process loss on the global batch. With ``grad_cache_chunk`` the same step runs as GradCache
(embeddings without graphs, then chunk-by-chunk replay), so large batches fit small memory.

Resumable: every ``checkpoint_every`` steps the full training state (weights, optimiser, scheduler, RNG,
counters, the dvclive logs so far) is saved atomically under the checkpoint directory; a killed run started
again with the same settings resumes there and ends with the same weights as an uninterrupted run. The
sampler's state is not stored: it is replayed from its seed (drawing is cheap and exact).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import math
import os
import random
import shutil
import signal
import tempfile
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
from .io import atomic_dir, atomic_path, write_json
from .losses import info_nce
from .data import paragraph_of
from .gradcache import cached_backward
from .samplers import Batch, BatchSampler, MultiSourceSampler, answer_groups, build_sampler

logger = logging.getLogger(__name__)


class TrainConfig(BaseModel):
    """The ``train`` section of params.yaml (every field documented there)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = "mlqa_r"
    languages: list[str] | None = None
    sources: list[dict] | None = None
    source_sampling: Literal["proportional", "uniform"] = "proportional"
    alpha: float = Field(0.5, ge=0.0, le=1.0)
    language_sampling: Literal["uniform", "proportional"] = "uniform"
    xy_sampling: Literal["pairs", "language-pairs", "languages"] = "pairs"
    batch_size: int = Field(32, ge=2)
    steps: int = Field(120, ge=1)
    lr: float = Field(3e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int = Field(12, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    temperature: float = Field(0.05, gt=0)
    negatives: Literal["in-batch", "paper"] = "in-batch"
    hard_negatives: int = Field(0, ge=0)
    max_query_length: int = Field(64, ge=8)
    max_passage_length: int = Field(128, ge=8)
    freeze_word_embeddings: bool = False
    chunk_tokens: int = Field(1024, ge=64)
    grad_cache_chunk: int | None = Field(None, ge=1)
    precision: Literal["fp32", "bf16"] = "fp32"
    val_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    val_batches: int = Field(4, ge=0)
    eval_every: int = Field(40, ge=1)
    keep_best: bool = True
    checkpoint_every: int = Field(40, ge=1)
    seed: int = 13
    threads: int | None = None


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
            raise ValueError(f"{prepared_dir / 'questions.parquet'}: no questions of dataset {dataset!r}")
        if languages is not None:
            missing = sorted(set(languages) - set(qs["lang"]))
            if missing:
                raise ValueError(f"train.languages {missing} are not in dataset {dataset!r} "
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


# -- data parallelism ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DistContext:
    """Rank and world size; a single process is rank 0 of 1 (every collective is then a no-op)."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> "DistContext":
        """Join the process group that ``torchrun`` / ``accelerate launch`` describe in the environment."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def main(self) -> bool:
        return self.rank == 0

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Every rank's ``x`` concatenated in rank order; only this rank's part carries gradients."""
        if self.world_size == 1:
            return x
        import torch.distributed as dist
        parts = [torch.empty_like(x) for _ in range(self.world_size)]
        dist.all_gather(parts, x.detach().contiguous())
        parts[self.rank] = x
        return torch.cat(parts)

    def sum_gradients(self, params: list[torch.nn.Parameter]) -> None:
        if self.world_size == 1:
            return
        import torch.distributed as dist
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad)

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist
            dist.barrier()


# -- the optimisation step -------------------------------------------------------------------------------

class Trainer:
    def __init__(self, encoder: DualEncoder, cfg: TrainConfig, dist_ctx: DistContext | None = None) -> None:
        self.encoder, self.cfg = encoder, cfg
        self.dist = dist_ctx or DistContext()
        if cfg.freeze_word_embeddings:
            self.encoder.model.get_input_embeddings().weight.requires_grad_(False)
        self.params = [p for p in encoder.parameters() if p.requires_grad]
        decay = [p for p in self.params if p.ndim >= 2]
        no_decay = [p for p in self.params if p.ndim < 2]  # biases and LayerNorm weights: no weight decay
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr,
                                     fused=True)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(cfg.warmup_steps, cfg.steps))

    def _embed(self, texts: list[str], kind: str) -> torch.Tensor:
        max_length = self.cfg.max_query_length if kind == "query" else self.cfg.max_passage_length
        device = self.encoder.device.type
        with torch.autocast(device, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16"):
            out = self.encoder.embed(texts, kind, max_length=max_length, max_tokens=self.cfg.chunk_tokens)
        return out.float()

    def global_loss(self, q: torch.Tensor, p: torch.Tensor, n: torch.Tensor | None = None) -> torch.Tensor:
        """InfoNCE over the global batch: every rank's embeddings gathered, this rank's in place."""
        return info_nce(self.dist.gather(q), self.dist.gather(p), None if n is None else self.dist.gather(n),
                        temperature=self.cfg.temperature, negatives=self.cfg.negatives)

    def texts(self, data: TrainingData, batch: Batch, step: int) -> tuple[list[str], list[str], list[str]]:
        """This rank's shard of the global batch: queries, positives, hard negatives.

        Hard negatives are drawn for the global batch from a generator seeded by (seed, 0, step), so every
        rank (and a resumed run) draws the same ones; validation batch i uses (seed, 1, i).
        """
        rng = np.random.default_rng([self.cfg.seed, 0, step]) if self.cfg.hard_negatives else None
        queries, passages, negatives = data.texts(batch, self.cfg.hard_negatives, rng)
        n, k = len(queries), self.dist.world_size
        if n % k:
            raise ValueError(f"batch size {n} is not divisible by the {k} processes")
        r, b, m = self.dist.rank, n // k, self.cfg.hard_negatives * (n // k)
        return queries[r * b:(r + 1) * b], passages[r * b:(r + 1) * b], negatives[r * m:(r + 1) * m]

    @staticmethod
    def _sides(queries, passages, negatives):
        """(kind, texts) per side: queries, positives and, if any, hard negatives."""
        return [("query", queries), ("passage", passages)] + ([("passage", negatives)] if negatives else [])

    def step(self, data: TrainingData, batch: Batch, step: int) -> float:
        """One optimiser step on the global ``batch``; returns the global loss."""
        self.encoder.train()
        self.opt.zero_grad(set_to_none=True)
        sides = self._sides(*self.texts(data, batch, step))
        if self.cfg.grad_cache_chunk:
            fns = [((lambda idx, kind=kind, texts=texts: self._embed([texts[i] for i in idx], kind)), len(texts))
                   for kind, texts in sides]
            loss = cached_backward(fns, self.global_loss, self.cfg.grad_cache_chunk)
        else:
            out = self.global_loss(*[self._embed(texts, kind) for kind, texts in sides])
            out.backward()
            loss = float(out.detach())
        self.dist.sum_gradients(self.params)
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        return loss

    @torch.no_grad()
    def validate(self, data: TrainingData, batches: list[Batch]) -> float:
        """Mean loss over fixed held-out batches (eval mode; every rank computes the whole of it)."""
        self.encoder.eval()
        losses = []
        for i, b in enumerate(batches):
            rng = np.random.default_rng([self.cfg.seed, 1, i]) if self.cfg.hard_negatives else None
            q, p, n = data.texts(b, self.cfg.hard_negatives, rng)
            embedded = [self._embed(t, kind) for kind, t in self._sides(q, p, n)]
            losses.append(float(info_nce(*embedded, temperature=self.cfg.temperature,
                                         negatives=self.cfg.negatives)))
        return float(np.mean(losses))

    def state_dict(self) -> dict:
        return {"model": self.encoder.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.encoder.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])


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


# -- data and sampler of a run ---------------------------------------------------------------------------

def load_sources(prepared_dir: str | os.PathLike, cfg: TrainConfig) -> dict[str, TrainingData]:
    """The training sources: ``cfg.dataset`` from the prepared tables, plus any ``cfg.sources``."""
    out = {cfg.dataset: TrainingData.from_prepared(prepared_dir, cfg.dataset, cfg.languages)}
    for spec in cfg.sources or []:
        from .sources import load_source
        if spec.get("name") in out:
            raise ValueError(f"train.sources: duplicate source name {spec.get('name')!r}")
        out[spec["name"]] = load_source(spec)
    return out


def build_training_sampler(strategy: str, sources: dict[str, TrainingData], cfg: TrainConfig) -> BatchSampler:
    """One sampler per source (seeded from ``cfg.seed`` and the source's position); several -> same-source batches."""
    samplers = {}
    for i, (name, data) in enumerate(sources.items()):
        seed = cfg.seed if i == 0 else int(np.random.SeedSequence([cfg.seed, i]).generate_state(1)[0])
        samplers[name] = build_sampler(strategy, data.langs_of, answer_groups(data.answer_keys), cfg.batch_size,
                                       seed, cfg.alpha, cfg.language_sampling, cfg.xy_sampling)
    if len(samplers) == 1:
        return next(iter(samplers.values()))
    sizes = {name: data.pair_count() for name, data in sources.items()}
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, len(samplers)]))
    return MultiSourceSampler(samplers, sizes, rng, cfg.source_sampling)


# -- checkpoints -----------------------------------------------------------------------------------------

KILL_ENV = "HYBRIDBATCH_KILL_AT_STEP"  # fault injection for the resume test: SIGKILL self after that step


class Checkpoints:
    """Resumable training state under one directory: ``step-NNNNNN/`` (latest kept) and ``best.pt``.

    Each checkpoint is written to a temporary directory and renamed into place, so a kill at any moment
    leaves either the previous or the new checkpoint, never a partial one. A checkpoint written under other
    settings (fingerprint) is ignored.
    """

    def __init__(self, root: str | os.PathLike, fingerprint: dict) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint

    def _steps(self) -> list[Path]:
        return sorted(self.root.glob("step-[0-9]*[0-9]"))

    def latest(self) -> dict | None:
        for path in reversed(self._steps()):
            state = torch.load(path / "state.pt", weights_only=False)
            if state.get("fingerprint") == self.fingerprint:
                state["live_dir"] = path / "live"
                return state
            logger.warning("ignoring checkpoint %s: written with other settings", path)
            return None
        return None

    def save(self, step: int, state: dict, live_dir: Path) -> None:
        with atomic_dir(self.root / f"step-{step:06d}") as tmp:
            torch.save({**state, "step": step, "fingerprint": self.fingerprint}, tmp / "state.pt")
            shutil.copytree(live_dir, tmp / "live")
        for old in self._steps()[:-1]:
            shutil.rmtree(old, ignore_errors=True)

    def save_best(self, model_state: dict) -> None:
        with atomic_path(self.root / "best.pt") as tmp:
            torch.save(model_state, tmp)

    def load_best(self) -> dict:
        return torch.load(self.root / "best.pt", weights_only=True)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class _NoLive:
    """Stands in for dvclive on ranks other than 0: every logging call does nothing."""

    def __init__(self) -> None:
        self.summary: dict = {}
        self.step = 0

    def __enter__(self) -> "_NoLive":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __getattr__(self, name):
        return lambda *a, **k: None


def _inputs_fingerprint(base_model: str | os.PathLike, prepared_dir: str | os.PathLike) -> dict:
    """Content hashes of what a run starts from, so a checkpoint of other inputs is never resumed."""
    from .cache import checkpoint_fingerprint

    tables = sorted(Path(prepared_dir).glob("*.parquet"))
    digest = hashlib.sha256()
    for t in tables:
        digest.update(t.name.encode() + b"\0" + t.read_bytes())
    return {"base_model_sha256": checkpoint_fingerprint(base_model), "prepared_sha256": digest.hexdigest()}


# -- the run ---------------------------------------------------------------------------------------------

def train(base_model: str | os.PathLike, prepared_dir: str | os.PathLike, strategy: str, cfg: TrainConfig,
          out_dir: str | os.PathLike, live_dir: str | os.PathLike,
          checkpoint_dir: str | os.PathLike | None = None, run_config: dict | None = None) -> dict:
    """Fine-tune ``base_model`` with ``strategy``; write the checkpoint to ``out_dir`` atomically.

    Curves go to ``live_dir`` (dvclive), copied there atomically at the end. ``checkpoint_dir`` holds the
    resumable state (default: a temporary directory, i.e. no resume); it is removed after success.
    Under ``torchrun`` / ``accelerate launch`` the run is data-parallel (rank 0 writes every output).
    ``run_config`` (the run's place in the experiment grid: fold, strategy, seed, ...) is stored in the
    checkpoint's ``training_summary.json`` under ``config``, completed with the training languages and sizes.
    """
    from dvclive import Live

    dist_ctx = DistContext.from_env()
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    seed_everything(cfg.seed)
    sources = load_sources(prepared_dir, cfg)
    splits = {name: data.split(cfg.val_fraction, cfg.seed) for name, data in sources.items()}
    train_sources = {name: tr for name, (tr, _) in splits.items()}
    train_data = TrainingData.merge(list(train_sources.values())) if len(sources) > 1 else train_sources[cfg.dataset]
    val_data = splits[cfg.dataset][1]  # validation: held-out groups of the main source
    sampler = build_training_sampler(strategy, train_sources, cfg)
    val = validation_batches(val_data, cfg)
    train_langs = sorted({lang for ls in train_data.langs_of.values() for lang in ls})
    logger.info("train %s on %s: %d questions (%d languages), %d held out; %d steps x %d pairs on %d process(es)",
                strategy, "+".join(sources), len(train_data.langs_of), len(train_langs), len(val_data.langs_of),
                cfg.steps, cfg.batch_size, dist_ctx.world_size)

    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    encoder = DualEncoder(base_model).to(device)
    trainer = Trainer(encoder, cfg, dist_ctx)
    tmp_ckpt = tempfile.TemporaryDirectory(prefix="hybridbatch-ckpt-") if checkpoint_dir is None else None
    ckpt = Checkpoints(checkpoint_dir or tmp_ckpt.name,
                       {"strategy": strategy, "base_model": str(base_model), "world_size": dist_ctx.world_size,
                        **_inputs_fingerprint(base_model, prepared_dir), **cfg.model_dump()})
    work_live = Path(ckpt.root) / "live"
    state = ckpt.latest()
    start, kinds, langs, history, elapsed0 = 0, Counter(), Counter(), [], 0.0
    best: dict = {"val_loss": math.inf, "step": None}
    if state is not None:
        trainer.load_state_dict(state["trainer"])
        torch.set_rng_state(state["torch_rng"])
        start, elapsed0, history, best = state["step"], state["elapsed"], state["history"], state["best"]
        kinds, langs = Counter(state["kinds"]), Counter(state["langs"])
        for _ in range(start):  # replay the sampler to where the checkpoint left it
            sampler.next_batch()
        if dist_ctx.main:
            shutil.rmtree(work_live, ignore_errors=True)
            shutil.copytree(state["live_dir"], work_live)
        logger.info("resuming from the checkpoint at step %d", start)
    elif dist_ctx.main:  # a fresh start: nothing stale (best weights, logs) may leak in
        ckpt.clear()
    ckpt.root.mkdir(parents=True, exist_ok=True)

    kill_at = int(os.environ.get(KILL_ENV, "0"))
    live = (Live(dir=str(work_live), save_dvc_exp=False, dvcyaml=None, report=None, resume=start > 0)
            if dist_ctx.main else _NoLive())
    start_time = time.perf_counter() - elapsed0
    with live:
        if start == 0:
            live.log_params({"strategy": strategy, **cfg.model_dump()})
        else:
            live.step = start
        if val and start == 0:
            val_loss = trainer.validate(val_data, val)
            live.log_metric("val/loss", val_loss)
            history.append({"step": 0, "val_loss": val_loss})
        bar = tqdm(range(start, cfg.steps), desc=f"train {strategy}", unit="step", mininterval=10,
                   initial=start, total=cfg.steps, disable=not dist_ctx.main)
        for step in bar:
            batch = sampler.next_batch()
            kinds[batch.kind] += 1
            for p in batch.pairs:
                langs[f"{p.query_lang}-{p.passage_lang}"] += 1
            lr = trainer.sched.get_last_lr()[0]
            loss = trainer.step(train_data, batch, step)
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at step {step}")
            elapsed = time.perf_counter() - start_time
            live.log_metric("train/loss", loss)
            live.log_metric("train/lr", lr)
            live.log_metric("train/pairs_per_s", (step + 1) * cfg.batch_size / elapsed)
            for k in ("xx", "xx-mixed", "xy"):
                live.log_metric(f"batches/{k}", kinds[k])
            done = step + 1
            if val and (done % cfg.eval_every == 0 or done == cfg.steps):
                val_loss = trainer.validate(val_data, val)
                live.log_metric("val/loss", val_loss)
                history.append({"step": done, "val_loss": val_loss})
                if cfg.keep_best and val_loss < best["val_loss"] and dist_ctx.main:
                    best = {"val_loss": val_loss, "step": done}
                    if done < cfg.steps:  # the final weights are in memory anyway
                        ckpt.save_best(encoder.model.state_dict())
            bar.set_postfix(loss=f"{loss:.3f}", kind=batch.kind)
            live.next_step()
            if done % cfg.checkpoint_every == 0 and done < cfg.steps and dist_ctx.main:
                ckpt.save(done, {"trainer": trainer.state_dict(), "torch_rng": torch.get_rng_state(),
                                 "elapsed": time.perf_counter() - start_time, "history": history, "best": best,
                                 "kinds": dict(kinds), "langs": dict(langs)}, work_live)
            dist_ctx.barrier()
            if done == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        seconds = time.perf_counter() - start_time
        live.summary["train_seconds"] = round(seconds, 1)
        live.summary["pairs_per_s"] = round(cfg.steps * cfg.batch_size / seconds, 2)
    if best["step"] is not None and best["step"] < cfg.steps:
        logger.info("keeping the best checkpoint: step %d (validation loss %.4f)", best["step"], best["val_loss"])
        encoder.model.load_state_dict(ckpt.load_best())
    # training_summary.json holds no timings: the checkpoint directory is a function of the inputs only, so a
    # re-run that reproduces the weights leaves DVC's hash unchanged (timings: the dvclive summary)
    counts = encoder.parameter_counts()
    config = {**(run_config or {}), "strategy": strategy, "layers": counts["layers"],
              "n_languages": len(train_langs), "train_languages": train_langs}
    summary = {"config": config, "strategy": strategy, "steps": cfg.steps, "batch_size": cfg.batch_size,
               "sources": list(sources), "train_languages": train_langs,
               "batches": dict(kinds), "pairs_by_language": dict(sorted(langs.items())),
               "validation": history, "best_step": best["step"] if cfg.keep_best else None,
               "train_questions": len(train_data.langs_of), "parameters": counts["parameters"],
               "non_embedding_parameters": counts["non_embedding_parameters"],
               "world_size": dist_ctx.world_size}
    if dist_ctx.main:
        with atomic_dir(out_dir) as tmp:
            encoder.save(tmp)
            write_json(Path(tmp) / "training_summary.json", summary)
        with atomic_dir(live_dir) as tmp:
            shutil.copytree(work_live, tmp, dirs_exist_ok=True)
        ckpt.clear()
    if tmp_ckpt is not None:
        tmp_ckpt.cleanup()
    logger.info("trained %s in %.0f s (%.1f pairs/s); batches %s", strategy, seconds,
                cfg.steps * cfg.batch_size / seconds, dict(kinds))
    return {**summary, "train_seconds": round(seconds, 1), "pairs_per_s": round(cfg.steps * cfg.batch_size / seconds, 2)}
