"""The pre-registered primary family P (docs/PREREGISTRATION.md §2-§3) and the split of the main table's tests into
families: P (primary) and S1 (secondary, every other cell of Hybrid vs a trained baseline).

P1 Hybrid - X-Y on XQuAD-R Mo., P2 Hybrid - X-X-mono on XQuAD-R Mul., P3 Hybrid - X-X-mono on XQuAD-R Cr., all on
fold ``mlqa2xquad``. Each difference is tested twice on the seed-aware test's variance
(:func:`seeded.compare_runs`, the rows of :func:`significance.significance_tests`): *superiority* (two-sided,
``delta = 0``) and *smaller than the paper's* (one-sided, H0 ``delta >= delta*``, :mod:`hybridbatch.stats.bounds`;
``delta*`` = the paper's XLM-R difference, ``paper/reported.yaml``). Holm runs over the 6 p-values together.
Verdict words: PREREGISTRATION §3. Nothing here assumes equal seed counts across strategies or folds.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from hybridbatch import strategies
from hybridbatch.grid import SETTING_LABELS, dataset_label
from hybridbatch.reporting.latex import MISSING, booktabs
from hybridbatch.reporting.significance import MIN_SEEDS, is_significant, pairings_with_sign
from hybridbatch.stats import inference
from hybridbatch.stats.bounds import below_bound_p, one_sided_upper, row_parts


@dataclass(frozen=True)
class Hypothesis:
    id: str
    baseline: str
    setting: str


PRIMARY_FOLD = "mlqa2xquad"
PRIMARY = (Hypothesis("P1", "xy", "mo"), Hypothesis("P2", "xx", "mul"), Hypothesis("P3", "xx", "cr"))
PAPER_MODEL = "XLM-R"
TARGET = "hybrid"
S1_CAPTION = (r"\textbf{Secondary} family S1 (docs/PREREGISTRATION.md \S4; the three primary cells P1--P3 are in "
              r"Table~\ref{tab:primary}, Holm over family P). ")
COLUMNS = ["id", "dataset", "baseline", "setting", "mean_baseline", "mean_target", "diff", "ci_low", "ci_high",
           "upper_95", "bound", "p_superiority", "p_smaller", "p_holm_superiority", "p_holm_smaller",
           "n_seeds_baseline", "n_seeds_target", "seeds_agree", "pairings_with_sign", "pairings", "superior",
           "inferior", "smaller", "verdict"]


def primary_dataset(params: dict) -> str | None:
    """The evaluation set of :data:`PRIMARY_FOLD` (``xquad_r``), or None when ``params`` lacks that fold."""
    fold = params.get("folds", {}).get(PRIMARY_FOLD)
    return None if fold is None else fold["eval"]


def paper_bounds(reported: dict, dataset: str = "xquad_r", model: str = PAPER_MODEL) -> dict[str, float]:
    """``{id: delta*}``: the paper's Hybrid minus baseline in its Table 1 (``reported["table1_map"]``)."""
    table = reported["table1_map"][model]
    return {h.id: round(float(table[TARGET][dataset][h.setting]) - float(table[h.baseline][dataset][h.setting]), 6)
            for h in PRIMARY}


def _is_primary(sig: pd.DataFrame, dataset: str | None) -> pd.Series:
    cells = {(h.baseline, h.setting) for h in PRIMARY}
    return pd.Series([dataset is not None and r["dataset"] == dataset and (r["baseline"], r["setting"]) in cells
                      for r in sig.to_dict("records")], index=sig.index, dtype=bool)


def secondary_main(sig: pd.DataFrame, params: dict, alpha: float = 0.05) -> pd.DataFrame:
    """Family S1: the rows of :func:`significance.significance_tests` that are not primary cells, Holm redone over
    them alone (``family`` = "S1")."""
    s1 = sig[~_is_primary(sig, primary_dataset(params))].reset_index(drop=True)
    if s1.empty:
        return s1.assign(family=pd.Series(dtype=object))
    adjusted = inference.holm({str(i): p for i, p in enumerate(s1["p_value"])})
    s1["p_holm"] = [adjusted[str(i)] for i in range(len(s1))]
    s1["significant"] = is_significant(s1, alpha)
    s1["family"] = "S1"
    return s1


def missed_pairing_rule(r: dict, alpha: float = 0.05) -> bool:
    """A hypothesis whose superiority test rejects (``p_holm_superiority < alpha``) while some seed pairing has the
    other sign: not a superiority under §2's every-pairing rule (reported as such, and as a descriptive line)."""
    k, n = r.get("pairings_with_sign"), r.get("pairings")
    return bool(r.get("p_holm_superiority", 1.0) < alpha and n and k < n)


def claim_supported(primary: pd.DataFrame) -> bool:
    """The paper's claim per §3: every one of P1--P3 present and a significant superiority."""
    return len(primary) == len(PRIMARY) and bool(primary["superior"].all())


def _verdict(r: dict, alpha: float = 0.05) -> str:
    """PREREGISTRATION §3 in words; where the superiority test's p_Holm is below ``alpha`` but the rule of §2 is
    not met (a seed pairing of the other sign), the words say so, with the count."""
    if r["superior"]:
        head = f"{strategies.label(TARGET)} better"
    elif r["inferior"]:
        head = f"{strategies.label(TARGET)} worse"
    else:
        head = "superiority not shown at this budget"
        if missed_pairing_rule(r, alpha):
            k, n = r["pairings_with_sign"], r["pairings"]
            head += f" (p_Holm < {alpha:g}, but {n - k} of {n} seed pairings have the other sign; §2 needs all)"
    if r["smaller"]:
        return head + ("; a real but smaller effect than the paper's" if r["superior"] else
                       "; effect smaller than the paper's")
    return head + "; not shown smaller than the paper's"


def primary_tests(sig: pd.DataFrame, params: dict, reported: dict, *, alpha: float = 0.05) -> pd.DataFrame:
    """Family P from the rows of :func:`significance.significance_tests` (the same test, variance and p of each
    primary cell): one row per hypothesis present, columns :data:`COLUMNS`. ``upper_95``: the upper end of the
    one-sided 95 % interval (below ``bound`` exactly when ``p_smaller < .05``). ``superior`` / ``inferior``:
    Holm-adjusted superiority p < alpha, every seed pairing with diff's sign, >= 2 seeds a side; ``smaller``:
    Holm-adjusted smaller-than-paper p < alpha with >= 2 seeds a side (one seed: exploratory, never marked)."""
    dataset = primary_dataset(params)
    if dataset is None or sig.empty:
        return pd.DataFrame(columns=COLUMNS)
    bounds = paper_bounds(reported, dataset)
    rows = []
    for h in PRIMARY:
        hit = sig[(sig["dataset"] == dataset) & (sig["baseline"] == h.baseline) & (sig["setting"] == h.setting)]
        if hit.empty:
            continue
        r = hit.iloc[0].to_dict()
        rows.append({"id": h.id, "dataset": dataset, "baseline": h.baseline, "setting": h.setting,
                     **{k: r[k] for k in ("mean_baseline", "mean_target", "diff", "ci_low", "ci_high",
                                          "n_seeds_baseline", "n_seeds_target", "seeds_agree")},
                     **dict(zip(("pairings_with_sign", "pairings"),
                                pairings_with_sign(float(r["diff"]), r.get("diff_per_seed")))),
                     "upper_95": one_sided_upper(float(r["diff"]), *row_parts(r)), "bound": bounds[h.id],
                     "p_superiority": float(r["p_value"]), "p_smaller": below_bound_p(r, bounds[h.id])})
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    t = pd.DataFrame(rows)
    ps = {f"sup{i}": p for i, p in enumerate(t["p_superiority"])} | {f"sm{i}": p for i, p in enumerate(t["p_smaller"])}
    adjusted = inference.holm(ps)
    t["p_holm_superiority"] = [adjusted[f"sup{i}"] for i in range(len(t))]
    t["p_holm_smaller"] = [adjusted[f"sm{i}"] for i in range(len(t))]
    seeds_ok = (t["n_seeds_baseline"].astype(int) >= MIN_SEEDS) & (t["n_seeds_target"].astype(int) >= MIN_SEEDS)
    sup = (t["p_holm_superiority"] < alpha) & t["seeds_agree"].astype(bool) & seeds_ok
    t["superior"], t["inferior"] = sup & (t["diff"] > 0), sup & (t["diff"] < 0)
    t["smaller"] = (t["p_holm_smaller"] < alpha) & seeds_ok
    t["verdict"] = [_verdict(r, alpha) for r in t.to_dict("records")]
    return t[COLUMNS]


def marks_frame(s1: pd.DataFrame, primary: pd.DataFrame) -> pd.DataFrame:
    """The main table's significance rows: S1 as tested, the primary cells with their family-P superiority
    (``p_holm`` = Holm over the 6 p-values of P), ``family`` telling them apart."""
    if primary.empty:
        return s1
    p = primary.rename(columns={"p_superiority": "p_value", "p_holm_superiority": "p_holm"})
    p = p.assign(family="P", significant=p["superior"] | p["inferior"])
    keep = [c for c in ["dataset", "baseline", "setting", "mean_baseline", "mean_target", "diff", "ci_low", "ci_high",
                        "p_value", "p_holm", "n_seeds_baseline", "n_seeds_target", "seeds_agree", "significant",
                        "family"]]
    return pd.concat([p[keep], s1], ignore_index=True)


def _latex_words(text: str) -> str:
    """A verdict of :func:`_verdict` for LaTeX."""
    return text.replace("p_Holm", r"$p_\mathrm{Holm}$").replace(" < ", " $<$ ").replace("§", r"\S")


def _p(p: float) -> str:
    return "$<$0.0001" if p < 1e-4 else f"{p:.4f}"


def primary_table(primary: pd.DataFrame, *, alpha: float = 0.05, n_resamples: int = 10000,
                  label: str = "tab:primary") -> str:
    """Family P: hypothesis, $\\Delta$ with its 95 % CI, $\\Delta^*$, p superiority, p smaller-than-paper, both
    Holm-adjusted over the family's 6 p-values, and the verdict in PREREGISTRATION §3's words."""
    header = [r"& & & & \multicolumn{3}{c}{superiority} & \multicolumn{2}{c}{smaller than paper} & \\",
              r"\cmidrule(lr){5-7}\cmidrule(lr){8-9}",
              r"Hypothesis & $\Delta$mAP [95\% CI] & one-sided 95\% upper & $\Delta^*$ (paper) & $p$ & "
              r"$p_\mathrm{Holm}$ & pairings & $p$ & $p_\mathrm{Holm}$ & Verdict \\"]
    body: list = []
    for r in primary.to_dict("records"):
        hyp = (rf"{r['id']}: {strategies.label(TARGET)} $-$ {strategies.label(r['baseline'])}, "
               rf"{dataset_label(r['dataset'])} {SETTING_LABELS[r['setting']]}")
        seeds = rf" ({int(r['n_seeds_target'])}+{int(r['n_seeds_baseline'])} seeds)"
        body.append([hyp + seeds, f"${r['diff']:+.4f}$ [${r['ci_low']:+.4f}$, ${r['ci_high']:+.4f}$]",
                     f"${r['upper_95']:+.4f}$", f"${r['bound']:+.3f}$", _p(r["p_superiority"]),
                     _p(r["p_holm_superiority"]), f"{int(r['pairings_with_sign'])}/{int(r['pairings'])}",
                     _p(r["p_smaller"]), _p(r["p_holm_smaller"]), _latex_words(r["verdict"])])
    if not body:
        body.append([r"\multicolumn{10}{c}{" + f"no run of fold {PRIMARY_FOLD} in this configuration" + "}"])
    allp = claim_supported(primary)
    caption = (r"\textbf{Primary} family P (docs/PREREGISTRATION.md \S2), fold \texttt{"
               + PRIMARY_FOLD.replace("_", r"\_") + r"}: "
               rf"{strategies.label(TARGET)} minus the baseline, mAP (mean over seeds; seed counts may differ by "
               r"strategy). Superiority: the seed-aware two-sided test of Table~\ref{tab:significance}; smaller than "
               r"paper: one-sided, H0 $\Delta \ge \Delta^*$ against $\Delta < \Delta^*$ on the same variance and "
               r"degrees of freedom ($\Delta^*$: the paper's XLM-R difference, its Table~1), significant exactly "
               r"when the one-sided 95\% upper bound lies below $\Delta^*$ before adjustment. $p_\mathrm{Holm}$: "
               rf"Holm over the family's {2 * len(primary)} $p$-values together ({n_resamples:,} bootstrap resamples). "
               rf"Superiority counts when $p_\mathrm{{Holm}}<{alpha:g}$, every seed pairing has the sign of "
               rf"$\Delta$ (pairings: how many of the target seed $-$ baseline seed differences have it) and both "
               rf"sides have $\ge {MIN_SEEDS}$ seeds; neither test significant reads ``not shown "
               r"at this budget'', never ``no effect''. The paper's claim (better in all three at once) is "
               + ("supported here: P1--P3 are all significant superiorities." if allp else
                  r"supported only if P1--P3 are all significant superiorities; "
                  r"they are not here." if len(primary) else "not tested in this configuration."))
    return booktabs(header, body, align=r"lcccrrrrrp{4.2cm}", caption=caption, label=label, size=r"\footnotesize")


def verdict_text(primary: pd.DataFrame) -> str:
    """One sentence per hypothesis, plain text (README), with :func:`_verdict`'s words."""
    if primary.empty:
        return MISSING
    return "; ".join(f"{r['id']} {r['verdict']}" for r in primary.to_dict("records"))


def primary_findings(primary: pd.DataFrame, *, alpha: float = 0.05) -> str:
    """The family's results as a LaTeX paragraph (placed after :func:`primary_table` in ``primary.tex``), every
    number from ``primary``: each hypothesis's cell, interval and verdict; whether the paper's claim holds; and,
    labelled descriptive, the rejections that miss §2's every-pairing rule."""
    if primary.empty:
        return ""
    rows = primary.to_dict("records")
    parts = [rf"{r['id']} ({strategies.label(TARGET)} $-$ {strategies.label(r['baseline'])}, "
             rf"{dataset_label(r['dataset'])} {SETTING_LABELS[r['setting']]}): $\Delta = {r['diff']:+.4f}$ "
             rf"[${r['ci_low']:+.4f}$, ${r['ci_high']:+.4f}$], {_latex_words(r['verdict'])}"
             + (rf" (one-sided upper bound ${r['upper_95']:+.4f}$ $<$ $\Delta^* = {r['bound']:+.3f}$)" if r["smaller"]
                else "") for r in rows]
    allp = claim_supported(primary)
    text = (r"\paragraph{Findings of family P (Table~\ref{tab:primary}).} Under the pre-registered rules: "
            + "; ".join(parts) + ". The paper's claim (better in all three at once) is "
            + ("supported." if allp else "not shown at this budget."))
    near = [r for r in rows if missed_pairing_rule(r, alpha)]
    if near:
        text += (" \\emph{Descriptive, not a pre-registered finding:} the superiority tests of "
                 + ", ".join(r["id"] for r in near) + " reject ($p_\\mathrm{Holm}$ "
                 + ", ".join(_p(r["p_holm_superiority"]) for r in near) + ") and their intervals exclude 0, but "
                 + ", ".join(f"{int(r['pairings'] - r['pairings_with_sign'])} of {int(r['pairings'])}" for r in near)
                 + r" seed pairings have the other sign, which the rule of docs/PREREGISTRATION.md \S2 does not allow.")
    return text + "\n"
