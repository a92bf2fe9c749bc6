"""hybridbatch.stats: macro means, cluster bootstrap, paired randomization test, Holm, the comparison table.

References: hand-computed values, and scipy.stats.permutation_test / scipy.stats.bootstrap on data without
cluster structure (one row per qid, one group), where the cluster procedures reduce to the ordinary ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from hybridbatch.stats import (
    cluster_bootstrap_ci,
    compare_runs,
    holm,
    macro_mean,
    paired_frame,
    paired_randomization_test,
)


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


def test_compare_runs_table():
    rng = np.random.default_rng(9)
    base_vals = rng.random(200)
    base = pd.concat([parallel(base_vals, 3, "mo"), parallel(base_vals[:150], 2, "mul")], ignore_index=True)
    better = base.copy()
    better["ap"] = base["ap"] + 0.1 + rng.normal(0, 0.05, len(base))
    same = base.copy()
    table = compare_runs({"base": base, "better": better, "same": same}, "base", settings=("mo", "mul"),
                         n_resamples=1000, seed=0)
    assert list(table.columns) == ["run", "setting", "mean_a", "mean_b", "diff", "p_value", "p_holm",
                                   "effect_size", "ci_low", "ci_high", "n_queries", "significant"]
    assert list(zip(table["run"], table["setting"])) == [("better", "mo"), ("better", "mul"),
                                                         ("same", "mo"), ("same", "mul")]
    assert table["mean_a"].tolist() == pytest.approx([macro_mean(base, "mo"), macro_mean(base, "mul")] * 2)
    assert table["mean_b"].iloc[0] == pytest.approx(macro_mean(better, "mo"))
    assert table["diff"].to_numpy() == pytest.approx((table["mean_b"] - table["mean_a"]).to_numpy())
    assert table["n_queries"].tolist() == [200, 150, 200, 150]
    expected = holm({str(i): p for i, p in enumerate(table["p_value"])})
    assert table["p_holm"].tolist() == pytest.approx([expected[str(i)] for i in range(4)])
    assert (table["p_holm"] >= table["p_value"]).all()
    assert table["significant"].tolist() == [True, True, False, False]
    assert table["significant"].tolist() == (table["p_holm"] < 0.05).tolist()
    strict = compare_runs({"base": base, "better": better}, "base", settings=("mo",), n_resamples=1000, alpha=1e-6)
    assert not strict["significant"].any()  # p >= 1/1001 > alpha
    with pytest.raises(ValueError, match="baseline"):
        compare_runs({"a": base}, "missing")
