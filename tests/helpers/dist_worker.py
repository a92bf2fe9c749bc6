"""Run a few data-parallel training steps (launched by torchrun, or plainly as a single process) and
write, per rank, the batch drawn at every step, the global loss and the first step's gradients."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from hybridbatch.model.encoder import DualEncoder
from hybridbatch.training.distributed import DistContext
from hybridbatch.params import TrainConfig
from hybridbatch.training.loop import Trainer, build_training_sampler, seed_everything
from hybridbatch.data.training import TrainingData


def main() -> None:
    args = json.loads(sys.argv[1])
    ctx = DistContext.from_env()
    cfg = TrainConfig(**args["cfg"])
    torch.set_num_threads(1)
    seed_everything(cfg.seed)
    data = TrainingData.from_prepared(args["prepared"], cfg.dataset)
    sampler = build_training_sampler(args["strategy"], {cfg.dataset: data}, cfg)
    trainer = Trainer(DualEncoder(args["model"]), cfg, ctx)
    records, grads = [], {}
    for step in range(args["steps"]):
        batch = sampler.next_batch()
        loss = trainer.step(data, batch, step)
        shard = batch.shard(ctx.rank, ctx.world_size)
        records.append({"kind": batch.kind, "lang": batch.lang, "source": batch.source, "loss": loss,
                        "shard": [[p.qid, p.query_lang, p.passage_lang] for p in shard.pairs]})
        if step == 0:
            grads = {k: v.grad.clone() for k, v in trainer.encoder.model.named_parameters() if v.grad is not None}
    out = Path(args["out"])
    (out / f"rank{ctx.rank}.json").write_text(json.dumps({"world_size": ctx.world_size, "records": records}))
    torch.save({"grads": grads, "weights": trainer.encoder.model.state_dict()}, out / f"rank{ctx.rank}.pt")


if __name__ == "__main__":
    main()
