"""Vendored raw data: checksums, LAReQA (XQuAD-R / MLQA-R) and Tatoeba loaders, normalised tables.

Tables written by :func:`prepare` (row order: dataset, language, file order, as configured):

* ``questions``  -- ``dataset, lang, qid, question, answer_key``
* ``candidates`` -- ``dataset, lang, key, sentence, context``; ``key = "<lang>:<paragraph>:<sentence>"``
  with the paragraph's running index in its file (0-based, across articles)
* ``tatoeba``    -- ``lang3, lang, idx, text, eng`` (line ``idx`` of ``tatoeba.<lang3>-eng.{<lang3>,eng}``)

Every problem with the input raises :class:`DataError` naming the file, the record and the field.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from hybridbatch.io import atomic_path, write_json

logger = logging.getLogger(__name__)

#: dataset name -> folder under the raw data directory
DATASET_DIRS: dict[str, str] = {"xquad_r": "xquad-r", "mlqa_r": "mlqa-r"}
#: every language of each LAReQA dataset (the default of :func:`prepare`)
DATASET_LANGS: dict[str, list[str]] = {
    "xquad_r": ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"],
    "mlqa_r": ["ar", "de", "en", "es", "hi", "vi", "zh"],
}
#: the language whose first question ids define the ``max_questions`` subset
PIVOT_LANG = "en"
#: Tatoeba languages of the paper's evaluation sets (the default of :func:`prepare`)
TATOEBA_LANGS: list[str] = ["ara", "deu", "ell", "spa", "hin", "rus", "tha", "tur", "vie", "cmn"]
#: ISO-639-3 -> ISO-639-1 as in XTREME's ``utils_preprocess.py``
XTREME_ISO3_TO_ISO1: dict[str, str] = {
    "afr": "af", "ara": "ar", "bul": "bg", "ben": "bn", "deu": "de", "ell": "el", "spa": "es",
    "est": "et", "eus": "eu", "pes": "fa", "fin": "fi", "fra": "fr", "heb": "he", "hin": "hi",
    "hun": "hu", "ind": "id", "ita": "it", "jpn": "ja", "jav": "jv", "kat": "ka", "kaz": "kk",
    "kor": "ko", "mal": "ml", "mar": "mr", "nld": "nl", "por": "pt", "rus": "ru", "swh": "sw",
    "tam": "ta", "tel": "te", "tha": "th", "tgl": "tl", "tur": "tr", "urd": "ur", "vie": "vi",
    "cmn": "zh",
}  # fmt: skip
#: ``.gz`` files that are gzipped upstream: their SHA256SUMS entry hashes the stored bytes
HASHED_AS_STORED = frozenset({"squad-dev-translations/it.SQuAD_it-test.json.gz"})

QUESTION_COLUMNS = ["dataset", "lang", "qid", "question", "answer_key"]
CANDIDATE_COLUMNS = ["dataset", "lang", "key", "sentence", "context"]
TATOEBA_COLUMNS = ["lang3", "lang", "idx", "text", "eng"]

_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
_JSON_TYPES = {str: "string", int: "integer", float: "number", list: "array", dict: "object"}


class DataError(ValueError):
    """Bad input data; the message names the file, the record and the field."""

    def __init__(self, path: str | Path, problem: str = "", *, record: str | None = None,
                 field: str | None = None) -> None:
        self.path, self.problem, self.record, self.field = str(path), problem, record, field
        parts = [self.path, record, f"field {field!r}" if field else None, problem or None]
        super().__init__(": ".join(p for p in parts if p))


# ----------------------------------------------------------------------------------------------- files
def open_text(path: str | Path) -> TextIO:
    """Open a UTF-8 text file, gzipped (``.gz``) or plain; lines end at ``\\n`` only, untranslated."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def _read_text(path: Path) -> str:
    try:
        with open_text(path) as f:
            return f.read()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read: {e}") from e


def _data_file(folder: Path, name: str) -> Path:
    """``folder/name.gz`` if it exists, else ``folder/name``; error if neither does."""
    for path in (folder / f"{name}.gz", folder / name):
        if path.is_file():
            return path
    raise DataError(folder / f"{name}.gz", "missing (nor is there an uncompressed copy)")


def _sha256(path: Path, decompress: bool) -> str:
    digest = hashlib.sha256()
    try:
        with (gzip.open(path, "rb") if decompress else open(path, "rb")) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(path, f"cannot read: {e}") from e
    return digest.hexdigest()


def verify_checksums(raw_dir: str | Path) -> list[Path]:
    """Check every entry of ``raw_dir/SHA256SUMS``; return the verified paths.

    Entries hash the decompressed content of ``.gz`` files (except those in :data:`HASHED_AS_STORED`),
    so they equal the upstream hashes of the original files.
    """
    raw_dir = Path(raw_dir)
    sums = raw_dir / "SHA256SUMS"
    verified: list[Path] = []
    for lineno, line in enumerate(_read_text(sums).split("\n"), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        record = f"line {lineno}"
        match = _SUM_LINE.match(line)
        if match is None:
            raise DataError(sums, "expected '<sha256>  <path>'", record=record)
        expected, name = match.groups()
        path = raw_dir / name
        if not path.is_file():
            raise DataError(path, "listed in SHA256SUMS but missing", record=f"SHA256SUMS {record}")
        decompress = name.endswith(".gz") and name not in HASHED_AS_STORED
        actual = _sha256(path, decompress)
        if actual != expected:
            what = "decompressed content" if decompress else "content"
            raise DataError(path, f"checksum mismatch: sha256 of the {what} is {actual}, expected {expected}",
                            record=f"SHA256SUMS {record}", field="sha256")
        verified.append(path)
    if not verified:
        raise DataError(sums, "no checksum entries")
    logger.info("verified %d checksums in %s", len(verified), sums)
    return verified


# ----------------------------------------------------------------------------------------------- LAReQA
@dataclass(frozen=True)
class _Where:
    """A record of one file, to build and raise :class:`DataError` s."""

    path: Path
    record: str

    def error(self, field: str | None, problem: str) -> DataError:
        return DataError(self.path, problem, record=self.record, field=field)

    def check(self, value: Any, kind: type | tuple[type, ...], field: str) -> Any:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            expected = " or ".join(_JSON_TYPES.get(k, k.__name__) for k in kinds)
            got = "boolean" if isinstance(value, bool) else _JSON_TYPES.get(type(value), type(value).__name__)
            raise self.error(field, f"expected {expected}, got {got}")
        return value

    def get(self, obj: dict, name: str, kind: type | tuple[type, ...], prefix: str = "") -> Any:
        if name not in obj:
            raise self.error(prefix + name, "missing")
        return self.check(obj[name], kind, prefix + name)


def _parse_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(path, f"invalid JSON: {e.msg}", record=f"line {e.lineno} column {e.colno}") from e


def _sentence_breaks(where: _Where, paragraph: dict, context: str) -> list[tuple[int, int]]:
    """Validated ``sentence_breaks``: ``[start, end]`` ints, ``0 <= start < end <= len(context)``, in order,
    each slice of the context holding some text."""
    breaks: list[tuple[int, int]] = []
    n_chars = len(context)
    for i, pair in enumerate(where.get(paragraph, "sentence_breaks", list)):
        field = f"sentence_breaks[{i}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise where.error(field, f"expected a [start, end] pair, got {pair!r}")
        start, end = (where.check(x, int, field) for x in pair)
        if not 0 <= start < end <= n_chars:
            raise where.error(field, f"[{start}, {end}] is not a non-empty range within the context "
                                     f"(length {n_chars})")
        if breaks and start < breaks[-1][1]:
            raise where.error(field, f"[{start}, {end}] overlaps or precedes the previous break {list(breaks[-1])}")
        if not context[start:end].strip():
            raise where.error(field, f"[{start}, {end}] is an empty or whitespace-only sentence "
                                     f"{context[start:end]!r}")
        breaks.append((start, end))
    if not breaks:
        raise where.error("sentence_breaks", "no sentences")
    return breaks


def _answer_sentence(where: _Where, qa: dict, breaks: list[tuple[int, int]], context: str) -> int:
    """Index of the first break containing the first answer's ``answer_start`` (all answers checked: each
    answer's text is non-blank and stands in the context at its ``answer_start``)."""
    n_chars = len(context)
    answers = where.get(qa, "answers", list)
    if not answers:
        raise where.error("answers", "no answer")
    sentences = []
    for i, answer in enumerate(answers):
        prefix = f"answers[{i}]."
        where.check(answer, dict, f"answers[{i}]")
        text = where.get(answer, "text", str, prefix)
        start = where.get(answer, "answer_start", int, prefix)
        if not 0 <= start < n_chars:
            raise where.error(prefix + "answer_start", f"{start} is outside the context (length {n_chars})")
        hit = next((s for s, (b, e) in enumerate(breaks) if b <= start < e), None)
        if hit is None:
            raise where.error(prefix + "answer_start", f"{start} is in no sentence break")
        if not text.strip():
            raise where.error(prefix + "text", f"empty or whitespace-only answer {text!r}")
        if context[start:start + len(text)] != text:
            place = "elsewhere in the context" if text in context else "absent from the context"
            raise where.error(prefix + "text", f"{text!r} is not at answer_start {start} ({place}; found "
                                               f"{context[start:start + len(text)]!r})")
        sentences.append(hit)
    return sentences[0]


def load_lareqa(path: str | Path, dataset: str, lang: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse one XQuAD-R / MLQA-R file into ``(questions, candidates)`` (see the module docstring).

    Candidates are the ``context[start:end]`` slices of ``sentence_breaks`` (not the ``sentences`` strings);
    a question's ``answer_key`` is the first break with ``start <= answer_start < end``.
    """
    path = Path(path)
    doc = _parse_json(path)
    top = _Where(path, "document")
    top.check(doc, dict, "(top level)")
    if "version" in doc:
        top.get(doc, "version", (str, int, float))
    questions: list[tuple[str, ...]] = []
    candidates: list[tuple[str, ...]] = []
    first_seen: dict[str, str] = {}
    n_paragraphs = n_slice_differs = 0
    for a, article in enumerate(top.get(doc, "data", list)):
        where = _Where(path, f"article #{a}")
        where.check(article, dict, f"data[{a}]")
        title = where.get(article, "title", str)
        where = _Where(path, f"article {title!r}")
        for i, paragraph in enumerate(where.get(article, "paragraphs", list)):
            where.check(paragraph, dict, f"paragraphs[{i}]")
            p = n_paragraphs
            n_paragraphs += 1
            where = _Where(path, f"article {title!r} > paragraph {p}")
            context = where.get(paragraph, "context", str)
            breaks = _sentence_breaks(where, paragraph, context)
            slices = [context[b:e] for b, e in breaks]
            candidates.extend((dataset, lang, f"{lang}:{p}:{s}", text, context) for s, text in enumerate(slices))
            stored = paragraph.get("sentences")
            if isinstance(stored, list) and len(stored) == len(slices):
                n_slice_differs += sum(x != y for x, y in zip(stored, slices))
            for q, qa in enumerate(where.get(paragraph, "qas", list)):
                qwhere = _Where(path, f"{where.record} > question #{q}")
                qwhere.check(qa, dict, f"qas[{q}]")
                qid = qwhere.get(qa, "id", str)
                qwhere = _Where(path, f"{where.record} > question {qid!r}")
                text = qwhere.get(qa, "question", str)
                if not text.strip():
                    raise qwhere.error("question", f"empty or whitespace-only question {text!r}")
                s = _answer_sentence(qwhere, qa, breaks, context)
                if qid in first_seen:
                    raise qwhere.error("id", f"duplicate question id (first in {first_seen[qid]})")
                first_seen[qid] = qwhere.record
                questions.append((dataset, lang, qid, text, f"{lang}:{p}:{s}"))
    if n_slice_differs:
        logger.info("%s: %d sentence slices differ from the stored `sentences` strings; using the slices",
                    path, n_slice_differs)
    logger.info("%s: %s/%s: %d questions, %d paragraphs, %d candidates",
                path, dataset, lang, len(questions), n_paragraphs, len(candidates))
    return (pd.DataFrame(questions, columns=QUESTION_COLUMNS),
            pd.DataFrame(candidates, columns=CANDIDATE_COLUMNS))


def paragraph_of(key: pd.Series) -> pd.Series:
    """``"<lang>:<paragraph>"`` of candidate keys ``"<lang>:<paragraph>:<sentence>"``."""
    return key.str.rsplit(":", n=1).str[0]


# ----------------------------------------------------------------------------------------------- Tatoeba
def _lines(path: Path) -> list[str]:
    lines = _read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines):
        if not line.strip():
            raise DataError(path, "empty sentence", record=f"line {i + 1}", field="text")
    return lines


def _tatoeba_paths(raw_dir: Path, lang3: str) -> tuple[Path, Path]:
    """The ``<lang3>`` and ``eng`` sides of a Tatoeba pair (gzipped or plain)."""
    folder = raw_dir / "tatoeba"
    if lang3 not in XTREME_ISO3_TO_ISO1:
        raise DataError(folder / f"tatoeba.{lang3}-eng.{lang3}", f"unknown language {lang3!r}: not in the "
                        "XTREME ISO-639-3 -> ISO-639-1 map", field="lang3")
    return _data_file(folder, f"tatoeba.{lang3}-eng.{lang3}"), _data_file(folder, f"tatoeba.{lang3}-eng.eng")


def load_tatoeba(raw_dir: str | Path, lang3: str) -> pd.DataFrame:
    """Tatoeba pairs ``tatoeba.<lang3>-eng.{<lang3>,eng}`` (gzipped or plain) as one table."""
    src_path, eng_path = _tatoeba_paths(Path(raw_dir), lang3)
    src, eng = _lines(src_path), _lines(eng_path)
    if len(src) != len(eng):
        raise DataError(f"{src_path} and {eng_path}",
                        f"different line counts ({len(src)} vs {len(eng)}): the sides are not parallel")
    logger.info("%s: %d pairs", src_path, len(src))
    return pd.DataFrame({"lang3": lang3, "lang": XTREME_ISO3_TO_ISO1[lang3], "idx": range(len(src)),
                         "text": src, "eng": eng}, columns=TATOEBA_COLUMNS).astype({"idx": "int64"})


# ----------------------------------------------------------------------------------------------- prepare
def _require_verified(path: Path, verified: set[Path]) -> Path:
    if path.resolve() not in verified:
        raise DataError(path, "not covered by SHA256SUMS: refusing unverified data")
    return path


def _load_dataset(raw_dir: Path, dataset: str, langs: list[str], verified: set[Path],
                  max_questions: int | None) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """Questions and candidates of ``langs``; with ``max_questions``, the subset described in :func:`prepare`."""
    folder = raw_dir / DATASET_DIRS[dataset]
    loaded = {lang: load_lareqa(_require_verified(_data_file(folder, f"{lang}.json"), verified), dataset, lang)
              for lang in dict.fromkeys(langs)}
    if max_questions is None:
        return [q for q, _ in loaded.values()], [c for _, c in loaded.values()]
    if PIVOT_LANG not in loaded:
        pivot_path = _require_verified(_data_file(folder, f"{PIVOT_LANG}.json"), verified)
        loaded[PIVOT_LANG] = load_lareqa(pivot_path, dataset, PIVOT_LANG)
    keep = set(loaded[PIVOT_LANG][0]["qid"].head(max_questions))
    questions, candidates = [], []
    for lang in dict.fromkeys(langs):
        q, c = loaded[lang]
        q = q[q["qid"].isin(keep)].reset_index(drop=True)
        c = c[paragraph_of(c["key"]).isin(set(paragraph_of(q["answer_key"])))].reset_index(drop=True)
        questions.append(q)
        candidates.append(c)
    logger.info("%s: max_questions=%d -> %d questions, %d candidates", dataset, max_questions,
                sum(map(len, questions)), sum(map(len, candidates)))
    return questions, candidates


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    logger.info("wrote %s (%d rows)", path, len(df))


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def _check_settings(datasets: Any, tatoeba_langs: Any, max_questions: Any) -> None:
    """Raise ValueError on settings :func:`prepare` cannot use."""
    if not isinstance(datasets, dict) or not all(_is_str_list(v) for v in datasets.values()):
        raise ValueError(f"datasets must map dataset names to lists of languages, got {datasets!r}")
    unknown = sorted(set(datasets) - set(DATASET_DIRS))
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; known: {sorted(DATASET_DIRS)}")
    if not _is_str_list(tatoeba_langs):
        raise ValueError(f"tatoeba_langs must be a list of ISO-639-3 codes, got {tatoeba_langs!r}")
    if max_questions is not None and (type(max_questions) is not int or max_questions < 1):
        raise ValueError(f"max_questions must be a positive integer or None, got {max_questions!r}")


def prepare(raw_dir: str | Path, out_dir: str | Path, datasets: dict[str, list[str]] | None = None,
            tatoeba_langs: list[str] | None = None, max_questions: int | None = None) -> dict[str, Any]:
    """Verify the raw data and write ``questions/candidates/tatoeba.parquet`` and ``stats.json``.

    ``max_questions`` (tiny test profiles) keeps the questions whose qid is among the first N of the
    dataset's English file (so the subset stays parallel across languages), the candidates of the
    paragraphs holding a kept question, and the first N Tatoeba pairs per language. Returns the stats.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    datasets = DATASET_LANGS if datasets is None else datasets
    tatoeba_langs = TATOEBA_LANGS if tatoeba_langs is None else tatoeba_langs
    _check_settings(datasets, tatoeba_langs, max_questions)
    verified = {p.resolve() for p in verify_checksums(raw_dir)}

    question_frames: list[pd.DataFrame] = []
    candidate_frames: list[pd.DataFrame] = []
    for dataset, langs in datasets.items():
        q, c = _load_dataset(raw_dir, dataset, langs, verified, max_questions)
        question_frames += q
        candidate_frames += c
    tatoeba_frames = []
    for lang3 in dict.fromkeys(tatoeba_langs):
        for path in _tatoeba_paths(raw_dir, lang3):
            _require_verified(path, verified)
        pairs = load_tatoeba(raw_dir, lang3)
        tatoeba_frames.append(pairs if max_questions is None else pairs.head(max_questions))
    questions = _concat(question_frames, QUESTION_COLUMNS)
    candidates = _concat(candidate_frames, CANDIDATE_COLUMNS)
    tatoeba = _concat(tatoeba_frames, TATOEBA_COLUMNS)

    stats: dict[str, Any] = {"max_questions": max_questions, "datasets": {}, "tatoeba": {}}
    for dataset, langs in datasets.items():
        stats["datasets"][dataset] = {}
        for lang in dict.fromkeys(langs):
            c = candidates[(candidates["dataset"] == dataset) & (candidates["lang"] == lang)]
            stats["datasets"][dataset][lang] = {
                "questions": int(((questions["dataset"] == dataset) & (questions["lang"] == lang)).sum()),
                "paragraphs": int(paragraph_of(c["key"]).nunique()),
                "candidates": len(c),
            }
    for lang3, n in tatoeba.groupby("lang3", sort=False).size().items():
        stats["tatoeba"][str(lang3)] = {"lang": XTREME_ISO3_TO_ISO1[str(lang3)], "pairs": int(n)}
    stats["totals"] = {"questions": len(questions), "candidates": len(candidates), "tatoeba_pairs": len(tatoeba)}

    _write_parquet(questions, out_dir / "questions.parquet")
    _write_parquet(candidates, out_dir / "candidates.parquet")
    _write_parquet(tatoeba, out_dir / "tatoeba.parquet")
    write_json(out_dir / "stats.json", stats)
    logger.info("wrote %s", out_dir / "stats.json")
    return stats


def load_prepared(prepared_dir: str | Path, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The questions and candidates of ``dataset`` from the ``prepare`` stage's tables."""
    prepared_dir = Path(prepared_dir)
    for name in ("questions.parquet", "candidates.parquet"):
        if not (prepared_dir / name).is_file():
            raise DataError(prepared_dir / name, "missing: not a prepared directory (run `dvc repro prepare`)")
    qs = pd.read_parquet(prepared_dir / "questions.parquet")
    cs = pd.read_parquet(prepared_dir / "candidates.parquet")
    qs, cs = qs[qs["dataset"] == dataset], cs[cs["dataset"] == dataset]
    if qs.empty:
        raise DataError(prepared_dir / "questions.parquet", f"no questions of dataset {dataset!r}")
    return qs.reset_index(drop=True), cs.reset_index(drop=True)


def sample_paragraphs(questions: pd.DataFrame, candidates: pd.DataFrame, fraction: float, seed: int,
                      pivot: str = PIVOT_LANG) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded evaluation subset of one dataset: whole paragraphs, parallel across languages.

    A share ``fraction`` of the ``pivot`` language's answer paragraphs is drawn (numpy ``default_rng(seed)``
    over the sorted paragraph keys); every question whose pivot answer lies in a drawn paragraph is kept in
    every language, and in every language the candidates are all sentences of the paragraphs that hold a
    kept question's answer. The pool stays LAReQA-shaped (each kept question keeps its answer sentence in
    every language, plus its paragraph's other sentences as distractors), only smaller. ``fraction >= 1``
    returns the frames unchanged (the paper's protocol).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"evaluation sample fraction must be in (0, 1], got {fraction!r}")
    if fraction >= 1.0:
        return questions, candidates
    pivot_q = questions[questions["lang"] == pivot]
    if pivot_q.empty:
        raise ValueError(f"cannot sample paragraphs: no questions in the pivot language {pivot!r}")
    pivot_para = paragraph_of(pivot_q["answer_key"])
    paragraphs = sorted(set(pivot_para))
    n = max(1, int(round(fraction * len(paragraphs))))
    drawn = set(np.random.default_rng(seed).choice(paragraphs, size=n, replace=False).tolist())
    keep = set(pivot_q.loc[pivot_para.isin(drawn).to_numpy(), "qid"])
    q = questions[questions["qid"].isin(keep)].reset_index(drop=True)
    c = candidates[paragraph_of(candidates["key"]).isin(set(paragraph_of(q["answer_key"])))].reset_index(drop=True)
    logger.info("evaluation sample: %d of %d %s paragraphs -> %d questions, %d candidates", n, len(paragraphs),
                pivot, len(q), len(c))
    return q, c
