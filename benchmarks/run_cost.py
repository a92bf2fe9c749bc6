"""Benchmark: the cost of one study run, component by component, before | after issue 22 item 7.

    python benchmarks/run_cost.py [--model models/e5-small] [--steps 4]    # full: the study's settings
    python benchmarks/run_cost.py --quick                                  # smoke: tiny model, tiny data

Training (batch ``train.batch_size``, max lengths from params.yaml, word embeddings frozen): one step with
``chunk_tokens`` 1024 vs 256; two threads in one process vs two one-thread processes side by side (pairs/s of
the machine); dropout on vs off (information only: the recipe keeps dropout). Evaluation: the LAReQA scoring
of XQuAD-R (vendored data, random 384-d embeddings: scoring time does not depend on the model) with the old
scoring (full stable sort, torch rank counting: tests/helpers/reference_scoring.py) vs the new one (checked
equal), and Tatoeba on vs off (``evaluate.py --no-tatoeba`` for the seeds that do not report it). Prints a
table ``before | after`` per component and an estimated per-run total (encoding excluded: unchanged).
Full mode needs models/e5-small (``dvc repro import_model``); without it: a one-line message, exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # helpers: the tiny model, the old scoring


def train_steps(model: str, prepared: str, steps: int, chunk_tokens: int, dropout: float | None,
                threads: int) -> float:
    """Seconds per training step (after one warm-up step) at the study's batch and lengths."""
    import torch

    from hybridbatch.data.training import TrainingData
    from hybridbatch.model.encoder import DualEncoder
    from hybridbatch.params import TrainConfig, section
    from hybridbatch.sampling.build import build_sampler
    from hybridbatch.sampling.samplers import answer_groups
    from hybridbatch.training.loop import Trainer

    torch.set_num_threads(threads)
    p = section(str(REPO / "params.yaml"), "train")
    cfg = TrainConfig(batch_size=p.batch_size, steps=steps + 1, warmup_steps=0, freeze_word_embeddings=True,
                      max_query_length=p.max_query_length, max_passage_length=p.max_passage_length,
                      chunk_tokens=chunk_tokens, dropout=dropout)
    data = TrainingData.from_prepared(prepared, "mlqa_r")
    sampler = build_sampler("hybrid", data.langs_of, answer_groups(data.answer_keys), cfg.batch_size, seed=0,
                            steps=cfg.steps)
    trainer = Trainer(DualEncoder(model), cfg)
    trainer.step(data, sampler.next_batch(), 0)
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        trainer.step(data, sampler.next_batch(), i)
    return (time.perf_counter() - t0) / steps


def side_by_side(model: str, prepared: str, steps: int, chunk_tokens: int) -> float:
    """Seconds per step of each of two one-thread training processes running at the same time."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--worker", model, prepared, str(steps), str(chunk_tokens)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    return max(json.loads(p.communicate()[0].strip().splitlines()[-1])["step_s"] for p in procs)


def scoring_before_after(fraction: float, dim: int = 384) -> tuple[float, float, int, int]:
    """(old s, new s, questions, candidates): LAReQA scoring of XQuAD-R at ``fraction``; results checked equal."""
    import pandas as pd
    import torch
    from helpers.reference_scoring import old_scoring

    from hybridbatch.data.raw import DATASET_LANGS, load_lareqa, sample_paragraphs
    from hybridbatch.evaluation.lareqa import score_lareqa

    loaded = [load_lareqa(REPO / "data" / "raw" / "xquad-r" / f"{x}.json.gz", "xquad_r", x)
              for x in DATASET_LANGS["xquad_r"]]
    qs, cs = sample_paragraphs(pd.concat([q for q, _ in loaded], ignore_index=True),
                               pd.concat([c for _, c in loaded], ignore_index=True), fraction, seed=0)
    g = torch.Generator().manual_seed(0)
    q_emb, c_emb = (torch.nn.functional.normalize(torch.randn(len(f), dim, generator=g), dim=1) for f in (qs, cs))
    t0 = time.perf_counter()
    with old_scoring():
        old = score_lareqa(q_emb, c_emb, qs, cs)
    t1 = time.perf_counter()
    new = score_lareqa(q_emb, c_emb, qs, cs)
    t2 = time.perf_counter()
    assert new["per_query"].equals(old["per_query"]), "new scoring differs from the old one"
    assert json.dumps(new["summary"], sort_keys=True) == json.dumps(old["summary"], sort_keys=True)
    return t1 - t0, t2 - t1, len(qs), len(cs)


def tatoeba_seconds(model: str, pairs: int | None) -> float:
    import pandas as pd

    from hybridbatch.data.raw import TATOEBA_LANGS, load_tatoeba
    from hybridbatch.evaluation.tatoeba import evaluate_tatoeba
    from hybridbatch.model.encoder import DualEncoder

    table = pd.concat([load_tatoeba(REPO / "data" / "raw", x) for x in TATOEBA_LANGS], ignore_index=True)
    if pairs:
        table = table.groupby("lang3", sort=False).head(pairs)
    encoder = DualEncoder(model)
    t0 = time.perf_counter()
    evaluate_tatoeba(encoder, table, kind="query", max_tokens=2048)
    return time.perf_counter() - t0


def table(rows: list[tuple[str, float, float]], steps: int) -> str:
    out = [f"{'component':54s} | {'before':>10s} | {'after':>10s}", "-" * 80]
    out += [f"{name:54s} | {b:10.3f} | {a:10.3f}" for name, b, a in rows]
    return "\n".join(out)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        model, prepared, steps, chunk = sys.argv[2:6]
        print(json.dumps({"step_s": train_steps(model, prepared, int(steps), int(chunk), None, 1)}))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "models" / "e5-small"))
    ap.add_argument("--steps", type=int, default=4, help="timed training steps per measurement")
    ap.add_argument("--quick", action="store_true", help="smoke mode: tiny model and data (a test runs it)")
    args = ap.parse_args()
    from hybridbatch.params import section

    tmp = tempfile.TemporaryDirectory()
    steps_per_run = section(str(REPO / "params.yaml"), "train").steps
    if args.quick:
        from helpers.tiny import make_prepared, make_tiny_model

        model = str(make_tiny_model(Path(tmp.name) / "tiny"))
        prepared = str(make_prepared(Path(tmp.name) / "prepared"))
        steps, fraction, pairs = 1, 0.03, 20
    else:
        if not (Path(args.model) / "config.json").is_file():
            print(f"error: no model at {args.model}: build it with `dvc repro import_model` (models/e5-small)")
            return 2
        model, steps, fraction, pairs = args.model, args.steps, 1.0, None
        prepared = str(REPO / "data" / "prepared")
        if not (Path(prepared) / "questions.parquet").is_file():
            from hybridbatch.data.raw import prepare

            prepared = str(Path(tmp.name) / "prepared")
            prepare(REPO / "data" / "raw", prepared, datasets={"mlqa_r": ["ar", "de", "en", "es", "hi", "vi", "zh"]},
                    tatoeba_langs=[])
    with tmp:
        return report(model, prepared, steps, steps_per_run, fraction, pairs, args.quick)


def report(model: str, prepared: str, steps: int, steps_per_run: int, fraction: float, pairs: int | None,
           quick: bool) -> int:
    t1024 = train_steps(model, prepared, steps, 1024, None, 2)
    t256 = train_steps(model, prepared, steps, 256, None, 2)
    best = 256 if t256 < t1024 else 1024
    t_two = side_by_side(model, prepared, steps, best)
    t_nodrop = train_steps(model, prepared, steps, best, 0.0, 2)
    old_s, new_s, n_q, n_c = scoring_before_after(fraction)
    tat = tatoeba_seconds(model, pairs)
    per_run_step = t_two / 2  # two runs share the machine: each step costs half the wall time
    rows = [("train step, chunk_tokens 1024 -> 256 (s)", t1024, t256),
            ("train step, 2 threads -> 2 x 1-thread procs (s/run)", min(t1024, t256), per_run_step),
            ("  pairs/s of the machine", 32 / min(t1024, t256), 2 * 32 / t_two),
            ("train step, dropout on -> off (info only) (s)", min(t1024, t256), t_nodrop),
            (f"scoring {n_q} x {n_c}, old -> new (s)", old_s, new_s),
            ("Tatoeba on -> off (s; seeds beyond the first k)", tat, 0.0)]
    before = steps_per_run * t1024 + old_s + tat
    after = steps_per_run * per_run_step + new_s
    rows.append((f"per run: {steps_per_run} steps + scoring + Tatoeba (s)", before, after))
    print(f"{'SMOKE (tiny model, tiny data: not the real costs)' if quick else 'model ' + model}; "
          f"{steps} timed step(s); encoding excluded (unchanged)")
    print(table(rows, steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
