"""Benchmark: training throughput (pairs/s) of hybridbatch's Trainer vs sentence-transformers' trainer.

    python benchmarks/train.py [--model models/e5-small] [--steps 12] [--batch-size 32]
    python benchmarks/train.py --batch-size 100 --steps 2 --ours-only [--grad-cache-chunk 20]   # memory

Same model, batch size, max lengths, learning rate, loss (in-batch InfoNCE at temperature 0.05 =
MultipleNegativesRankingLoss with scale 20) and the same training pairs in the same batches and order (hybrid
batches drawn from MLQA-R: ours from ``build_sampler``, sentence-transformers' from the same sampler over the
rows, ``hybridbatch.integrations.sentence_transformers.StrategyBatchSampler`` with the same seed, checked
before timing); word embeddings frozen on both sides, as in the default run. Prints pairs/s of each,
the ratio (target >= 1.0) and peak RSS. The first step of each side is a warm-up and is not timed.
``--ours-only`` skips sentence-transformers (peak RSS is then ours alone: compare plain and
``--grad-cache-chunk`` steps at the paper's batch size of 100).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import torch

from hybridbatch.model.encoder import DualEncoder
from hybridbatch.sampling.samplers import answer_groups
from hybridbatch.sampling.build import build_sampler
from hybridbatch.params import TrainConfig
from hybridbatch.training.loop import Trainer
from hybridbatch.data.training import TrainingData


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/e5-small")
    ap.add_argument("--prepared", default="data/prepared")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--grad-cache-chunk", type=int, default=None, help="ours: GradCache with N pairs per chunk")
    ap.add_argument("--ours-only", action="store_true", help="skip the sentence-transformers side")
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    cfg = TrainConfig(batch_size=args.batch_size, steps=args.steps + 1, warmup_steps=0,
                      freeze_word_embeddings=True, grad_cache_chunk=args.grad_cache_chunk)
    data = TrainingData.from_prepared(args.prepared, "mlqa_r")
    sampler = build_sampler("hybrid", data.langs_of, answer_groups(data.answer_keys), cfg.batch_size, seed=0,
                            steps=cfg.steps)
    batches = [sampler.next_batch() for _ in range(args.steps + 1)]

    # -- ours
    enc = DualEncoder(args.model)
    trainer = Trainer(enc, cfg)
    trainer.step(data, batches[0], 0)
    t0 = time.perf_counter()
    for i, b in enumerate(batches[1:], start=1):
        trainer.step(data, b, i)
    ours = args.steps * cfg.batch_size / (time.perf_counter() - t0)
    del trainer, enc
    if args.ours_only:
        print(f"model {args.model}, batch {cfg.batch_size}, grad_cache_chunk {cfg.grad_cache_chunk}, "
              f"{args.steps} timed steps, torch threads {torch.get_num_threads()}")
        print(f"hybridbatch Trainer: {ours:6.2f} pairs/s")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        return

    # -- sentence-transformers, same pairs in the same order
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    st = SentenceTransformer(args.model, device="cpu")
    st.max_seq_length = cfg.max_passage_length
    st[0].auto_model.get_input_embeddings().weight.requires_grad_(False)
    from hybridbatch.integrations.sentence_transformers import (E5_PROMPTS, StrategyBatchSampler, StrategyTrainer,
                                                                strategy_batch_sampler)

    groups = answer_groups(data.answer_keys)
    keys = list(data.questions)  # one row per (qid, lang): the strategy sampler pairs the rows
    train = Dataset.from_dict({"anchor": [data.questions[k] for k in keys],
                               "positive": [data.answers[k] for k in keys],
                               "qid": [q for q, _ in keys], "lang": [lang for _, lang in keys],
                               "group": [groups[q] for q, _ in keys]})
    settings = dict(steps=cfg.steps, batches_per_epoch=cfg.steps, world_size=1, sampler_seed=0)
    check = iter(StrategyBatchSampler(train, cfg.batch_size, strategy="hybrid", **settings))
    for b in batches:  # the same pairs in the same batches and order as ours
        rows = next(check)
        k = len(rows) // 2
        assert [(train[q]["qid"], train[q]["lang"], train[p]["lang"]) for q, p in zip(rows[:k], rows[k:])] == \
            [(x.qid, x.query_lang, x.passage_lang) for x in b.pairs], "sentence-transformers batches differ"

    class Clock(TrainerCallback):
        start = None

        def on_step_end(self, _args, state, _control, **_kw):
            if state.global_step == 1:
                Clock.start = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        targs = SentenceTransformerTrainingArguments(
            output_dir=out, per_device_train_batch_size=cfg.batch_size, max_steps=args.steps + 1,
            learning_rate=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=0, max_grad_norm=cfg.grad_clip,
            report_to="none", save_strategy="no", logging_strategy="no", dataloader_drop_last=True,
            use_cpu=True, seed=0, batch_sampler=strategy_batch_sampler("hybrid", **settings), prompts=E5_PROMPTS)
        trainer = StrategyTrainer(model=st, args=targs, train_dataset=train,
                                  loss=MultipleNegativesRankingLoss(st, scale=1 / cfg.temperature), callbacks=[Clock()])
        trainer.train()
        theirs = args.steps * cfg.batch_size / (time.perf_counter() - Clock.start)

    print(f"model {args.model}, batch {cfg.batch_size}, {args.steps} timed steps, torch threads "
          f"{torch.get_num_threads()}")
    print(f"hybridbatch Trainer           : {ours:6.2f} pairs/s")
    print(f"sentence-transformers trainer : {theirs:6.2f} pairs/s")
    print(f"ratio (ours / sentence-transformers): {ours / theirs:.2f}  (target >= 1.0)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
