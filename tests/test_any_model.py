"""The evaluator for any model equals the evaluate stage's numbers on the same model and questions."""

from __future__ import annotations

import math

import pytest
import torch

from helpers.tiny import REPO, make_tiny_model
from hybridbatch.data.raw import load_prepared, prepare, sample_paragraphs
from hybridbatch.evaluation import any_model
from hybridbatch.evaluation.lareqa import evaluate_lareqa
from hybridbatch.model.encoder import DualEncoder

LANGS = ["de", "en", "es"]
KEYS = ("map_mo", "map_cr", "map_mul", "r1_mo", "r1_cr", "r10_mul", "rank_distance", "mrr_mul", "ndcg10_cr")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("anymodel")
    torch.manual_seed(0)
    model_dir = tmp / "model"
    DualEncoder(make_tiny_model(tmp / "tiny", dropout=0.0)).save(model_dir)  # + sentence-transformers config
    prepare(REPO / "data" / "raw", tmp / "prepared", datasets={"mlqa_r": LANGS}, tatoeba_langs=[], max_questions=40)
    qs, cs = sample_paragraphs(*load_prepared(tmp / "prepared", "mlqa_r"), 1.0, 0)  # as the evaluate stage
    encoder = DualEncoder(model_dir)
    stage = evaluate_lareqa(encoder, qs, cs, candidate_text="sentence")["summary"]  # the stage's call
    return model_dir, encoder, stage


def assert_same(ours: dict, stage: dict, tol=1e-6):
    for key in KEYS:
        assert math.isclose(ours[key], stage[key], abs_tol=tol), (key, ours[key], stage[key])
    assert ours["n_queries"] == stage["n_queries"]
    assert ours["per_pair"]["map"] == pytest.approx(stage["per_pair"]["map"], abs=tol)


def test_a_callable_encoder_gives_the_stage_numbers(setup):
    model_dir, encoder, stage = setup
    bare = DualEncoder(model_dir, query_prefix="", passage_prefix="")  # texts arrive prefixed by the evaluator

    def texts_to_embeddings(texts):
        return bare.encode(texts, "query").numpy()

    ours = any_model.evaluate_model(texts_to_embeddings, dataset="mlqa_r", langs=LANGS, max_questions=40)
    assert_same(ours, stage)
    assert 0 < ours["map_mul"] < 1


def test_a_sentence_transformer_and_its_evaluator_give_the_stage_numbers(setup):
    from sentence_transformers import SentenceTransformer

    from hybridbatch.integrations.sentence_transformers import LAReQAEvaluator

    model_dir, _encoder, stage = setup
    st = SentenceTransformer(str(model_dir), device="cpu")
    assert_same(any_model.evaluate_model(st, dataset="mlqa_r", langs=LANGS, max_questions=40), stage)
    metrics = LAReQAEvaluator("mlqa_r", LANGS, max_questions=40, name="mlqa")(st)
    assert metrics["mlqa_map_mul"] == pytest.approx(stage["map_mul"], abs=1e-6)
    assert set(metrics) == {f"mlqa_{k}" for k in LAReQAEvaluator.KEYS}


def test_cli_prints_the_table_and_fails_in_one_line(setup, capsys):
    model_dir, _encoder, stage = setup
    assert any_model.main(["--model", str(model_dir), "--dataset", "mlqa_r", "--langs", ",".join(LANGS),
                           "--max-questions", "40"]) == 0
    out = capsys.readouterr().out
    assert "Mul. mAP" in out and f"{100 * stage['map_mul']:.2f}" in out
    assert any_model.main(["--model", str(model_dir / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model directory") and err.count("\n") == 1
    assert any_model.main(["--model", str(model_dir), "--dataset", "xquad_r", "--langs", "xx"]) == 2
    assert "has no language(s) ['xx']" in capsys.readouterr().err
