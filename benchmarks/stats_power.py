"""Benchmark: false-positive rate and power of the seed-aware comparison (hybridbatch.stats.inference), by simulation.

    python benchmarks/stats_power.py [--replicates 2000] [--power-replicates 1000] [--qids 300] [--langs 5]
                                     [--resamples 1000] [--tau-ratio 4] [--seeds 2 3] [--timing]

Each replicate draws two systems from the model of :func:`hybridbatch.stats.simulation.simulate_systems` (languages as
groups, qids shared across languages, per-qid effects, a per-seed offset of sd ``tau``, per-row noise) with a
true macro difference ``delta`` (0 = the null, then 1, 2, 3 x tau), and applies four decision rules at
alpha = .05 (one comparison, so no Holm):

* ``old``: the previous procedure, a paired randomization test (qid sign flips) on the per-query values
  averaged over seeds, p < .05;
* ``2lvl-pct``: a naive two-level percentile bootstrap (qids drawn jointly for every seed, seeds drawn with
  replacement within each system), 95 % interval excludes 0;
* ``ws-t``: a rejected variant, one Student t with Welch-Satterthwaite df over the question variance and the
  two systems' raw seed variances s**2 / k, p < .05;
* ``seed-aware p``: the p-value of :func:`hybridbatch.stats.seeded.seeded_paired_test` < .05 (question part and
  seed-offset part each widened by their own t quantile, added in quadrature);
* ``significant``: ``seed-aware p`` < .05 and every seed pairing agreeing in sign: what ``compare_runs``
  calls significant;
* ``agree``: the sign rule alone (for reference: under the null about 1/3 for 2 + 2 seeds, 1/10 for 3 + 3).

``tau`` is set to ``--tau-ratio`` times the question-level standard error of the difference (computed from
the model), as observed in the real runs (a seed sd of .010 against a bootstrap half-width of .0045, ratio
~4). Every rate comes with its binomial standard error. ``--timing`` also times one ``compare_runs`` call on
frames the size of XQuAD-R (1,190 qids x 11 languages: Mo. 13,090 rows, Cr. 130,900, Mul. 13,090; 3 + 3
seeds; 10,000 resamples).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import stats as sps

from hybridbatch.stats import seeded
from hybridbatch.stats.seeded import _design_of, _layout, _seed_designs, _seeded_test_arrays
from hybridbatch.stats.simulation import _simulate_values, _simulation_layout, simulate_systems
from hybridbatch.stats.inference import _bootstrap_macros, _macro_contributions, _sign_flip_p

MODEL = dict(sd_qid=0.2, sd_system_qid=0.05, sd_seed_qid=0.05, sd_noise=0.15, sd_lang=0.05, base=0.6)
RULES = ["old", "2lvl-pct", "ws-t", "seed-aware p", "significant", "agree"]


def question_se(n_qids: int, n_langs: int, k: int) -> float:
    """Model standard error of the seed-averaged macro difference over questions (k seeds per system)."""
    var_c = 2 * MODEL["sd_system_qid"] ** 2 + (2 / k) * (MODEL["sd_seed_qid"] ** 2 + MODEL["sd_noise"] ** 2 / n_langs)
    return float(np.sqrt(var_c / n_qids))


def replicate(rng: np.random.Generator, layout, gi, qi, k: int, delta: float, tau: float,
              n_resamples: int) -> dict[str, bool]:
    va, vb = _simulate_values(rng, gi, qi, (k, k), delta, tau, **MODEL)
    boot_seed = int(rng.integers(2**31))
    res = _seeded_test_arrays(layout, va, vb, n_resamples, 0.95, boot_seed)
    # old: randomization test on the seed-averaged values
    sums, counts = _seed_designs(layout, np.vstack([va, vb]))
    design = _design_of(sums[k:].mean(axis=0) - sums[:k].mean(axis=0), counts)
    w = _macro_contributions(design) / design.n_qids
    p_old = _sign_flip_p(w, float(w.sum()), n_resamples, rng)
    # naive two-level percentile bootstrap: the same qid draws for every seed, seeds drawn with replacement
    per_seed = _bootstrap_macros(sums, counts, n_resamples, rng)  # (2k, R): per-seed macro, shared qid draws
    ia = rng.integers(0, k, size=(n_resamples, k))
    ib = rng.integers(0, k, size=(n_resamples, k))
    cols = np.arange(n_resamples)[:, None]
    two_level = per_seed[k:][ib, cols].mean(axis=1) - per_seed[:k][ia, cols].mean(axis=1)
    low, high = np.percentile(two_level, [2.5, 97.5])
    # rejected variant: one t with Welch-Satterthwaite df over the question and both seed components
    comps = [(res["se_question"] ** 2, design.n_qids - 1.0), (res["sd_seed_a"] ** 2 / k, k - 1.0),
             (res["sd_seed_b"] ** 2 / k, k - 1.0)]
    var = sum(v for v, _ in comps)
    df = var * var / sum(v * v / d for v, d in comps if v > 0)
    p_ws = 2 * sps.t.sf(abs(res["diff"]) / np.sqrt(var), df)
    return {"old": p_old < 0.05, "2lvl-pct": bool(low > 0 or high < 0), "ws-t": p_ws < 0.05,
            "seed-aware p": res["p_value"] < 0.05, "significant": res["p_value"] < 0.05 and res["seeds_agree"],
            "agree": res["seeds_agree"]}


def simulate(n_qids: int, n_langs: int, seeds: list[int], multiples: list[float], tau_ratio: float,
             replicates: int, power_replicates: int, n_resamples: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    gi, qi = _simulation_layout(rng, n_qids, n_langs, 1.0)
    langs = np.array([f"l{j}" for j in range(n_langs)])[gi]
    layout = _layout(pd.DataFrame({"query_lang": langs, "corpus_lang": langs,
                                   "qid": np.array([f"q{i:05d}" for i in qi])}))
    rows = []
    for k in seeds:
        se_q = question_se(n_qids, n_langs, k)
        tau = tau_ratio * se_q
        unit = tau if tau > 0 else se_q  # delta in multiples of tau (of the question se when tau = 0)
        for m in multiples:
            n = replicates if m == 0 else power_replicates
            hits = {r: 0 for r in RULES}
            for _ in range(n):
                for r, hit in replicate(rng, layout, gi, qi, k, m * unit, tau, n_resamples).items():
                    hits[r] += hit
            row = {"seeds": f"{k}+{k}", "delta/tau": m, "tau": tau, "se_q": se_q}
            row.update({r: hits[r] / n for r in RULES})
            rows.append(row)
            print(format_row(row, n), flush=True)
    return pd.DataFrame(rows)


def format_row(row: dict, n: int) -> str:
    cells = []
    for r in RULES:
        p = row[r]
        cells.append(f"{p:.3f} ({np.sqrt(max(p * (1 - p), 1e-12) / n):.3f})")
    return (f"| {row['seeds']} | {row['delta/tau']:g} | {row['tau']:.4f} | {row['se_q']:.4f} | "
            + " | ".join(cells) + " |")


def timing() -> None:
    a, b = simulate_systems(0, n_qids=1190, n_langs=11, n_seeds=(3, 3), delta=0.01)
    rng = np.random.default_rng(1)

    def full(f: pd.DataFrame) -> pd.DataFrame:
        langs = sorted(f["query_lang"].unique())
        qids = f.loc[f["query_lang"] == langs[0], "qid"].to_numpy()
        cr = pd.concat([pd.DataFrame({"setting": "cr", "query_lang": x, "corpus_lang": y, "qid": qids,
                                      "ap": rng.random(len(qids))}) for x in langs for y in langs if x != y],
                       ignore_index=True)
        return pd.concat([f, cr, f.assign(setting="mul", corpus_lang="all")], ignore_index=True)

    a, b = [full(f) for f in a], [full(f) for f in b]
    rows = {s: int((a[0]["setting"] == s).sum()) for s in ("mo", "cr", "mul")}
    t0 = time.perf_counter()
    seeded.compare_runs({"a": a, "b": b}, "a", n_resamples=10000)
    total = time.perf_counter() - t0
    per = {}
    for s in ("mo", "cr", "mul"):
        t0 = time.perf_counter()
        seeded.compare_runs({"a": a, "b": b}, "a", settings=(s,), n_resamples=10000)
        per[s] = time.perf_counter() - t0
    print(f"compare_runs, 3 + 3 seeds, 10,000 resamples, rows per frame {rows}: all three settings {total:.1f} s; "
          + ", ".join(f"{s} {t:.1f} s" for s, t in per.items()))
    t0 = time.perf_counter()
    seeded.seeded_bootstrap_ci(a, "cr", n_resamples=10000)
    print(f"seeded_bootstrap_ci, Cr., 3 seeds: {time.perf_counter() - t0:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicates", type=int, default=2000, help="replicates under the null (delta = 0)")
    ap.add_argument("--power-replicates", type=int, default=1000, help="replicates under each alternative")
    ap.add_argument("--qids", type=int, default=300)
    ap.add_argument("--langs", type=int, default=5)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--tau-ratio", type=float, default=4.0, help="tau / question-level se of the difference")
    ap.add_argument("--seeds", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--multiples", type=float, nargs="+", default=[0, 1, 2, 3],
                    help="delta / tau (delta / question se when --tau-ratio is 0)")
    ap.add_argument("--seed-question-sd", type=float, default=MODEL["sd_seed_qid"],
                    help="sd of a seed's question effects (0 with --noise-sd 0: seed offsets are the only seed noise)")
    ap.add_argument("--noise-sd", type=float, default=MODEL["sd_noise"], help="sd of the row noise")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing", action="store_true")
    args = ap.parse_args()
    MODEL.update(sd_seed_qid=args.seed_question_sd, sd_noise=args.noise_sd)
    print(f"{args.qids} qids x {args.langs} languages, {args.replicates} replicates under the null, "
          f"{args.power_replicates} under each alternative, {args.resamples} resamples, "
          f"tau = {args.tau_ratio:g} x question se; model {MODEL}; rate (binomial se) of 'significant' at .05")
    print("| seeds | delta/tau | tau | se_q | " + " | ".join(RULES) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(RULES))
    t0 = time.perf_counter()
    simulate(args.qids, args.langs, args.seeds, args.multiples, args.tau_ratio, args.replicates,
             args.power_replicates, args.resamples, args.seed)
    print(f"simulation: {time.perf_counter() - t0:.0f} s")
    if args.timing:
        timing()


if __name__ == "__main__":
    main()
