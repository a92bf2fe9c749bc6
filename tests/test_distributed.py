"""Data parallelism on CPU: 2 processes (gloo) against 1 process on the same global batches.

Every rank must draw the same global batch (source, batch type, language) at every step and keep its own
shard; the 2-process loss and gradients must equal the 1-process ones (in-batch negatives and hard
negatives gathered across ranks). The model has no dropout, so both runs compute the same function.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.tiny import REPO, make_prepared, make_tiny_model

CFG = dict(batch_size=8, steps=4, warmup_steps=0, lr=1e-3, max_query_length=32, max_passage_length=48,
           hard_negatives=1, freeze_word_embeddings=True, seed=5, threads=1)
STEPS = 4


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[int, list[dict]]:
    tmp = tmp_path_factory.mktemp("dist")
    model = make_tiny_model(tmp / "model", dropout=0.0)
    prepared = make_prepared(tmp / "prepared")
    worker = Path(__file__).parent / "helpers" / "dist_worker.py"
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}", OMP_NUM_THREADS="1")
    out = {}
    for world in (1, 2):
        d = tmp / f"world{world}"
        d.mkdir()
        args = json.dumps({"cfg": CFG, "prepared": str(prepared), "model": str(model), "strategy": "hybrid",
                           "steps": STEPS, "out": str(d)})
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
                    if world == 2 else [sys.executable])
        proc = subprocess.run([*launcher, str(worker), args], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        out[world] = [{**json.loads((d / f"rank{r}.json").read_text()), **torch.load(d / f"rank{r}.pt")}
                      for r in range(world)]
    return out


def test_ranks_agree_on_every_global_batch(runs):
    r0, r1 = runs[2]
    assert r0["world_size"] == r1["world_size"] == 2
    kinds = set()
    for a, b, single in zip(r0["records"], r1["records"], runs[1][0]["records"]):
        assert (a["kind"], a["lang"], a["source"]) == (b["kind"], b["lang"], b["source"])
        assert (a["kind"], a["lang"]) == (single["kind"], single["lang"])
        assert a["shard"] + b["shard"] == single["shard"]  # the two shards are the global batch, in order
        assert len(a["shard"]) == len(b["shard"]) == CFG["batch_size"] // 2
        kinds.add(a["kind"])
    assert len(r0["records"]) == STEPS


def test_two_process_loss_and_gradients_equal_one_process(runs):
    single = runs[1][0]
    for rank in runs[2]:
        for got, want in zip(rank["records"], single["records"]):
            assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
        assert rank["grads"].keys() == single["grads"].keys() and len(single["grads"]) > 10
        for k, g in single["grads"].items():  # equal up to float reassociation of the cross-rank sum
            assert torch.linalg.norm(rank["grads"][k] - g) <= 1e-4 * torch.linalg.norm(g) + 1e-9, k
    w0, w1 = runs[2][0]["weights"], runs[2][1]["weights"]
    assert all(torch.equal(w0[k], w1[k]) for k in w0)  # replicas stay identical


def test_train_under_torchrun_matches_one_process(tmp_path_factory):
    """The whole ``train()`` under torchrun: rank 0 writes the outputs; curves and weights match 1 process."""
    import pandas as pd
    from safetensors.torch import load_file

    tmp = tmp_path_factory.mktemp("dist-train")
    model = make_tiny_model(tmp / "model", dropout=0.0)
    prepared = make_prepared(tmp / "prepared")
    entry = Path(__file__).parent / "helpers" / "train_entry.py"
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}", OMP_NUM_THREADS="1")
    cfg = {**CFG, "hard_negatives": 0, "steps": 3, "val_batches": 2, "eval_every": 3, "checkpoint_every": 1}
    for world in (1, 2):
        args = json.dumps({"model": str(model), "prepared": str(prepared), "strategy": "hybrid", "cfg": cfg,
                           "out": str(tmp / f"w{world}" / "model"), "live": str(tmp / f"w{world}" / "live"),
                           "ckpt": str(tmp / f"w{world}" / "ckpt"), "timing": str(tmp / f"w{world}" / "timing.json")})
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
                    if world == 2 else [sys.executable])
        proc = subprocess.run([*launcher, str(entry), args], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
    s1, s2 = (json.loads((tmp / f"w{w}" / "model" / "training_summary.json").read_text()) for w in (1, 2))
    assert [json.loads((tmp / f"w{w}" / "timing.json").read_text())["processes"] for w in (1, 2)] == [1, 2]
    assert s1["batches"] == s2["batches"] and s1["pairs_by_language"] == s2["pairs_by_language"]
    assert [v["val_loss"] for v in s2["validation"]] == pytest.approx([v["val_loss"] for v in s1["validation"]],
                                                                       rel=1e-4)
    curve = lambda w: pd.read_csv(tmp / f"w{w}" / "live" / "plots" / "metrics" / "train" / "loss.tsv",  # noqa: E731
                                  sep="\t")["loss"].tolist()
    assert curve(2) == pytest.approx(curve(1), rel=1e-4) and len(curve(1)) == 3
    a, b = (load_file(tmp / f"w{w}" / "model" / "model.safetensors") for w in (1, 2))
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-4)
