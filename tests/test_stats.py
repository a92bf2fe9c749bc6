"""hybridbatch.stats.inference: macro means, cluster bootstrap, paired randomization test, Holm, the seed-aware comparison
table, the headline interval over seeds, and a simulation check of the false-positive rate.

References: hand-computed values, and scipy.stats.permutation_test / scipy.stats.bootstrap on data without
cluster structure (one row per qid, one group), where the cluster procedures reduce to the ordinary ones;
scipy.stats.ttest_ind(equal_var=False) / scipy.stats.t.interval on per-seed macro means when the question-level
variance is exactly zero, where the seed-aware procedures reduce to Welch's test and the one-sample t interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from hybridbatch.stats.seeded import (
    _design_of,
    _layout,
    _seed_designs,
    _seeded_test_arrays,
    compare_runs,
    seeded_bootstrap_ci,
    seeded_paired_test,
)
from hybridbatch.stats.inference import (
    _macro_contributions,
    _sign_flip_p,
    average_runs,
    cluster_bootstrap_ci,
    holm,
    macro_mean,
    paired_frame,
    paired_randomization_test,
)
from hybridbatch.stats.simulation import _simulate_values, _simulation_layout, simulate_systems


def frame(values, setting="mo", langs=None, qids=None, corpus_langs=None) -> pd.DataFrame:
    """Per-query frame: one row per value; default one language 'en', qids q0..q{n-1}."""
    n = len(values)
    langs = ["en"] * n if langs is None else list(langs)
    return pd.DataFrame({
        "setting": setting,
        "query_lang": langs,
        "corpus_lang": langs if corpus_langs is None else list(corpus_langs),
        "qid": [f"q{i}" for i in range(n)] if qids is None else list(qids),
        "ap": np.asarray(values, dtype=float),
        "rank_distance": 0.0,
    })


def parallel(per_qid: np.ndarray, n_langs: int, setting: str = "mo") -> pd.DataFrame:
    """Every qid's value repeated in n_langs monolingual groups (perfectly correlated across languages)."""
    langs = [f"l{j}" for j in range(n_langs)]
    return pd.concat([frame(per_qid, setting=setting, langs=[lang] * len(per_qid)) for lang in langs],
                     ignore_index=True)


# ------------------------------------------------------------------------------------------- macro_mean


def test_macro_mean_is_mean_of_group_means_not_of_rows():
    # en: 4 queries (mean 0.25), de: 1 query (mean 1.0) -> macro 0.625, micro 0.4
    df = frame([0.0, 0.5, 0.0, 0.5, 1.0], langs=["en"] * 4 + ["de"])
    assert macro_mean(df, "mo") == pytest.approx(0.625)
    assert df["ap"].mean() == pytest.approx(0.4)  # the micro mean differs


def test_macro_mean_groups_by_language_pair_and_filters_setting():
    cr = frame([0.2, 0.4, 0.9], setting="cr", langs=["en", "en", "de"], corpus_langs=["de", "de", "en"])
    mo = frame([0.0], setting="mo")
    df = pd.concat([cr, mo], ignore_index=True)
    assert macro_mean(df, "cr") == pytest.approx((0.3 + 0.9) / 2)
    assert macro_mean(df, "mo") == pytest.approx(0.0)
    with pytest.raises(ValueError, match="no rows for setting 'mul'"):
        macro_mean(df, "mul")


# -------------------------------------------------------------------------- agreement with scipy (no clusters)


def test_randomization_p_value_matches_scipy_permutation_test():
    rng = np.random.default_rng(11)
    a = rng.random(120)
    b = a + rng.normal(0.02, 0.15, 120)  # moderate effect -> p well inside (0, 1)
    ours = paired_randomization_test(frame(a), frame(b), "mo", n_resamples=10000, seed=3)
    ref = sps.permutation_test((a, b), lambda x, y, axis: np.mean(y - x, axis=axis), vectorized=True,
                               permutation_type="samples", alternative="two-sided", n_resamples=10000,
                               rng=np.random.default_rng(4))
    assert 0.02 < ref.pvalue < 0.9  # the comparison is informative
    assert ours["diff"] == pytest.approx(ref.statistic)
    assert abs(ours["p_value"] - ref.pvalue) < 0.02
    assert ours["n_queries"] == 120
    d = b - a
    assert ours["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1))


def test_cluster_bootstrap_matches_scipy_bootstrap_without_clusters():
    rng = np.random.default_rng(5)
    x = rng.beta(2, 5, 150)
    low, high = cluster_bootstrap_ci(frame(x), "mo", n_resamples=10000, seed=1)
    ref = sps.bootstrap((x,), np.mean, method="percentile", n_resamples=10000, confidence_level=0.95,
                        rng=np.random.default_rng(2)).confidence_interval
    width = ref.high - ref.low
    assert abs(low - ref.low) < 0.05 * width
    assert abs(high - ref.high) < 0.05 * width


def test_paired_ci_is_bootstrap_of_the_difference():
    rng = np.random.default_rng(6)
    a = rng.random(150)
    b = a + rng.normal(0.05, 0.2, 150)
    ci = paired_randomization_test(frame(a), frame(b), "mo", n_resamples=10000, seed=0)["ci"]
    ref = sps.bootstrap((b - a,), np.mean, method="percentile", n_resamples=10000,
                        rng=np.random.default_rng(7)).confidence_interval
    width = ref.high - ref.low
    assert abs(ci[0] - ref.low) < 0.05 * width and abs(ci[1] - ref.high) < 0.05 * width


# --------------------------------------------------------------------------------- behaviour of the test


def test_identical_runs_give_zero_difference_and_p_one():
    rng = np.random.default_rng(0)
    df = pd.concat([parallel(rng.random(50), 3, "mo"), parallel(rng.random(50), 2, "mul")], ignore_index=True)
    for setting in ("mo", "mul"):
        res = paired_randomization_test(df, df.copy(), setting, n_resamples=500)
        assert res["diff"] == 0.0
        assert res["p_value"] == 1.0
        assert res["effect_size"] == 0.0
        assert res["ci"] == (0.0, 0.0)


def test_p_value_has_plus_one_correction():
    # every difference positive on 40 qids: no sign flip (bar a 2**-39 chance) reaches |d_obs| -> p = 1/(R+1)
    rng = np.random.default_rng(12)
    a = rng.random(40)
    res = paired_randomization_test(frame(a), frame(a + rng.uniform(0.01, 0.1, 40)), "mo", n_resamples=999)
    assert res["p_value"] == pytest.approx(1 / 1000)


def test_large_effect_is_detected():
    rng = np.random.default_rng(1)
    a = rng.random(300)
    b = a + 0.1 + rng.normal(0, 0.1, 300)
    res = paired_randomization_test(frame(a), frame(b), "mo", n_resamples=2000, seed=0)
    assert res["diff"] == pytest.approx(np.mean(b - a))
    assert res["p_value"] < 0.001
    assert res["ci"][0] > 0


def test_null_p_values_are_not_concentrated_below_005():
    p = []
    for seed in range(50):
        rng = np.random.default_rng(100 + seed)
        a = rng.random(300)
        b = a + rng.normal(0, 0.1, 300)  # noisy copy, same mean
        p.append(paired_randomization_test(frame(a), frame(b), "mo", n_resamples=500, seed=seed)["p_value"])
    p = np.array(p)
    assert np.mean(p < 0.05) < 0.15
    assert np.mean(p) > 0.3  # roughly uniform (mean 0.5), not piled up near 0


# ------------------------------------------------------------------------------------------- clustering


def test_cluster_bootstrap_wider_than_naive_row_bootstrap_for_correlated_languages():
    rng = np.random.default_rng(2)
    n_q, n_langs, n_res = 100, 5, 2000
    df = parallel(rng.random(n_q), n_langs)  # each qid's 5 rows are identical
    low, high = cluster_bootstrap_ci(df, "mo", n_resamples=n_res, seed=0)
    # naive: resample the 500 rows independently (ignoring qids), mean per language, then macro mean
    values = df["ap"].to_numpy()
    group = pd.factorize(df["query_lang"])[0]
    idx = np.random.default_rng(1).integers(0, len(values), size=(n_res, len(values)))
    sums = np.zeros((n_res, n_langs))
    counts = np.zeros((n_res, n_langs))
    np.add.at(sums, (np.arange(n_res)[:, None], group[idx]), values[idx])
    np.add.at(counts, (np.arange(n_res)[:, None], group[idx]), 1)
    naive = (sums / counts).mean(axis=1)
    naive_low, naive_high = np.percentile(naive, [2.5, 97.5])
    assert low <= macro_mean(df, "mo") <= high
    assert (high - low) > 1.6 * (naive_high - naive_low)  # ~sqrt(5) = 2.2 in expectation


def test_cluster_bootstrap_resamples_the_macro_not_the_micro_mean():
    # en: 50 qids around 0.2, de: 10 of those qids around 0.8 -> macro ~0.5, micro ~0.3
    rng = np.random.default_rng(3)
    en = frame(0.2 + rng.normal(0, 0.01, 50), langs=["en"] * 50)
    de = frame(0.8 + rng.normal(0, 0.01, 10), langs=["de"] * 10)
    df = pd.concat([en, de], ignore_index=True)
    low, high = cluster_bootstrap_ci(df, "mo", n_resamples=2000, seed=0)
    assert low < macro_mean(df, "mo") < high
    assert low > df["ap"].mean() + 0.1


def test_randomization_flips_all_rows_of_a_qid_jointly():
    # replicating every qid's difference in 5 languages changes neither the macro difference nor the
    # sign-flip null distribution (same seed, same qids) -> the same p-value; a row-level test would not.
    rng = np.random.default_rng(4)
    a = rng.random(80)
    b = a + rng.normal(0.02, 0.15, 80)
    single = paired_randomization_test(frame(a), frame(b), "mo", n_resamples=2000, seed=9)
    multi = paired_randomization_test(parallel(a, 5), parallel(b, 5), "mo", n_resamples=2000, seed=9)
    assert multi["n_queries"] == 80
    assert multi["diff"] == pytest.approx(single["diff"])
    assert multi["p_value"] == pytest.approx(single["p_value"])
    assert 0.01 < single["p_value"] < 0.9


# ------------------------------------------------------------------------------------- holm, paired_frame


def test_holm_hand_computed():
    # sorted: a 0.01 (x4 = 0.04), c 0.02 (x3 = 0.06), b 0.04 (x2 = 0.08), d 0.5 (x1 = 0.5)
    adj = holm({"a": 0.01, "b": 0.04, "c": 0.02, "d": 0.5})
    assert list(adj) == ["a", "b", "c", "d"]
    assert adj == pytest.approx({"a": 0.04, "b": 0.08, "c": 0.06, "d": 0.5})
    # monotonicity (step-down max) and the cap at 1
    assert holm({"x": 0.03, "y": 0.02}) == pytest.approx({"x": 0.04, "y": 0.04})
    assert holm({"x": 0.6, "y": 0.7}) == pytest.approx({"x": 1.0, "y": 1.0})


def test_paired_frame_aligns_on_keys():
    a = frame([0.1, 0.2, 0.3])
    b = frame([0.3, 0.2, 0.1], qids=["q2", "q1", "q0"])  # same queries, other order
    pf = paired_frame(a, b, "mo")
    assert list(pf.columns) == ["query_lang", "corpus_lang", "qid", "a", "b"]
    assert pf["a"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert pf["b"].tolist() == pytest.approx([0.1, 0.2, 0.3])


def test_paired_frame_raises_on_misaligned_runs():
    a = frame([0.1, 0.2, 0.3])
    b = frame([0.1, 0.2, 0.3], qids=["q0", "q1", "q9"])
    with pytest.raises(ValueError, match=r"do not cover the same queries.*1 missing key\(s\) only in a.*q2"
                                         r".*1 missing key\(s\) only in b.*q9"):
        paired_frame(a, b, "mo")
    dup = frame([0.1, 0.2], qids=["q0", "q0"])
    with pytest.raises(ValueError, match="duplicated"):
        paired_frame(dup, dup, "mo")


# ------------------------------------------------------------------------------------------------ seeds


def test_seed_reproducibility():
    rng = np.random.default_rng(8)
    a = rng.random(100)
    b = a + rng.normal(0.02, 0.15, 100)
    fa, fb = frame(a), frame(b)
    first = paired_randomization_test(fa, fb, "mo", n_resamples=2000, seed=0)
    assert paired_randomization_test(fa, fb, "mo", n_resamples=2000, seed=0) == first
    others = [paired_randomization_test(fa, fb, "mo", n_resamples=2000, seed=s) for s in (1, 2, 3)]
    assert any(o["p_value"] != first["p_value"] for o in others)
    assert all(abs(o["p_value"] - first["p_value"]) < 0.05 for o in others)  # only Monte-Carlo noise
    assert cluster_bootstrap_ci(fa, "mo", n_resamples=500, seed=0) == cluster_bootstrap_ci(fa, "mo", n_resamples=500,
                                                                                           seed=0)
    assert cluster_bootstrap_ci(fa, "mo", n_resamples=500, seed=0) != cluster_bootstrap_ci(fa, "mo", n_resamples=500,
                                                                                           seed=1)


# ---------------------------------------------------------------------------------------------- table


COLUMNS = ["run", "setting", "mean_a", "mean_b", "diff", "diff_per_seed", "ci_low", "ci_high", "p_value", "p_holm",
           "effect_size", "n_queries", "n_seeds_a", "n_seeds_b", "se", "se_question", "se_seed", "sd_seed_a",
           "sd_seed_b", "df_seed", "seeds_agree", "significant"]


def test_compare_runs_table():
    rng = np.random.default_rng(9)
    base_vals = rng.random(200)
    base = pd.concat([parallel(base_vals, 3, "mo"), parallel(base_vals[:150], 2, "mul")], ignore_index=True)
    better = base.copy()
    better["ap"] = base["ap"] + 0.1 + rng.normal(0, 0.05, len(base))
    same = base.copy()
    table = compare_runs({"base": base, "better": better, "same": same}, "base", settings=("mo", "mul"),
                         n_resamples=1000, seed=0)
    assert list(table.columns) == COLUMNS
    assert list(zip(table["run"], table["setting"])) == [("better", "mo"), ("better", "mul"),
                                                         ("same", "mo"), ("same", "mul")]
    assert table["mean_a"].tolist() == pytest.approx([macro_mean(base, "mo"), macro_mean(base, "mul")] * 2)
    assert table["mean_b"].iloc[0] == pytest.approx(macro_mean(better, "mo"))
    assert table["diff"].to_numpy() == pytest.approx((table["mean_b"] - table["mean_a"]).to_numpy())
    assert table["n_queries"].tolist() == [200, 150, 200, 150]
    assert table["n_seeds_a"].tolist() == [1] * 4 and table["n_seeds_b"].tolist() == [1] * 4
    assert [len(t) for t in table["diff_per_seed"]] == [1] * 4  # one run each: the one pairing is diff
    assert [t[0] for t in table["diff_per_seed"]] == pytest.approx(table["diff"].tolist())
    assert table["sd_seed_a"].isna().all()  # one frame: no seed variance to estimate
    expected = holm({str(i): p for i, p in enumerate(table["p_value"])})
    assert table["p_holm"].tolist() == pytest.approx([expected[str(i)] for i in range(4)])
    assert (table["p_holm"] >= table["p_value"]).all()
    assert table["significant"].tolist() == [True, True, False, False]
    assert table["significant"].tolist() == ((table["p_holm"] < 0.05) & table["seeds_agree"]).tolist()
    same_rows = table[table["run"] == "same"]
    assert (same_rows["diff"] == 0).all() and (same_rows["p_value"] == 1).all()
    assert (same_rows["effect_size"] == 0).all() and not same_rows["seeds_agree"].any()
    with pytest.raises(ValueError, match="baseline"):
        compare_runs({"a": base}, "missing")
    assert list(compare_runs({"a": base}, "a").columns) == COLUMNS  # nothing to compare: empty table


def test_single_seed_comparison_agrees_with_the_randomization_test():
    # one frame per system: the question-only t test on the bootstrap se ~ the randomization test, same CI
    rng = np.random.default_rng(22)
    a = rng.random(150)
    b = a + rng.normal(0.04, 0.2, 150)
    fa, fb = parallel(a, 3), parallel(b, 3)
    res = seeded_paired_test(fa, fb, "mo", n_resamples=5000, seed=0)
    ref = paired_randomization_test(fa, fb, "mo", n_resamples=5000, seed=0)
    assert 0.01 < ref["p_value"] < 0.5
    assert res["diff"] == pytest.approx(ref["diff"])
    assert res["effect_size"] == pytest.approx(ref["effect_size"])
    assert abs(res["p_value"] - ref["p_value"]) < 0.02
    width = ref["ci"][1] - ref["ci"][0]
    assert abs(res["ci"][0] - ref["ci"][0]) < 0.06 * width and abs(res["ci"][1] - ref["ci"][1]) < 0.06 * width
    assert res["se"] == res["se_question"] and res["df_seed"] == np.inf


# -------------------------------------------------------------------------------------- effect size sign


def uneven(d_en: float, d_de: float, n_en: int = 100, n_de: int = 5, seed: int = 0) -> tuple[pd.DataFrame, ...]:
    """en: n_en qids with difference ~d_en; de: the first n_de of those qids with difference ~d_de."""
    rng = np.random.default_rng(seed)
    langs = ["en"] * n_en + ["de"] * n_de
    qids = [f"q{i}" for i in range(n_en)] + [f"q{i}" for i in range(n_de)]
    a = rng.random(n_en + n_de)
    d = np.r_[np.full(n_en, d_en), np.full(n_de, d_de)] + rng.normal(0, 0.01, n_en + n_de)
    return frame(a, langs=langs, qids=qids), frame(a + d, langs=langs, qids=qids)


def test_effect_size_is_on_the_macro_weighting_and_shares_the_sign_of_diff():
    # en: 100 qids, +0.02; de: 5 qids, -0.2 -> macro diff (0.02 - 0.2) / 2 < 0, but the unweighted mean over
    # qids of the per-qid mean difference is > 0 (the old d_z was positive while diff was negative)
    fa, fb = uneven(0.02, -0.2)
    pf = paired_frame(fa, fb, "mo")
    per_qid = (pf["b"] - pf["a"]).groupby(pf["qid"]).mean()
    assert per_qid.mean() > 0  # the old weighting
    res = paired_randomization_test(fa, fb, "mo", n_resamples=500)
    assert res["diff"] == pytest.approx(macro_mean(fb, "mo") - macro_mean(fa, "mo"))
    assert res["diff"] < 0 and res["effect_size"] < 0
    # the effect size is diff / sd of the per-qid contributions c (mean(c) == diff): here computed by hand
    n_groups, n_q = 2, 100
    w = np.zeros(n_q)
    for lang, n_rows in (("en", 100), ("de", 5)):
        rows = pf[pf["query_lang"] == lang]
        d = (rows["b"] - rows["a"]).to_numpy()
        np.add.at(w, rows["qid"].str[1:].astype(int).to_numpy(), d / (n_groups * n_rows))
    c = n_q * w
    assert c.mean() == pytest.approx(res["diff"])
    assert res["effect_size"] == pytest.approx(res["diff"] / c.std(ddof=1))
    table = compare_runs({"a": [fa, fa], "b": [fb, fb]}, "a", settings=("mo",), n_resamples=500)
    assert table["diff"].iloc[0] < 0 and table["effect_size"].iloc[0] == pytest.approx(res["effect_size"])


def test_effect_size_sign_matches_diff_on_random_uneven_designs():
    for seed in range(12):
        rng = np.random.default_rng(seed)
        d_en, d_de = rng.normal(0, 0.05, 2)
        fa, fb = uneven(d_en, d_de, n_en=int(rng.integers(20, 80)), n_de=int(rng.integers(2, 10)), seed=seed)
        fb2 = fb.assign(ap=fb["ap"] + rng.normal(0, 0.02, len(fb)))
        res = seeded_paired_test([fa, fa.assign(ap=fa["ap"] + 0.003)], [fb, fb2], "mo", n_resamples=200, seed=seed)
        assert np.sign(res["effect_size"]) == np.sign(res["diff"]) != 0
        old = paired_randomization_test(fa, fb, "mo", n_resamples=100, seed=seed)
        assert np.sign(old["effect_size"]) == np.sign(old["diff"])


# ------------------------------------------------------------------------------------------ seeds (lists)


def seeded(values: np.ndarray, offsets, n_langs: int = 3, noise: float = 0.0, seed: int = 0) -> list[pd.DataFrame]:
    """One frame per offset: values (+ the offset, + row noise) in n_langs parallel Mo. groups."""
    rng = np.random.default_rng(seed)
    out = []
    for off in offsets:
        f = parallel(values, n_langs)
        out.append(f.assign(ap=f["ap"] + off + rng.normal(0, noise, len(f)) if noise else f["ap"] + off))
    return out


def test_compare_runs_with_lists_of_seeds():
    rng = np.random.default_rng(13)
    vals = rng.random(80)
    a = seeded(vals, [0.0, 0.01], noise=0.05, seed=1)
    b = seeded(vals, [0.03, 0.05, 0.04], noise=0.05, seed=2)
    table = compare_runs({"a": a, "b": b}, "a", settings=("mo",), n_resamples=2000, seed=0)
    row = table.iloc[0]
    macro_a = [macro_mean(f, "mo") for f in a]
    macro_b = [macro_mean(f, "mo") for f in b]
    assert row["mean_a"] == pytest.approx(np.mean(macro_a)) and row["mean_b"] == pytest.approx(np.mean(macro_b))
    assert row["mean_a"] == pytest.approx(macro_mean(average_runs(a), "mo"))  # linearity
    assert row["diff"] == pytest.approx(np.mean(macro_b) - np.mean(macro_a))
    assert (row["n_seeds_a"], row["n_seeds_b"], row["n_queries"]) == (2, 3, 80)
    # diff_per_seed: every pairing B_j - A_i, i (baseline seeds) outer, j (run seeds) inner
    assert row["diff_per_seed"] == pytest.approx(tuple(mb - ma for ma in macro_a for mb in macro_b))
    assert np.mean(row["diff_per_seed"]) == pytest.approx(row["diff"])
    assert row["sd_seed_a"] == pytest.approx(np.std(macro_a, ddof=1))
    assert row["sd_seed_b"] == pytest.approx(np.std(macro_b, ddof=1))
    assert row["se"] ** 2 == pytest.approx(row["se_question"] ** 2 + row["se_seed"] ** 2)
    # the seed part: offsets only (the seed x question noise, in se_question, is taken out of the seeds' sd)
    assert 0 < row["se_seed"] ** 2 < row["sd_seed_a"] ** 2 / 2 + row["sd_seed_b"] ** 2 / 3
    assert row["ci_low"] < row["diff"] < row["ci_high"]
    assert (row["ci_low"] > 0 or row["ci_high"] < 0) == (row["p_value"] < 0.05)  # the same test ...
    assert 0.001 < row["p_value"] < 0.5 and row["se_question"] > 0
    at_p = seeded_paired_test(a, b, "mo", n_resamples=2000, seed=0, confidence=1 - row["p_value"])["ci"]
    assert at_p[0] == pytest.approx(0, abs=1e-9)  # ... at confidence 1 - p the interval just reaches 0
    # a single frame and a one-element list are the same system
    one = compare_runs({"a": a[0], "b": [b[0]]}, "a", settings=("mo",), n_resamples=500)
    pd.testing.assert_frame_equal(one, compare_runs({"a": [a[0]], "b": b[0]}, "a", settings=("mo",), n_resamples=500))


def test_reduces_to_welch_t_test_on_seed_macros_without_question_variance():
    # every qid's seed-averaged difference is the same constant -> the question-level variance is exactly 0 and
    # the test is Welch's t test on the per-seed macro means (scipy), the CI the Welch interval
    vals = np.random.default_rng(14).random(60)
    a = seeded(vals, [0.00, 0.02, 0.01])
    b = seeded(vals, [0.04, 0.05, 0.025])
    res = seeded_paired_test(a, b, "mo", n_resamples=300)
    macro_a = [macro_mean(f, "mo") for f in a]
    macro_b = [macro_mean(f, "mo") for f in b]
    ref = sps.ttest_ind(macro_b, macro_a, equal_var=False)
    assert res["se_question"] == pytest.approx(0, abs=1e-12)
    assert res["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
    assert res["df_seed"] == pytest.approx(ref.df, rel=1e-6)
    ci = ref.confidence_interval(0.95)
    assert res["ci"] == pytest.approx((ci.low, ci.high), rel=1e-6)
    assert res["seeds_agree"]  # min(b) = .025 > max(a) = .02


def test_seed_offset_variance_excludes_seed_by_question_noise():
    # seeds that differ only by independent row noise (no offset): their macro means still differ (noise / sqrt(n)),
    # but that is question-level noise, already in the bootstrap; the seed-offset part stays ~0 and the interval
    # is close to the question-only one. With a real offset, the offset variance is recovered.
    rng = np.random.default_rng(20)
    vals = rng.random(300)
    raw, offset = [], []
    for rep in range(20):
        noisy = seeded(vals, [0.0] * 3, noise=0.1, seed=2 * rep)
        res = seeded_paired_test(noisy, seeded(vals + 0.01, [0.0] * 3, noise=0.1, seed=2 * rep + 1), "mo",
                                 n_resamples=100)
        raw.append((res["sd_seed_a"] ** 2 + res["sd_seed_b"] ** 2) / 3)
        offset.append(res["se_seed"] ** 2)
    # the macro means do differ from seed to seed, by noise / sqrt(n) (expected sd .0033) ...
    assert 0.002 < np.sqrt(np.mean(raw) * 3 / 2) < 0.005
    # ... but not by an offset: the floored estimate keeps ~exp(-1) of it on average (E max(0, X - 1), X ~ Exp(1))
    assert np.mean(offset) < 0.6 * np.mean(raw)
    other = seeded(vals + 0.01, [0.0] * 3, noise=0.1, seed=2)
    shifted = seeded(vals, [0.0, 0.05, 0.1], noise=0.1, seed=1)
    res = seeded_paired_test(shifted, other, "mo", n_resamples=2000)
    s2 = np.var([macro_mean(f, "mo") for f in shifted], ddof=1)
    assert res["se_seed"] ** 2 == pytest.approx(s2 / 3, rel=0.1)  # offset variance .05**2 dominates
    # the estimate by hand: residual mean square of the seed x qid table of macro contributions (3 languages,
    # full coverage: a qid's contribution is the mean of its 3 rows)
    c = np.stack([f["ap"].to_numpy().reshape(3, 300).mean(axis=0) for f in shifted])
    r = c - c.mean(axis=0) - (c.mean(axis=1) - c.mean())[:, None]
    tau2 = s2 - (r ** 2).sum() / (2 * 299) / 300
    s2_other = np.var([macro_mean(f, "mo") for f in other], ddof=1)
    c = np.stack([f["ap"].to_numpy().reshape(3, 300).mean(axis=0) for f in other])
    r = c - c.mean(axis=0) - (c.mean(axis=1) - c.mean())[:, None]
    tau2_other = max(0.0, s2_other - (r ** 2).sum() / (2 * 299) / 300)
    assert res["se_seed"] ** 2 == pytest.approx(tau2 / 3 + tau2_other / 3)


def test_seed_variance_is_not_ignored():
    # question-level noise tiny, seeds of each system far apart: the seed-averaged randomization test is
    # "highly significant", the seed-aware test is not, and a pairing disagrees in sign
    rng = np.random.default_rng(15)
    vals = rng.random(200)
    a = seeded(vals, [0.00, 0.04], noise=0.01, seed=1)
    b = seeded(vals, [0.03, 0.05], noise=0.01, seed=2)
    old = paired_randomization_test(average_runs(a), average_runs(b), "mo", n_resamples=2000)
    assert old["p_value"] < 0.001 and old["ci"][0] > 0
    table = compare_runs({"a": a, "b": b}, "a", settings=("mo",), n_resamples=2000)
    row = table.iloc[0]
    assert row["diff"] == pytest.approx(old["diff"])
    assert row["p_value"] > 0.05 and row["ci_low"] < 0 < row["ci_high"]
    assert min(row["diff_per_seed"]) < 0 < row["diff"] and not row["seeds_agree"]
    assert not row["significant"]


def test_significance_requires_every_seed_pairing_to_agree():
    # a clear difference in seeds 0-1 of b, but b's third seed is below a's best seed: p is small, yet the
    # pairings disagree, so the cell is not significant
    vals = np.random.default_rng(16).random(100)
    a = seeded(vals, [0.0, 0.001, 0.0005], noise=0.002, seed=1)
    b_ok = seeded(vals, [0.02, 0.021, 0.0205], noise=0.002, seed=2)
    b_bad = seeded(vals, [0.02, 0.021, 0.0], noise=0.002, seed=3)
    table = compare_runs({"a": a, "ok": b_ok, "bad": b_bad}, "a", settings=("mo",), n_resamples=1000, alpha=0.5)
    ok, bad = table.iloc[0], table.iloc[1]
    assert ok["seeds_agree"] and ok["significant"]
    assert bad["p_holm"] < 0.5 and not bad["seeds_agree"] and not bad["significant"]


# ---------------------------------------------------------------------------------------------- errors


def test_seeds_covering_different_queries_raise_naming_the_run_and_seed():
    vals = np.random.default_rng(17).random(30)
    a = seeded(vals, [0.0, 0.01])
    b = seeded(vals, [0.02, 0.03, 0.01])
    b[2] = b[2][b[2]["qid"] != "q7"]  # seed 2 of b lost one query (in every language)
    with pytest.raises(ValueError, match=r"run 'b': seed 2 does not cover the same queries as seed 0 in setting "
                                         r"'mo': 3 key\(s\) only in seed 0 .*q7.*0 only in seed 2"):
        compare_runs({"a": a, "b": b}, "a", settings=("mo",), n_resamples=100)
    with pytest.raises(ValueError, match=r"run 'b': seed 2 does not cover"):
        seeded_paired_test(a, b, "mo", n_resamples=100)
    with pytest.raises(ValueError, match=r"seed 2 does not cover the same queries as seed 0"):
        seeded_bootstrap_ci(b, "mo", n_resamples=100)
    # systems that differ (every seed consistent within its system)
    c = [f[f["qid"] != "q3"] for f in seeded(vals, [0.0, 0.01])]
    with pytest.raises(ValueError, match=r"runs 'a' and 'c' do not cover the same queries in setting 'mo': "
                                         r"3 missing key\(s\) only in a='a'.*q3.*0 missing key\(s\) only in b='c'"):
        compare_runs({"a": a, "c": c}, "a", settings=("mo",), n_resamples=100)
    dup = [a[0], pd.concat([a[1], a[1].head(1)], ignore_index=True)]
    with pytest.raises(ValueError, match=r"run 'x', seed 1, setting 'mo': 1 duplicated"):
        compare_runs({"a": a, "x": dup}, "a", settings=("mo",), n_resamples=100)
    with pytest.raises(ValueError, match=r"run 'a', seed 0: no rows for setting 'cr'"):
        compare_runs({"a": a, "x": a}, "a", settings=("cr",), n_resamples=100)
    with pytest.raises(ValueError, match=r"run 'x': empty list of seeds"):
        compare_runs({"a": a, "x": []}, "a", settings=("mo",))
    with pytest.raises(TypeError, match=r"run 'x', seed 1: expected a DataFrame"):
        compare_runs({"a": a, "x": [a[0], "results/x"]}, "a", settings=("mo",))
    with pytest.raises(ValueError, match="n_resamples"):
        compare_runs({"a": a, "x": a}, "a", settings=("mo",), n_resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        seeded_bootstrap_ci(a, "mo", confidence=1.5)


def test_frames_in_other_row_orders_or_qid_dtypes_are_realigned():
    # qids 0..11 stored as int in one frame and as str in another sort differently ("10" < "2"): the values
    # must follow their keys, not their positions
    rng = np.random.default_rng(19)
    vals = rng.random(12)

    def run(v, as_str: bool, shuffle: int | None = None) -> pd.DataFrame:
        f = frame(v, langs=["en"] * 12, qids=[str(i) if as_str else i for i in range(12)])
        return f.sample(frac=1, random_state=shuffle).reset_index(drop=True) if shuffle is not None else f

    a = [run(vals, False), run(vals + 0.01, True, shuffle=1)]
    b = [run(vals + np.linspace(0, 0.1, 12), True), run(vals + np.linspace(0, 0.1, 12) + 0.02, False, shuffle=2)]
    ints = [run(vals, False), run(vals + 0.01, False)], [run(vals + np.linspace(0, 0.1, 12), False),
                                                          run(vals + np.linspace(0, 0.1, 12) + 0.02, False)]
    mixed = seeded_paired_test(a, b, "mo", n_resamples=500)
    clean = seeded_paired_test(*ints, "mo", n_resamples=500)
    assert mixed["diff_per_seed"] == pytest.approx(clean["diff_per_seed"])
    assert mixed["effect_size"] == pytest.approx(clean["effect_size"])
    assert mixed["se_question"] == pytest.approx(clean["se_question"])  # the same per-qid differences


# ------------------------------------------------------------------------------------------ determinism


def test_seeded_results_are_deterministic_given_the_seed():
    a, b = simulate_systems(3, n_qids=50, n_langs=3, n_seeds=(3, 2), delta=0.01, tau=0.01)
    first = compare_runs({"a": a, "b": b}, "a", settings=("mo",), n_resamples=1000, seed=5)
    pd.testing.assert_frame_equal(first, compare_runs({"a": a, "b": b}, "a", settings=("mo",), n_resamples=1000,
                                                      seed=5))
    other = compare_runs({"a": a, "b": b}, "a", settings=("mo",), n_resamples=1000, seed=6)
    assert other["se_question"].iloc[0] != first["se_question"].iloc[0]  # a different bootstrap ...
    assert other["p_value"].iloc[0] == pytest.approx(first["p_value"].iloc[0], abs=0.02)  # ... only MC noise
    assert other["diff"].iloc[0] == first["diff"].iloc[0]  # the estimate itself is not random
    ci = seeded_bootstrap_ci(a, "mo", n_resamples=500, seed=1)
    assert seeded_bootstrap_ci(a, "mo", n_resamples=500, seed=1) == ci
    assert seeded_bootstrap_ci(a, "mo", n_resamples=500, seed=2) != ci
    assert simulate_systems(3, n_qids=50, n_langs=3, n_seeds=(3, 2))[1][1].equals(
        simulate_systems(3, n_qids=50, n_langs=3, n_seeds=(3, 2))[1][1])


# ---------------------------------------------------------------------------------- headline interval


def test_seeded_bootstrap_ci():
    rng = np.random.default_rng(18)
    vals = rng.beta(2, 5, 120)
    one = parallel(vals, 3)
    # one frame: the question-only interval, close to the percentile cluster bootstrap
    low, high = seeded_bootstrap_ci(one, "mo", n_resamples=5000, seed=0)
    ref_low, ref_high = cluster_bootstrap_ci(one, "mo", n_resamples=5000, seed=0)
    assert abs(low - ref_low) < 0.06 * (ref_high - ref_low) and abs(high - ref_high) < 0.06 * (ref_high - ref_low)
    assert seeded_bootstrap_ci([one], "mo", n_resamples=5000, seed=0) == (low, high)
    # no question variance (all values equal within a seed): the one-sample t interval of the seed macros
    flat = seeded(np.full(40, 0.5), [0.0, 0.03, 0.01])
    macros = [macro_mean(f, "mo") for f in flat]
    ref = sps.t.interval(0.9, 2, loc=np.mean(macros), scale=sps.sem(macros))
    assert seeded_bootstrap_ci(flat, "mo", n_resamples=200, confidence=0.9) == pytest.approx(ref, rel=1e-9)
    # seeds that differ widen the interval beyond the seed-averaged cluster bootstrap, and it covers the mean
    seeds = seeded(vals, [0.0, 0.03], noise=0.02, seed=4)
    mean = np.mean([macro_mean(f, "mo") for f in seeds])
    s_low, s_high = seeded_bootstrap_ci(seeds, "mo", n_resamples=2000)
    c_low, c_high = cluster_bootstrap_ci(average_runs(seeds), "mo", n_resamples=2000)
    assert s_low < mean < s_high
    assert (s_high - s_low) > 1.5 * (c_high - c_low)


# ----------------------------------------------------------------------------------- simulation (validity)


def test_simulate_systems_structure():
    a, b = simulate_systems(0, n_qids=30, n_langs=4, n_seeds=(2, 3), delta=0.5, tau=0.0, sd_system_qid=0.0,
                            sd_seed_qid=0.0, sd_noise=0.0)
    assert len(a) == 2 and len(b) == 3
    assert list(a[0].columns) == ["setting", "query_lang", "corpus_lang", "qid", "ap"]
    assert len(a[0]) == 120 and a[0]["qid"].nunique() == 30 and a[0]["query_lang"].nunique() == 4
    assert all(f[["query_lang", "qid"]].equals(a[0][["query_lang", "qid"]]) for f in a + b)  # shared queries
    # without seed, system or row noise the difference is exactly delta on every row
    assert (b[2]["ap"] - a[0]["ap"]).to_numpy() == pytest.approx(np.full(120, 0.5))
    partial, _ = simulate_systems(0, n_qids=30, n_langs=4, coverage=0.5)
    assert partial[0]["qid"].nunique() == 30 and len(partial[0]) < 120


def null_decisions(n_rep: int, n_seeds: int, delta: float = 0.0, tau: float = 0.05, n_resamples: int = 200):
    """Replicates of simulate_systems(1000 + rep, n_qids=40, n_langs=3, ...): ``significant`` and ``p < .05`` of
    the seed-aware test (the engine of compare_runs, on the value matrices), ``p < .05`` and p of the old test
    (paired randomization test on the seed-averaged values)."""
    new, new_t, old = [], [], []
    for rep in range(n_rep):
        rng = np.random.default_rng(1000 + rep)  # the generator simulate_systems(1000 + rep) uses
        gi, qi = _simulation_layout(rng, 40, 3, 1.0)
        va, vb = _simulate_values(rng, gi, qi, (n_seeds, n_seeds), delta, tau, **SIM)
        if rep == 0:
            langs = np.array(["l0", "l1", "l2"])[gi]
            layout = _layout(pd.DataFrame({"query_lang": langs, "corpus_lang": langs,
                                           "qid": np.array([f"q{i:05d}" for i in range(40)])[qi]}))
        res = _seeded_test_arrays(layout, va, vb, n_resamples, 0.95, rep)
        new.append(res["p_value"] < 0.05 and res["seeds_agree"])
        new_t.append(res["p_value"] < 0.05)
        sums, counts = _seed_designs(layout, np.vstack([va, vb]))
        w = _macro_contributions(_design_of(sums[n_seeds:].mean(axis=0) - sums[:n_seeds].mean(axis=0), counts)) / 40
        perm_seed = np.random.SeedSequence(rep).spawn(2)[0]  # as paired_randomization_test(..., seed=rep)
        old.append(_sign_flip_p(w, float(w.sum()), n_resamples, np.random.default_rng(perm_seed)))
    return np.array(new), np.array(new_t), np.array(old) < 0.05, np.array(old)


SIM = dict(sd_qid=0.2, sd_system_qid=0.05, sd_seed_qid=0.05, sd_noise=0.15, sd_lang=0.05, base=0.6)


def test_simulation_engine_is_what_compare_runs_and_the_old_test_compute():
    # the fast loop of the false-positive test computes exactly what the public functions compute on the frames
    for rep in range(2):
        a, b = simulate_systems(1000 + rep, n_qids=40, n_langs=3, n_seeds=(2, 2), tau=0.05)
        row = compare_runs({"a": a, "b": b}, "a", settings=("mo",), n_resamples=200, seed=rep).iloc[0]
        old = paired_randomization_test(average_runs(a), average_runs(b), "mo", n_resamples=200, seed=rep)
        rng = np.random.default_rng(1000 + rep)
        gi, qi = _simulation_layout(rng, 40, 3, 1.0)
        va, vb = _simulate_values(rng, gi, qi, (2, 2), 0.0, 0.05, **SIM)
        assert np.array_equal(va, np.vstack([f["ap"].to_numpy() for f in a]))
        new, new_t, _, p_old = null_decisions(rep + 1, 2)
        assert new[rep] == row["significant"] and new_t[rep] == (row["p_value"] < 0.05)
        assert p_old[rep] == pytest.approx(old["p_value"])


def test_false_positive_rate_with_seed_variance():
    """Under a null with seed-to-seed variance (tau = .05, ~2.6 x the question-level se of the difference), the
    seed-aware test keeps the false-positive rate at <= 5 % within Monte-Carlo error; the old seed-averaged
    randomization test does not (so this test can fail); and the seed-aware test still has power."""
    n_rep = 400
    bound = 0.05 + 2 * np.sqrt(0.05 * 0.95 / n_rep)
    for n_seeds in (2, 3):
        new, new_t, old, _ = null_decisions(n_rep, n_seeds)
        print(f"{n_seeds} + {n_seeds} seeds, null: significant {new.mean():.3f}, p < .05 {new_t.mean():.3f}, "
              f"old {old.mean():.3f}")
        assert new.mean() <= bound, (n_seeds, new.mean())
        assert new_t.mean() <= bound, (n_seeds, new_t.mean())
        assert old.mean() > 0.25, (n_seeds, old.mean())  # seed offsets pass for question-level evidence (~0.5)
    # power: a true difference of 4 tau with 3 + 3 seeds is usually detected
    new, _, old, _ = null_decisions(100, 3, delta=0.2)
    print(f"3 + 3 seeds, delta = 4 tau: significant {new.mean():.3f}, old {old.mean():.3f}")
    assert new.mean() > 0.5 and old.mean() > 0.9


# ------------------------------------------------------------------- smaller than a bound (stats.bounds)

from hybridbatch.stats.bounds import below_bound_p, one_sided_upper, shifted_one_sided_p  # noqa: E402
from hybridbatch.stats.seeded import _welch_df  # noqa: E402
from hybridbatch.stats.simulation import simulate_systems  # noqa: E402


def test_shifted_test_is_scipys_one_sided_t_with_one_part():
    """Question part only: the one-sided t test of (estimate - bound) / se, as scipy computes it on data."""
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.normal(0.02, 0.05, size=40)  # per-question differences
        bound = 0.04
        se2 = x.var(ddof=1) / len(x)
        ref = sps.ttest_1samp(x, bound, alternative="less").pvalue
        assert shifted_one_sided_p(x.mean(), bound, se2, len(x) - 1.0) == pytest.approx(ref, rel=1e-7, abs=1e-12)


def test_shifted_test_is_welchs_one_sided_test_with_the_seed_part_only():
    """Seed part only, unequal seed counts (10 vs 5): Welch's one-sided test of b - a < bound (scipy, data shifted)."""
    rng = np.random.default_rng(4)
    for bound in (0.0, 0.01, 0.03):
        a, b = rng.normal(0.50, 0.01, size=5), rng.normal(0.52, 0.01, size=10)
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        df = _welch_df([(va, len(a) - 1.0), (vb, len(b) - 1.0)])
        ref = sps.ttest_ind(b - bound, a, equal_var=False, alternative="less").pvalue
        got = shifted_one_sided_p(b.mean() - a.mean(), bound, 0.0, 100.0, va + vb, df)
        assert got == pytest.approx(ref, rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("bound", [0.0, 0.005, 0.02])
def test_smaller_than_bound_is_the_one_sided_interval_reaching_the_bound(bound):
    """Both parts present: p < .05 exactly when the one-sided 95 % upper end lies below the bound, and at
    p the upper end of the one-sided 1 - p interval is the bound; it is half the two-sided p of diff - bound."""
    pa, pb = simulate_systems(7, n_qids=60, n_langs=3, n_seeds=(3, 5), delta=0.01, tau=0.004)
    row = seeded_paired_test(pa, pb, "mo", n_resamples=2000)
    p = below_bound_p(row, bound)
    vq, dfq = row["se_question"] ** 2, row["n_queries"] - 1.0
    vs, dfs = row["se_seed"] ** 2, row["df_seed"]
    upper = one_sided_upper(row["diff"], vq, dfq, vs, dfs, 0.95)
    assert (p < 0.05) == (upper < bound)
    if 1e-6 < p < 0.5:
        assert one_sided_upper(row["diff"], vq, dfq, vs, dfs, 1 - p) == pytest.approx(bound, abs=1e-7)
    shifted = dict(row, diff=row["diff"] - bound)  # the two-sided test of the shifted difference
    from hybridbatch.stats.seeded import _combined_interval
    two = _combined_interval(shifted["diff"], vq, dfq, vs, dfs, 0.95)[2]
    assert p == pytest.approx(two / 2 if row["diff"] < bound else 1 - two / 2)


def test_smaller_than_bound_direction_and_null_level():
    assert shifted_one_sided_p(0.01, 0.01, 1e-4, 50.0, 1e-4, 4.0) == pytest.approx(0.5)
    assert shifted_one_sided_p(0.0, 0.04, 1e-4, 50.0, 1e-4, 4.0) < 0.05  # far below the bound
    assert shifted_one_sided_p(0.08, 0.04, 1e-4, 50.0, 1e-4, 4.0) > 0.95  # far above it
    with pytest.raises(ValueError):
        shifted_one_sided_p(float("nan"), 0.04, 1e-4, 50.0)


def test_smaller_than_bound_false_positive_rate_at_the_bound():
    """True difference exactly at the bound, seed variance present, 3 + 3 seeds: rejected at most about 5 %."""
    rng = np.random.default_rng(11)
    bound, hits, n = 0.02, 0, 200
    for _ in range(n):
        pa, pb = simulate_systems(rng, n_qids=40, n_langs=3, n_seeds=(3, 3), delta=bound, tau=0.01)
        row = seeded_paired_test(pa, pb, "mo", n_resamples=300)
        hits += below_bound_p(row, bound) < 0.05
    assert hits / n <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / n)
