"""hybridbatch.data.sources: the mMARCO-style fixture, small broken variants, and the vendored SQuAD translations."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from hybridbatch.data.raw import DataError  # noqa: E402
from hybridbatch.sampling.samplers import answer_groups  # noqa: E402
from hybridbatch.data.sources import (  # noqa: E402
    load_parallel_collection, load_source, load_squad_translations, squad_question_ids)

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "raw"
XQUAD_EN = RAW / "xquad-r" / "en.json.gz"
MINI = ROOT / "tests" / "fixtures" / "mmarco-mini"
LANGS = ["de", "en", "es"]
QUERIES = "data/google/queries/train/{}_queries.train.tsv"
COLLECTION = "data/google/collections/{}_collection.tsv"


@pytest.fixture()
def mini(tmp_path: Path) -> Path:
    """A writable copy of the mmarco-mini fixture."""
    return Path(shutil.copytree(MINI, tmp_path / "mmarco"))


def edit_line(path: Path, lineno: int, new: str | None) -> None:
    """Replace (or, with ``None``, delete) line ``lineno`` (1-based) of a text file."""
    lines = path.read_text(encoding="utf-8").split("\n")
    if new is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = new
    path.write_text("\n".join(lines), encoding="utf-8")


def error_of(root: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_parallel_collection(root, LANGS, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------------------------------------- mmarco-mini
def test_parallel_collection_contents() -> None:
    data = load_parallel_collection(MINI, ["es", "en", "de"])
    # numeric id order; 999 has no qrels; 3's rel-0 pid 8 is ignored; 25's first relevant pid (2) wins over 7
    assert list(data.langs_of) == ["3", "7", "12", "25", "101", "1000"]
    assert all(langs == LANGS for langs in data.langs_of.values())
    assert len(data.questions) == len(data.answers) == len(data.answer_keys) == 18
    assert {q: data.answer_keys[q, "en"] for q in data.langs_of} == {
        "3": "0", "7": "2", "12": "4", "25": "2", "101": "5", "1000": "9"}
    assert data.questions["25", "de"] == "wer entwarf den eiffelturm"
    assert data.questions["12", "es"] == "cuántas patas tiene una araña"
    assert data.answers["25", "es"] == ("La Torre Eiffel fue diseñada por la empresa de Gustave Eiffel "
                                        "y se inauguró en 1889.")
    assert data.answers["7", "en"] == data.answers["25", "en"]
    assert data.answers["1000", "de"] == "Jupiter ist der größte Planet des Sonnensystems."
    assert data.answers["3", "en"] == "Paris is the capital and largest city of France."


def test_parallel_collection_is_parallel_and_groups_by_passage() -> None:
    data = load_parallel_collection(MINI, LANGS)
    for qid in data.langs_of:  # one passage key per question, whatever the language
        assert len({data.answer_keys[qid, lang] for lang in LANGS}) == 1
        assert len({data.questions[qid, lang] for lang in LANGS}) == 3  # translated, not copied
    groups = answer_groups(data.answer_keys)
    assert groups["7"] == groups["25"]  # both answered by pid 2
    assert len(set(groups.values())) == 5


def test_parallel_collection_options(mini: Path, tmp_path: Path) -> None:
    assert list(load_parallel_collection(MINI, LANGS, max_queries=3).langs_of) == ["3", "7", "12"]
    data = load_parallel_collection(MINI, ["xx"], language_names={"xx": "spanish"})
    assert data.questions["3", "xx"] == "cuál es la capital de francia"
    # a query missing in one language: that language is left out for it only
    edit_line(mini / QUERIES.format("german"), 3, None)  # qid 12
    data = load_parallel_collection(mini, LANGS)
    assert data.langs_of["12"] == ["en", "es"] and data.langs_of["3"] == LANGS
    assert ("12", "de") not in data.questions
    # qrels elsewhere, gzipped files, a given cache directory
    shutil.move(mini / "qrels.train.tsv", tmp_path / "judged.tsv")
    path = mini / COLLECTION.format("english")
    path.with_suffix(".tsv.gz").write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    cache = tmp_path / "cache"
    data = load_parallel_collection(mini, ["en"], qrels=tmp_path / "judged.tsv", cache_dir=cache)
    assert data.answers["101", "en"] == "Water boils at 100 degrees Celsius at sea level."
    assert any(cache.iterdir())


def test_parallel_collection_missing_file(mini: Path) -> None:
    (mini / COLLECTION.format("spanish")).unlink()
    assert "spanish_collection.tsv" in error_of(mini)
    assert "french_queries.train.tsv" in str(pytest.raises(DataError, load_parallel_collection, mini, ["fr"]).value)


@pytest.mark.parametrize("file, lineno, new, field, words", [
    (QUERIES.format("spanish"), 4, "25\tquién\tdiseñó", None, ["expected 2 tab-separated fields", "got 3"]),
    (QUERIES.format("spanish"), 1, "3\tcuál\tes", None, ["expected 2 tab-separated fields", "got 3"]),
    (QUERIES.format("spanish"), 5, "101\t  ", "text", ["missing or empty"]),
    (QUERIES.format("german"), 2, "7", "text", ["missing or empty"]),
    (QUERIES.format("german"), 6, "7\tnoch einmal", "qid", ["duplicate id", "first on line 2"]),
    (COLLECTION.format("english"), 6, "5\t", "text", ["missing or empty"]),
    (COLLECTION.format("english"), 3, "", "pid", ["missing or empty"]),
    ("qrels.train.tsv", 2, "3\t0\t8\tyes", "rel", ["expected an integer"]),
    ("qrels.train.tsv", 7, "101\t0\t5", "rel", ["missing or empty"]),
    ("qrels.train.tsv", 8, "1000\t0\t42\t1", "pid", ["42 is not in", "collection.tsv"]),
    ("qrels.train.tsv", 1, "31\t0\t0\t1", "qid", ["31 is in no queries file"]),
])
def test_parallel_collection_bad_rows(mini: Path, file: str, lineno: int, new: str, field: str | None,
                                      words: list[str]) -> None:
    edit_line(mini / file, lineno, new)
    message = error_of(mini)
    assert Path(file).name in message and f"line {lineno}" in message, message
    if field:
        assert f"field {field!r}" in message, message
    for word in words:
        assert word in message, message


def test_parallel_collection_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_queries"):
        load_parallel_collection(MINI, LANGS, max_queries=0)
    with pytest.raises(ValueError, match="no languages"):
        load_parallel_collection(MINI, [])


# ---------------------------------------------------------------------------------------------- load_source
def test_load_source_prefixes_ids_and_keys() -> None:
    data = load_source({"name": "mm", "format": "parallel-collection", "root": str(MINI), "languages": ["en"],
                        "max_queries": 2})
    assert data.langs_of == {"mm:3": ["en"], "mm:7": ["en"]}
    assert data.answer_keys == {("mm:3", "en"): "mm:0", ("mm:7", "en"): "mm:2"}
    assert data.questions["mm:7", "en"] == "when did the eiffel tower open"
    assert data.answers["mm:3", "en"].startswith("Paris is")


@pytest.mark.parametrize("spec, words", [
    ({"name": "x", "format": "tsv", "root": "."}, ["unknown format 'tsv'", "parallel-collection"]),
    ({"name": "x", "format": "parallel-collection", "root": ".", "languages": ["en"], "colour": 1,
      "max_query": 3}, ["unknown keys ['colour', 'max_query']"]),
    ({"name": "x", "format": "squad-translations"}, ["missing keys ['raw_dir']"]),
    ({"format": "squad-translations", "raw_dir": "."}, ["'name'"]),
])
def test_load_source_rejects_bad_specs(spec: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        load_source(spec)
    for word in words:
        assert word in str(info.value)


# ---------------------------------------------------------------------------------------------- SQuAD (real)
@pytest.fixture(scope="module")
def xquad_ids() -> set[str]:
    return squad_question_ids(XQUAD_EN)


@pytest.fixture(scope="module")
def squad(xquad_ids: set[str]):
    return load_squad_translations(RAW, ["en", "es", "it"], exclude_qids=xquad_ids)


def test_squad_counts_match_sources_md(squad, xquad_ids: set[str]) -> None:
    assert len(xquad_ids) == 1190
    assert Counter(lang for _, lang in squad.questions) == {"en": 9380, "es": 5851, "it": 6117}
    covered = Counter(tuple(langs) for langs in squad.langs_of.values())
    both = lambda a, b: sum(n for langs, n in covered.items() if a in langs and b in langs)  # noqa: E731
    assert (both("en", "es"), both("en", "it"), both("es", "it")) == (5851, 6117, 4029)
    assert covered[("en", "es", "it")] == 4029
    assert not set(squad.langs_of) & xquad_ids
    with_unaligned = load_squad_translations(RAW, ["it"], exclude_from=[XQUAD_EN], keep_unaligned=True)
    assert len(with_unaligned.questions) == 6831
    assert sum(key.startswith("it:") for key in with_unaligned.answer_keys.values()) == 714


def test_squad_answer_keys_group_paragraphs(squad, xquad_ids: set[str]) -> None:
    with gzip.open(RAW / "squad-dev-translations" / "en.squad-v1.1-dev.part1.json.gz", "rt", encoding="utf-8") as f:
        doc = json.load(f)
    paragraphs = [[qa["id"] for qa in p["qas"]] for a in doc["data"] for p in a["paragraphs"]]
    kept = [qids for qids in paragraphs if not set(qids) & xquad_ids][:2]
    groups = answer_groups(squad.answer_keys)
    assert len({groups[q] for q in kept[0]}) == 1 and len({groups[q] for q in kept[1]}) == 1
    assert groups[kept[0][0]] != groups[kept[1][0]]
    assert len(set(groups.values())) == len(set(squad.answer_keys.values()))  # one group per en paragraph
    # the same key in every language, and each language's passage is its own paragraph
    qid = next(q for q, langs in squad.langs_of.items() if langs == ["en", "es", "it"])
    assert len({squad.answer_keys[qid, lang] for lang in ["en", "es", "it"]}) == 1
    assert len({squad.answers[qid, lang] for lang in ["en", "es", "it"]}) == 3


def test_squad_via_load_source() -> None:
    data = load_source({"name": "sq", "format": "squad-translations", "raw_dir": str(RAW), "languages": "es",
                        "exclude_from": str(XQUAD_EN)})  # single strings, as YAML may give them
    assert len(data.questions) == 5851
    assert all(q.startswith("sq:") for q in data.langs_of)
    assert all(k.startswith("sq:en:") for k in data.answer_keys.values())


# ---------------------------------------------------------------------------------------------- SQuAD (synthetic)
def squad_doc(*paragraphs: tuple[str, list[tuple[str, str]]]) -> dict:
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": c, "qas": [{"id": i, "question": q, "answers": []} for i, q in qas]} for c, qas in paragraphs]}]}


@pytest.fixture()
def tiny_squad(tmp_path: Path) -> Path:
    folder = tmp_path / "raw" / "squad-dev-translations"
    folder.mkdir(parents=True)
    docs = {
        "en.squad-v1.1-dev.part1.json": squad_doc(("P0", [("a", "qa"), ("b", "qb")]), ("P1", [("c", "qc")])),
        "en.squad-v1.1-dev.part2.json": squad_doc(("P2", [("d", "qd"), ("x", "qx")])),
        "es.dev-v1.1-es_small.json": squad_doc(("E0", [("b", "qb-es")]), ("E2", [("d", "qd-es")])),
        "it.SQuAD_it-test.json": squad_doc(("I0", [("a", "qa-it"), ("d0", "unaligned")])),
    }
    for name, doc in docs.items():
        (folder / name).write_text(json.dumps(doc), encoding="utf-8")
    return tmp_path / "raw"


def test_squad_synthetic_contents(tiny_squad: Path) -> None:
    data = load_squad_translations(tiny_squad, ["it", "es", "en"], exclude_qids={"x"})
    assert data.langs_of == {"a": ["en", "it"], "b": ["en", "es"], "c": ["en"], "d": ["en", "es"]}
    assert data.answer_keys == {("a", "en"): "en:0", ("b", "en"): "en:0", ("c", "en"): "en:1", ("d", "en"): "en:2",
                                ("b", "es"): "en:0", ("d", "es"): "en:2", ("a", "it"): "en:0"}
    assert data.answers == {("a", "en"): "P0", ("b", "en"): "P0", ("c", "en"): "P1", ("d", "en"): "P2",
                            ("b", "es"): "E0", ("d", "es"): "E2", ("a", "it"): "I0"}
    assert data.questions["b", "es"] == "qb-es"
    groups = answer_groups(data.answer_keys)
    assert groups["a"] == groups["b"] != groups["c"]
    kept = load_squad_translations(tiny_squad, ["it"], keep_unaligned=True)
    assert kept.answer_keys == {("a", "it"): "en:0", ("d0", "it"): "it:0"}


def test_squad_errors(tiny_squad: Path) -> None:
    folder = tiny_squad / "squad-dev-translations"
    with pytest.raises(ValueError, match="unknown or no languages"):
        load_squad_translations(tiny_squad, ["en", "fr"])
    (folder / "es.dev-v1.1-es_small.json").write_text(json.dumps(squad_doc(("E0", [("b", " ")]))))
    with pytest.raises(DataError, match=r"es\.dev-v1\.1-es_small\.json: .*question 'b': field 'question': empty"):
        load_squad_translations(tiny_squad, ["es"])
    (folder / "en.squad-v1.1-dev.part2.json").write_text(json.dumps(squad_doc(("P2", [("a", "again")]))))
    with pytest.raises(DataError, match=r"part2\.json: paragraph #0 > question 'a': field 'id': duplicate"):
        load_squad_translations(tiny_squad, ["en"])
    (folder / "en.squad-v1.1-dev.part2.json").write_text(json.dumps({"data": [{"title": "T", "paragraphs": [
        {"qas": []}]}]}))
    with pytest.raises(DataError, match=r"part2\.json: article #0 > paragraph #0: field 'context': missing"):
        load_squad_translations(tiny_squad, ["en"])
    (folder / "en.squad-v1.1-dev.part2.json").write_text(json.dumps(squad_doc(("P2", [("d", "qd")]))))
    (folder / "it.SQuAD_it-test.json").unlink()
    with pytest.raises(DataError, match=r"it\.SQuAD_it-test\.json\.gz: missing"):
        load_squad_translations(tiny_squad, ["it"])
