"""hybridbatch.report: run selection from params, loading, seed summaries, formatting, significance marks.

Fast: synthetic results (tests/helpers/fake_results.py) and hand-made per-query frames; no notebook runs here.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from helpers.fake_results import LANGUAGES, REPO, enumerate_runs, fake_params, write_fake_results
from hybridbatch import report as R
from hybridbatch.stats import average_runs, macro_mean

# the tiny profile of tests/test_pipeline.py: no xx-mixed, no xy among the scaling strategies
TINY_GRID = {"folds": ["mlqa2xquad", "xquad2mlqa"], "strategies": ["xx", "xy", "hybrid"], "seeds": [1, 2],
             "scaling_fold": "mlqa2xquad", "scaling_seed": 1, "scaling_strategies": ["xx", "hybrid"],
             "layers": [2], "n_languages": [2], "alphas": [0.25]}


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    write_fake_results(out, fake_params())
    return out


@pytest.fixture(scope="module")
def main_results(results_dir):
    return R.study_results(results_dir, fake_params(), "main")


# ---------------------------------------------------------------------------------------- formatting


def test_mean_sd_formatting():
    assert R.fmt_mean_sd(0.71234, 0.00412) == r"0.712 {\scriptsize$\pm$0.004}"
    assert R.fmt_mean_sd(0.71234, math.nan) == "0.712"  # a single run: no sd
    assert R.fmt_mean_sd(0.71234) == "0.712"
    assert R.fmt_mean_sd(math.nan, 0.1) == "--"
    assert R.fmt_mean_sd(0.5, 0.01, bold=True, mark="$^{a}$") == r"\textbf{0.500}$^{a}$ {\scriptsize$\pm$0.010}"
    assert R.fmt_mean_sd(410.23, 3.456, 1) == r"410.2 {\scriptsize$\pm$3.5}"  # rank distance: one decimal
    assert R.fmt(12.345) == "12.3" and R.fmt(0.1234) == "0.123" and R.fmt(None) == "--"


def test_best_flags_compare_printed_values():
    assert R.best_flags([0.5, 0.7, 0.6]) == [False, True, False]
    assert R.best_flags([0.7001, 0.7004, 0.6]) == [True, True, False]  # equal as printed: both bold
    assert R.best_flags([300.0, 250.0, math.nan], higher_is_better=False, digits=1) == [False, True, False]
    assert R.best_flags([math.nan, math.nan]) == [False, False]


def test_booktabs_structure():
    text = R.booktabs(["A & B \\\\"], [["x", "1"], r"\midrule", ["y", "2"]], align="lr", caption="c", label="tab:t")
    for token in (r"\begin{table}", r"\toprule", r"\midrule", r"\bottomrule", r"\caption{c}", r"\label{tab:t}",
                  r"x & 1 \\", r"\end{table}"):
        assert token in text
    assert text.count(r"\begin{tabular}{lr}") == 1 and text.count("{") == text.count("}")


# ----------------------------------------------------------------------------------- run selection


def test_run_names():
    assert R.run_name("mlqa2xquad", "hybrid", 13) == "mlqa2xquad-hybrid-s13"
    assert R.run_name("mlqa2xquad", "xx-mixed", 2) == "mlqa2xquad-xx-mixed-s2"
    assert R.run_name("mlqa2xquad", "zeroshot") == "mlqa2xquad-zeroshot"
    assert R.run_name("xquad2mlqa", "bm25") == "xquad2mlqa-bm25"
    assert R.run_name("mlqa2xquad", "xy", 13, layers=4) == "mlqa2xquad-L4-xy-s13"
    assert R.run_name("mlqa2xquad", "zeroshot", layers=8) == "mlqa2xquad-L8-zeroshot"
    assert R.run_name("mlqa2xquad", "xx", 13, n_languages=2) == "mlqa2xquad-n2-xx-s13"
    assert R.run_name("mlqa2xquad", "hybrid", 13, alpha=0.25) == "mlqa2xquad-hybrid-a0.25-s13"
    with pytest.raises(ValueError):
        R.run_name("mlqa2xquad", "xx", 13, alpha=0.25)
    with pytest.raises(ValueError):
        R.run_name("mlqa2xquad", "xx")  # a trained run needs its seed


def test_grid_runs_follow_params():
    params = fake_params()
    g = params["grid"]
    main = R.grid_runs(params, "main")
    assert len(main) == len(g["folds"]) * (2 + len(g["strategies"]) * len(g["seeds"]))
    assert {"mlqa2xquad-zeroshot", "xquad2mlqa-bm25", "xquad2mlqa-xx-mixed-s2"} <= set(main["run"])
    assert set(main.loc[main["fold"] == "mlqa2xquad", "eval_dataset"]) == {"xquad_r"}
    size = R.grid_runs(params, "size")
    # k layers x (zero-shot + scaling strategies), then the full encoder: the main runs of the scaling seed
    assert list(size["run"]) == [
        "mlqa2xquad-L4-zeroshot", "mlqa2xquad-L4-xx-s1", "mlqa2xquad-L4-xy-s1", "mlqa2xquad-L4-hybrid-s1",
        "mlqa2xquad-L8-zeroshot", "mlqa2xquad-L8-xx-s1", "mlqa2xquad-L8-xy-s1", "mlqa2xquad-L8-hybrid-s1",
        "mlqa2xquad-zeroshot", "mlqa2xquad-xx-s1", "mlqa2xquad-xy-s1", "mlqa2xquad-hybrid-s1"]
    assert size["layers"].isna().tolist() == [False] * 8 + [True] * 4  # filled from each run's config when loaded
    langs = R.grid_runs(params, "languages")
    assert list(langs["run"]) == ["mlqa2xquad-n2-xx-s1", "mlqa2xquad-n2-xy-s1", "mlqa2xquad-n2-hybrid-s1",
                                  "mlqa2xquad-xx-s1", "mlqa2xquad-xy-s1", "mlqa2xquad-hybrid-s1"]
    alpha = R.grid_runs(params, "alpha")
    assert list(alpha["run"]) == ["mlqa2xquad-xy-s1", "mlqa2xquad-hybrid-a0.25-s1", "mlqa2xquad-hybrid-a0.75-s1",
                                  "mlqa2xquad-hybrid-s1", "mlqa2xquad-xx-s1"]
    assert alpha["alpha"].tolist()[:3] == [0.0, 0.25, 0.75] and alpha["alpha"].tolist()[4] == 1.0
    assert pd.isna(alpha["alpha"].iloc[3])  # the main hybrid run: its config's alpha
    with pytest.raises(ValueError):
        R.grid_runs(params, "nonsense")


def test_grid_runs_match_the_runs_the_pipeline_writes():
    """The fake results enumerate the grid independently (as the DVC matrix does)."""
    params = fake_params()
    assert set(R.grid_runs(params)["run"]) == {c["run"] for c in enumerate_runs(params)}


def test_grid_runs_skip_main_runs_the_grid_does_not_have():
    params = fake_params()
    params["grid"] = dict(TINY_GRID)
    alpha = R.grid_runs(params, "alpha")  # xy is a main strategy: its run is the alpha-0 endpoint
    assert list(alpha["run"]) == ["mlqa2xquad-xy-s1", "mlqa2xquad-hybrid-a0.25-s1", "mlqa2xquad-hybrid-s1",
                                  "mlqa2xquad-xx-s1"]
    params["grid"]["strategies"] = ["xx", "hybrid"]
    alpha = R.grid_runs(params, "alpha")
    assert list(alpha["run"]) == ["mlqa2xquad-hybrid-a0.25-s1", "mlqa2xquad-hybrid-s1", "mlqa2xquad-xx-s1"]
    size = R.grid_runs(params, "size")
    assert "mlqa2xquad-L2-zeroshot" in set(size["run"]) and "mlqa2xquad-L2-xy-s1" not in set(size["run"])
    params["grid"]["seeds"] = [5]  # the scaling seed is no main seed: no full-size / all-language point
    assert not any(r.endswith("-s1") and "-L" not in r and "-n" not in r and "-a" not in r
                   for r in R.grid_runs(params, "size")["run"])
    params["grid"]["layers"] = []
    assert R.load_results("nowhere", R.grid_runs(params, "size").iloc[0:0]).empty


def test_load_params_requires_grid_and_folds(tmp_path):
    (tmp_path / "p.yaml").write_text("grid: {folds: []}\n")
    with pytest.raises(KeyError, match="folds"):
        R.load_params(tmp_path / "p.yaml")
    with pytest.raises(FileNotFoundError):
        R.load_params(tmp_path / "missing.yaml")


# ------------------------------------------------------------------------------------------ loading


def test_missing_results_name_the_file_and_dvc_repro(tmp_path):
    params = fake_params()
    write_fake_results(tmp_path, params)
    shutil.rmtree(tmp_path / "xquad2mlqa-xy-s2")
    with pytest.raises(FileNotFoundError) as err:
        R.study_results(tmp_path, params, "main")
    message = str(err.value)
    assert str(tmp_path / "xquad2mlqa-xy-s2" / "metrics.json") in message and "dvc repro" in message


def test_load_results_is_tidy(main_results):
    r = main_results
    assert len(r) == 20 and r["run"].is_unique
    hybrid = r[r["run"] == "mlqa2xquad-hybrid-s1"].iloc[0]
    assert hybrid["alpha"] == 0.5 and hybrid["layers"] == 12 and hybrid["n_languages"] == 3  # from the config
    assert hybrid["unseen_languages"] == ["el"] and 0 < hybrid["map_mul_unseen"] < 1
    assert hybrid["non_embedding_parameters"] > 0 and not math.isnan(hybrid["tatoeba"])
    # xquad2mlqa: every MLQA-R language is trained on -> the unseen split is empty and NaN
    other = r[r["run"] == "xquad2mlqa-hybrid-s1"].iloc[0]
    assert other["unseen_languages"] == [] and math.isnan(other["map_mo_unseen"])
    bm25 = r[r["strategy"] == "bm25"]
    assert bm25["map_mo"].notna().all() and bm25["map_cr"].isna().all() and bm25["tatoeba"].isna().all()
    assert R.datasets_of(r) == ["xquad_r", "mlqa_r"]
    assert R.unseen_languages(r, "xquad_r") == ["el"] and R.unseen_languages(r, "mlqa_r") == []
    assert R.untrainable_languages(fake_params(), "mlqa2xquad", LANGUAGES["xquad_r"]) == ["el"]


def test_load_results_checks_the_evaluation_dataset(tmp_path):
    params = fake_params()
    write_fake_results(tmp_path, params)
    path = tmp_path / "mlqa2xquad-xx-s1" / "metrics.json"
    data = json.loads(path.read_text())
    data["config"]["eval_dataset"] = "mlqa_r"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="xquad_r"):
        R.study_results(tmp_path, params, "main")


def test_seed_summary_mean_and_sample_sd(main_results):
    s = R.seed_summary(main_results, ["map_mo"])
    row = s[(s["eval_dataset"] == "xquad_r") & (s["strategy"] == "xy")].iloc[0]
    values = main_results.loc[(main_results["fold"] == "mlqa2xquad") & (main_results["strategy"] == "xy"), "map_mo"]
    assert row["n"] == 2
    assert row["mean"] == pytest.approx(values.mean()) and row["sd"] == pytest.approx(values.std(ddof=1))
    zs = s[(s["eval_dataset"] == "xquad_r") & (s["strategy"] == "zeroshot")].iloc[0]
    assert zs["n"] == 1 and math.isnan(zs["sd"])
    bm25 = R.seed_summary(main_results, ["map_cr"])
    assert bm25[bm25["strategy"] == "bm25"].empty  # absent values are not summarised as zeros


# ------------------------------------------------------------------------------------- significance


def per_query(values: np.ndarray, langs=("de", "en"), setting="mo") -> pd.DataFrame:
    """Per-query rows: values[i] for qid i, repeated in every (monolingual) language."""
    rows = [{"setting": setting, "query_lang": l, "corpus_lang": l, "qid": f"q{i:03d}", "ap": float(v)}
            for l in langs for i, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_average_runs_is_the_per_query_mean():
    a, b = per_query(np.array([0.2, 0.4])), per_query(np.array([0.4, 0.8]))
    avg = average_runs([a, b.sample(frac=1.0, random_state=0)])  # row order does not matter
    assert avg.sort_values(["query_lang", "qid"])["ap"].tolist() == pytest.approx([0.3, 0.6, 0.3, 0.6])
    assert macro_mean(avg, "mo") == pytest.approx((macro_mean(a, "mo") + macro_mean(b, "mo")) / 2)
    with pytest.raises(ValueError, match="same queries"):
        average_runs([a, per_query(np.array([0.1, 0.2, 0.3]))])


def test_hybrid_is_marked_only_where_holm_p_is_below_alpha():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.7, size=40)
    per = {("xquad_r", "xx"): per_query(base),
           ("xquad_r", "xy"): per_query(base + 0.1),
           ("xquad_r", "hybrid"): per_query(base + 0.1 + rng.normal(0, 0.05, size=40))}
    sig = R.compare_strategies(per, "hybrid", settings=("mo",), n_resamples=2000)
    by = sig.set_index("baseline")
    assert by.loc["xx", "significant"] and by.loc["xx", "p_holm"] < 0.05  # a clear, consistent gain
    assert not by.loc["xy", "significant"]  # the same system up to noise
    letters = R.baseline_letters(["xx", "xy"])
    assert letters == {"xx": "a", "xy": "b"}
    assert R.significance_marks(sig, "xquad_r", "mo", letters=letters) == "$^{a}$"
    assert R.significance_marks(sig, "mlqa_r", "mo", letters=letters) == ""


def test_marks_use_holm_adjusted_not_raw_p_and_show_direction():
    sig = pd.DataFrame([
        {"dataset": "xquad_r", "baseline": "xx", "setting": "cr", "diff": 0.02, "p_value": 0.01, "p_holm": 0.06},
        {"dataset": "xquad_r", "baseline": "xy", "setting": "cr", "diff": -0.03, "p_value": 0.001, "p_holm": 0.004},
        {"dataset": "xquad_r", "baseline": "xx", "setting": "mo", "diff": 0.05, "p_value": 0.001, "p_holm": 0.004},
    ])
    letters = {"xx": "a", "xy": "b"}
    assert R.significance_marks(sig, "xquad_r", "cr", letters=letters) == r"$^{b\downarrow}$"  # raw p .01: no 'a'
    assert R.significance_marks(sig, "xquad_r", "mo", letters=letters) == "$^{a}$"


def test_holm_over_the_whole_table_can_remove_a_mark():
    """A gain significant on its own (raw p < .05) loses its mark when Holm's family is large."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.7, size=30)
    noise = rng.normal(0, 0.05, size=30)
    per = {("xquad_r", "xx"): per_query(base), ("xquad_r", "hybrid"): per_query(base + 0.022 + noise)}
    alone = R.compare_strategies(per, "hybrid", settings=("mo",), n_resamples=4000)
    assert alone.loc[0, "p_value"] < 0.05
    assert R.significance_marks(alone, "xquad_r", "mo") == ("$^{a}$" if alone.loc[0, "p_holm"] < 0.05 else "")
    # three more comparisons, of identical systems (p = 1): the family has four members
    per[("xquad_r", "xx-mixed")] = per[("xquad_r", "hybrid")]
    per[("xquad_r", "xy")] = per[("xquad_r", "hybrid")]
    per[("mlqa_r", "xx")] = per[("mlqa_r", "hybrid")] = per_query(base)
    family = R.compare_strategies(per, "hybrid", settings=("mo",), n_resamples=4000)
    assert len(family) == 4
    row = family[(family["dataset"] == "xquad_r") & (family["baseline"] == "xx")].iloc[0]
    assert row["p_value"] == pytest.approx(alone.loc[0, "p_value"]) and row["p_value"] < 0.05
    assert row["p_holm"] >= 0.05 and not row["significant"]
    assert R.significance_marks(family, "xquad_r", "mo") == ""


def test_significance_tests_on_fake_results(results_dir, main_results):
    sig = R.significance_tests(results_dir, fake_params(), n_resamples=1000)
    assert len(sig) == 2 * 3 * 3  # datasets x baselines x settings
    assert set(sig["baseline"]) == {"xx", "xx-mixed", "xy"}
    # diff is the seed-mean macro difference
    s = R.summary_lookup(R.seed_summary(main_results, ["map_cr"]))
    row = sig[(sig["dataset"] == "xquad_r") & (sig["baseline"] == "xx") & (sig["setting"] == "cr")].iloc[0]
    assert row["diff"] == pytest.approx(s[("xquad_r", "hybrid", "map_cr")][0] - s[("xquad_r", "xx", "map_cr")][0])
    table = R.main_table(main_results, sig)
    hybrid_row = next(l for l in table.splitlines() if l.startswith("Hybrid"))
    # fake effects: Hybrid is far above X-X-mono (letter a) in Cr. and Mul., equal to it in Mo.
    cells = hybrid_row.split(" & ")

    def marks(cell):
        m = re.search(r"\$\^\{([^}]*)\}\$", cell)
        return m.group(1).split(",") if m else []

    assert "a" not in marks(cells[1]) and "a" in marks(cells[2]) and "a" in marks(cells[3])
    expected = sig[(sig["dataset"] == "xquad_r") & (sig["setting"] == "cr") & sig["significant"]]
    assert len(marks(cells[2])) == len(expected)


# ------------------------------------------------------------------------------------------- tables


def test_main_table_layout(main_results):
    table = R.main_table(main_results, None)
    lines = table.splitlines()
    rows = [l for l in lines if l.split(" & ")[0] in R.STRATEGY_LABELS.values()]
    assert [r.split(" & ")[0] for r in rows] == ["zero-shot", "BM25 (Mo. only)", "X-X-mono", "X-X (mixed)", "X-Y",
                                                   "Hybrid"]
    bm25 = rows[1].split(" & ")
    assert bm25[2] == "--" and bm25[3] == "--" and bm25[5] == "--"  # Cr./Mul. not computed
    assert r"\pm" not in rows[0] and r"\pm" in rows[2]  # zero-shot: a single run
    assert "XQuAD-R (trained on MLQA-R)" in table and "MLQA-R (trained on XQuAD-R)" in table
    assert R.MODEL_NOTE in table
    for c in range(1, 7):  # one bold best per column (fake values have no ties)
        assert sum(r"\textbf" in r.split(" & ")[c] for r in rows) >= 1


def test_paper_vs_ours_keeps_the_sources_apart(main_results):
    reported = R.load_reported(REPO / "paper" / "reported.yaml")
    assert reported["table1_map"]["XLM-R"]["xx"]["xquad_r"]["mo"] == 0.792
    assert reported["table2_rank_distance"]["LaBSE"]["hybrid"]["mlqa_r"] == 195.0
    table = R.paper_vs_ours_table(main_results, reported)
    assert "different models and data" in table
    assert "Paper (reported): XLM-R" in table and "Paper (reported): LaBSE" in table and "Ours:" in table
    assert "0.792" in table and "410.2" in table


def test_other_tables_render(results_dir, main_results):
    runs = R.grid_runs(fake_params(), "main")
    frames = {m: R.per_language_frame(results_dir, runs, m) for m in ("map_mo", "map_mul")}
    xq = R.per_language_table(main_results, frames, "xquad_r")
    assert r"el$^{\dagger}$" in xq and "Monolingual (Mo.) mAP" in xq and "Multilingual (Mul.) mAP" in xq
    assert r"\dagger}$ &" not in R.per_language_table(main_results, frames, "mlqa_r").split(r"\midrule")[0]
    dense = runs[runs["strategy"] != "bm25"]
    bias = R.bias_table(main_results, R.per_language_frame(results_dir, dense, "rank_distance"))
    assert "Avg." in bias and "--" in bias  # el is not an MLQA-R language
    tat = R.tatoeba_table(R.tatoeba_frame(results_dir, runs), main_results)
    assert r"x$\to$en" in tat and r"en$\to$x" in tat
    rd = R.rank_distance_table(main_results)
    assert "BM25" not in rd and r"RD $\downarrow$" in rd
    assert r"R@10" in R.recall_table(main_results)


def test_report_stage_passes_the_four_parameters():
    spec = importlib.util.spec_from_file_location("report_stage", REPO / "src" / "stages" / "report.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    p = stage.parameters("params.yaml")
    assert p == {"params_file": "params.yaml", "results_dir": "results", "tables_dir": "paper/tables",
                 "figures_dir": "figures"}
    assert stage.parameters("x.yaml", [["n_resamples", "100"]])["n_resamples"] == "100"


def test_headline_intervals_bracket_the_seed_mean(results_dir, main_results):
    from hybridbatch.stats import cluster_bootstrap_ci

    ci = R.headline_intervals(results_dir, fake_params(), n_resamples=500)
    s = R.summary_lookup(R.seed_summary(main_results, ["map_mo", "map_cr", "map_mul"]))
    for _, r in ci.iterrows():
        mean = s[(r["dataset"], r["strategy"], f"map_{r['setting']}")][0]
        assert r["map"] == pytest.approx(mean)  # macro mean of seed-averaged AP = mean of the seeds' macro means
        assert r["ci_low"] <= r["map"] <= r["ci_high"] and r["ci_low"] < r["ci_high"]
    bm25 = ci[ci["strategy"] == "bm25"]
    assert set(bm25["setting"]) == {"mo"} and set(bm25["n_runs"]) == {1}
    # a single run's interval is exactly stats.cluster_bootstrap_ci on its own per-query file
    zs = ci[(ci["strategy"] == "zeroshot") & (ci["setting"] == "mul") & (ci["dataset"] == "xquad_r")].iloc[0]
    run = R.run_name("mlqa2xquad", "zeroshot")
    expected = cluster_bootstrap_ci(R.load_per_query(results_dir, run), "mul", n_resamples=500, seed=0)
    assert (zs["ci_low"], zs["ci_high"]) == pytest.approx(expected)
    table = R.intervals_table(ci, n_resamples=500)
    assert len(re.findall(r"\d \[\d", table)) == len(ci) and "cluster-bootstrap" in table and r"\emph{MLQA-R}" in table
