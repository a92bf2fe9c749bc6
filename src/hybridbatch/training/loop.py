"""Contrastive fine-tuning of a dual encoder with a batch sampling strategy (docs/PROTOCOL.md §3).

One optimiser step: the sampler draws a *global* batch (one source, one batch type); under data
parallelism each rank embeds its shard. The embeddings of every rank are gathered (without gradients) and
each rank computes the same global InfoNCE loss with its own shard put back in place, back-propagates it
into its own shard, and the parameter gradients are summed across ranks -- exactly the gradient of the
single-process loss on the global batch. With ``grad_cache_chunk`` the same step runs as GradCache
(embeddings without graphs, then chunk-by-chunk replay), so large batches fit small memory.

Resumable: every ``checkpoint_every`` steps the full training state (trainable weights, optimiser, scheduler,
RNG, counters, the dvclive logs so far) is saved atomically under the checkpoint directory; a killed run started
again with the same settings resumes there and ends with the same weights as an uninterrupted run. The
sampler's state is not stored: it is replayed from its seed (drawing is cheap and exact).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import shutil
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hybridbatch.training.checkpoints import Checkpoints, frozen_sha256, load_trainable, trainable_state
from hybridbatch.training.distributed import DistContext
from hybridbatch.model.encoder import DualEncoder
from hybridbatch.training.gradcache import cached_backward
from hybridbatch.io import atomic_dir, write_json
from hybridbatch.training.losses import info_nce
from hybridbatch.params import TrainConfig
from hybridbatch.records import RunRecord
from hybridbatch.sampling.samplers import Batch, BatchSampler, MultiSourceSampler, answer_groups
from hybridbatch.sampling.build import build_sampler
from hybridbatch.data.training import DataFitError, TrainingData

logger = logging.getLogger(__name__)

MONOLINGUAL = ("xx", "xx-mixed")  # batch kinds whose every pair is monolingual


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


# -- the optimisation step -------------------------------------------------------------------------------

class Trainer:
    def __init__(self, encoder: DualEncoder, cfg: TrainConfig, dist_ctx: DistContext | None = None) -> None:
        self.encoder, self.cfg = encoder, cfg
        self.dist = dist_ctx or DistContext()
        if cfg.dropout is not None:  # every dropout of the encoder (BERT's attention reads its Dropout's p too)
            for module in self.encoder.model.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.p = cfg.dropout
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
    def validation_losses(self, data: TrainingData, batches: list[Batch]) -> list[float]:
        """The loss of each fixed held-out batch (eval mode; every rank computes the whole of it)."""
        self.encoder.eval()
        losses = []
        for i, b in enumerate(batches):
            rng = np.random.default_rng([self.cfg.seed, 1, i]) if self.cfg.hard_negatives else None
            q, p, n = data.texts(b, self.cfg.hard_negatives, rng)
            embedded = [self._embed(t, kind) for kind, t in self._sides(q, p, n)]
            losses.append(float(info_nce(*embedded, temperature=self.cfg.temperature,
                                         negatives=self.cfg.negatives)))
        return losses

    def validate(self, data: TrainingData, batches: list[Batch]) -> float:
        """Mean loss over fixed held-out batches: the validation loss early stopping compares."""
        return float(np.mean(self.validation_losses(data, batches)))

    def validate_parts(self, data: TrainingData, batches: list[Batch]) -> tuple[float, dict[str, float | None]]:
        """:meth:`validate` and, from the same batch losses, the mean over the monolingual batches (``mono``)
        and over the cross-lingual ones (``cross``; ``None`` where there is no such batch)."""
        losses = self.validation_losses(data, batches)
        mono = [loss for loss, b in zip(losses, batches) if b.kind in MONOLINGUAL]
        cross = [loss for loss, b in zip(losses, batches) if b.kind not in MONOLINGUAL]
        return float(np.mean(losses)), {"mono": float(np.mean(mono)) if mono else None,
                                        "cross": float(np.mean(cross)) if cross else None}

    def state_dict(self) -> dict:
        """What a checkpoint stores: the trainable parameters only (the frozen ones are the base model's),
        the optimiser and the scheduler."""
        return {"model": trainable_state(self.encoder.model), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        load_trainable(self.encoder.model, state["model"])
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
        from hybridbatch.data.sources import load_source  # noqa: PLC0415 -- optional sources import `datasets` lazily
        if spec.get("name") in out:
            raise ValueError(f"train.sources: duplicate source name {spec.get('name')!r}")
        out[spec["name"]] = load_source(spec)
    return out


def build_training_sampler(strategy: str, sources: dict[str, TrainingData], cfg: TrainConfig) -> BatchSampler:
    """One sampler per source (seeded from ``cfg.seed`` and the source's position); several -> same-source batches.

    The hybrid alpha schedule is per source: with one source (the default) exactly round(alpha * steps) of
    the run's batches are monolingual; with several, each source's sampler keeps its own exact blocks.
    """
    samplers = {}
    for i, (name, data) in enumerate(sources.items()):
        seed = cfg.seed if i == 0 else int(np.random.SeedSequence([cfg.seed, i]).generate_state(1)[0])
        try:
            samplers[name] = build_sampler(strategy, data.langs_of, answer_groups(data.answer_keys), cfg.batch_size,
                                           seed, cfg.alpha, cfg.language_sampling, cfg.xy_sampling,
                                           steps=cfg.steps, alpha_schedule=cfg.alpha_schedule)
        except ValueError as exc:  # the data cannot serve this run: say which source and why, in one line
            raise DataFitError(f"training source {name!r} ({len(data.langs_of)} training questions, languages "
                               f"{sorted({l for ls in data.langs_of.values() for l in ls})}): {exc}") from None
    if len(samplers) == 1:
        return next(iter(samplers.values()))
    sizes = {name: data.pair_count() for name, data in sources.items()}
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, len(samplers)]))
    return MultiSourceSampler(samplers, sizes, rng, cfg.source_sampling)


# -- the run ---------------------------------------------------------------------------------------------

KILL_ENV = "HYBRIDBATCH_KILL_AT_STEP"  # fault injection for the resume test: SIGKILL self after that step


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
    from hybridbatch.evaluation.cache import checkpoint_fingerprint  # noqa: PLC0415

    tables = sorted(Path(prepared_dir).glob("*.parquet"))
    digest = hashlib.sha256()
    for t in tables:
        digest.update(t.name.encode() + b"\0" + t.read_bytes())
    return {"base_model_sha256": checkpoint_fingerprint(base_model), "prepared_sha256": digest.hexdigest()}


def mono_share(kinds: list[str], upto: int | None = None) -> float | None:
    """Share of monolingual batches among the first ``upto`` steps' batch kinds (all when ``None``)."""
    seen = kinds if upto is None else kinds[:upto]
    return round(sum(k in MONOLINGUAL for k in seen) / len(seen), 6) if seen else None


@dataclass
class _RunState:
    """What the phases of :func:`train` share: the data, the model, the checkpoints and the run's counters."""

    dist: DistContext
    sources: dict[str, TrainingData]
    train_data: TrainingData
    val_data: TrainingData
    sampler: BatchSampler
    val: list[Batch]
    train_langs: list[str]
    encoder: DualEncoder
    trainer: Trainer
    ckpt: Checkpoints
    tmp_ckpt: tempfile.TemporaryDirectory | None
    start: int = 0
    elapsed0: float = 0.0
    kinds: list[str] = field(default_factory=list)
    langs: Counter = field(default_factory=Counter)
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"val_loss": math.inf, "step": None})
    last_val: dict = field(default_factory=dict)  # the latest validation losses, for the progress bar

    @property
    def work_live(self) -> Path:
        return Path(self.ckpt.root) / "live"


def _setup(base_model: str | os.PathLike, prepared_dir: str | os.PathLike, strategy: str, cfg: TrainConfig,
           checkpoint_dir: str | os.PathLike | None) -> _RunState:
    """Phase 1: the data, the sampler, the validation batches, the model, and the checkpoint resumed (if any)."""
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
                        **_inputs_fingerprint(base_model, prepared_dir), **cfg.result_settings()},
                       frozen=frozen_sha256(encoder.model))
    run = _RunState(dist_ctx, sources, train_data, val_data, sampler, val, train_langs, encoder, trainer, ckpt,
                    tmp_ckpt)
    _resume(run, ckpt.latest())
    ckpt.root.mkdir(parents=True, exist_ok=True)
    return run


def _resume(run: _RunState, state: dict | None) -> None:
    """Continue from the checkpoint ``state`` (weights, optimiser, RNG, counters, logs; the sampler replayed);
    without one, a fresh start: nothing stale (best weights, logs) may leak in."""
    if state is not None:
        run.trainer.load_state_dict(state["trainer"])
        torch.set_rng_state(state["torch_rng"])
        run.start, run.elapsed0 = state["step"], state["elapsed"]
        run.history, run.best = state["history"], state["best"]
        run.kinds, run.langs = list(state["kinds"]), Counter(state["langs"])
        for _ in range(run.start):  # replay the sampler to where the checkpoint left it
            run.sampler.next_batch()
        if run.dist.main:
            shutil.rmtree(run.work_live, ignore_errors=True)
            shutil.copytree(state["live_dir"], run.work_live)
        logger.info("resuming from the checkpoint at step %d", run.start)
    elif run.dist.main:
        run.ckpt.clear()


VAL_LABELS = {"mono": "monolingual", "cross": "cross-lingual"}


def _validate(run: _RunState, cfg: TrainConfig, live, step: int) -> float:
    """Phase 3 (every ``eval_every`` steps): the validation loss -- logged, kept in the history, returned -- and,
    from the same batches, its monolingual and cross-lingual parts (dvclive ``val/loss_mono``,
    ``val/loss_cross``; the log; the progress bar). Only the combined loss decides early stopping."""
    val_loss, parts = run.trainer.validate_parts(run.val_data, run.val)
    live.log_metric("val/loss", val_loss, timestamp=False)
    for name, value in parts.items():
        if value is not None:
            live.log_metric(f"val/loss_{name}", value, timestamp=False)
    run.history.append({"step": step, "val_loss": val_loss})
    run.last_val = {"val": val_loss, **{k: v for k, v in parts.items() if v is not None}}
    shown = ", ".join(f"{VAL_LABELS[k]} {v:.4f}" for k, v in parts.items() if v is not None)
    logger.info("step %d/%d: validation loss %.4f (%s)", step, cfg.steps, val_loss, shown or "no batches")
    return val_loss


def _train_steps(run: _RunState, cfg: TrainConfig, strategy: str, live, start_time: float) -> None:
    """Phase 2: the optimiser steps from ``run.start`` to ``cfg.steps``, with validation, the best weights and
    the periodic checkpoints."""
    kill_at = int(os.environ.get(KILL_ENV, "0"))
    trainer, ckpt, dist_ctx = run.trainer, run.ckpt, run.dist
    bar = tqdm(range(run.start, cfg.steps), desc=f"train {strategy}", unit="step", mininterval=10,
               initial=run.start, total=cfg.steps, disable=not dist_ctx.main)
    for step in bar:
        batch = run.sampler.next_batch()
        run.kinds.append(batch.kind)
        for p in batch.pairs:
            run.langs[f"{p.query_lang}-{p.passage_lang}"] += 1
        lr = trainer.sched.get_last_lr()[0]
        loss = trainer.step(run.train_data, batch, step)
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss became {loss} at step {step}")
        live.log_metric("train/loss", loss, timestamp=False)
        live.log_metric("train/lr", lr, timestamp=False)
        live.log_metric("batches/mono_share", mono_share(run.kinds), timestamp=False)
        done = step + 1
        if run.val and (done % cfg.eval_every == 0 or done == cfg.steps):
            val_loss = _validate(run, cfg, live, done)
            if cfg.keep_best and val_loss < run.best["val_loss"] and dist_ctx.main:
                run.best = {"val_loss": val_loss, "step": done}
                if done < cfg.steps:  # the final weights are in memory anyway
                    ckpt.save_best(trainable_state(run.encoder.model))
        bar.set_postfix(loss=f"{loss:.3f}", kind=batch.kind, **{k: f"{v:.3f}" for k, v in run.last_val.items()})
        live.next_step()
        if done % cfg.checkpoint_every == 0 and done < cfg.steps and dist_ctx.main:
            ckpt.save(done, {"trainer": trainer.state_dict(), "torch_rng": torch.get_rng_state(),
                             "elapsed": time.perf_counter() - start_time, "history": run.history, "best": run.best,
                             "kinds": list(run.kinds), "langs": dict(run.langs)}, run.work_live)
        dist_ctx.barrier()
        if done == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def train(base_model: str | os.PathLike, prepared_dir: str | os.PathLike, strategy: str, cfg: TrainConfig,
          out_dir: str | os.PathLike, live_dir: str | os.PathLike,
          checkpoint_dir: str | os.PathLike | None = None, run: RunRecord | None = None,
          timing_path: str | os.PathLike | None = None) -> dict:
    """Fine-tune ``base_model`` with ``strategy``; write the checkpoint to ``out_dir`` atomically.

    Curves go to ``live_dir`` (dvclive), copied there atomically at the end; they hold only values that are
    a function of the inputs (loss, learning rate, batch counts), so a re-run reproduces them byte for byte.
    Wall-clock figures (seconds, pairs/s) go to ``timing_path`` (an untracked log), never to a tracked file.
    ``checkpoint_dir`` holds the resumable state (default: a temporary directory, i.e. no resume); it is
    removed after success. Under ``torchrun`` / ``accelerate launch`` the run is data-parallel (rank 0 writes
    every output). ``run`` (the run's place in the grid) is completed with what training knows -- training
    languages, the kept step, the realised monolingual share -- and stored in the checkpoint's
    ``training_summary.json`` under ``config``.

    Phases: :func:`_setup` (data, model, resume), :func:`_train_steps` (the steps, with :func:`_validate`),
    :func:`_finish` (the kept weights, the summary and the outputs written).

    Raises :class:`~hybridbatch.data.training.DataFitError` before any training when the data cannot serve
    the run (languages absent, a batch larger than the answer groups).
    """
    from dvclive import Live  # noqa: PLC0415

    state = _setup(base_model, prepared_dir, strategy, cfg, checkpoint_dir)
    live = (Live(dir=str(state.work_live), save_dvc_exp=False, dvcyaml=None, report=None, resume=state.start > 0)
            if state.dist.main else _NoLive())
    start_time = time.perf_counter() - state.elapsed0
    with live:
        if state.start > 0:  # (no live.log_params: the settings are in training_summary.json and dvc.lock)
            live.step = state.start
        if state.val and state.start == 0:
            _validate(state, cfg, live, 0)
        _train_steps(state, cfg, strategy, live, start_time)
        seconds = time.perf_counter() - start_time
        best_step = state.best["step"] if cfg.keep_best and state.best["step"] is not None else cfg.steps
        live.summary["best_step"] = best_step
        live.summary["mono_share"] = mono_share(state.kinds)
        live.summary["mono_share_kept"] = mono_share(state.kinds, best_step)
    return _finish(state, base_model, strategy, cfg, out_dir, live_dir, run, timing_path, seconds, best_step)


def _finish(state: _RunState, base_model: str | os.PathLike, strategy: str, cfg: TrainConfig,
            out_dir: str | os.PathLike, live_dir: str | os.PathLike, run: RunRecord | None,
            timing_path: str | os.PathLike | None, seconds: float, best_step: int) -> dict:
    """Phase 4: the kept weights, the run's record and summary, the outputs written atomically, and the
    resumable state removed."""
    best, kinds, encoder = state.best, state.kinds, state.encoder
    if best["step"] is not None and best["step"] < cfg.steps:
        logger.info("keeping the best checkpoint: step %d (validation loss %.4f)", best["step"], best["val_loss"])
        load_trainable(encoder.model, state.ckpt.load_best())
    # training_summary.json holds no timings: the checkpoint directory is a function of the inputs only, so a
    # re-run that reproduces the weights leaves DVC's hash unchanged (timings: ``timing_path``)
    counts = encoder.parameter_counts()
    batches = dict(sorted(Counter(kinds).items()))
    record = (run or RunRecord(run=Path(out_dir).name, strategy=strategy)).replace(
        strategy=strategy, train_dataset=cfg.dataset, seed=cfg.seed, steps=cfg.steps, batch_size=cfg.batch_size,
        best_step=best_step, mono_share=mono_share(kinds), mono_share_kept=mono_share(kinds, best_step),
        alpha=cfg.alpha if strategy == "hybrid" else None,
        alpha_schedule=cfg.alpha_schedule if strategy == "hybrid" else None,
        layers=counts["layers"], train_languages=state.train_langs, base_model=str(base_model),
        parameters=counts["parameters"], non_embedding_parameters=counts["non_embedding_parameters"])
    summary = {"config": record.to_json(), "strategy": strategy, "steps": cfg.steps, "batch_size": cfg.batch_size,
               "sources": list(state.sources), "train_languages": state.train_langs,
               "batches": batches, "pairs_by_language": dict(sorted(state.langs.items())),
               "validation": state.history, "best_step": best["step"] if cfg.keep_best else None,
               "train_questions": len(state.train_data.langs_of), "parameters": counts["parameters"],
               "non_embedding_parameters": counts["non_embedding_parameters"]}
    timing = {"train_seconds": round(seconds, 1), "pairs_per_s": round(cfg.steps * cfg.batch_size / seconds, 2),
              "processes": state.dist.world_size, "threads": torch.get_num_threads()}
    if state.dist.main:
        with atomic_dir(out_dir) as tmp:
            encoder.save(tmp)
            write_json(Path(tmp) / "training_summary.json", summary)
        with atomic_dir(live_dir) as tmp:
            shutil.copytree(state.work_live, tmp, dirs_exist_ok=True)
        if timing_path is not None:
            write_json(timing_path, timing)
        state.ckpt.clear()  # a finished run leaves no resumable state behind
    if state.tmp_ckpt is not None:
        state.tmp_ckpt.cleanup()
    logger.info("trained %s in %.0f s (%.1f pairs/s); batches %s; kept step %s; monolingual share %.3f",
                strategy, seconds, timing["pairs_per_s"], batches, best_step, mono_share(kinds) or 0.0)
    return {**summary, **timing}
