"""Dual encoder with shared weights: s(q, d) = cos(E(q), E(d)).

Any Hugging Face encoder checkpoint (a local path or a hub name) loads through ``DualEncoder``.
Per-checkpoint defaults (pooling, prefixes) live in ``hybridbatch_encoder.json`` beside the weights and
can be overridden from ``params.yaml``. Encoding sorts texts by token length and pads each batch only to
its own longest text, so short queries never pay for long passages. A checkpoint that cannot be loaded, or a
``max_length`` beyond the model's positions, is an :class:`EncoderError` (one line naming the path and the
value), checked from the config alone (:func:`check_checkpoint`) before any weights load or text is encoded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoTokenizer

logger = logging.getLogger(__name__)

SETTINGS_FILE = "hybridbatch_encoder.json"
POOLINGS = ("mean", "cls")
#: model types whose position ids start after the padding index (RoBERTa, XLM-R: pad_token_id + 1 = 2)
PADDED_POSITIONS = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "longformer", "mpnet")


class EncoderError(ValueError):
    """A checkpoint that cannot be loaded, or a setting it cannot serve (the message is one line)."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _is_local(name: str) -> bool:
    """Whether ``name`` means a local directory (hub names are ``name`` or ``namespace/name``)."""
    path = Path(name).expanduser()
    first = Path(path.parts[0]) if path.parts else path
    return (path.exists() or path.is_absolute() or name.startswith(".") or name.count("/") > 1
            or (len(path.parts) > 1 and (first.name == "models" or first.is_dir())))


def position_limit(config) -> int | None:
    """Tokens a text may have: ``max_position_embeddings`` less the padding offset of RoBERTa-style models."""
    n = getattr(config, "max_position_embeddings", None)
    if not isinstance(n, int):
        return None
    padded = getattr(config, "model_type", "") in PADDED_POSITIONS
    return n - ((getattr(config, "pad_token_id", None) or 0) + 1 if padded else 0)


def check_max_length(name: str, config, max_length: int, what: str = "max_length") -> None:
    """:class:`EncoderError` when ``max_length`` tokens exceed the model's position limit."""
    limit = position_limit(config)
    if limit is not None and max_length > limit:
        offset = config.max_position_embeddings - limit
        raise EncoderError(f"{name}: {what} {max_length} exceeds the model's {limit} token positions "
                           f"(max_position_embeddings {config.max_position_embeddings} less padding offset {offset})")


def check_checkpoint(name_or_path: str | os.PathLike, max_length: int | None = None, what: str = ""):
    """The checkpoint's config (cheap: no weights), or :class:`EncoderError`; ``max_length`` checked against it.
    ``what`` (e.g. ``--model``) names the setting the path came from in the message."""
    name = str(name_or_path)
    said = f"{what} {name}" if what else name
    if _is_local(name) and not (Path(name).expanduser() / "config.json").is_file():
        problem = "is not a checkpoint directory (no config.json)" if Path(name).exists() else "does not exist"
        raise EncoderError(f"{said}: {problem}; a local encoder is a Hugging Face checkpoint directory")
    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise EncoderError(f"{said}: cannot load the encoder's config: {_one_line(exc)}") from None
    if max_length is not None:
        check_max_length(name, config, max_length)
    return config


@dataclasses.dataclass(frozen=True)
class EncoderSettings:
    """How texts become vectors. Stored with every checkpoint this project writes."""

    pooling: str = "mean"  # "mean" (E5, XLM-R) or "cls" (LaBSE)
    normalize: bool = True  # L2-normalise, so the dot product is the cosine
    query_prefix: str = "query: "  # E5 convention (docs/PROTOCOL.md §2.3); "" for models trained without
    passage_prefix: str = "passage: "
    max_length: int = 128  # tokens, prefix and special tokens included

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.max_length < 4:
            raise ValueError(f"max_length must be >= 4, got {self.max_length}")

    def replace(self, **overrides) -> "EncoderSettings":
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown encoder settings {sorted(unknown)}; known: {sorted(known)}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


def read_settings(path: str | os.PathLike) -> EncoderSettings:
    """Settings stored beside a checkpoint, or the defaults for a checkpoint that has none."""
    file = Path(path) / SETTINGS_FILE
    if not file.is_file():
        return EncoderSettings()
    raw = json.loads(file.read_text(encoding="utf-8"))
    known = {f.name for f in dataclasses.fields(EncoderSettings)}
    return EncoderSettings(**{k: v for k, v in raw.items() if k in known})


class DualEncoder(torch.nn.Module):
    """One transformer encodes both queries and passages (shared weights)."""

    def __init__(self, name_or_path: str | os.PathLike, **overrides) -> None:
        super().__init__()
        self.name_or_path = str(name_or_path)
        config = check_checkpoint(name_or_path)
        self.settings = read_settings(name_or_path).replace(**overrides)
        check_max_length(self.name_or_path, config, self.settings.max_length)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            # a BERT pooler head, where present, is loaded but never used: we pool the last hidden states
            self.model = AutoModel.from_pretrained(name_or_path, config=config)
        except (OSError, ValueError) as exc:
            raise EncoderError(f"{self.name_or_path}: cannot load the encoder: {_one_line(exc)}") from None
        logger.info("loaded encoder %s (%s pooling, %.1fM parameters)", self.name_or_path,
                    self.settings.pooling, self.num_parameters() / 1e6)

    # -- parameters ---------------------------------------------------------------------------
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def parameter_counts(self) -> dict[str, int]:
        """All parameters, and those outside the embedding layer (the transformer's size; the word-embedding
        table of a 250k-token multilingual vocabulary dominates the total of a small model)."""
        embeddings = getattr(self.model, "embeddings", None)
        emb = sum(p.numel() for p in embeddings.parameters()) if embeddings is not None else 0
        total = self.num_parameters()
        return {"parameters": total, "non_embedding_parameters": total - emb,
                "layers": int(getattr(self.model.config, "num_hidden_layers", 0))}

    def keep_layers(self, k: int) -> "DualEncoder":
        """Keep the first ``k`` transformer layers (a smaller model of the same family; offline size ladder)."""
        layers = getattr(getattr(self.model, "encoder", None), "layer", None)
        if not isinstance(layers, torch.nn.ModuleList):
            raise ValueError(f"{self.name_or_path}: no encoder.layer stack to truncate "
                             f"({type(self.model).__name__} is not a BERT/XLM-R-style encoder)")
        if not 1 <= k <= len(layers):
            raise ValueError(f"{self.name_or_path}: cannot keep {k} of its {len(layers)} layers")
        self.model.encoder.layer = torch.nn.ModuleList(list(layers)[:k])
        self.model.config.num_hidden_layers = k
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    # -- text -> tokens -----------------------------------------------------------------------
    def prefix(self, texts: Sequence[str], kind: str) -> list[str]:
        if kind == "query":
            pre = self.settings.query_prefix
        elif kind == "passage":
            pre = self.settings.passage_prefix
        else:
            raise ValueError(f"kind must be 'query' or 'passage', got {kind!r}")
        return [pre + t for t in texts]

    # -- tokens -> vectors ----------------------------------------------------------------------
    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.settings.pooling == "cls":
            out = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            out = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return F.normalize(out, dim=-1) if self.settings.normalize else out

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        return self.pool(hidden, attention_mask)

    def embed(self, texts: Sequence[str], kind: str, *, max_length: int | None = None, max_tokens: int = 8192,
              max_batch: int = 256, progress: bool | str = False) -> torch.Tensor:
        """Embed ``texts`` (one row per text, input order); differentiable when gradients are enabled.

        Texts are sorted by token length and run in chunks of at most ``max_tokens`` padded tokens (and
        ``max_batch`` texts), each padded only to its own longest text: almost no compute goes to padding.
        """
        texts = list(texts)
        if max_length is not None:
            check_max_length(self.name_or_path, self.model.config, max_length)
        if not texts:
            return torch.empty(0, self.dim)
        enc = self.tokenizer(self.prefix(texts, kind), truncation=True,
                             max_length=max_length or self.settings.max_length, padding=False)
        ids = enc["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))
        sizes = list(_length_batches([len(ids[i]) for i in order], max_tokens, max_batch))
        pad = self.tokenizer.pad_token_id
        desc = progress if isinstance(progress, str) else f"encode {kind}s"
        chunks, pos = [], 0
        for size in tqdm(sizes, desc=desc, disable=not progress, unit="batch", mininterval=5):
            idx = order[pos:pos + size]
            pos += size
            width = len(ids[idx[0]])
            input_ids = torch.full((size, width), pad, dtype=torch.long)
            mask = torch.zeros((size, width), dtype=torch.long)
            for row, i in enumerate(idx):
                input_ids[row, :len(ids[i])] = torch.tensor(ids[i])
                mask[row, :len(ids[i])] = 1
            chunks.append(self(input_ids.to(self.device), mask.to(self.device)))
        out = torch.cat(chunks)
        inverse = torch.empty(len(order), dtype=torch.long, device=out.device)
        inverse[torch.tensor(order, device=out.device)] = torch.arange(len(order), device=out.device)
        return out[inverse]

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], kind: str, *, max_tokens: int = 8192, max_batch: int = 256,
               progress: bool | str = False) -> torch.Tensor:
        """Embed ``texts`` for retrieval (eval mode, no gradients, float32, on the CPU)."""
        was_training = self.training
        self.eval()
        try:
            return self.embed(texts, kind, max_tokens=max_tokens, max_batch=max_batch, progress=progress).float().cpu()
        finally:
            self.train(was_training)

    # -- persistence --------------------------------------------------------------------------
    def save(self, out_dir: str | os.PathLike) -> None:
        """Write a plain Hugging Face checkpoint plus this project's and sentence-transformers' configs."""
        out_dir = Path(out_dir)
        self.model.save_pretrained(out_dir, safe_serialization=True)
        self.tokenizer.save_pretrained(out_dir)
        s = self.settings
        (out_dir / SETTINGS_FILE).write_text(json.dumps(dataclasses.asdict(s), indent=2) + "\n")
        write_sentence_transformers_config(out_dir, s, self.dim)


def write_sentence_transformers_config(out_dir: Path, s: EncoderSettings, dim: int) -> None:
    """Make ``sentence_transformers.SentenceTransformer(out_dir)`` load the checkpoint as this encoder."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if s.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
        (out_dir / "2_Normalize").mkdir(exist_ok=True)
    (out_dir / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (out_dir / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": s.max_length, "do_lower_case": False}, indent=2) + "\n")
    (out_dir / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": s.query_prefix, "passage": s.passage_prefix}, "default_prompt_name": None,
         "similarity_fn_name": "cosine"}, indent=2) + "\n")
    pooling_dir = out_dir / "1_Pooling"
    pooling_dir.mkdir(exist_ok=True)
    (pooling_dir / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": dim, "pooling_mode_cls_token": s.pooling == "cls",
         "pooling_mode_mean_tokens": s.pooling == "mean", "pooling_mode_max_tokens": False,
         "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True}, indent=2) + "\n")


def _length_batches(lengths: Iterable[int], max_tokens: int, max_batch: int) -> Iterable[int]:
    """Sizes of consecutive batches over texts sorted by decreasing length."""
    size, width = 0, 0
    for n in lengths:
        w = max(width, n)
        if size and (w * (size + 1) > max_tokens or size == max_batch):
            yield size
            size, w = 0, n
        size, width = size + 1, w
    if size:
        yield size
