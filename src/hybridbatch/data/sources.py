"""Extra training sources as :class:`~hybridbatch.training.loop.TrainingData` (``train.sources`` in params.yaml).

Two formats, both *parallel*: a question id names the same question in every language, and its positive
passage exists in each language the question does (``langs_of``).

``squad-translations`` -- :func:`load_squad_translations`: the vendored SQuAD v1.1 dev set and its machine
translations (``<raw_dir>/squad-dev-translations/``, data/raw/PROVENANCE.md; docs/PROTOCOL.md §1.5): en in two parts
(``en.squad-v1.1-dev.part{1,2}.json``), ``es.dev-v1.1-es_small.json``, ``it.SQuAD_it-test.json`` (each
gzipped or plain). A question's passage is its whole paragraph in that language. Its answer key is the
*English* paragraph (``"en:<n>"``, ``n`` = running paragraph index over part1 then part2), so questions of one
paragraph form one answer group whatever their language.

``parallel-collection`` -- :func:`load_parallel_collection`: an mMARCO-style collection loaded with the
``datasets`` library. Layout under ``root`` (mMARCO's, ``unicamp-dl/mmarco`` on the Hugging Face hub)::

    data/google/queries/train/<name>_queries.train.tsv    qid \\t text      (one file per language)
    data/google/collections/<name>_collection.tsv         pid \\t text      (one file per language)
    qrels.train.tsv                                       qid \\t 0 \\t pid \\t rel   (MS MARCO's, shared)

``<name>`` is mMARCO's language name (``english``, ``spanish``, ...; :data:`MMARCO_LANGUAGE_NAMES`). Ids are
shared across languages. mMARCO does not ship the qrels: take MS MARCO's ``qrels.train.tsv``. Files may be
gzipped (``.tsv.gz``). Lines end at ``\\n`` (a trailing ``\\r`` is dropped); no quoting.

Every problem with the input raises :class:`~hybridbatch.data.raw.DataError` naming the file, the record (line)
and the field.
"""

from __future__ import annotations

import contextlib
import csv
import inspect
import logging
import re
import tempfile
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any, Container, Iterable, Iterator

from hybridbatch.data.raw import DataError, _data_file, _parse_json, _Where, open_text
from hybridbatch.data.training import TrainingData

logger = logging.getLogger(__name__)

SQUAD_DIR = "squad-dev-translations"
#: language -> file names (without ``.gz``) under ``<raw_dir>/squad-dev-translations``, in reading order
SQUAD_FILES: dict[str, tuple[str, ...]] = {
    "en": ("en.squad-v1.1-dev.part1.json", "en.squad-v1.1-dev.part2.json"),
    "es": ("es.dev-v1.1-es_small.json",),
    "it": ("it.SQuAD_it-test.json",),
}
#: ISO-639-1 -> the language name in mMARCO's file names
MMARCO_LANGUAGE_NAMES: dict[str, str] = {
    "ar": "arabic", "de": "german", "en": "english", "es": "spanish", "fr": "french", "hi": "hindi",
    "id": "indonesian", "it": "italian", "ja": "japanese", "nl": "dutch", "pt": "portuguese", "ru": "russian",
    "vi": "vietnamese", "zh": "chinese",
}  # fmt: skip
QUERIES_DIR = "data/google/queries/train"
COLLECTIONS_DIR = "data/google/collections"
QRELS_FILE = "qrels.train.tsv"


def _as_list(values: Any) -> list:
    """A single string or path is one item, not a sequence of characters (values often come from YAML)."""
    return [values] if isinstance(values, (str, Path)) else list(values)


# ----------------------------------------------------------------------------------------------- SQuAD
def _squad_paragraphs(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(context, [(qid, question), ...]), ...]`` of a SQuAD v1.1 file, in file order."""
    doc = _parse_json(path)
    top = _Where(path, "document")
    top.check(doc, dict, "(top level)")
    out = []
    for a, article in enumerate(top.get(doc, "data", list)):
        where = _Where(path, f"article #{a}")
        where.check(article, dict, f"data[{a}]")
        for i, paragraph in enumerate(where.get(article, "paragraphs", list)):
            pwhere = _Where(path, f"article #{a} > paragraph #{i}")
            pwhere.check(paragraph, dict, f"paragraphs[{i}]")
            context = pwhere.get(paragraph, "context", str)
            if not context.strip():
                raise pwhere.error("context", "empty")
            qas = []
            for q, qa in enumerate(pwhere.get(paragraph, "qas", list)):
                qwhere = _Where(path, f"{pwhere.record} > question #{q}")
                qwhere.check(qa, dict, f"qas[{q}]")
                qid = qwhere.get(qa, "id", str)
                question = qwhere.get(qa, "question", str)
                if not question.strip():
                    raise _Where(path, f"{pwhere.record} > question {qid!r}").error("question", "empty")
                qas.append((qid, question))
            out.append((context, qas))
    return out


def squad_question_ids(path: str | Path) -> set[str]:
    """Question ids of a SQuAD-format file (e.g. ``xquad-r/en.json.gz``: the ids to keep out of training)."""
    return {qid for _, qas in _squad_paragraphs(Path(path)) for qid, _ in qas}


def _squad_language(folder: Path, lang: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The paragraphs of every file of ``lang``; a question id twice in the language is an error."""
    paragraphs: list[tuple[str, list[tuple[str, str]]]] = []
    seen: dict[str, Path] = {}
    for name in SQUAD_FILES[lang]:
        path = _data_file(folder, name)
        for p, (context, qas) in enumerate(_squad_paragraphs(path)):
            for qid, _ in qas:
                if qid in seen:
                    raise DataError(path, f"duplicate question id (also in {seen[qid]})",
                                    record=f"paragraph #{p} > question {qid!r}", field="id")
                seen[qid] = path
            paragraphs.append((context, qas))
    return paragraphs


def load_squad_translations(raw_dir: str | Path, languages: Iterable[str] = ("en", "es", "it"),
                            exclude_qids: Iterable[str] = (), exclude_from: Iterable[str | Path] = (),
                            keep_unaligned: bool = False) -> TrainingData:
    """SQuAD v1.1 dev in ``languages`` (subset of en, es, it) as parallel (question, paragraph) pairs.

    Questions whose id is in ``exclude_qids`` or in one of the SQuAD-format files ``exclude_from`` are
    dropped (pass the XQuAD ids: their paragraphs are XQuAD-R's). The answer key is the question's English
    paragraph. 714 Italian ids are renumbered (``d0``...) and match no English id; they are dropped unless
    ``keep_unaligned``, which keys them by their Italian paragraph (``"it:<n>"``). Dropping is the safe
    default: some of them translate XQuAD paragraphs, which ``exclude_qids`` cannot catch.
    """
    languages = sorted(set(_as_list(languages)))
    unknown = sorted(set(languages) - set(SQUAD_FILES))
    if unknown or not languages:
        raise ValueError(f"unknown or no languages {unknown}; known: {sorted(SQUAD_FILES)}")
    excluded = set(_as_list(exclude_qids))
    for path in _as_list(exclude_from):
        excluded |= squad_question_ids(path)
    folder = Path(raw_dir) / SQUAD_DIR
    english = _squad_language(folder, "en")
    en_key = {qid: f"en:{p}" for p, (_, qas) in enumerate(english) for qid, _ in qas}
    data = TrainingData({}, {}, {}, {})
    langs_of: dict[str, list[str]] = defaultdict(list)
    for lang in languages:
        paragraphs = english if lang == "en" else _squad_language(folder, lang)
        n = 0
        for p, (context, qas) in enumerate(paragraphs):
            for qid, question in qas:
                key = en_key.get(qid, f"{lang}:{p}" if keep_unaligned else None)
                if qid in excluded or key is None:
                    continue
                data.questions[qid, lang] = question
                data.answers[qid, lang] = context
                data.answer_keys[qid, lang] = key
                langs_of[qid].append(lang)
                n += 1
        logger.info("%s/%s: %d questions", folder, lang, n)
    data.langs_of = dict(langs_of)  # languages were visited in sorted order
    return data


# ----------------------------------------------------------------------------------------------- mMARCO
def _read_tsv(path: Path, columns: tuple[str, ...], cache_dir: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of a tab-separated file read with ``datasets``; every field non-empty."""
    import datasets

    expected = f"expected {len(columns)} tab-separated fields ({', '.join(columns)})"
    try:  # pandas would silently take extra fields of line 1 for an index: check that line here
        with open_text(path) as f:
            first = f.readline()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read: {e}") from e
    if not first:
        raise DataError(path, "empty file")
    n_fields = len(first.rstrip("\n").removesuffix("\r").split("\t"))
    if n_fields != len(columns):
        raise DataError(path, f"{expected}, got {n_fields}", record="line 1")
    try:
        ds = datasets.load_dataset(
            "csv", data_files=str(path), split="train", cache_dir=str(cache_dir), delimiter="\t",
            column_names=list(columns), features=datasets.Features({c: datasets.Value("string") for c in columns}),
            quoting=csv.QUOTE_NONE, keep_default_na=False, na_filter=False, skip_blank_lines=False,
            lineterminator="\n")
    except Exception as e:  # datasets wraps the pandas error (which names the line)
        cause = e
        while cause.__cause__ is not None or cause.__context__ is not None:
            cause = cause.__cause__ or cause.__context__
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(cause))
        if m:
            raise DataError(path, f"{expected}, got {m[3]}", record=f"line {m[2]}") from e
        raise DataError(path, f"cannot read: {cause}") from e
    line = 0
    for batch in ds.iter(batch_size=65536):
        for fields in zip(*(batch[c] for c in columns)):
            line += 1
            fields = [*fields[:-1], fields[-1].removesuffix("\r")]
            for column, value in zip(columns, fields):
                if not value.strip():
                    raise DataError(path, "missing or empty", record=f"line {line}", field=column)
            yield line, fields


def _id_key(qid: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order, then the others in string order."""
    return (0, int(qid), "") if qid.isdigit() else (1, 0, qid)


def load_parallel_collection(root: str | Path, languages: Iterable[str],
                             language_names: dict[str, str] | None = None, qrels: str | Path = QRELS_FILE,
                             max_queries: int | None = None, cache_dir: str | Path | None = None) -> TrainingData:
    """An mMARCO-style parallel collection (layout in the module docstring) as (question, passage) pairs.

    ``language_names`` maps a language to its file-name name (default :data:`MMARCO_LANGUAGE_NAMES`, else
    the code itself). ``qrels`` is relative to ``root`` unless absolute; rows with ``rel > 0`` are relevant.
    A question's positive passage is its *first* relevant pid in qrels order; the answer key is that pid.
    Questions are those with a relevant pid, in numeric id order; ``max_queries`` keeps the first N.
    ``cache_dir`` holds the ``datasets`` Arrow cache (default: a temporary directory, removed afterwards).
    Errors besides malformed rows: a qrels qid in no queries file, a used pid missing from a collection, a
    used id twice in one file.
    """
    root, languages = Path(root), sorted(set(_as_list(languages)))
    if not languages:
        raise ValueError("no languages")
    if max_queries is not None and (type(max_queries) is not int or max_queries < 1):
        raise ValueError(f"max_queries must be a positive integer or None, got {max_queries!r}")
    names = {**MMARCO_LANGUAGE_NAMES, **(language_names or {})}
    qrels_path = _data_file((root / qrels).parent, (root / qrels).name)
    with (contextlib.nullcontext(cache_dir) if cache_dir is not None
          else tempfile.TemporaryDirectory(prefix="hybridbatch-datasets-")) as cache:
        cache = Path(cache)
        positive: dict[str, tuple[str, int]] = {}  # qid -> (first relevant pid, its qrels line)
        for line, (qid, _, pid, rel) in _read_tsv(qrels_path, ("qid", "iter", "pid", "rel"), cache):
            if not re.fullmatch(r"-?\d+", rel.strip()):
                raise DataError(qrels_path, f"expected an integer, got {rel!r}", record=f"line {line}", field="rel")
            if int(rel) > 0:
                positive.setdefault(qid, (pid, line))

        questions: dict[str, dict[str, str]] = {}
        for lang in languages:
            path = _data_file(root / QUERIES_DIR, f"{names.get(lang, lang)}_queries.train.tsv")
            questions[lang] = _unique_rows(path, "qid", cache, keep=positive)
        known = set().union(*questions.values())
        for qid, (_, line) in positive.items():
            if qid not in known:
                raise DataError(qrels_path, f"{qid} is in no queries file of {languages}",
                                record=f"line {line}", field="qid")
        selected = sorted(positive, key=_id_key)[:max_queries]
        needed = {positive[q][0] for q in selected}

        passages: dict[str, dict[str, str]] = {}
        for lang in languages:
            path = _data_file(root / COLLECTIONS_DIR, f"{names.get(lang, lang)}_collection.tsv")
            passages[lang] = _unique_rows(path, "pid", cache, keep=needed)
            for q in selected:
                pid, line = positive[q]
                if pid not in passages[lang]:
                    raise DataError(qrels_path, f"{pid} is not in {path}", record=f"line {line}", field="pid")

    data = TrainingData({}, {}, {}, {})
    for qid in selected:
        pid = positive[qid][0]
        langs = [lang for lang in languages if qid in questions[lang]]
        for lang in langs:
            data.questions[qid, lang] = questions[lang][qid]
            data.answers[qid, lang] = passages[lang][pid]
            data.answer_keys[qid, lang] = pid
        data.langs_of[qid] = langs
    logger.info("%s: %d questions, %d pairs in %s", root, len(selected), len(data.questions), languages)
    return data


def _unique_rows(path: Path, id_column: str, cache: Path, keep: Container[str]) -> dict[str, str]:
    """``id -> text`` of the rows of a two-column file whose id is in ``keep``.

    Every row is checked for its fields; duplicates only among the kept ids (a whole collection's id set
    would not fit in memory)."""
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    for line, (key, text) in _read_tsv(path, (id_column, "text"), cache):
        if key in keep:
            if key in first:
                raise DataError(path, f"duplicate id (first on line {first[key]})", record=f"line {line}",
                                field=id_column)
            first[key], out[key] = line, text
    return out


# ----------------------------------------------------------------------------------------------- dispatch
_LOADERS = {"squad-translations": load_squad_translations, "parallel-collection": load_parallel_collection}


def load_source(spec: dict[str, Any]) -> TrainingData:
    """Load one ``train.sources`` entry: ``{"name": ..., "format": ..., <arguments of its loader>}``.

    ``format`` picks :func:`load_squad_translations` (``squad-translations``) or
    :func:`load_parallel_collection` (``parallel-collection``). Every qid and answer key is prefixed with
    ``"<name>:"`` so that sources never share ids. Unknown formats or keys raise ValueError.
    """
    spec = dict(spec)
    name, fmt = spec.pop("name", None), spec.pop("format", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"training source needs a non-empty string 'name', got {name!r}")
    if fmt not in _LOADERS:
        raise ValueError(f"training source {name!r}: unknown format {fmt!r}; known: {sorted(_LOADERS)}")
    loader = _LOADERS[fmt]
    params = inspect.signature(loader).parameters
    unknown = sorted(set(spec) - set(params))
    missing = sorted(k for k, p in params.items() if p.default is p.empty and k not in spec)
    if unknown or missing:
        raise ValueError(f"training source {name!r} ({fmt}): unknown keys {unknown}, missing keys {missing}; "
                         f"known: {sorted(params)}")
    data = loader(**spec)
    pre = f"{name}:"
    return TrainingData({(pre + q, lang): v for (q, lang), v in data.questions.items()},
                        {(pre + q, lang): v for (q, lang), v in data.answers.items()},
                        {(pre + q, lang): pre + k for (q, lang), k in data.answer_keys.items()},
                        {pre + q: langs for q, langs in data.langs_of.items()})
