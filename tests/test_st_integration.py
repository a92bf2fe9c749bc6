"""The strategies' batches through SentenceTransformerTrainer: every batch the loss receives obeys the strategy,
and the sequence is build_sampler's for the same seed."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
from datasets import Dataset  # noqa: E402
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainingArguments  # noqa: E402
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss  # noqa: E402

from hybridbatch.integrations.sentence_transformers import (  # noqa: E402
    E5_PROMPTS, PairCollator, StrategyBatchSampler, StrategyTrainer, strategy_batch_sampler)
from hybridbatch.sampling.build import build_sampler  # noqa: E402
from helpers.tiny import make_tiny_model  # noqa: E402

LANGS = ("de", "en", "es")


def rows_dataset(n_q=40):
    rng = np.random.default_rng(0)
    rows = {"anchor": [], "positive": [], "qid": [], "lang": [], "group": []}
    for i in range(n_q):
        for lang in sorted(rng.choice(LANGS, size=int(rng.integers(2, 4)), replace=False)):
            rows["anchor"].append(f"question {i} {lang}")
            rows["positive"].append(f"answer {i} {lang}")
            rows["qid"].append(f"q{i}")
            rows["lang"].append(str(lang))
            rows["group"].append(i // 2)  # pairs of questions share an answer group
    return Dataset.from_dict(rows)


class RecordingLoss(MultipleNegativesRankingLoss):
    """MNRL that records the token ids of every batch it receives."""

    def __init__(self, model):
        super().__init__(model)
        self.seen = []

    def forward(self, sentence_features, labels=None):
        self.seen.append([(f["input_ids"], f["attention_mask"]) for f in sentence_features])
        return super().forward(sentence_features, labels)


def decode(model, seen, texts_to_row):
    """Each received batch as (query row, passage row) pairs, by matching unpadded token ids."""
    out = []
    for (q_ids, q_mask), (p_ids, p_mask) in seen:
        qs = [texts_to_row["q"][tuple(i[m.bool()].tolist())] for i, m in zip(q_ids, q_mask)]
        ps = [texts_to_row["p"][tuple(i[m.bool()].tolist())] for i, m in zip(p_ids, p_mask)]
        out.append(list(zip(qs, ps)))
    return out


@pytest.mark.parametrize("strategy", ["hybrid", "xx"])
def test_trainer_batches_obey_the_strategy_and_equal_build_sampler(tmp_path, strategy):
    import torch

    torch.manual_seed(0)
    model = SentenceTransformer(str(make_tiny_model(tmp_path / "tiny", dropout=0.0)), device="cpu")
    data = rows_dataset()
    lookup = {"q": {}, "p": {}}
    for r, (a, p) in enumerate(zip(data["anchor"], data["positive"])):
        lookup["q"][tuple(model.tokenize(["query: " + a])["input_ids"][0].tolist())] = r
        lookup["p"][tuple(model.tokenize(["passage: " + p])["input_ids"][0].tolist())] = r
    steps, k = 6, 4
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=k, max_steps=steps, learning_rate=1e-4,
        report_to="none", save_strategy="no", logging_strategy="no", use_cpu=True, seed=7,
        batch_sampler=strategy_batch_sampler(strategy, alpha=0.5, steps=3), prompts=E5_PROMPTS,
        dataloader_num_workers=0)
    loss = RecordingLoss(model)
    StrategyTrainer(model=model, args=args, train_dataset=data, loss=loss).train()
    got = decode(model, loss.seen, lookup)
    assert len(got) == steps

    qid, lang, group = data["qid"], data["lang"], data["group"]
    langs_of = {}
    for q, lg in zip(qid, lang):
        langs_of.setdefault(q, []).append(lg)
    ref = build_sampler(strategy, langs_of, dict(zip(qid, group)), k, seed=7, alpha=0.5, steps=3)
    kinds = []
    for batch in got:
        expected = ref.next_batch()
        pairs = [(qid[q], lang[q], lang[p]) for q, p in batch]
        assert pairs == [(e.qid, e.query_lang, e.passage_lang) for e in expected.pairs]
        assert all(qid[q] == qid[p] for q, p in batch)  # a query and its own answer
        assert len({group[q] for q, _ in batch}) == k  # no answer group twice
        if expected.kind == "xx":
            assert {lang[q] for q, _ in batch} | {lang[p] for _, p in batch} == {expected.lang}
        else:
            assert strategy == "hybrid" and all(lang[q] != lang[p] for q, p in batch)
        kinds.append(expected.kind)
    if strategy == "hybrid":  # exact alpha: 0.5 of each block of 3 batches rounds to 2 monolingual ones
        assert kinds[:3].count("xx") == kinds[3:].count("xx") == 2


def test_data_parallel_ranks_get_their_shard_of_one_global_batch():
    from accelerate.data_loader import BatchSamplerShard

    data = rows_dataset()
    world = 2
    per_rank = [list(BatchSamplerShard(StrategyBatchSampler(data, 3, strategy="hybrid", world_size=world, seed=1,
                                                            alpha=0.5, steps=4), world, r)) for r in range(world)]
    full = StrategyBatchSampler(data, 3 * world, strategy="hybrid", world_size=1, seed=1, alpha=0.5, steps=4)
    global_batches = list(full)[:len(per_rank[0])]
    assert len(per_rank[0]) == len(per_rank[1]) == len(full) == len(global_batches) > 0
    for step, g in enumerate(global_batches):
        k = 3 * world
        queries, passages = g[:k], g[k:]
        for r in range(world):
            mine = per_rank[r][step]
            assert mine == [*queries[3 * r:3 * r + 3], *passages[3 * r:3 * r + 3]]


def test_epochs_continue_the_stream_and_replay_after_a_restart():
    data = rows_dataset()
    s = StrategyBatchSampler(data, 4, strategy="xy", world_size=1, seed=3, batches_per_epoch=5)
    first, second = list(s), (s.set_epoch(1), list(s))[1]
    assert len(first) == len(second) == len(s) == 5 and first != second
    fresh = StrategyBatchSampler(data, 4, strategy="xy", world_size=1, seed=3, batches_per_epoch=5)
    fresh.set_epoch(1)
    assert list(fresh) == second


def test_pair_collator_and_missing_columns_are_clear():
    collate = PairCollator(lambda feats: feats)
    rows = [{"anchor": "a0", "positive": "p0", "qid": "1"}, {"anchor": "a1", "positive": "p1", "qid": "2"}]
    assert collate(rows) == [{"anchor": "a0", "positive": "p1"}]
    with pytest.raises(ValueError, match="k query rows then k passage rows"):
        collate(rows[:1])
    with pytest.raises(ValueError, match=r"needs column\(s\) \['qid', 'lang'\]"):
        StrategyBatchSampler(Dataset.from_dict({"anchor": ["a"], "positive": ["p"]}), 1, world_size=1)
