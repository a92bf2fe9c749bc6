"""Small real inputs for training tests: a random 2-layer BERT with the real E5 tokenizer, and a small
prepared MLQA-R subset made by the real ``prepare`` from the vendored files."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make_tiny_model(out: Path, dropout: float = 0.1, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    from hybridbatch.model.e5import import build_tokenizer, default_tokenizer_path

    tok = build_tokenizer(default_tokenizer_path())
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=160, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout, pad_token_id=tok.pad_token_id)
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def make_prepared(out: Path, langs=("ar", "de", "en", "es"), max_questions: int = 250) -> Path:
    from hybridbatch.data.raw import prepare

    prepare(REPO / "data" / "raw", out, datasets={"mlqa_r": list(langs)}, tatoeba_langs=[],
            max_questions=max_questions)
    return out
