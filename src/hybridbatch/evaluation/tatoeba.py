"""Cross-lingual alignment (docs/PROTOCOL.md §4.6): Tatoeba bitext retrieval, XTREME-R style.

Line ``i`` of one side is the translation of line ``i`` of the other. For every source sentence the
nearest target sentence by cosine similarity is retrieved (1-NN); accuracy is the share of source
sentences whose nearest neighbour is their own translation. Both directions are reported: ``x2en``
(the non-English side searches the English sentences, XTREME's direction) and ``en2x``.

Ties follow :mod:`hybridbatch.evaluation.metrics`: among equal similarities the lower target index wins, so a
translation tied with an earlier sentence counts as a miss. Similarities are computed in float64 from
L2-normalised rows, query chunk by query chunk, so memory stays at ``chunk x n_targets``.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import pandas as pd
import torch
import torch.nn.functional as F

from hybridbatch.evaluation import metrics as M

#: the columns :func:`evaluate_tatoeba` reads (``hybridbatch.data.raw.TATOEBA_COLUMNS`` has them all)
REQUIRED_COLUMNS = ("lang3", "lang", "text", "eng")


class TextEncoder(Protocol):
    """What the evaluators need of an encoder (``hybridbatch.model.encoder.DualEncoder`` is one)."""

    def encode(self, texts: Sequence[str], kind: str, **kwargs: Any) -> torch.Tensor: ...


def bitext_accuracy(src: torch.Tensor, tgt: torch.Tensor, chunk: int = 256) -> float:
    """1-NN accuracy by cosine: the share of rows ``i`` of ``src`` whose nearest ``tgt`` row is row ``i``.

    ``src`` and ``tgt``: (n, d) embeddings of the two sides, row-aligned; they are L2-normalised here
    (rows need not be). Equal similarities resolve to the lower target index (see the module docstring).
    """
    if src.ndim != 2 or src.shape != tgt.shape:
        raise ValueError(f"expected two (n, d) tensors of the same shape, got {tuple(src.shape)} and "
                         f"{tuple(tgt.shape)}")
    n = src.shape[0]
    if n == 0:
        raise ValueError("no sentence pairs")
    src = F.normalize(src.detach().to(torch.float64), dim=-1)
    tgt = F.normalize(tgt.detach().to(torch.float64), dim=-1)
    hits = 0
    for start in range(0, n, chunk):
        rows = range(start, min(start + chunk, n))
        scores = src[start:rows.stop] @ tgt.T  # (b, n)
        ranks = M.relevant_ranks(scores, [[i] for i in rows], chunk=chunk)
        hits += sum(int(r[0] == 1) for r in ranks)
    return hits / n


def _check_table(table: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"Tatoeba table lacks column(s) {missing}; expected {list(REQUIRED_COLUMNS)}")
    if table.empty:
        raise ValueError("empty Tatoeba table")
    codes = table[["lang3", "lang"]].drop_duplicates()
    if codes["lang3"].duplicated().any() or codes["lang"].duplicated().any():
        raise ValueError(f"lang3 -> lang must be one-to-one, got {codes.values.tolist()}")


def evaluate_tatoeba(encoder: TextEncoder, table: pd.DataFrame, kind: str = "query",
                     max_tokens: int = 8192) -> dict[str, Any]:
    """Bitext retrieval accuracy, both directions, for every language of a Tatoeba table.

    ``table``: rows ``lang3, lang, text, eng`` (the prepared ``tatoeba.parquet``); row order within a
    language defines the pairs. Both sides are encoded with the same ``kind`` (prefix): the task is
    symmetric, and E5 recommends its ``"query: "`` prefix for symmetric tasks.

    Returns ``{"per_language": {lang: {"x2en", "en2x", "n"}}, "x2en", "en2x", "mean"}`` keyed by the
    ISO-639-1 code (``cmn`` -> ``zh``); ``x2en`` / ``en2x`` are macro means over languages and ``mean``
    is the mean of the two. Every accuracy is range-checked (``metrics.check_metric``: a value outside
    [0, 1], NaN or inf raises ``ValueError`` naming it and the language).
    """
    _check_table(table)
    per_language: dict[str, dict[str, float | int]] = {}
    for _, pairs in table.groupby("lang3", sort=False):
        x = encoder.encode(pairs["text"].tolist(), kind=kind, max_tokens=max_tokens)
        en = encoder.encode(pairs["eng"].tolist(), kind=kind, max_tokens=max_tokens)
        lang = str(pairs["lang"].iloc[0])
        per_language[lang] = {
            d: M.check_metric(f"tatoeba {d}", acc, f"language {lang}", kind="accuracy")
            for d, acc in (("x2en", bitext_accuracy(x, en)), ("en2x", bitext_accuracy(en, x)))}
        per_language[lang]["n"] = len(pairs)
    x2en, en2x = (M.mean([v[d] for v in per_language.values()], f"tatoeba {d}", "macro mean over languages",
                         kind="accuracy") for d in ("x2en", "en2x"))
    return {"per_language": per_language, "x2en": x2en, "en2x": en2x,
            "mean": M.check_metric("tatoeba mean", (x2en + en2x) / 2, "mean of x2en and en2x", kind="accuracy")}
