"""MIRACL inputs: topics, qrels and the corpus, read and validated (docs/PROTOCOL.md §4.8).

Topics ``qid<TAB>query`` and TREC qrels ``qid Q0 docid rel`` (plain or ``.gz``) as vendored in
``data/raw/miracl/``; the corpus (JSONL lines ``{"docid", "title", "text"}``, the hub's
``miracl-corpus-v1.0-<lang>/docs-<n>.jsonl.gz`` files) is not available offline and is read from a local
file/folder, or from the Hugging Face hub only when asked explicitly (``corpus_source="hf"``). Every
malformed input line raises :class:`hybridbatch.data.raw.DataError`.

The corpus is streamed (:func:`iter_corpus_chunks`): ``chunk_size`` passages at a time, validated as they are
read, a repeated docid found across the whole corpus with 8 bytes a passage. Search and scoring:
:mod:`hybridbatch.evaluation.miracl`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import re
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from hybridbatch.data.raw import DataError, _Where, open_text

logger = logging.getLogger(__name__)

#: ``corpus_source`` value that loads the corpus from the Hugging Face hub (network needed)
HF_SOURCE = "hf"
HF_DATASET = "miracl/miracl-corpus"
CORPUS_COLUMNS = ["docid", "title", "text"]
#: how a passage becomes text to encode: ``title + " " + text`` (default) or the text alone
PASSAGE_FORMATS = ("title+text", "text")
QRELS_FIELDS = ("qid", "iter", "docid", "rel")
#: passages read, encoded and scored at a time by :func:`dense_search` (execution setting: memory only)
DEFAULT_CHUNK = 50_000
Row = tuple[str, str, str]  # docid, title, text

_LANG_IN_NAME = re.compile(r"miracl-v1\.0-([a-z]+)-")
_DIGITS = re.compile(r"(\d+)")


# ----------------------------------------------------------------------------------------------- inputs
def _numbered_lines(path: Path) -> Iterator[tuple[str, str]]:
    """``("line N", text)`` for each line of a UTF-8 file (plain or ``.gz``), streamed, without line ends."""
    try:
        with open_text(path) as f:
            for n, line in enumerate(f, start=1):
                yield f"line {n}", line.rstrip("\n").removesuffix("\r")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read: {e}") from e


def load_topics(path: str | Path) -> dict[str, str]:
    """MIRACL topics ``qid<TAB>query`` (no header) as ``{qid: query}`` in file order."""
    path = Path(path)
    topics: dict[str, str] = {}
    for record, line in _numbered_lines(path):
        where = _Where(path, record)
        parts = line.split("\t")
        if len(parts) != 2:
            raise where.error("query", f"expected 'qid<TAB>query', got {len(parts)} tab-separated field(s)")
        qid, query = parts
        if not qid.strip():
            raise where.error("qid", "empty")
        if not query.strip():
            raise where.error("query", "empty")
        if qid in topics:
            raise where.error("qid", f"duplicate topic {qid!r}")
        topics[qid] = query
    if not topics:
        raise DataError(path, "no topics")
    return topics


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """TREC qrels ``qid iter docid rel`` (whitespace-separated) as ``{qid: {docid: rel}}`` in file order."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for record, line in _numbered_lines(path):
        where = _Where(path, record)
        parts = line.split()
        if len(parts) < len(QRELS_FIELDS):
            raise where.error(QRELS_FIELDS[len(parts)], f"missing (expected '{' '.join(QRELS_FIELDS)}')")
        if len(parts) > len(QRELS_FIELDS):
            raise where.error("rel", f"unexpected extra field(s) after it: {parts[4:]}")
        qid, _, docid, rel = parts
        try:
            value = int(rel)
        except ValueError:
            raise where.error("rel", f"not an integer: {rel!r}") from None
        judged = qrels.setdefault(qid, {})
        if docid in judged:
            raise where.error("docid", f"duplicate judgment of {docid!r} for query {qid!r}")
        judged[docid] = value
    if not qrels:
        raise DataError(path, "no judgments")
    return qrels


def lang_of(path: str | Path) -> str | None:
    """The language of an anserini-tools MIRACL file name (``topics.miracl-v1.0-<lang>-dev.tsv``)."""
    match = _LANG_IN_NAME.search(Path(path).name)
    return match.group(1) if match else None


def corpus_files(source: str | Path, lang: str | None = None) -> list[Path]:
    """JSONL(.gz) files of a local corpus; ``[]`` when there is none.

    ``source`` is a file, or a folder holding ``*.jsonl[.gz]`` directly or in the hub's per-language
    subfolder ``miracl-corpus-v1.0-<lang>/`` (files in natural order: ``docs-2`` before ``docs-10``).
    """
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        return []
    if lang and (source / f"miracl-corpus-v1.0-{lang}").is_dir():
        source = source / f"miracl-corpus-v1.0-{lang}"
    files = [p for p in source.iterdir() if p.is_file() and p.name.endswith((".jsonl", ".jsonl.gz"))]
    return sorted(files, key=lambda p: [int(s) if s.isdigit() else s for s in _DIGITS.split(p.name)])


def _passage(where: _Where, obj: Any) -> Row:
    """``(docid, title, text)`` of one corpus record: a JSON object with string fields, non-empty docid."""
    where.check(obj, dict, "(line)")
    docid = where.get(obj, "docid", str)
    if not docid:
        raise where.error("docid", "empty")
    return docid, where.get(obj, "title", str), where.get(obj, "text", str)


def _read_jsonl(path: Path) -> Iterator[tuple[str, Row]]:
    """``(record, (docid, title, text))`` for each line of a MIRACL corpus file, validated, streamed."""
    for record, line in _numbered_lines(path):
        where = _Where(path, record)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise where.error(None, f"invalid JSON: {e.msg} (column {e.colno})") from None
        yield record, _passage(where, obj)


def _hub_rows(lang: str) -> Iterator[tuple[str, str, Row]]:
    """``(source, "row N", passage)`` of the hub corpus, memory-mapped by ``datasets`` (network; untested)."""
    from datasets import load_dataset

    try:
        ds = load_dataset(HF_DATASET, lang, split="train")
    except Exception as e:  # noqa: BLE001 -- datasets >= 4 no longer runs the repo's loading script
        files = f"hf://datasets/{HF_DATASET}/miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz"
        logger.warning("load_dataset(%r, %r) failed (%s); reading %s instead", HF_DATASET, lang, e, files)
        ds = load_dataset("json", data_files=files, split="train")
    name = f"hf://datasets/{HF_DATASET}/miracl-corpus-v1.0-{lang}"
    for i, obj in enumerate(ds):
        yield name, f"row {i}", _passage(_Where(name, f"row {i}"), obj)  # type: ignore[arg-type]


def _row_source(source: str | Path, lang: str | None) -> Callable[[], Iterator[tuple[Any, str, Row]]]:
    """A function (re)starting the stream ``(file, record, passage)`` of a corpus, in file order."""
    if str(source) == HF_SOURCE:
        if not lang:
            raise ValueError("loading the corpus from the hub needs a language")
        return lambda: _hub_rows(lang)
    files = corpus_files(source, lang)
    if not files:
        raise DataError(source, "no MIRACL corpus here (a *.jsonl[.gz] file or a folder of them)")
    return lambda: ((path, record, row) for path in files for record, row in _read_jsonl(path))


def _duplicate(path: Any, record: str, docid: str, first_path: Any, first_record: str) -> DataError:
    return DataError(path, f"duplicate docid {docid!r} (first at {first_path} {first_record})", record=record,
                     field="docid")


def load_corpus(source: str | Path, lang: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """MIRACL passages as a DataFrame ``docid, title, text`` (at most ``limit`` rows, in file order).

    The whole corpus in memory: for tests and small corpora (search streams it: :func:`iter_corpus_chunks`).
    ``source``: a local JSONL(.gz) file or folder (see :func:`corpus_files`), or :data:`HF_SOURCE` to call
    ``datasets.load_dataset("miracl/miracl-corpus", lang)``. A partial corpus (``limit``) gives numbers
    that are not comparable with published ones. A repeated docid is a :class:`DataError`.
    """
    first: dict[str, tuple[Any, str]] = {}
    kept: list[Row] = []
    for path, record, row in itertools.islice(_row_source(source, lang)(), limit):
        if row[0] in first:
            raise _duplicate(path, record, row[0], *first[row[0]])
        first[row[0]] = (path, record)
        kept.append(row)
    corpus = pd.DataFrame(kept, columns=CORPUS_COLUMNS)
    logger.info("MIRACL corpus %s (%s): %d passages", source, lang, len(corpus))
    return corpus


def _check_format(passage_format: str) -> None:
    if passage_format not in PASSAGE_FORMATS:
        raise ValueError(f"passage_format must be one of {PASSAGE_FORMATS}, got {passage_format!r}")


def _passage_text(title: str, text: str, passage_format: str) -> str:
    return f"{title} {text}" if title and passage_format == "title+text" else text


def passage_texts(corpus: pd.DataFrame, passage_format: str = "title+text") -> list[str]:
    """Texts to encode: ``title + " " + text`` (just ``text`` when the title is empty), or ``text``."""
    _check_format(passage_format)
    return [_passage_text(title, text, passage_format) for title, text in zip(corpus["title"], corpus["text"])]


@dataclass(frozen=True)
class CorpusChunk:
    """Consecutive passages of one corpus file ``source`` (or hub dataset), from its 0-based position ``start``
    (with the chunk size, the chunk's index): their ``docids`` and the ``texts`` to encode, in file order."""

    source: str
    start: int
    docids: list[str]
    texts: list[str] = field(repr=False)

    @cached_property
    def digest(self) -> str:
        """sha256 over the docids and texts: what cached embeddings of the chunk must come from."""
        h = hashlib.sha256()
        for docid, text in zip(self.docids, self.texts):
            h.update(docid.encode() + b"\0" + text.encode() + b"\0")
        return h.hexdigest()


def _docid_hashes(docids: Sequence[str]) -> np.ndarray:
    return np.fromiter((int.from_bytes(hashlib.blake2b(d.encode(), digest_size=8).digest(), "little")
                        for d in docids), dtype=np.uint64, count=len(docids))


class _SeenDocids:
    """The docids streamed so far, as a sorted array of 64-bit hashes (8 bytes a passage, not the strings).

    A hash seen before is confirmed by re-reading the corpus up to that passage: a true repeat raises the
    :class:`DataError` of :func:`load_corpus` (naming the first occurrence); a hash collision is ignored.
    """

    def __init__(self, rows: Callable[[], Iterator[tuple[Any, str, Row]]]) -> None:
        self.rows, self.hashes = rows, np.empty(0, dtype=np.uint64)

    def add(self, path: Any, records: list[str], docids: list[str]) -> None:
        """Add the docids of consecutive ``records`` of ``path``; :class:`DataError` at a repeated one."""
        h = _docid_hashes(docids)
        order = np.argsort(h, kind="stable")
        suspect = np.zeros(len(h), dtype=bool)
        suspect[order[1:][h[order[1:]] == h[order[:-1]]]] = True  # a later repeat within the batch
        if len(self.hashes):
            suspect |= self.hashes[np.minimum(np.searchsorted(self.hashes, h), len(self.hashes) - 1)] == h
        for i in np.flatnonzero(suspect):
            self._confirm(path, records[i], docids[i])
        self.hashes = np.sort(np.concatenate([self.hashes, h[order]]), kind="stable")  # merges two sorted runs

    def _confirm(self, path: Any, record: str, docid: str) -> None:
        with contextlib.closing(self.rows()) as rows:
            for other_path, other_record, other in rows:
                if (other_path, other_record) == (path, record):
                    return  # a hash collision: no earlier passage has this docid
                if other[0] == docid:
                    raise _duplicate(path, record, docid, other_path, other_record)


def iter_corpus_chunks(source: str | Path, lang: str | None = None, chunk_size: int = DEFAULT_CHUNK,
                       limit: int | None = None, passage_format: str = "title+text") -> Iterator[CorpusChunk]:
    """The corpus (first ``limit`` passages; ``None``: all) as :class:`CorpusChunk` s, streamed in file order.

    Requirements: ``chunk_size >= 1``; ``source`` as for :func:`load_corpus`. Chunks hold at most
    ``chunk_size`` passages and never span two files. Lines are validated as they are read, and a repeated
    docid is found across the whole corpus (:class:`DataError`, as :func:`load_corpus` raises them); memory:
    one chunk plus 8 bytes a passage.
    """
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    _check_format(passage_format)
    rows = _row_source(source, lang)
    seen = _SeenDocids(rows)
    for path, group in itertools.groupby(itertools.islice(rows(), limit), key=lambda r: r[0]):
        start = 0
        while True:
            records, docids, texts = [], [], []
            for _, record, (docid, title, text) in itertools.islice(group, chunk_size):
                records.append(record)
                docids.append(docid)
                texts.append(_passage_text(title, text, passage_format))
            if not docids:
                break
            seen.add(path, records, docids)
            start, first = start + len(docids), start
            del records
            yield CorpusChunk(str(path), first, docids, texts)
            del docids, texts  # held by the consumer only: it can free them before asking for the next chunk
