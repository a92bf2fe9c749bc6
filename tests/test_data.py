"""Tests of hybridbatch.data.raw against the vendored raw data (data/raw) and small bad inputs."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hybridbatch.data.raw import (
    DATASET_LANGS,
    DataError,
    load_lareqa,
    load_tatoeba,
    open_text,
    paragraph_of,
    prepare,
    verify_checksums,
)

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "raw"

XQUAD_R_CANDIDATES = {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244,
                      "ru": 1219, "th": 852, "tr": 1167, "vi": 1209, "zh": 1196}
MLQA_R_COUNTS = {"ar": (517, 2545), "de": (512, 2362), "en": (1148, 6264), "es": (500, 1787),
                 "hi": (507, 2426), "vi": (511, 2828), "zh": (504, 2322)}
TATOEBA_PAIRS = {"ara": 1000, "deu": 1000, "ell": 1000, "spa": 1000, "hin": 1000, "rus": 1000,
                 "tha": 548, "tur": 1000, "vie": 1000, "cmn": 1000}


@pytest.fixture(scope="module")
def lareqa() -> dict[tuple[str, str], tuple[pd.DataFrame, pd.DataFrame]]:
    """Every vendored LAReQA file, parsed once."""
    folders = {"xquad_r": "xquad-r", "mlqa_r": "mlqa-r"}
    return {(ds, lang): load_lareqa(RAW / folders[ds] / f"{lang}.json.gz", ds, lang)
            for ds, langs in DATASET_LANGS.items() for lang in langs}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    prepare(RAW, out)
    return out


# ---------------------------------------------------------------------------------------------- checksums
def test_checksums_cover_and_verify_every_vendored_file() -> None:
    verified = verify_checksums(RAW)
    stored = {p for p in RAW.rglob("*") if p.is_file() and p.name not in {"SHA256SUMS", "PROVENANCE.md"}}
    assert set(verified) == stored
    assert len(verified) == 81  # 45 LAReQA/Tatoeba/SQuAD files + 36 MIRACL topics/qrels


def _copy_with_sums(dst: Path, names: list[str]) -> None:
    """Copy ``names`` (relative to data/raw) and their SHA256SUMS lines into ``dst``."""
    lines = {line.split("  ", 1)[1]: line for line in (RAW / "SHA256SUMS").read_text().splitlines()
             if line and not line.startswith("#")}
    for name in names:
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(RAW / name, dst / name)
    (dst / "SHA256SUMS").write_text("# test copy\n" + "".join(lines[n] + "\n" for n in names))


def test_tampered_copy_fails_naming_the_file(tmp_path: Path) -> None:
    names = ["tatoeba/tatoeba.tha-eng.tha.gz", "tatoeba/tatoeba.tha-eng.eng.gz",
             "squad-dev-translations/it.SQuAD_it-test.json.gz"]
    _copy_with_sums(tmp_path, names)
    assert len(verify_checksums(tmp_path)) == 3
    target = tmp_path / names[1]
    text = gzip.decompress(target.read_bytes()).decode("utf-8")
    target.write_bytes(gzip.compress(text.replace("Tom", "Tim", 1).encode("utf-8")))
    with pytest.raises(DataError, match="checksum mismatch") as err:
        verify_checksums(tmp_path)
    assert str(target) in str(err.value) and "SHA256SUMS line 3" in str(err.value)
    target.unlink()
    with pytest.raises(DataError, match="missing") as err:
        verify_checksums(tmp_path)
    assert str(target) in str(err.value)


def test_malformed_checksum_line(tmp_path: Path) -> None:
    (tmp_path / "SHA256SUMS").write_text("# header\nnot-a-hash  x.txt\n")
    with pytest.raises(DataError, match="line 2"):
        verify_checksums(tmp_path)


# ---------------------------------------------------------------------------------------------- LAReQA
@pytest.mark.parametrize("lang", DATASET_LANGS["xquad_r"])
def test_xquad_r_counts(lareqa: dict, lang: str) -> None:
    questions, candidates = lareqa["xquad_r", lang]
    assert len(questions) == questions["qid"].nunique() == 1190
    assert len(candidates) == XQUAD_R_CANDIDATES[lang]
    assert paragraph_of(candidates["key"]).nunique() == 240


@pytest.mark.parametrize("lang", DATASET_LANGS["mlqa_r"])
def test_mlqa_r_counts(lareqa: dict, lang: str) -> None:
    questions, candidates = lareqa["mlqa_r", lang]
    assert (len(questions), len(candidates)) == MLQA_R_COUNTS[lang]
    assert questions["qid"].is_unique


def test_every_answer_key_is_a_candidate(lareqa: dict) -> None:
    for (dataset, lang), (questions, candidates) in lareqa.items():
        assert questions["answer_key"].isin(set(candidates["key"])).all(), (dataset, lang)
        assert candidates["key"].str.startswith(f"{lang}:").all()


def test_cross_lingual_ids(lareqa: dict) -> None:
    xquad = [set(lareqa["xquad_r", lang][0]["qid"]) for lang in DATASET_LANGS["xquad_r"]]
    assert all(ids == xquad[0] for ids in xquad)
    mlqa = pd.concat([lareqa["mlqa_r", lang][0] for lang in DATASET_LANGS["mlqa_r"]])
    assert set(mlqa["qid"]) == set(lareqa["mlqa_r", "en"][0]["qid"])
    assert mlqa.groupby("qid").size().value_counts().to_dict() == {4: 820, 3: 263, 2: 65}


def test_tr_candidates_are_context_slices_not_sentences(lareqa: dict) -> None:
    questions, candidates = lareqa["xquad_r", "tr"]
    key = questions.set_index("qid").loc["570d47b8b3d812140066d62d", "answer_key"]
    paragraph = candidates[paragraph_of(candidates["key"]) == key.rsplit(":", 1)[0]]
    sentences = paragraph["sentence"].tolist()
    assert sentences[2].endswith("dönüştürülmüştü") and sentences[3].startswith(". İki turistik")
    with open_text(RAW / "xquad-r" / "tr.json.gz") as f:
        stored = next(p["sentences"] for a in json.load(f)["data"] for p in a["paragraphs"]
                      if p["context"] == paragraph["context"].iloc[0])
    assert stored[2].endswith("dönüştürülmüştür.") and stored[3].startswith("İki turistik")


def test_english_question_maps_to_the_sentence_holding_the_answer(lareqa: dict) -> None:
    questions, candidates = lareqa["xquad_r", "en"]
    sentence = candidates.set_index("key").loc[questions["answer_key"].iloc[0], "sentence"]
    assert "308" in sentence  # "How many points did the Panthers defense surrender?" -> 308


# ---------------------------------------------------------------------------------------------- bad input
def _qa(**fields: Any) -> list[dict[str, Any]]:
    """A one-question ``qas`` list; ``fields`` override question fields (None: removes)."""
    qa = {"id": "q1", "question": "What?", "answers": [{"answer_start": 7, "text": "Cc"}]}
    qa.update(fields)
    return [{k: v for k, v in qa.items() if v is not None}]


def _doc(**paragraph: Any) -> dict[str, Any]:
    """A valid one-question LAReQA document; ``paragraph`` overrides paragraph fields (None: removes)."""
    para = {"context": "Aa bb. Cc dd.", "sentence_breaks": [[0, 6], [7, 13]], "sentences": ["Aa bb.", "Cc dd."],
            "qas": _qa()}
    para.update(paragraph)
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {k: v for k, v in para.items() if v is not None}]}]}


def _write(tmp_path: Path, doc: Any, name: str = "x.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def test_valid_small_documents(tmp_path: Path) -> None:
    questions, candidates = load_lareqa(_write(tmp_path, _doc()), "xquad_r", "en")
    assert questions.to_dict("records") == [
        {"dataset": "xquad_r", "lang": "en", "qid": "q1", "question": "What?", "answer_key": "en:0:1"}]
    assert candidates["sentence"].tolist() == ["Aa bb.", "Cc dd."]
    gz = tmp_path / "y.json.gz"
    gz.write_bytes(gzip.compress(json.dumps({**_doc(), "version": 1.0}).encode("utf-8")))
    assert load_lareqa(gz, "mlqa_r", "en")[0]["answer_key"].tolist() == ["en:0:1"]
    with open_text(gz) as f:
        assert json.load(f)["version"] == 1.0


BAD_DOCUMENTS = {
    "missing answer_start": (_doc(qas=_qa(answers=[{"text": "Cc"}])), "question 'q1'", "answers[0].answer_start"),
    "answer outside context": (_doc(qas=_qa(answers=[{"answer_start": 40, "text": "Cc"}])), "question 'q1'",
                               "answers[0].answer_start"),
    "answer in no sentence": (_doc(qas=_qa(answers=[{"answer_start": 6, "text": " "}])), "question 'q1'",
                              "answers[0].answer_start"),
    "no answer": (_doc(qas=_qa(answers=[])), "question 'q1'", "answers"),
    "question not a string": (_doc(qas=_qa(question=3)), "question 'q1'", "question"),
    "answer_start a string": (_doc(qas=_qa(answers=[{"answer_start": "7", "text": "Cc"}])), "question 'q1'",
                              "answers[0].answer_start"),
    "missing id": (_doc(qas=_qa(id=None)), "question #0", "id"),
    "overlapping breaks": (_doc(sentence_breaks=[[0, 8], [7, 13]]), "paragraph 0", "sentence_breaks[1]"),
    "break out of range": (_doc(sentence_breaks=[[0, 6], [7, 99]]), "paragraph 0", "sentence_breaks[1]"),
    "break not a pair": (_doc(sentence_breaks=[[0, 6, 7], [7, 13]]), "paragraph 0", "sentence_breaks[0]"),
    "break bounds not ints": (_doc(sentence_breaks=[[0, 6], [7.0, 13]]), "paragraph 0", "sentence_breaks[1]"),
    "empty break": (_doc(sentence_breaks=[[0, 6], [7, 7]]), "paragraph 0", "sentence_breaks[1]"),
    "missing context": (_doc(context=None), "paragraph 0", "context"),
    "missing title": ({"version": "1.1", "data": [{"paragraphs": []}]}, "article #0", "title"),
    "data not a list": ({"version": "1.1", "data": {}}, "document", "data"),
    "empty question": (_doc(qas=_qa(question="")), "question 'q1'", "question"),
    "whitespace question": (_doc(qas=_qa(question=" \t\n")), "question 'q1'", "question"),
    "whitespace sentence": (_doc(context="Aa bb.   Cc dd.", sentence_breaks=[[0, 6], [6, 9], [9, 15]],
                                 qas=_qa(answers=[{"answer_start": 9, "text": "Cc"}])),
                            "paragraph 0", "sentence_breaks[1]"),
    "answer absent from the context": (_doc(qas=_qa(answers=[{"answer_start": 7, "text": "Zz"}])), "question 'q1'",
                                       "answers[0].text"),
    "answer elsewhere than answer_start": (_doc(qas=_qa(answers=[{"answer_start": 7, "text": "Aa"}])),
                                           "question 'q1'", "answers[0].text"),
    "blank answer": (_doc(qas=_qa(answers=[{"answer_start": 7, "text": " "}])), "question 'q1'", "answers[0].text"),
}


@pytest.mark.parametrize("case", BAD_DOCUMENTS)
def test_bad_lareqa_input_names_file_record_and_field(tmp_path: Path, case: str) -> None:
    doc, record, field = BAD_DOCUMENTS[case]
    path = _write(tmp_path, doc)
    with pytest.raises(DataError) as err:
        load_lareqa(path, "xquad_r", "en")
    message = str(err.value)
    assert str(path) in message and record in message and f"field {field!r}" in message, message
    assert (err.value.path, err.value.field) == (str(path), field)


def test_vendored_data_meets_the_text_rules(lareqa: dict) -> None:
    """Every vendored question and candidate has text, and every answer stands at its answer_start (the
    loaders refuse the contrary; all 18 files pass, so no real record is dropped)."""
    for (dataset, lang), (questions, candidates) in lareqa.items():
        assert questions["question"].str.strip().str.len().gt(0).all(), (dataset, lang)
        assert candidates["sentence"].str.strip().str.len().gt(0).all(), (dataset, lang)


def test_bad_json_names_file_and_position(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"version": "1.1",\n "data": [}')
    with pytest.raises(DataError, match="invalid JSON") as err:
        load_lareqa(path, "xquad_r", "en")
    assert str(path) in str(err.value) and "line 2 column" in str(err.value)


def test_duplicate_question_id(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc(qas=_qa() + _qa()))
    with pytest.raises(DataError, match="duplicate question id") as err:
        load_lareqa(path, "xquad_r", "en")
    assert "question 'q1'" in str(err.value) and "field 'id'" in str(err.value)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read") as err:
        load_lareqa(tmp_path / "nope.json.gz", "xquad_r", "en")
    assert "nope.json.gz" in str(err.value)
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read"):
        load_lareqa(bad, "xquad_r", "en")


# ---------------------------------------------------------------------------------------------- Tatoeba
@pytest.mark.parametrize("lang3", TATOEBA_PAIRS)
def test_tatoeba_counts(lang3: str) -> None:
    pairs = load_tatoeba(RAW, lang3)
    assert list(pairs.columns) == ["lang3", "lang", "idx", "text", "eng"]
    assert len(pairs) == TATOEBA_PAIRS[lang3]
    assert pairs["idx"].tolist() == list(range(len(pairs)))
    assert (pairs["text"].str.len() > 0).all() and (pairs["eng"].str.len() > 0).all()


def test_tatoeba_language_codes() -> None:
    pairs = load_tatoeba(RAW, "cmn")
    assert set(pairs["lang"]) == {"zh"}
    german = load_tatoeba(RAW, "deu")
    assert german.iloc[0]["lang"] == "de" and german.iloc[0]["text"] and german.iloc[0]["eng"]


def test_tatoeba_uneven_sides_name_both_files(tmp_path: Path) -> None:
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    (folder / "tatoeba.deu-eng.deu").write_text("Hallo.\nTschüss.\n", encoding="utf-8")
    (folder / "tatoeba.deu-eng.eng").write_text("Hello.\nBye.\nExtra.\n", encoding="utf-8")
    with pytest.raises(DataError, match="different line counts") as err:
        load_tatoeba(tmp_path, "deu")
    assert "tatoeba.deu-eng.deu" in str(err.value) and "tatoeba.deu-eng.eng" in str(err.value)
    with pytest.raises(DataError, match="unknown language"):
        load_tatoeba(tmp_path, "xyz")


# ---------------------------------------------------------------------------------------------- prepare
def test_prepare_writes_the_outputs(prepared: Path) -> None:
    assert sorted(p.name for p in prepared.iterdir()) == [
        "candidates.parquet", "questions.parquet", "stats.json", "tatoeba.parquet"]
    questions = pd.read_parquet(prepared / "questions.parquet")
    candidates = pd.read_parquet(prepared / "candidates.parquet")
    tatoeba = pd.read_parquet(prepared / "tatoeba.parquet")
    assert list(questions.columns) == ["dataset", "lang", "qid", "question", "answer_key"]
    assert list(candidates.columns) == ["dataset", "lang", "key", "sentence", "context"]
    assert (len(questions), len(candidates), len(tatoeba)) == (11 * 1190 + 4199, 13014 + 20534, 9548)
    order = list(dict.fromkeys(zip(questions["dataset"], questions["lang"])))
    assert order == [(ds, lang) for ds, langs in DATASET_LANGS.items() for lang in langs]
    stats = json.loads((prepared / "stats.json").read_text())
    assert stats["datasets"]["mlqa_r"]["en"] == {"questions": 1148, "paragraphs": 978, "candidates": 6264}
    assert stats["datasets"]["xquad_r"]["th"]["candidates"] == 852
    assert stats["tatoeba"]["tha"] == {"lang": "th", "pairs": 548}


def test_prepare_max_questions_is_parallel(tmp_path: Path) -> None:
    n = 7
    stats = prepare(RAW, tmp_path, max_questions=n, tatoeba_langs=["tha", "deu"])
    questions = pd.read_parquet(tmp_path / "questions.parquet")
    candidates = pd.read_parquet(tmp_path / "candidates.parquet")
    for dataset, langs in DATASET_LANGS.items():
        en, _ = load_lareqa(RAW / dataset.replace("_", "-") / "en.json.gz", dataset, "en")
        first = set(en["qid"].head(n))
        subset = questions[questions["dataset"] == dataset]
        by_lang = subset.groupby("lang")["qid"].apply(set)
        assert by_lang["en"] == first
        assert all(ids <= first for ids in by_lang)
        if dataset == "xquad_r":
            assert all(ids == first for ids in by_lang)
        pool = candidates[candidates["dataset"] == dataset]
        assert subset["answer_key"].isin(set(pool["key"])).all()
        assert set(paragraph_of(pool["key"])) == set(paragraph_of(subset["answer_key"]))
    assert stats["tatoeba"] == {"tha": {"lang": "th", "pairs": n}, "deu": {"lang": "de", "pairs": n}}
    first_bytes = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    prepare(RAW, tmp_path, max_questions=n, tatoeba_langs=["tha", "deu"])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first_bytes


def test_prepare_max_questions_without_english(tmp_path: Path) -> None:
    prepare(RAW, tmp_path, datasets={"mlqa_r": ["de"]}, tatoeba_langs=[], max_questions=50)
    questions = pd.read_parquet(tmp_path / "questions.parquet")
    assert set(questions["lang"]) == {"de"} and 0 < len(questions) <= 50
    assert len(pd.read_parquet(tmp_path / "tatoeba.parquet")) == 0


def test_prepare_rejects_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare(RAW, tmp_path, datasets={"squad": ["en"]})
    with pytest.raises(ValueError, match="max_questions"):
        prepare(RAW, tmp_path, max_questions=0)


def _run_stage(params: Path) -> subprocess.CompletedProcess[str]:
    """Run ``src/stages/prepare.py --params params`` in a fresh interpreter."""
    pythonpath = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, str(ROOT / "src" / "stages" / "prepare.py"), "--params", str(params)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": pythonpath})


def test_stage_cli_exit_codes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    params = tmp_path / "params.yaml"
    params.write_text(f"prepare:\n  raw_dir: {RAW}\n  out_dir: {out}\n  datasets: {{xquad_r: [en, de]}}\n"
                      "  tatoeba: [deu]\n  max_questions: 3\n")
    run = _run_stage(params)
    assert run.returncode == 0, run.stderr
    assert len(pd.read_parquet(out / "questions.parquet")) == 6
    raw = tmp_path / "raw"
    _copy_with_sums(raw, ["tatoeba/tatoeba.deu-eng.deu.gz"])
    (raw / "tatoeba" / "tatoeba.deu-eng.deu.gz").write_bytes(gzip.compress(b"tampered\n"))
    params.write_text(f"prepare:\n  raw_dir: {raw}\n  out_dir: {out}\n")
    run = _run_stage(params)
    assert run.returncode == 2
    assert "checksum mismatch" in run.stderr and "tatoeba.deu-eng.deu.gz" in run.stderr
    assert "Traceback" not in run.stderr
