"""The four report notebooks, executed with papermill (kernel "hybridbatch") through the report stage's command
(``python src/stages/report.py notebooks/<name>.ipynb --params params.yaml``) against synthetic results in a
temporary directory: each writes exactly its declared outputs, with the expected content, reproducibly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil

import nbformat
import pytest
import yaml

from helpers.fake_results import NOTEBOOKS, OUTPUTS, REPO, executed_reports, make_report_root, run_notebook

PARAMETERS = {"results_dir": "results", "params_file": "params.yaml", "tables_dir": "paper/tables",
              "figures_dir": "figures"}


@pytest.fixture(scope="session")
def report_root(tmp_path_factory):
    return executed_reports(tmp_path_factory)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_sources_declare_the_parameters(name):
    book = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    assert book.metadata["kernelspec"]["name"] == "hybridbatch"
    intro = book.cells[0]
    assert intro.cell_type == "markdown" and "Reads" in intro.source and "Writes" in intro.source
    code = [c for c in book.cells if c.cell_type == "code"]
    first = code[0]
    assert "parameters" in first.metadata.get("tags", [])
    values: dict = {}
    exec(first.source, {}, values)
    assert {k: values[k] for k in PARAMETERS} == PARAMETERS
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)  # stored clean
    for out in OUTPUTS[name]:  # the intro names every output it writes
        stem = out.rsplit("/", 1)[1].rsplit(".", 1)[0]
        assert stem in book.cells[0].source, (name, out)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_report_stage_declares_exactly_what_its_notebook_writes(name):
    """dvc.yaml's report_<name> outs are the notebook's outputs (OUTPUTS, checked against what it writes below)
    and its executed copy: an output DVC does not know would go stale unnoticed."""
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"][f"report_{name}"]
    outs = {o if isinstance(o, str) else next(iter(o)) for o in stage["outs"]}
    assert outs == set(OUTPUTS[name]) | {f"notebooks/executed/{name}.ipynb"}


def test_every_declared_output_is_written_and_nothing_else(report_root):
    written = {str(p.relative_to(report_root))
               for d in ("paper/tables", "figures") for p in (report_root / d).iterdir()}
    declared = {o for outs in OUTPUTS.values() for o in outs}
    assert written == declared
    for out in declared:
        data = (report_root / out).read_bytes()
        assert len(data) > 200, out
        if out.endswith(".pdf"):
            assert data[:5] == b"%PDF-"
        elif out.endswith(".png"):
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            text = data.decode("utf-8")
            assert r"\begin{table}" in text and r"\toprule" in text and r"\bottomrule" in text, out
    for name in NOTEBOOKS:
        executed = json.loads((report_root / "notebooks" / "executed" / f"{name}.ipynb").read_text())
        assert executed["metadata"]["papermill"]["parameters"] == PARAMETERS


def table(root, name: str) -> str:
    return (root / "paper" / "tables" / f"{name}.tex").read_text(encoding="utf-8")


def test_main_tables_content(report_root):
    main = table(report_root, "main")
    for label in ("zero-shot", "BM25", "X-X-mono", "X-X (mixed)", "X-Y", "Hybrid", "XQuAD-R", "MLQA-R", "Mo.", "Cr.",
                  "Mul.", r"\pm", r"\textbf", "multilingual-e5-small, offline protocol", r"\label{tab:main}"):
        assert label in main, label
    hybrid = next(l for l in main.splitlines() if l.startswith("Hybrid"))
    assert "$^{" in hybrid  # the fake Hybrid is significantly better than some baseline
    assert all("$^{" not in l for l in main.splitlines() if l.startswith(("X-", "zero", "BM25")))
    sig = table(report_root, "significance")
    assert r"$\Delta$mAP" in sig and r"p_\mathrm{Holm}" in sig and "95\\% CI" in sig and "$d_z$" in sig
    assert "per seed pairing" in sig and r"\emph{Significant}" in sig
    # family S1: 2 datasets x 3 settings, less the primary family's X-X-mono cells (P2, P3: XQuAD-R Mul., Cr.)
    assert sig.count("X-X-mono & ") == 6 - 2 and sig.count("X-Y & ") == 6 - 1 and "family S1" in sig
    primary = table(report_root, "primary")
    head, findings = primary.split(r"\end{table}")
    assert r"\textbf{Primary}" in head and head.count("[$") == 3  # P1-P3, each with its 95 % interval
    assert r"\paragraph{Findings of family P" in findings and findings.count("[$") == 3  # and in the findings
    for name in ("vs_zeroshot", "rank_distance_tests"):
        assert r"\textbf{Secondary}" in table(report_root, name), name
    assert "no budget-ladder runs" in table(report_root, "ladder")  # grid.ladder.steps: [] (the committed study)
    rd = table(report_root, "rank_distance")
    assert r"RD $\downarrow$" in rd and "same-lang.@10" in rd and "BM25" not in rd
    recall = table(report_root, "recall")
    assert all(k in recall for k in ("R@1", "R@10", "MRR", "nDCG@10"))
    pvo = table(report_root, "paper_vs_ours")
    assert "different models and data" in pvo and "Paper (reported): XLM-R" in pvo and "0.792" in pvo
    assert "Ours: multilingual-e5-small, offline protocol" in pvo


def test_per_language_bias_and_scaling_tables_content(report_root):
    xq, ml = table(report_root, "per_language_xquad_r"), table(report_root, "per_language_mlqa_r")
    assert r"el$^{\dagger}$" in xq and "Monolingual (Mo.) mAP" in xq and "Multilingual (Mul.) mAP" in xq
    for block in ("Monolingual (Mo.) R@1", "Cross-lingual (Cr.) mAP", "Cross-lingual (Cr.) R@1",
                  "Multilingual (Mul.) R@10"):
        assert block in xq and block in ml, block
    assert "label the Mul. recall R@1, but it is R@10" in xq
    assert r"\dagger}$ &" not in ml and "Avg." in ml
    tat = table(report_root, "tatoeba")
    assert r"x$\to$en" in tat and r"en$\to$x" in tat and "zero-shot" in tat
    bias = table(report_root, "bias")
    assert "Query lang." in bias and "Avg." in bias and r"el$^{\dagger}$" in bias
    scaling = table(report_root, "scaling")
    for label in ("Model size", "Number of training languages", r"mixing probability $\alpha$", "7.1M",
                  "Mul.\\ unseen", "Mul.\\ held-out", "Mono.\\ share", "Kept step", "/40 & "):
        assert label in scaling, label
    assert "trains on (el), the same set for every run" in scaling  # the held-out languages are named
    miracl = table(report_root, "miracl")
    rows: dict = {}
    for line in miracl.splitlines():  # the first row of each label: the nDCG@10 block
        if " & " in line:
            rows.setdefault(line.split(" & ")[0], line.rstrip(" \\").split(" & "))
    assert rows["Run"] == ["Run", "sw", "te", "Avg."] and "Corpus absent for 1 of 2 languages (te)" in miracl
    assert rows["zero-shot"] == ["zero-shot", "0.410", "absent", "0.410"]  # nDCG@10 block first
    assert rows["Hybrid, seed 1"][2] == "absent" and "Recall@100" in miracl


def test_notebooks_are_reproducible(report_root, tmp_path):
    """A second execution of the report stage on the same inputs writes byte-identical tables, figures and
    executed notebook (no papermill timestamps or durations, no temporary output path)."""
    outputs = OUTPUTS["main"] + ["notebooks/executed/main.ipynb"]
    before = {o: hashlib.sha256((report_root / o).read_bytes()).hexdigest() for o in outputs}
    root = tmp_path / "again"
    shutil.copytree(report_root, root)
    proc = run_notebook(root, "main")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = {o: hashlib.sha256((root / o).read_bytes()).hexdigest() for o in outputs}
    assert after == before


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_executed_notebooks_hold_no_run_specific_values(report_root, name):
    text = (report_root / "notebooks" / "executed" / f"{name}.ipynb").read_text(encoding="utf-8")
    for key in ('"start_time"', '"end_time"', '"duration"', '"iopub.', ".tmp"):
        assert key not in text, key
    book = json.loads(text)
    assert book["metadata"]["papermill"]["output_path"] == f"notebooks/executed/{name}.ipynb"
    injected = [c for c in book["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert [c["id"] for c in injected] == ["injected-parameters"]
    counts = [c["execution_count"] for c in book["cells"] if c["cell_type"] == "code"]
    assert counts == list(range(1, len(counts) + 1))  # deterministic: kept


def test_normalise_strips_papermill_timings():
    spec = importlib.util.spec_from_file_location("report_stage", REPO / "src" / "stages" / "report.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    book = nbformat.v4.new_notebook()
    book.metadata["papermill"] = {"start_time": "t0", "end_time": "t1", "duration": 1.5, "exception": None,
                                  "output_path": "/tmp/x/.main.ipynb.abc.tmp", "parameters": {"a": 1}}
    cell = nbformat.v4.new_code_cell("1")
    cell.metadata.update({"execution": {"iopub.status.busy": "t"}, "tags": ["parameters"],
                          "papermill": {"start_time": "t", "end_time": "t", "duration": 0.1, "status": "completed"}})
    book.cells.append(cell)
    out = stage.normalise(book, "notebooks/executed/main.ipynb")
    assert out.metadata["papermill"] == {"exception": None, "output_path": "notebooks/executed/main.ipynb",
                                         "parameters": {"a": 1}}
    assert out.cells[0].metadata == {"tags": ["parameters"], "papermill": {"status": "completed"}}


def test_missing_run_names_its_metrics_file(tmp_path):
    root = make_report_root(tmp_path / "repo")
    shutil.rmtree(root / "results" / "mlqa2xquad-L8-xy-s1")
    proc = run_notebook(root, "scaling")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "FileNotFoundError" in out and "results/mlqa2xquad-L8-xy-s1/metrics.json" in out and "dvc repro" in out
    assert not (root / "figures" / "scaling_size.pdf").exists()
    # the stage's last word is one line naming the notebook, the cell's error and the file (not papermill's traceback)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "scaling.ipynb: cell " in last and "FileNotFoundError: " in last
    assert "results/mlqa2xquad-L8-xy-s1/metrics.json" in last
    assert not (root / "notebooks" / "executed" / "scaling.ipynb").exists()
