"""hybridbatch.reporting.results: run selection from params, loading, seed summaries, formatting, significance marks.

Fast: synthetic results (tests/helpers/fake_results.py) and hand-made per-query frames; no notebook runs here.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from helpers.fake_results import LANGUAGES, REPO, enumerate_runs, fake_params, write_fake_results
from hybridbatch.params import ParamsError
from hybridbatch import grid, strategies
from hybridbatch.reporting import language_tables, latex, results as report, significance, tables
from hybridbatch.stats import inference as stats
from hybridbatch.stats.inference import average_runs, macro_mean

# the tiny profile of tests/test_pipeline.py: no xx-mixed, no xy among the scaling strategies
TINY_GRID = {"folds": ["mlqa2xquad", "xquad2mlqa"], "strategies": ["xx", "xy", "hybrid"],
             "main": {"primary": {"folds": ["mlqa2xquad", "xquad2mlqa"], "strategies": ["xx", "xy", "hybrid"],
                                  "seeds": [1, 2]},
                      "secondary": {"folds": [], "strategies": [], "seeds": []},
                      "mixed": {"folds": [], "strategies": [], "seeds": []}},
             "tatoeba_seeds": [1, 2], "ladder": {"fold": "mlqa2xquad", "steps": [], "strategies": [], "seeds": []},
             "scaling_fold": "mlqa2xquad", "scaling_seeds": [1], "scaling_strategies": ["xx", "hybrid"],
             "layers": [2], "n_languages": [2], "alphas": [0.25], "alpha_seeds": [1, 2]}


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    write_fake_results(out, fake_params())
    return out


@pytest.fixture(scope="module")
def main_results(results_dir):
    return report.study_results(results_dir, fake_params(), "main")


# ---------------------------------------------------------------------------------------- formatting


def test_mean_sd_formatting():
    assert latex.fmt_mean_sd(0.71234, 0.00412) == r"0.712 {\scriptsize$\pm$0.004}"
    assert latex.fmt_mean_sd(0.71234, math.nan) == "0.712"  # a single run: no sd
    assert latex.fmt_mean_sd(0.71234) == "0.712"
    assert latex.fmt_mean_sd(math.nan, 0.1) == "--"
    assert latex.fmt_mean_sd(0.5, 0.01, bold=True, mark="$^{a}$") == r"\textbf{0.500}$^{a}$ {\scriptsize$\pm$0.010}"
    assert latex.fmt_mean_sd(410.23, 3.456, 1) == r"410.2 {\scriptsize$\pm$3.5}"  # rank distance: one decimal
    assert latex.fmt(12.345) == "12.3" and latex.fmt(0.1234) == "0.123" and latex.fmt(None) == "--"


def test_best_flags_compare_printed_values():
    assert latex.best_flags([0.5, 0.7, 0.6]) == [False, True, False]
    assert latex.best_flags([0.7001, 0.7004, 0.6]) == [True, True, False]  # equal as printed: both bold
    assert latex.best_flags([300.0, 250.0, math.nan], higher_is_better=False, digits=1) == [False, True, False]
    assert latex.best_flags([math.nan, math.nan]) == [False, False]


def test_booktabs_structure():
    text = latex.booktabs(["A & B \\\\"], [["x", "1"], r"\midrule", ["y", "2"]], align="lr", caption="c", label="tab:t")
    for token in (r"\begin{table}", r"\toprule", r"\midrule", r"\bottomrule", r"\caption{c}", r"\label{tab:t}",
                  r"x & 1 \\", r"\end{table}"):
        assert token in text
    assert text.count(r"\begin{tabular}{lr}") == 1 and text.count("{") == text.count("}")


# ----------------------------------------------------------------------------------- run selection


def test_run_names():
    assert grid.run_name("mlqa2xquad", "hybrid", 13) == "mlqa2xquad-hybrid-s13"
    assert grid.run_name("mlqa2xquad", "xx-mixed", 2) == "mlqa2xquad-xx-mixed-s2"
    assert grid.run_name("mlqa2xquad", "zeroshot") == "mlqa2xquad-zeroshot"
    assert grid.run_name("xquad2mlqa", "bm25") == "xquad2mlqa-bm25"
    assert grid.run_name("mlqa2xquad", "xy", 13, layers=4) == "mlqa2xquad-L4-xy-s13"
    assert grid.run_name("mlqa2xquad", "zeroshot", layers=8) == "mlqa2xquad-L8-zeroshot"
    assert grid.run_name("mlqa2xquad", "xx", 13, n_languages=2) == "mlqa2xquad-n2-xx-s13"
    assert grid.run_name("mlqa2xquad", "hybrid", 13, alpha=0.25) == "mlqa2xquad-hybrid-a0.25-s13"
    with pytest.raises(ValueError):
        grid.run_name("mlqa2xquad", "xx", 13, alpha=0.25)
    with pytest.raises(ValueError):
        grid.run_name("mlqa2xquad", "xx")  # a trained run needs its seed


def test_grid_runs_follow_params():
    params = fake_params()
    g = params["grid"]
    main = grid.grid_runs(params, "main")
    assert len(main) == len(g["folds"]) * (2 + len(g["strategies"]) * len(g["main"]["primary"]["seeds"]))
    assert {"mlqa2xquad-zeroshot", "xquad2mlqa-bm25", "xquad2mlqa-xx-mixed-s2"} <= set(main["run"])
    assert set(main.loc[main["fold"] == "mlqa2xquad", "eval_dataset"]) == {"xquad_r"}
    size = grid.grid_runs(params, "size")
    # k layers x (zero-shot + scaling strategies), then the full encoder: the main runs of the scaling seed
    assert list(size["run"]) == [
        "mlqa2xquad-L4-zeroshot", "mlqa2xquad-L4-xx-s1", "mlqa2xquad-L4-xy-s1", "mlqa2xquad-L4-hybrid-s1",
        "mlqa2xquad-L8-zeroshot", "mlqa2xquad-L8-xx-s1", "mlqa2xquad-L8-xy-s1", "mlqa2xquad-L8-hybrid-s1",
        "mlqa2xquad-zeroshot", "mlqa2xquad-xx-s1", "mlqa2xquad-xy-s1", "mlqa2xquad-hybrid-s1"]
    assert size["layers"].isna().tolist() == [False] * 8 + [True] * 4  # filled from each run's config when loaded
    langs = grid.grid_runs(params, "languages")
    assert list(langs["run"]) == ["mlqa2xquad-n2-xx-s1", "mlqa2xquad-n2-xy-s1", "mlqa2xquad-n2-hybrid-s1",
                                  "mlqa2xquad-xx-s1", "mlqa2xquad-xy-s1", "mlqa2xquad-hybrid-s1"]
    alpha = grid.grid_runs(params, "alpha")
    assert list(alpha["run"][:5]) == ["mlqa2xquad-xy-s1", "mlqa2xquad-hybrid-a0.25-s1", "mlqa2xquad-hybrid-a0.75-s1",
                                      "mlqa2xquad-hybrid-s1", "mlqa2xquad-xx-s1"]
    assert len(alpha) == 5 * len(g["alpha_seeds"])  # every alpha seed, not only the scaling seed
    assert alpha["alpha"].tolist()[:3] == [0.0, 0.25, 0.75] and alpha["alpha"].tolist()[4] == 1.0
    assert pd.isna(alpha["alpha"].iloc[3])  # the main hybrid run: its config's alpha
    with pytest.raises(ValueError):
        grid.grid_runs(params, "nonsense")


def test_grid_runs_match_the_runs_the_pipeline_writes():
    """The fake results enumerate the grid independently (as the DVC matrix does)."""
    params = fake_params()
    assert set(grid.grid_runs(params)["run"]) == {c["run"] for c in enumerate_runs(params)}


def test_grid_runs_skip_main_runs_the_grid_does_not_have():
    params = fake_params()
    params["grid"] = copy.deepcopy(TINY_GRID)
    alpha = grid.grid_runs(params, "alpha")  # xy is a main strategy: its run is the alpha-0 endpoint
    assert list(alpha["run"]) == [f"mlqa2xquad-{r}-s{seed}" for seed in (1, 2)
                                  for r in ("xy", "hybrid-a0.25", "hybrid", "xx")]
    params["grid"]["main"]["primary"]["strategies"] = ["xx", "hybrid"]
    alpha = grid.grid_runs(params, "alpha")
    assert list(alpha["run"]) == [f"mlqa2xquad-{r}-s{seed}" for seed in (1, 2) for r in ("hybrid-a0.25", "hybrid", "xx")]
    size = grid.grid_runs(params, "size")
    assert "mlqa2xquad-L2-zeroshot" in set(size["run"]) and "mlqa2xquad-L2-xy-s1" not in set(size["run"])
    params["grid"]["main"]["primary"]["seeds"] = [5]  # scaling seed 1 is no main seed: no full-size point
    assert not any(r.endswith("-s1") and "-L" not in r and "-n" not in r and "-a" not in r
                   for r in grid.grid_runs(params, "size")["run"])
    params["grid"]["layers"] = []
    assert report.load_results("nowhere", grid.grid_runs(params, "size").iloc[0:0]).empty


def test_scaling_studies_run_every_scaling_seed(tmp_path):
    params = fake_params()
    params["grid"]["scaling_seeds"] = [1, 2]
    assert set(grid.grid_runs(params)["run"]) == {c["run"] for c in enumerate_runs(params)}
    size = grid.grid_runs(params, "size")
    assert list(size["run"][:7]) == ["mlqa2xquad-L4-zeroshot", "mlqa2xquad-L4-xx-s1", "mlqa2xquad-L4-xx-s2",
                                     "mlqa2xquad-L4-xy-s1", "mlqa2xquad-L4-xy-s2", "mlqa2xquad-L4-hybrid-s1",
                                     "mlqa2xquad-L4-hybrid-s2"]
    alpha = grid.grid_runs(params, "alpha")["run"].tolist()
    assert alpha.count("mlqa2xquad-hybrid-a0.25-s2") == 1  # the alpha sweep runs the main seeds (1, 2) ...
    params["grid"]["scaling_seeds"] = [1]
    assert grid.grid_runs(params, "alpha")["run"].tolist() == alpha  # ... whatever the scaling seeds
    params["grid"]["scaling_seeds"] = [1, 2]
    assert grid.scaling_seeds({"grid": {"scaling_seed": 7}}) == [7]  # an older params file
    write_fake_results(tmp_path, params)
    studies = [report.study_results(tmp_path, params, s) for s in ("size", "languages", "alpha")]
    table = tables.scaling_table(*studies)
    assert "Sampling & Seed & Layers" in table and "seeds 1, 2, one row per run" in table
    assert r"\cmidrule(lr){7-8}" in table  # the share group moved right by the seed column
    means = report.seed_means(studies[0], ["strategy", "layers"], ["map_mo"])
    hybrid = means[(means["strategy"] == "hybrid") & (means["layers"] == 4)].iloc[0]
    runs = studies[0][(studies[0]["strategy"] == "hybrid") & (studies[0]["layers"] == 4)]["map_mo"]
    assert hybrid["n_runs"] == 2 and hybrid["map_mo"] == pytest.approx(runs.mean())
    assert hybrid["map_mo_sd"] == pytest.approx(runs.std(ddof=1))


def test_load_params_requires_grid_and_folds(tmp_path):
    (tmp_path / "p.yaml").write_text("grid: {folds: []}\n")
    with pytest.raises(KeyError, match="folds"):
        grid.load_params(tmp_path / "p.yaml")
    with pytest.raises(ParamsError, match="not found"):
        grid.load_params(tmp_path / "missing.yaml")


# ------------------------------------------------------------------------------------------ loading


def test_missing_results_name_the_file_and_dvc_repro(tmp_path):
    params = fake_params()
    write_fake_results(tmp_path, params)
    shutil.rmtree(tmp_path / "xquad2mlqa-xy-s2")
    with pytest.raises(FileNotFoundError) as err:
        report.study_results(tmp_path, params, "main")
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
    assert report.datasets_of(r) == ["xquad_r", "mlqa_r"]
    assert report.unseen_languages(r, "xquad_r") == ["el"] and report.unseen_languages(r, "mlqa_r") == []
    assert grid.untrainable_languages(fake_params(), "mlqa2xquad", LANGUAGES["xquad_r"]) == ["el"]


def test_load_results_checks_the_evaluation_dataset(tmp_path):
    params = fake_params()
    write_fake_results(tmp_path, params)
    path = tmp_path / "mlqa2xquad-xx-s1" / "metrics.json"
    data = json.loads(path.read_text())
    data["config"]["eval_dataset"] = "mlqa_r"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="xquad_r"):
        report.study_results(tmp_path, params, "main")


def test_seed_summary_mean_and_sample_sd(main_results):
    s = report.seed_summary(main_results, ["map_mo"])
    row = s[(s["eval_dataset"] == "xquad_r") & (s["strategy"] == "xy")].iloc[0]
    values = main_results.loc[(main_results["fold"] == "mlqa2xquad") & (main_results["strategy"] == "xy"), "map_mo"]
    assert row["n"] == 2
    assert row["mean"] == pytest.approx(values.mean()) and row["sd"] == pytest.approx(values.std(ddof=1))
    zs = s[(s["eval_dataset"] == "xquad_r") & (s["strategy"] == "zeroshot")].iloc[0]
    assert zs["n"] == 1 and math.isnan(zs["sd"])
    bm25 = report.seed_summary(main_results, ["map_cr"])
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


def seeds_of_values(values: np.ndarray, rng, k: int = 3, sd: float = 0.003) -> list[pd.DataFrame]:
    """``k`` seeds of one system: ``values`` plus a small per-seed offset."""
    return [per_query(values + rng.normal(0, sd)) for _ in range(k)]


def test_hybrid_is_marked_only_where_holm_p_is_below_alpha():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.7, size=40)
    hybrid = base + 0.1 + rng.normal(0, 0.05, size=40)
    per = {("xquad_r", "xx"): seeds_of_values(base, rng),
           ("xquad_r", "xy"): seeds_of_values(base + 0.1, rng),
           ("xquad_r", "hybrid"): seeds_of_values(hybrid, rng)}
    sig = significance.compare_strategies(per, "hybrid", settings=("mo",), n_resamples=2000)
    by = sig.set_index("baseline")
    assert by.loc["xx", "significant"] and by.loc["xx", "p_holm"] < 0.05  # a clear, consistent gain
    assert not by.loc["xy", "significant"]  # the same system up to noise
    letters = significance.baseline_letters(["xx", "xy"])
    assert letters == {"xx": "a", "xy": "b"}
    assert significance.significance_marks(sig, "xquad_r", "mo", letters=letters) == "$^{a}$"
    assert significance.significance_marks(sig, "mlqa_r", "mo", letters=letters) == ""


def test_marks_use_holm_adjusted_not_raw_p_and_show_direction():
    sig = pd.DataFrame([
        {"dataset": "xquad_r", "baseline": "xx", "setting": "cr", "diff": 0.02, "p_value": 0.01, "p_holm": 0.06},
        {"dataset": "xquad_r", "baseline": "xy", "setting": "cr", "diff": -0.03, "p_value": 0.001, "p_holm": 0.004},
        {"dataset": "xquad_r", "baseline": "xx", "setting": "mo", "diff": 0.05, "p_value": 0.001, "p_holm": 0.004},
    ])
    letters = {"xx": "a", "xy": "b"}
    assert significance.significance_marks(sig, "xquad_r", "cr", letters=letters) == r"$^{b\downarrow}$"  # raw p .01: no 'a'
    assert significance.significance_marks(sig, "xquad_r", "mo", letters=letters) == "$^{a}$"


def test_holm_over_the_whole_table_can_remove_a_mark():
    """A gain significant on its own (raw p < .05) loses its mark when Holm's family is large."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.7, size=30)
    noise = rng.normal(0, 0.05, size=30)
    per = {("xquad_r", "xx"): per_query(base), ("xquad_r", "hybrid"): per_query(base + 0.022 + noise)}
    alone = significance.compare_strategies(per, "hybrid", settings=("mo",), n_resamples=4000)
    assert alone.loc[0, "p_value"] < 0.05
    assert significance.significance_marks(alone, "xquad_r", "mo") == ""  # one seed per system: never marked
    # three more comparisons, of identical systems (p = 1): the family has four members
    per[("xquad_r", "xx-mixed")] = per[("xquad_r", "hybrid")]
    per[("xquad_r", "xy")] = per[("xquad_r", "hybrid")]
    per[("mlqa_r", "xx")] = per[("mlqa_r", "hybrid")] = per_query(base)
    family = significance.compare_strategies(per, "hybrid", settings=("mo",), n_resamples=4000)
    assert len(family) == 4
    row = family[(family["dataset"] == "xquad_r") & (family["baseline"] == "xx")].iloc[0]
    assert row["p_value"] == pytest.approx(alone.loc[0, "p_value"]) and row["p_value"] < 0.05
    assert row["p_holm"] >= 0.05 and not row["significant"]
    assert significance.significance_marks(family, "xquad_r", "mo") == ""


def test_one_seed_comparisons_are_never_significant():
    """With one training seed per system the seed variance cannot be estimated: a clear question-level
    difference (p_Holm ~ 0) is reported but neither marked nor counted significant, and the table says why."""
    rng = np.random.default_rng(2)
    base = rng.uniform(0.2, 0.7, size=40)
    gain = base + 0.2 + rng.normal(0, 0.02, size=40)
    per = {("xquad_r", "xx"): per_query(base), ("xquad_r", "hybrid"): per_query(gain)}
    sig = significance.compare_strategies(per, "hybrid", settings=("mo",), n_resamples=2000)
    assert sig.loc[0, "p_holm"] < 0.001 and not sig.loc[0, "significant"]
    assert not significance.is_significant(sig).any()
    assert significance.significance_marks(sig, "xquad_r", "mo") == ""
    table = tables.significance_table(sig, n_seeds=1)
    assert r"\textbf{A single training seed}" in table and "$$^{*}$" not in table  # no marked difference
    two = significance.compare_strategies({("xquad_r", "xx"): seeds_of_values(base, rng, 2),
                                           ("xquad_r", "hybrid"): seeds_of_values(gain, rng, 2)},
                                          "hybrid", settings=("mo",), n_resamples=2000)
    assert two.loc[0, "significant"] and "A single training seed" not in tables.significance_table(two, n_seeds=2)


def test_significance_tests_on_fake_results(results_dir, main_results):
    sig = significance.significance_tests(results_dir, fake_params(), n_resamples=1000)
    assert len(sig) == 2 * 3 * 3  # datasets x baselines x settings
    assert set(sig["baseline"]) == {"xx", "xx-mixed", "xy"}
    # diff is the seed-mean macro difference
    s = report.summary_lookup(report.seed_summary(main_results, ["map_cr"]))
    row = sig[(sig["dataset"] == "xquad_r") & (sig["baseline"] == "xx") & (sig["setting"] == "cr")].iloc[0]
    assert row["diff"] == pytest.approx(s[("xquad_r", "hybrid", "map_cr")][0] - s[("xquad_r", "xx", "map_cr")][0])
    table = tables.main_table(main_results, sig)
    hybrid_row = next(l for l in table.splitlines() if l.startswith("Hybrid"))
    # fake effects: Hybrid is far above X-X-mono (letter a) in Cr. and Mul., equal to it in Mo.
    cells = hybrid_row.split(" & ")

    def marks(cell):
        m = re.search(r"\$\^\{([^}]*)\}\$", cell)
        return m.group(1).split(",") if m else []

    # each cell carries exactly the letters of its significant comparisons (Holm and every seed pairing agreeing);
    # the fakes' large effects (Hybrid far above X-X-mono in Mul.) are significant even with two seeds
    letters = significance.baseline_letters(sig["baseline"].unique())
    for cell, setting in zip(cells[1:4], grid.SETTINGS):
        rows = sig[(sig["dataset"] == "xquad_r") & (sig["setting"] == setting) & sig["significant"]]
        assert sorted(marks(cell)) == sorted(letters[b] + (r"\downarrow" if d < 0 else "")
                                             for b, d in zip(rows["baseline"], rows["diff"]))
    assert "a" not in marks(cells[1]) and "a" in marks(cells[3])  # equal in Mo.; far apart in Mul.


def test_significance_keeps_the_seeds_apart(results_dir, main_results):
    sig = significance.significance_tests(results_dir, fake_params(), n_resamples=500)
    assert set(sig["n_seeds_baseline"]) == {2} and set(sig["n_seeds_target"]) == {2}
    row = sig[(sig["dataset"] == "xquad_r") & (sig["baseline"] == "xy") & (sig["setting"] == "mul")].iloc[0]
    by_run = main_results.set_index("run")["map_mul"]
    # every pairing, baseline seed outer: hybrid seed j minus xy seed i
    expected = [by_run[f"mlqa2xquad-hybrid-s{j}"] - by_run[f"mlqa2xquad-xy-s{i}"] for i in (1, 2) for j in (1, 2)]
    assert list(row["diff_per_seed"]) == pytest.approx(expected, abs=1e-9)
    assert row["diff"] == pytest.approx(sum(expected) / 4)
    # significant: Holm-adjusted p below alpha and every seed pairing in diff's direction
    assert (sig["significant"] == ((sig["p_holm"] < 0.05) & sig["seeds_agree"])).all()
    mo = sig[(sig["baseline"] == "xx") & (sig["setting"] == "mo")]
    assert not mo["significant"].any()  # Hybrid and X-X-mono are equal in Mo. (up to seed noise)
    text = tables.significance_table(sig, n_seeds=2, n_resamples=500)
    assert "per seed pairing" in text and r"\emph{Significant}" in text and "every seed pairing" in text
    assert f"all {len(sig)} comparisons" in text
    line = next(l for l in text.splitlines() if l.startswith(" & X-Y & Mul.") or l.startswith("XQuAD-R & X-Y & Mul."))
    assert line.split(" & ")[4].count("$") == 8  # four per-seed differences
    starred = [l for l in text.splitlines() if "$^{*}$" in l and not l.startswith(r"\caption")]
    assert len(starred) == int(sig["significant"].sum())


# ------------------------------------------------------------------------------------------- tables


def test_main_table_layout(main_results):
    table = tables.main_table(main_results, None)
    lines = table.splitlines()
    rows = [l for l in lines if l.split(" & ")[0] in [s.label for s in strategies.STRATEGIES.values()]]
    assert [r.split(" & ")[0] for r in rows] == ["zero-shot", "BM25 (Mo. only)", "X-X-mono", "X-X (mixed)", "X-Y",
                                                   "Hybrid"]
    bm25 = rows[1].split(" & ")
    assert bm25[2] == "--" and bm25[3] == "--" and bm25[5] == "--"  # Cr./Mul. not computed
    assert r"\pm" not in rows[0] and r"\pm" in rows[2]  # zero-shot: a single run
    assert "XQuAD-R (trained on MLQA-R)" in table and "MLQA-R (trained on XQuAD-R)" in table
    assert grid.MODEL_NOTE in table
    for c in range(1, 7):  # one bold best per column (fake values have no ties)
        assert sum(r"\textbf" in r.split(" & ")[c] for r in rows) >= 1


def test_paper_vs_ours_keeps_the_sources_apart(main_results):
    reported = tables.load_reported(REPO / "paper" / "reported.yaml")
    assert reported["table1_map"]["XLM-R"]["xx"]["xquad_r"]["mo"] == 0.792
    assert reported["table2_rank_distance"]["LaBSE"]["hybrid"]["mlqa_r"] == 195.0
    table = tables.paper_vs_ours_table(main_results, reported)
    assert "different models and data" in table
    assert "Paper (reported): XLM-R" in table and "Paper (reported): LaBSE" in table and "Ours:" in table
    assert "0.792" in table and "410.2" in table


def test_protocol_note_states_what_the_results_record():
    """The caption's description of our protocol comes from the results, not from a fixed phrase: a full-pool
    study must not be captioned as a subsample (the budget profile's phrase survived into the study once)."""
    full = pd.DataFrame({"steps": [None, 120.0, 120.0], "sample_fraction": [1.0, 1.0, 1.0]})
    assert tables.protocol_note(full) == "cross-dataset folds, 120-step fine-tuning, full evaluation pools"
    sampled = pd.DataFrame({"steps": [20.0, 20.0], "sample_fraction": [0.1, 0.1]})
    assert tables.protocol_note(sampled) == r"cross-dataset folds, 20-step fine-tuning, a 10\% sample of the evaluation pools"
    assert tables.protocol_note(pd.DataFrame({"map_mo": [0.5]})) == "cross-dataset folds"


def test_other_tables_render(results_dir, main_results):
    runs = grid.grid_runs(fake_params(), "main")
    frames = {m: report.per_language_frame(results_dir, runs, m) for m in language_tables.PER_LANGUAGE_METRICS}
    xq = language_tables.per_language_table(main_results, frames, "xquad_r")
    assert r"el$^{\dagger}$" in xq and "Monolingual (Mo.) mAP" in xq and "Multilingual (Mul.) R@10" in xq
    assert r"\dagger}$ &" not in language_tables.per_language_table(main_results, frames, "mlqa_r").split(r"\midrule")[0]
    dense = runs[runs["strategy"] != "bm25"]
    bias = language_tables.bias_table(main_results, report.per_language_frame(results_dir, dense, "rank_distance"))
    assert "Avg." in bias and "--" in bias  # el is not an MLQA-R language
    tat = language_tables.tatoeba_table(report.tatoeba_frame(results_dir, runs), main_results)
    assert r"x$\to$en" in tat and r"en$\to$x" in tat
    rd = tables.rank_distance_table(main_results)
    assert "BM25" not in rd and r"RD $\downarrow$" in rd
    assert r"R@10" in tables.recall_table(main_results)


def test_report_stage_passes_the_four_parameters():
    spec = importlib.util.spec_from_file_location("report_stage", REPO / "src" / "stages" / "report.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    p = stage.parameters("params.yaml")
    assert p == {"params_file": "params.yaml", "results_dir": "results", "tables_dir": "paper/tables",
                 "figures_dir": "figures"}
    assert stage.parameters("x.yaml", [["n_resamples", "100"]])["n_resamples"] == "100"


def test_headline_intervals_bracket_the_seed_mean(results_dir, main_results):
    from hybridbatch.stats.seeded import seeded_bootstrap_ci

    ci = significance.headline_intervals(results_dir, fake_params(), n_resamples=500)
    s = report.summary_lookup(report.seed_summary(main_results, ["map_mo", "map_cr", "map_mul"]))
    for _, r in ci.iterrows():
        mean = s[(r["dataset"], r["strategy"], f"map_{r['setting']}")][0]
        assert r["map"] == pytest.approx(mean)  # the mean over seeds of the macro means: the main table's mean
        assert r["ci_low"] <= r["map"] <= r["ci_high"] and r["ci_low"] < r["ci_high"]
    bm25 = ci[ci["strategy"] == "bm25"]
    assert set(bm25["setting"]) == {"mo"} and set(bm25["n_runs"]) == {1}
    # the per-seed frames go to seeded.seeded_bootstrap_ci as they are (never averaged over seeds first)
    for strategy, runs in (("zeroshot", ["mlqa2xquad-zeroshot"]), ("xy", ["mlqa2xquad-xy-s1", "mlqa2xquad-xy-s2"])):
        row = ci[(ci["strategy"] == strategy) & (ci["setting"] == "mul") & (ci["dataset"] == "xquad_r")].iloc[0]
        frames = [report.load_per_query(results_dir, run) for run in runs]
        expected = seeded_bootstrap_ci(frames, "mul", n_resamples=500, seed=0)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(expected) and row["n_runs"] == len(runs)
    table = tables.intervals_table(ci, n_resamples=500)
    assert len(re.findall(r"\d \[\d", table)) == len(ci) and "cluster bootstrap" in table and r"\emph{MLQA-R}" in table
    assert "seed-to-seed variance" in table


# ------------------------------------------------------------------------------------------ refactoring


def test_one_latex_escape_for_tables_and_the_paper_stage():
    assert latex.latex_escape("a_b & 50% #1 $x$ {y} ~^") == (r"a\_b \& 50\% \#1 \$x\$ \{y\} "
                                                          r"\textasciitilde{}\textasciicircum{}")
    assert latex.latex_escape("C:\\dir") == r"C:\textbackslash{}dir"  # escaped once: its braces stay braces
    assert latex.latex_escape(None) == "None" and latex.latex_escape(0.25) == "0.25"
    spec = importlib.util.spec_from_file_location("paper_stage", REPO / "src" / "stages" / "paper.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    assert stage.latex_escape is latex.latex_escape
    assert r"\texttt{mlqa\_2}" in stage.settings_tex({"grid": {"scaling_fold": "mlqa_2"}})


def test_strategy_vocabulary_comes_from_the_registry(main_results):
    for name in ("STRATEGY_LABELS", "STRATEGY_ORDER", "STRATEGY_COLORS", "TRAINED", "strategy_label"):
        for module in (report, grid, tables, language_tables, significance):
            assert not hasattr(module, name), (module.__name__, name)
    assert report.strategies_of(main_results) == [s for s in strategies.ORDER if s in set(main_results["strategy"])]
    assert grid.is_reference("zeroshot") and grid.is_reference("bm25") and not grid.is_reference("hybrid")
    table = tables.main_table(main_results)
    for s in strategies.STRATEGIES.values():
        assert f"\n{s.label} & " in table


# ------------------------------------------------------------------------------------ training keys


def test_training_keys_are_read_tolerantly(results_dir):
    params = fake_params()
    size = report.study_results(results_dir, params, "size")
    hybrid = size[size["run"] == "mlqa2xquad-hybrid-s1"].iloc[0]
    assert hybrid["alpha_schedule"] == "exact" and hybrid["mono_share"] == 0.5 and hybrid["steps"] == 40
    assert 0 <= hybrid["mono_share_kept"] <= 1 and 20 <= hybrid["best_step"] < 40
    xx = size[size["run"] == "mlqa2xquad-xx-s1"].iloc[0]
    assert xx["mono_share"] == 1.0 and pd.isna(xx["alpha_schedule"])  # hybrid only
    zs = size[size["strategy"] == "zeroshot"]
    assert zs["mono_share"].isna().all() and zs["best_step"].isna().all()
    # the training-languages runs were written without the keys (as today's committed results)
    langs = report.study_results(results_dir, params, "languages")
    old = langs[langs["run"] == "mlqa2xquad-n2-hybrid-s1"].iloc[0]
    assert math.isnan(old["mono_share"]) and math.isnan(old["best_step"]) and pd.isna(old["alpha_schedule"])
    alpha = report.study_results(results_dir, params, "alpha")
    table = tables.scaling_table(size, langs, alpha)
    assert "Sampling & Seed & Layers" in table  # the alpha sweep has two seeds: one row per run, seed shown
    rows = {"|".join(l.split(" & ")[i] for i in (0, 1, 4, 5)): l.split(" & ")
            for l in table.splitlines() if " & " in l and l.split(" & ")[0] in ("Hybrid", "X-X-mono", "X-Y")}
    assert rows["Hybrid|1|2|0.5"][6:9] == ["--", "--", "--"]  # not recorded: --
    full = rows["Hybrid|1|3|0.25"]
    assert full[6] == "0.25" and re.fullmatch(r"\d+/40", full[8])  # realised share, kept step of 40
    assert "Mono.\\ share" in table and "Kept step" in table and r"schedule \texttt{exact}" in table
    runs = report.training_runs(report.study_results(results_dir, params, "main"))
    assert len(runs) == 2 * 4 * 2 and runs["run"].is_unique
    assert list(dict.fromkeys(runs["strategy"])) == list(strategies.TRAINED)
    assert set(runs["steps"]) == {40} and all(isinstance(v, int) for v in runs["best_step"])
    text = tables.training_runs_table(runs)
    assert text.count(r"\texttt{mlqa2xquad}") == 8 and "0.50" in text


def test_all_language_runs_count_their_training_languages(results_dir, tmp_path):
    """The training-languages study's all-languages point is the main run, whose config records no count (it
    trained on all of its fold's languages): its n_languages is the number of languages it trained on, so the
    figure and table place it at k = all; a reference run (zero-shot) has none."""
    params = fake_params()
    specs = grid.grid_runs(params, "languages")
    specs = specs[specs["run"].isin(["mlqa2xquad-hybrid-s1", "mlqa2xquad-n2-hybrid-s1"])]
    for run in specs["run"]:
        data = json.loads((results_dir / run / "metrics.json").read_text())
        data["config"]["n_languages"] = None if "-n2-" not in run else 2
        (tmp_path / run).mkdir()
        (tmp_path / run / "metrics.json").write_text(json.dumps(data))
    langs = report.load_results(tmp_path, specs).set_index("run")["n_languages"]
    assert langs.to_dict() == {"mlqa2xquad-hybrid-s1": len(params["folds"]["mlqa2xquad"]["language_order"]),
                               "mlqa2xquad-n2-hybrid-s1": 2}
    assert report.study_results(results_dir, params, "size").query("strategy == 'zeroshot'")["n_languages"].isna().all()


def test_alpha_tests_compare_every_alpha_with_the_main_hybrid(results_dir):
    """Each point of the alpha sweep (X-Y as 0, X-X-mono as 1) minus the main Hybrid runs' alpha, seeds kept
    apart: diff is the seed-mean macro difference, the fakes' large X-X-mono Mul. deficit is significant and
    marked in the table, Holm runs over the whole sweep."""
    params = fake_params()
    sweep = report.study_results(results_dir, params, "alpha")
    sig = significance.alpha_tests(results_dir, params, sweep, n_resamples=1000)
    assert sorted(set(sig["alpha"])) == [0.0, 0.25, 0.75, 1.0] and set(sig["reference"]) == {0.5}
    assert len(sig) == 4 * 3 and set(sig["n_seeds_target"]) == set(sig["n_seeds_baseline"]) == {2}
    means = sweep.groupby("alpha")["map_mul"].mean()
    row = sig[(sig["alpha"] == 1.0) & (sig["setting"] == "mul")].iloc[0]
    assert row["diff"] == pytest.approx(means[1.0] - means[0.5])
    assert row["diff"] < -0.05 and row["significant"]  # fakes: X-X-mono has no Mul. gain, Hybrid +.10
    assert list(sig["p_holm"]) == pytest.approx(list(stats.holm({str(i): p for i, p in enumerate(sig["p_value"])})
                                                     .values()))
    table = tables.alpha_significance_table(sig, fold="mlqa2xquad", n_resamples=1000)
    assert r"$\alpha=0.5$" in table and "12 comparisons" in table and "2 seeds per point" in table
    starred = [l for l in table.splitlines() if "$^{*}$ &" in l]  # the caption explains the mark too
    assert len(starred) == int(sig["significant"].sum()) >= 1


def test_alpha_tests_refuse_an_ambiguous_sweep(results_dir):
    params = fake_params()
    sweep = report.study_results(results_dir, params, "alpha")
    main_hybrid = sweep["run"] == "mlqa2xquad-hybrid-s1"
    with pytest.raises(ValueError, match=r"mlqa2xquad-hybrid-s1.*different alphas"):
        significance.alpha_tests(results_dir, params, sweep.assign(alpha=sweep["alpha"].mask(main_hybrid, 0.4)))
    with pytest.raises(ValueError, match=r"no alpha recorded for run\(s\) \['mlqa2xquad-hybrid-s1'\]"):
        significance.alpha_tests(results_dir, params, sweep.assign(alpha=sweep["alpha"].mask(main_hybrid)))
    assert significance.alpha_tests(results_dir, params, sweep[sweep["alpha"] == 0.5]).empty  # one point
    assert "no comparison" in tables.alpha_significance_table(significance.alpha_tests(results_dir, params, sweep[:0]))


def test_scaling_table_names_several_schedules_in_the_cells(results_dir):
    alpha = report.study_results(results_dir, fake_params(), "alpha")
    alpha.loc[alpha["run"] == "mlqa2xquad-hybrid-a0.25-s1", "alpha_schedule"] = "coin"
    table = tables.scaling_table(None, None, alpha)
    assert "0.25, coin" in table and "0.5, exact" in table and r"schedule \texttt" not in table


# ------------------------------------------------------------------------------ per-language tables


def test_per_language_values_stored_or_derived_from_pairs(results_dir):
    data = json.loads((results_dir / "mlqa2xquad-hybrid-s1" / "metrics.json").read_text())
    block = data["xquad_r"]
    assert report.per_language_values(block, "r10_mul") == block["per_language"]["r10_mul"]
    assert "map_cr" not in block["per_language"]  # not stored per language: from per_pair
    cr = report.per_language_values(block, "map_cr")
    pairs = {k: v for k, v in block["per_pair"]["map_cr"].items() if k.startswith("de-")}
    assert cr["de"] == pytest.approx(sum(pairs.values()) / len(pairs)) and len(pairs) == 3
    # per query language, the macro mean over corpus languages: their mean is the Cr. headline
    assert sum(cr.values()) / len(cr) == pytest.approx(block["map_cr"])
    assert report.per_language_values(block, "r1_cr").keys() == cr.keys()
    bm25 = json.loads((results_dir / "mlqa2xquad-bm25" / "metrics.json").read_text())["xquad_r"]
    assert report.per_language_values(bm25, "map_cr") == {} and report.per_language_values(bm25, "r10_mul") == {}


def test_per_language_table_has_the_papers_recall_columns(results_dir, main_results):
    runs = grid.grid_runs(fake_params(), "main")
    frames = {m: report.per_language_frame(results_dir, runs, m) for m in language_tables.PER_LANGUAGE_METRICS}
    xq = language_tables.per_language_table(main_results, frames, "xquad_r")
    titles = re.findall(r"\\emph\{([^}]*)\}\} \\\\", xq)
    assert titles == [t for _, t in language_tables.PER_LANGUAGE_BLOCKS]
    assert "the paper's Tables 3--6 label the Mul. recall R@1, but it is R@10" in xq
    blocks = xq.split(r"\midrule")
    cr = next(b for b in blocks if "Cross-lingual (Cr.) mAP" in b)
    assert "BM25" not in cr and "Hybrid" in cr
    hybrid = next(l for l in cr.splitlines() if l.startswith("Hybrid")).split(" & ")
    assert float(hybrid[-1].split()[0].replace(r"\textbf{", "").rstrip("}\\")) == pytest.approx(
        main_results.loc[(main_results["eval_dataset"] == "xquad_r") & (main_results["strategy"] == "hybrid"),
                         "map_cr"].mean(), abs=6e-4)
    partial = language_tables.per_language_table(main_results, {"map_mo": frames["map_mo"]}, "xquad_r")
    assert "R@" not in partial.split(r"\label")[0]  # the caption speaks of recall only when it is shown


# ------------------------------------------------- pre-registered families: primary P, secondary S1-S4

import yaml  # noqa: E402

from helpers.fake_results import LADDER, fake_study_params, write_fake_ladder  # noqa: E402
from hybridbatch.reporting import ladder, primary, secondary  # noqa: E402


@pytest.fixture(scope="module")
def families(results_dir):
    params = fake_params()
    reported = yaml.safe_load((REPO / "paper" / "reported.yaml").read_text(encoding="utf-8"))
    sig_all = significance.significance_tests(results_dir, params, n_resamples=400)
    return params, reported, sig_all


def test_paper_bounds_are_the_preregistered_ones():
    reported = yaml.safe_load((REPO / "paper" / "reported.yaml").read_text(encoding="utf-8"))
    assert primary.paper_bounds(reported) == {"P1": 0.043, "P2": 0.046, "P3": 0.031}


def test_primary_family_holm_over_six_and_the_same_test_as_the_table(families):
    params, reported, sig_all = families
    prim = primary.primary_tests(sig_all, params, reported)
    assert list(prim["id"]) == ["P1", "P2", "P3"] and set(prim["dataset"]) == {"xquad_r"}
    ps = {f"a{i}": p for i, p in enumerate(prim["p_superiority"])} | {f"b{i}": p for i, p in enumerate(prim["p_smaller"])}
    holm = stats.holm(ps)
    assert list(prim["p_holm_superiority"]) == [holm[f"a{i}"] for i in range(3)]
    assert list(prim["p_holm_smaller"]) == [holm[f"b{i}"] for i in range(3)]
    for r in prim.to_dict("records"):  # the superiority p is the significance table's raw p of that cell
        row = sig_all[(sig_all["dataset"] == "xquad_r") & (sig_all["baseline"] == r["baseline"])
                      & (sig_all["setting"] == r["setting"])].iloc[0]
        assert r["p_superiority"] == row["p_value"] and r["diff"] == row["diff"]
        assert (r["p_smaller"] < 0.05) == (r["upper_95"] < r["bound"])
    # fake effects: Hybrid far above X-X-mono on Cr./Mul. -> superior, and not smaller than the paper's there
    p2 = prim.set_index("id").loc["P2"]
    assert p2["superior"] and not p2["smaller"] and p2["verdict"].startswith("Hybrid better")
    text = primary.primary_table(prim)
    assert r"\textbf{Primary}" in text and "tab:primary" in text and text.count("[$") == 3


def test_primary_verdict_words_follow_the_preregistration():
    base = {"superior": False, "inferior": False, "smaller": False}
    assert primary._verdict(base) == "superiority not shown at this budget; not shown smaller than the paper's"
    assert primary._verdict(dict(base, smaller=True)).endswith("effect smaller than the paper's")
    assert "a real but smaller effect" in primary._verdict(dict(base, superior=True, smaller=True))
    assert primary._verdict(dict(base, inferior=True)).startswith("Hybrid worse")


def test_primary_with_unequal_seed_counts(tmp_path):
    """10 + 5 seeds on one fold, 3 on the other (the next study's shape): the family is built, seed counts kept."""
    params = fake_params()
    params["grid"]["main"]["primary"]["seeds"] = [1, 2, 3]
    write_fake_results(tmp_path, params)
    # drop one X-Y seed of the primary fold: unequal counts on the two sides of P1
    frames = {}
    for (ds, s), g in grid.grid_runs(params, "main").groupby(["eval_dataset", "strategy"], sort=False):
        runs = list(g["run"])
        if ds == "xquad_r" and s == "xy":
            runs = runs[:2]
        frames[(ds, s)] = report.per_seed_per_query(tmp_path, runs, "ap")
    sig_all = significance.compare_strategies({k: v for k, v in frames.items() if k[1] in strategies.TRAINED},
                                              n_resamples=200)
    reported = yaml.safe_load((REPO / "paper" / "reported.yaml").read_text(encoding="utf-8"))
    prim = primary.primary_tests(sig_all, params, reported).set_index("id")
    assert (prim.loc["P1", "n_seeds_baseline"], prim.loc["P1", "n_seeds_target"]) == (2, 3)
    assert "(3+2 seeds)" in primary.primary_table(prim.reset_index())


def test_secondary_main_family_excludes_the_primary_cells(families):
    params, reported, sig_all = families
    s1 = primary.secondary_main(sig_all, params)
    assert len(s1) == len(sig_all) - 3 and set(s1["family"]) == {"S1"}
    holm = stats.holm({str(i): p for i, p in enumerate(s1["p_value"])})
    assert list(s1["p_holm"]) == [holm[str(i)] for i in range(len(s1))]
    marks = primary.marks_frame(s1, primary.primary_tests(sig_all, params, reported))
    assert len(marks) == len(sig_all) and set(marks["family"]) == {"P", "S1"}
    text = tables.significance_table(s1, family=primary.S1_CAPTION)
    assert r"\textbf{Secondary} family S1" in text


def test_vs_zeroshot_family(results_dir):
    t = secondary.zeroshot_tests(results_dir, fake_params(), n_resamples=300)
    trained = [s for s in fake_params()["grid"]["strategies"]]
    assert len(t) == 2 * len(trained) * 3 and set(t["baseline"]) == {"zeroshot"}
    holm = stats.holm({str(i): p for i, p in enumerate(t["p_value"])})
    assert list(t["p_holm"]) == [holm[str(i)] for i in range(len(t))]
    assert (t["ci_low"] <= t["diff"]).all() and (t["diff"] <= t["ci_high"]).all()
    # the zero-shot side is one deterministic run: significance needs >= 2 seeds on the trained side only
    assert t["significant"].any()
    text = secondary.vs_zeroshot_table(t)
    assert r"\textbf{Secondary} family S2" in text and "tab:vs-zeroshot" in text


def test_rank_distance_family(results_dir):
    t = secondary.rank_distance_tests(results_dir, fake_params(), n_resamples=300)
    assert set(t["setting"]) == {"mul"} and "hybrid" not in set(t["baseline"])
    assert {"zeroshot", "xx", "xy"} <= set(t["baseline"])
    assert (t["ci_low"] <= t["diff"]).all() and (t["diff"] <= t["ci_high"]).all()
    assert r"\textbf{Secondary} family S3" in secondary.rank_distance_tests_table(t)


def test_ladder_draws_nothing_without_ladder_runs(results_dir):
    params = fake_params()
    params["grid"]["ladder"] = dict(LADDER)
    res = ladder.ladder_results(results_dir, params)  # configured, but no result written: nothing drawn
    assert res.empty and ladder.ladder_tests(results_dir, res, params).empty
    assert "no budget-ladder runs" in ladder.ladder_table(res, ladder.ladder_tests(results_dir, res, params))


def test_ladder_with_fake_runs(tmp_path):
    params = fake_params()
    write_fake_results(tmp_path, params)
    names = write_fake_ladder(tmp_path, params)
    params["grid"]["ladder"] = dict(LADDER)
    specs = grid.grid_runs(params, "ladder")
    assert set(specs.loc[specs["steps"].notna(), "run"]) == set(names)
    res = ladder.ladder_results(tmp_path, params, specs)
    assert sorted(set(res["budget"])) == [40, 480]  # the fake main runs record 40 steps
    counts = res[res["budget"] == 480].groupby("strategy").size()
    assert set(counts) == {3}
    tests = ladder.ladder_tests(tmp_path, res, params, n_resamples=300)
    assert set(tests["budget"]) == {480} and set(tests["baseline"]) == {"xx", "xy"} and len(tests) == 6
    assert set(tests["n_seeds_target"]) == {3}
    text = ladder.ladder_table(res, tests)
    assert "480" in text and "[$" in text and r"\textbf{Secondary} family S4" in text
    fig = ladder.plot_ladder(res)
    assert len(fig.axes) == 3
    # half a ladder: refused, naming a missing run
    shutil.rmtree(tmp_path / names[0])
    with pytest.raises(FileNotFoundError, match="budget ladder"):
        ladder.ladder_results(tmp_path, params, specs)


def test_fake_results_of_the_preregistered_study_shape(tmp_path):
    """tests/helpers/fake_results.STUDY_GRID: blocks whose cells have their own seeds, Tatoeba on fewer seeds, a
    ladder rung written with the main runs; the main table, the alpha sweep and the ladder load from them."""
    params = fake_study_params()
    write_fake_results(tmp_path, params)
    main = report.study_results(tmp_path, params, "main")
    trained = main[main["seed"].notna()]
    counts = trained.groupby(["fold", "strategy"]).size().to_dict()
    assert counts == {("mlqa2xquad", s): 3 for s in ("xx", "xy", "hybrid")} | {
        ("xquad2mlqa", s): 2 for s in ("xx", "xy", "hybrid")} | {(f, "xx-mixed"): 2 for f in params["grid"]["folds"]}
    tatoeba = trained.set_index("run")["tatoeba"]
    assert math.isnan(tatoeba["mlqa2xquad-hybrid-s3"]) and not math.isnan(tatoeba["mlqa2xquad-hybrid-s2"])
    assert set(report.study_results(tmp_path, params, "alpha")["seed"]) == {1, 2}
    res = ladder.ladder_results(tmp_path, params)
    assert sorted(set(res["budget"])) == [40, 160] and len(res[res["budget"] == 160]) == 3 * 2


def test_pairings_with_sign_counts_like_seeds_agree():
    """The count behind the primary verdict's reason: pairings with diff's sign; 0 has no sign (as
    ``seeded.compare_runs``' ``seeds_agree``, which is true exactly when the count is complete)."""
    assert significance.pairings_with_sign(0.01, [0.02, -0.001, 0.0, 0.005]) == (2, 4)
    assert significance.pairings_with_sign(-0.01, [-0.02, 0.001]) == (1, 2)
    assert significance.pairings_with_sign(0.01, None) == (0, 0)


def test_primary_verdict_names_a_rejection_that_misses_the_every_pairing_rule():
    base = {"superior": False, "inferior": False, "smaller": True, "p_holm_superiority": 0.0006,
            "pairings_with_sign": 95, "pairings": 100}
    words = primary._verdict(base)
    assert words.startswith("superiority not shown at this budget (") and "5 of 100 seed pairings" in words
    assert words.endswith("effect smaller than the paper's")
    assert "pairings" not in primary._verdict(dict(base, p_holm_superiority=0.3))  # the test did not reject
    assert primary._latex_words(words).count(r"$p_\mathrm{Holm}$") == 1 and "§" not in primary._latex_words(words)


def test_many_seed_pairings_are_summarised_not_listed():
    few = tables._per_seed([0.012, -0.003], 0.004)
    assert few == "$+.012$, $-.003$"
    many = tables._per_seed([0.01] * 95 + [-0.002] * 5, 0.009)
    assert many == "95/100 $>0$, [$-.002$, $+.010$]"


def test_seeds_note_with_unequal_seed_counts_names_each_cell():
    rows = [{"eval_dataset": "xquad_r", "strategy": s, "seed": k} for s in ("xx", "xy", "hybrid") for k in range(13, 23)]
    rows += [{"eval_dataset": "xquad_r", "strategy": "xx-mixed", "seed": k} for k in (13, 14, 15)]
    rows += [{"eval_dataset": "mlqa_r", "strategy": s, "seed": k} for s in ("xx", "xy", "hybrid") for k in range(13, 18)]
    rows += [{"eval_dataset": "xquad_r", "strategy": "zeroshot", "seed": None}]
    res = pd.DataFrame(rows)
    assert report.seed_counts(res)["mlqa_r"] == {"xx": 5, "xy": 5, "hybrid": 5}
    note = report.seeds_note(res)
    assert "13--22" in note and "XQuAD-R: 10 a strategy, X-X (mixed) 3; MLQA-R: 5 a strategy" in note
    equal = res[(res["eval_dataset"] == "xquad_r") & (res["strategy"] != "xx-mixed")]
    assert report.seeds_note(equal).startswith(r"mean $\pm$ sample sd over 10 seeds (13, 14")


def test_primary_findings_paragraph_reports_every_hypothesis_and_the_claim(families):
    params, reported, sig_all = families
    prim = primary.primary_tests(sig_all, params, reported)
    text = primary.primary_findings(prim)
    assert text.startswith(r"\paragraph{Findings of family P") and all(h in text for h in ("P1", "P2", "P3"))
    assert ("is supported." in text) == bool(prim["superior"].all())
    assert "_" not in text.replace(r"p_\mathrm", "").replace(r"\ref{tab:primary}", "")  # no bare underscore in LaTeX
    assert primary.primary_findings(prim.iloc[0:0]) == ""
