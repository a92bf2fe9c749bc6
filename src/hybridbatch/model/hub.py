"""Any Hugging Face encoder (hub name or local directory) -> a checkpoint that ``DualEncoder(out_dir)`` loads.

The model is read with ``AutoModel``/``AutoTokenizer`` (offline when ``HF_HUB_OFFLINE=1``: then only the
local cache or a local directory works) and written by ``DualEncoder.save``: safetensors weights, tokenizer,
``hybridbatch_encoder.json`` (pooling, prefixes, max length) and sentence-transformers configs.

Known model families (:data:`KNOWN_ENCODERS`) give the defaults of pooling and prefixes; any other model
defaults to mean pooling and no prefixes (explicit arguments always win):

* ``intfloat/multilingual-e5-{small,base,large}`` -- mean pooling, ``"query: "`` / ``"passage: "``.
* ``xlm-roberta-{base,large}`` (also ``FacebookAI/...``) -- mean pooling, no prefixes (a raw MLM encoder,
  not trained for retrieval; its ``lm_head`` is dropped and its pooler, unused, may be newly initialised).
* ``sentence-transformers/LaBSE`` -- CLS pooling on the last hidden state, no prefixes. LaBSE's
  sentence-transformers head adds a Dense(768, 768) + tanh layer after the CLS vector (``2_Dense``) that a
  plain ``AutoModel`` does not apply, so these embeddings are *not* LaBSE's published ones (the BERT pooler
  output, ``pooler_output``, is the closer alternative). Fine-tuning starts from the same encoder either way.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from hybridbatch.model.encoder import DualEncoder, read_settings
from hybridbatch.io import atomic_dir

logger = logging.getLogger(__name__)

_E5 = {"pooling": "mean", "query_prefix": "query: ", "passage_prefix": "passage: "}
_PLAIN = {"pooling": "mean", "query_prefix": "", "passage_prefix": ""}
#: hub name -> default pooling and prefixes
KNOWN_ENCODERS: dict[str, dict[str, str]] = {
    "intfloat/multilingual-e5-small": _E5,
    "intfloat/multilingual-e5-base": _E5,
    "intfloat/multilingual-e5-large": _E5,
    "xlm-roberta-base": _PLAIN,
    "xlm-roberta-large": _PLAIN,
    "FacebookAI/xlm-roberta-base": _PLAIN,
    "FacebookAI/xlm-roberta-large": _PLAIN,
    "sentence-transformers/LaBSE": {"pooling": "cls", "query_prefix": "", "passage_prefix": ""},
}
_PROBE = ["Where is the Eiffel Tower?", "La tour Eiffel est à Paris."]


def _is_local(name_or_path: str) -> bool:
    """A path rather than a hub name (``org/name``): exists, or starts with / . ~, or has two slashes."""
    return (Path(name_or_path).expanduser().exists() or name_or_path.startswith(("/", ".", "~"))
            or name_or_path.count("/") > 1)


def default_settings(name_or_path: str) -> dict[str, str]:
    """Pooling and prefixes for a model: :data:`KNOWN_ENCODERS`, else a local checkpoint's stored
    settings, else mean pooling without prefixes."""
    if name_or_path in KNOWN_ENCODERS:
        return dict(KNOWN_ENCODERS[name_or_path])
    if _is_local(name_or_path) and (Path(name_or_path).expanduser() / "hybridbatch_encoder.json").is_file():
        s = read_settings(Path(name_or_path).expanduser())
        return {"pooling": s.pooling, "query_prefix": s.query_prefix, "passage_prefix": s.passage_prefix}
    return dict(_PLAIN)


def import_hf_encoder(name_or_path: str | os.PathLike, out_dir: str | os.PathLike, pooling: str | None = None,
                      query_prefix: str | None = None, passage_prefix: str | None = None,
                      max_length: int | None = None, verify: bool = True) -> Path:
    """Write ``name_or_path`` as a ``DualEncoder`` checkpoint in ``out_dir`` (replaced atomically).

    ``None`` settings take :func:`default_settings` (``max_length``: the source's stored one, else 128).
    With ``verify``, the written checkpoint is reloaded and must embed two probe texts exactly as the
    source does. Raises FileNotFoundError / ValueError for a missing local path or a non-model directory.
    """
    name = str(name_or_path)
    if _is_local(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such model directory")
        if not (path / "config.json").is_file():
            raise ValueError(f"{path}: not a Hugging Face model directory (no config.json)")
        name = str(path)
    settings = default_settings(name)
    overrides = {"pooling": pooling, "query_prefix": query_prefix, "passage_prefix": passage_prefix}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    encoder = DualEncoder(name, max_length=max_length, **settings)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        encoder.save(tmp)
        if verify:
            _check_reload(encoder, tmp)
    logger.info("wrote %s from %s (%s)", out_dir, name, encoder.settings)
    return out_dir


def _check_reload(encoder: DualEncoder, directory: Path) -> None:
    reloaded = DualEncoder(directory)
    if reloaded.settings != encoder.settings:
        raise ValueError(f"{directory}: reloaded settings {reloaded.settings} differ from {encoder.settings}")
    for kind in ("query", "passage"):
        expected, got = encoder.encode(_PROBE, kind), reloaded.encode(_PROBE, kind)
        if not torch.allclose(expected, got, atol=1e-5):
            raise ValueError(f"{directory}: the reloaded model embeds differently (max abs diff "
                             f"{(expected - got).abs().max():.2e})")
