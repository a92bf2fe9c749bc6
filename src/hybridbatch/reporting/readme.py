"""The numbers of README.md, generated from the committed results: every result number the README shows sits in a
``<!-- name -->...<!-- /name -->`` block that this module writes, so no number is typed by hand and two tables of
the same runs cannot disagree (both are seed means from :func:`results.seed_summary`; the alpha table's 0 / 0.5 / 1
columns are the main X-Y / Hybrid / X-X-mono runs of the sweep's seeds only, so that every alpha has the same seeds).

    python -m hybridbatch.pipeline.study readme      # refreshes these blocks (and the study's status and costs)

Blocks: ``main-table`` (mAP, mean +- sd over seeds: ``paper/tables/main.tex``), ``verdict`` (Hybrid minus each
strategy and what the seed-aware test of ``paper/tables/significance.tex`` finds, the alpha sweep's test of
``paper/tables/alpha_significance.tex``), ``alpha-table`` (the alpha sweep's seed means). The tests are the ones
the report notebooks run (:func:`significance.significance_tests`, :func:`significance.alpha_tests`, the same
resamples and seed), so every p here is the table's. ``tests/test_readme.py`` regenerates every block in memory
and fails when the README differs.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Mapping

import pandas as pd
import yaml

from hybridbatch import strategies
from hybridbatch.grid import SETTING_LABELS, SETTINGS, dataset_label, grid_runs
from hybridbatch.reporting import ladder, primary, secondary, significance
from hybridbatch.reporting.results import (MIN_CLAIM_SEEDS, datasets_of, seed_summary, seeds_note, seeds_of,
                                           strategies_of, study_results, summary_lookup)

N_RESAMPLES = 10000  # as the report notebooks (notebooks/main.ipynb, notebooks/scaling.ipynb): the same p values
ALPHA = 0.05
DASH = "–"
MINUS = "−"


def num(value: float, digits: int = 3, *, sign: bool = False) -> str:
    """``.777`` (no leading zero), ``+.011`` / ``−.007`` with ``sign``; ``–`` for a missing value; one decimal
    from 10 on (rank distances)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    text = f"{abs(value):.{digits}f}" if abs(value) < 10 else f"{abs(value):.1f}"
    if text.startswith("0."):
        text = text[1:]
    if sign:
        return ("+" if value >= 0 or float(text) == 0 else MINUS) + text
    return (MINUS if value < 0 and float(text) != 0 else "") + text


def p_text(p: float) -> str:
    """A p value: ``.76``, ``.0135``, ``< .001``."""
    if p < 0.001:
        return "< .001"
    return num(p, 2 if p >= 0.1 else 4 if p < 0.05 else 3)


def alpha_text(a: float) -> str:
    """``0``, ``.25``, ``.5``, ``1``."""
    return f"{a:g}" if a in (0.0, 1.0) else f"{a:g}".lstrip("0")


def _cell(look: dict, ds: str, strategy: str, setting: str) -> str:
    mean, sd, n = look.get((ds, strategy, f"map_{setting}"), (math.nan, math.nan, 0))
    if math.isnan(mean):
        return DASH
    return num(mean) if n < 2 or math.isnan(sd) else f"{num(mean)} ± {num(sd)}"


def main_table(results: pd.DataFrame) -> str:
    """The main table (``paper/tables/main.tex`` without its marks): mAP per evaluation set and setting, mean ±
    sample sd over seeds; reference rows (one run) without sd."""
    datasets = datasets_of(results)
    look = summary_lookup(seed_summary(results, [f"map_{s}" for s in SETTINGS]))
    head = ["sampling"] + [f"{dataset_label(ds)} {SETTING_LABELS[s]}" if i == 0 else SETTING_LABELS[s]
                           for ds in datasets for i, s in enumerate(SETTINGS)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for s in strategies_of(results):
        label = strategies.label(s) + (" (α = .5)" if s == "hybrid" else "")
        lines.append("| " + " | ".join([label] + [_cell(look, ds, s, st) for ds in datasets for st in SETTINGS]) + " |")
    trained = results[results["strategy"].isin(strategies.TRAINED)]
    steps = sorted({int(v) for v in trained.get("steps", pd.Series(dtype=float)).dropna()})
    lines += ["", "mAP, " + seeds_note(results).replace("$\\pm$", "±").replace("--", "–")
              + (f", {'/'.join(map(str, steps))} training steps a run" if steps else "")
              + "; zero-shot and BM25 are single runs."]
    return "\n".join(lines)


def alpha_table(alpha_results: pd.DataFrame, reference: float = 0.5) -> str:
    """The alpha sweep's seed means (mAP on the scaling fold's evaluation set), one column per alpha: the 0 /
    ``reference`` / 1 columns are the X-Y / Hybrid / X-X-mono main runs of the sweep's seeds (every alpha has the
    same seeds; the main table averages more seeds of the primary fold)."""
    if alpha_results.empty:
        return "No alpha sweep in this configuration."
    f = alpha_results.assign(alpha=alpha_results["alpha"].astype(float))
    look = summary_lookup(seed_summary(f, [f"map_{s}" for s in SETTINGS], by=("alpha",)), by=("alpha",))
    points = sorted(set(f["alpha"]))
    names = {0.0: "xy", reference: "hybrid", 1.0: "xx"}
    head = ["α"] + [alpha_text(a) + (f" ({strategies.label(names[a])})" if a in names else "") for a in points]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(points)]
    for s in SETTINGS:
        lines.append("| " + " | ".join([SETTING_LABELS[s]] + [num(look.get((a, f"map_{s}"), (math.nan,))[0])
                                                              for a in points]) + " |")
    seeds = sorted({int(v) for v in f["seed"].dropna()})
    fold = str(f["fold"].iloc[0])
    lines += ["", f"mAP on {dataset_label(str(f['eval_dataset'].iloc[0]))} (fold `{fold}`), mean over "
              f"the same {len(seeds)} seeds ({', '.join(map(str, seeds))}) at every α, the 0 / {alpha_text(reference)} / 1 "
              "columns included (`paper/tables/scaling.tex`)."]
    return "\n".join(lines)


def _diff_table(sig: pd.DataFrame, datasets: list[str], target: str) -> list[str]:
    head = [f"{strategies.label(target)} −"] + [f"{dataset_label(ds)} {SETTING_LABELS[s]}" if i == 0 else
                                                 SETTING_LABELS[s] for ds in datasets for i, s in enumerate(SETTINGS)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    marked = significance.is_significant(sig, ALPHA)
    for b in strategies_of(pd.DataFrame({"strategy": sig["baseline"].unique()})):
        cells = []
        for ds in datasets:
            for s in SETTINGS:
                row = sig[(sig["baseline"] == b) & (sig["dataset"] == ds) & (sig["setting"] == s)]
                if row.empty:
                    cells.append(DASH)
                    continue
                r = row.iloc[0]
                star = "**" if bool(marked.loc[row.index[0]]) else ""
                cells.append(f"{star}{num(r['diff'], sign=True)}{star}")
        lines.append("| " + " | ".join([strategies.label(b)] + cells) + " |")
    return lines


def _cells(rows: pd.DataFrame) -> str:
    """``XQuAD-R Cr., Mul., MLQA-R Mo.`` (a dataset label is not repeated for the cells that follow it)."""
    out, prev = [], None
    for r in rows.to_dict("records"):
        ds = dataset_label(r["dataset"])
        out.append((f"{ds} " if ds != prev else "") + SETTING_LABELS[r["setting"]])
        prev = ds
    return ", ".join(out)


def _families(sig: pd.DataFrame) -> str:
    if "family" not in sig:
        return f"Holm over the table's {len(sig)} comparisons"
    return (f"Holm within the family: P for the 3 primary cells, S1 for the other "
            f"{int((sig['family'] == 'S1').sum())}, `paper/tables/significance.tex`")


def verdict(results: pd.DataFrame, sig: pd.DataFrame, alpha_sig: pd.DataFrame, target: str = "hybrid") -> str:
    """What the main table's test and the alpha sweep's test find, in words whose every number and every
    "significant" comes from ``sig`` (:func:`significance.significance_tests`) and ``alpha_sig``
    (:func:`significance.alpha_tests`)."""
    datasets = datasets_of(results)
    t = strategies.label(target)
    marked = significance.is_significant(sig, ALPHA)
    lines = [f"Hybrid minus each strategy, seed means (mAP). **Bold** = significant (`docs/statistics.md`: every "
             f"seed kept apart, question ids as clusters; {_families(sig)}): p_Holm < {num(ALPHA, 2)} **and** every "
             "seed pairing of one sign.", ""]
    lines += _diff_table(sig, datasets, target)
    lines.append("")
    ahead_of, behind = {}, {}
    for b in strategies_of(pd.DataFrame({"strategy": sig["baseline"].unique()})):
        rows = sig[sig["baseline"] == b]
        up = rows[marked.loc[rows.index] & (rows["diff"] > 0)]
        down = rows[marked.loc[rows.index] & (rows["diff"] < 0)]
        ahead_of[b], behind[b] = up, down
        label = strategies.label(b)
        if up.empty and down.empty:
            lines.append(f"- *{t} vs {label}: no significant difference in any of the {len(rows)} cells*"
                         f"{_rest(rows, lead='')}.")
        else:
            parts = []
            if not up.empty:
                ps = ", ".join(p_text(p) for p in up["p_holm"])
                parts.append(f"{t} significantly higher on {_cells(up)} (p_Holm {ps})")
            if not down.empty:
                parts.append(f"significantly lower on {_cells(down)} "
                             f"(p_Holm {', '.join(p_text(p) for p in down['p_holm'])})")
            lines.append(f"- *{t} vs {label}: {'; '.join(parts)}*{_rest(rows.drop(up.index.union(down.index)))}.")
    never_behind = all(d.empty for d in behind.values())
    claimed = [b for b in ("xx", "xy") if b in ahead_of]
    better = [strategies.label(b) for b in claimed if len(ahead_of[b]) == len(sig[sig["baseline"] == b])]
    none_better = all(ahead_of[b].empty for b in claimed)
    pairs = sorted({int(v) for v in results.loc[results["strategy"] == target, "steps"].dropna()})
    n_behind = sum(len(d) for d in behind.values())
    summary = (f"- **Across the table** (P and S1 cells"
               + (f", {'/'.join(map(str, pairs))} steps a run" if pairs else "") + "): "
               + (f"{t} is never significantly behind any other strategy" if never_behind else
                  f"{t} is significantly behind in {n_behind} cell{'s' if n_behind != 1 else ''}"))
    if claimed:
        names = " or ".join(strategies.label(b) for b in claimed)
        if none_better:
            summary += (f", but it is not shown better than {names} in any cell: the paper's \"better in all three "
                        "settings at once\" is not borne out here.")
        elif len(better) == len(claimed):
            summary += f", and it is significantly better than {names} in every cell, as the paper claims."
        else:
            n_ahead = sum(len(ahead_of[b]) for b in claimed)
            n_cells = sum(len(sig[sig["baseline"] == b]) for b in claimed)
            summary += (f"; it is significantly better than {names} in {n_ahead} of {n_cells} "
                        "cells, not in all three settings at once as the paper claims.")
    else:
        summary += "."
    lines.append(summary)
    lines += _alpha_lines(alpha_sig)
    return "\n".join(lines)


def _rest(rows: pd.DataFrame, lead: str = "; no other cell is significant") -> str:
    """The words on the cells of ``rows`` (none of them marked): the smallest p_Holm, and separately the cells
    whose p_Holm is below :data:`ALPHA` but whose seed pairings have both signs."""
    if rows.empty:
        return ""
    low = rows[rows["p_holm"] < ALPHA]
    high = rows.drop(low.index)
    parts = [f"{_cells(low)}: p_Holm {', '.join(p_text(p) for p in low['p_holm'])} but seed pairings of both "
             "signs"] if not low.empty else []
    if not high.empty:
        parts.append(f"{'elsewhere ' if parts else ''}p_Holm ≥ {p_text(high['p_holm'].min())}")
    return f"{lead} ({'; '.join(parts)})"


def _alpha_lines(alpha_sig: pd.DataFrame) -> list[str]:
    """:func:`verdict`'s line on the alpha sweep's test (``paper/tables/alpha_significance.tex``); none without it."""
    if alpha_sig.empty:
        return []
    amarked = significance.is_significant(alpha_sig, ALPHA)
    ref = alpha_text(float(alpha_sig["reference"].iloc[0]))
    if not amarked.any():
        return [f"- *α sweep: no α differs significantly from α = {ref}* in any of the {len(alpha_sig)} cells "
                f"of `paper/tables/alpha_significance.tex` (Holm over {len(alpha_sig)}; "
                f"p_Holm ≥ {p_text(alpha_sig['p_holm'].min())})."]
    hits = alpha_sig[amarked]
    return [f"- *α sweep*: significantly different from α = {ref} (`paper/tables/alpha_significance.tex`): "
            + ", ".join(f"α {alpha_text(r['alpha'])} {SETTING_LABELS[r['setting']]} {num(r['diff'], sign=True)} "
                        f"(p_Holm {p_text(r['p_holm'])})" for r in hits.to_dict("records")) + "."]


def primary_block(prim: pd.DataFrame) -> str:
    """Family P (``paper/tables/primary.tex``): each hypothesis's difference with its 95 % interval, the paper's
    bound, both Holm-adjusted p values and the verdict in PREREGISTRATION §3's words."""
    if prim.empty:
        return f"No run of fold `{primary.PRIMARY_FOLD}` in this configuration: the primary family is not tested."
    lines = ["| | Hybrid − | Δ mAP [95 % CI] | paper's Δ* | p_Holm superiority | pairings of Δ's sign | "
             "p_Holm smaller | verdict |", "|---|---|---|---:|---:|---:|---:|---|"]
    for r in prim.to_dict("records"):
        lines.append(f"| {r['id']} | {strategies.label(r['baseline'])}, {dataset_label(r['dataset'])} "
                     f"{SETTING_LABELS[r['setting']]} | {num(r['diff'], sign=True)} [{num(r['ci_low'], sign=True)}, "
                     f"{num(r['ci_high'], sign=True)}] | {num(r['bound'], sign=True)} | "
                     f"{p_text(r['p_holm_superiority'])} | {int(r['pairings_with_sign'])}/{int(r['pairings'])} | "
                     f"{p_text(r['p_holm_smaller'])} | {_short(r['verdict'])} |")
    allp = primary.claim_supported(prim)
    lines += ["", f"`paper/tables/primary.tex`, fold `{primary.PRIMARY_FOLD}`, Holm over the 6 p; smaller: one-sided, "
              "Δ < Δ* (the paper's XLM-R difference). The paper's claim (better in all three) "
              + ("is supported: P1–P3 are all significant superiorities." if allp else
                 "needs P1–P3 all significant superiorities: not shown here.")]
    return "\n".join(lines + _primary_reading(prim))


def _short(verdict: str) -> str:
    """A primary verdict without its parenthesised reason (the README's pairings column and reading give it)."""
    return re.sub(r" \([^)]*\)", "", verdict)


def _primary_reading(prim: pd.DataFrame) -> list[str]:
    """The family's results in words: the effects shown smaller than the paper's (with the one-sided bounds), and,
    labelled descriptive, the hypotheses whose test rejects but whose seed pairings miss §2's every-pairing rule."""
    out = []
    smaller = prim[prim["smaller"]]
    if not smaller.empty:
        out.append(f"- *Smaller than the paper's* (binding test): {', '.join(smaller['id'])}: the one-sided 95 % upper "
                   "bounds " + ", ".join(f"{num(r['upper_95'], sign=True)}" for r in smaller.to_dict("records"))
                   + " lie below the paper's " + ", ".join(num(b, sign=True) for b in smaller["bound"]) + ".")
    near = prim[[primary.missed_pairing_rule(r, ALPHA) for r in prim.to_dict("records")]]
    if not near.empty:
        out.append(f"- *Descriptive, not a pre-registered finding*: {', '.join(near['id'])} have p_Holm "
                   + ", ".join(p_text(p) for p in near["p_holm_superiority"]) + " and 95 % intervals excluding 0, but "
                   + ", ".join(f"{int(r['pairings'] - r['pairings_with_sign'])} of {int(r['pairings'])}"
                               for r in near.to_dict("records"))
                   + " seed pairings have the other sign; the binding rule (§2: every pairing) does not count them.")
    return [""] + out if out else []


def _listed(rows: pd.DataFrame, digits: int = 3, *, settings: bool = True) -> str:
    """``X-Y XQuAD-R Mo. −.036, Cr. +.012, MLQA-R Mo. −.014`` (a system or dataset label is not repeated for the
    rows that follow it; ``strategy`` or ``baseline`` names the compared system)."""
    who = "strategy" if "strategy" in rows else "baseline"
    out, prev = [], (None, None)
    for r in rows.to_dict("records"):
        system, ds = strategies.label(r[who]), dataset_label(r["dataset"])
        head = [system, ds] if system != prev[0] else [ds] if ds != prev[1] else []
        out.append(" ".join(head + ([SETTING_LABELS[r["setting"]]] if settings else [])
                            + [num(r["diff"], digits, sign=True)]))
        prev = (system, ds)
    return ", ".join(out)


def secondary_block(s2: pd.DataFrame, s3: pd.DataFrame, s4: pd.DataFrame) -> str:
    """Families S2 (against zero-shot), S3 (rank distance) and S4 (budget ladder) in one line each: the cells
    each family's own rule marks significant (Holm within the family, every seed pairing with Δ's sign)."""
    lines = []
    if not s2.empty:
        m = s2[s2["significant"]]
        lines.append(f"- *Against the zero-shot encoder* (S2, `paper/tables/vs_zeroshot.tex`, Holm over "
                     f"{len(s2)}): significantly below it: {_listed(m[m['diff'] < 0]) or 'none'}; significantly "
                     f"above it in {int((m['diff'] > 0).sum())} of {len(s2)} cells; not significant: "
                     f"{_listed(s2[~s2['significant']]) or 'none'}.")
    if not s3.empty:
        s3 = s3.sort_values("baseline", key=lambda b: b.map(strategies.ORDER.index), kind="stable")
        m = s3[s3["significant"]]
        rest = s3[~s3["significant"]]
        lines.append(f"- *Language bias* (S3, rank distance in Mul., lower = less bias; "
                     f"`paper/tables/rank_distance_tests.tex`, Holm over {len(s3)}): Hybrid significantly less "
                     f"biased than {_listed(m[m['diff'] < 0], 1, settings=False) or 'none'}; significantly more "
                     f"biased than {_listed(m[m['diff'] > 0], 1, settings=False) or 'none'}"
                     + (f"; not significant: {_listed(rest, 1, settings=False)}" if not rest.empty else "") + ".")
    if not s4.empty:
        m = s4[s4["significant"]]
        budgets = "/".join(str(int(b)) for b in sorted(set(s4["budget"])))
        seeds = "/".join(str(n) for n in sorted({int(v) for c in ("n_seeds_baseline", "n_seeds_target") for v in s4[c]}))
        lines.append(f"- *Budget ladder* (S4, {budgets} steps, {seeds} seeds a strategy; `paper/tables/ladder.tex`, Holm over "
                     f"{len(s4)}): Hybrid minus the baseline significant in {_listed(m) or 'no cell'}; the other "
                     f"{len(s4) - len(m)} cells not significant (p_Holm ≥ {p_text(s4.drop(m.index)['p_holm'].min())}).")
    return "\n".join(lines) if lines else "No secondary family in this configuration."


def status_block(done: int, total: int) -> str:
    """README.md's status paragraph: how far the study is (``done`` of ``total`` units finished), and what
    ``paper/`` and ``figures/`` show meanwhile."""
    head = ("> **Status.** The pre-registered fixed-budget study ([docs/PREREGISTRATION.md](docs/PREREGISTRATION.md), "
            "binding before its first run; `params.yaml` = `configs/study.yaml`)")
    if done < total:
        return (f"{head} is running: **{done} of {total} units finished** ([docs/STUDY.md](docs/STUDY.md) lists "
                "them). Its tables and tests fill the blocks below when the last unit lands. Until then `paper/` and "
                "`figures/` still show the previous study (3 seeds, early stopping), archived with its results "
                "in [results/previous-study/](results/previous-study/).")
    return (f"{head} is complete: all {total} units; the blocks below, `paper/` and `figures/` are its results "
            "(the previous study, 3 seeds with early stopping: [results/previous-study/](results/previous-study/)).")


def missing_runs(results_dir: str | os.PathLike, params: dict) -> list[str]:
    """The runs of ``params``' study (every study of :func:`grid.grid_runs`) without ``results/<run>/metrics.json``,
    in the grid's order."""
    runs = dict.fromkeys(grid_runs(params)["run"])
    return [r for r in runs if not (Path(results_dir) / r / "metrics.json").is_file()]


def pending_blocks(missing: list[str], total: int) -> dict[str, str]:
    """The result blocks while the study runs: no interim number and no interim test (PREREGISTRATION.md: the
    analysis is made once, on the whole study), only what is missing."""
    done, later = total - len(missing), "Pending until the study's last run lands (status above): "
    return {"primary": (f"Pending: {done} of the study's {total} runs have results (first missing: run "
                        f"`{missing[0]}`). The primary family (P1–P3, superiority and smaller-than-paper, "
                        "Holm over 6; `paper/tables/primary.tex`) is tested once, on the whole study: "
                        "no interim test."),
            "verdict": later + "the secondary families S1 and S5 (`paper/tables/significance.tex`, "
                               "`alpha_significance.tex`).",
            "secondary": later + "`paper/tables/vs_zeroshot.tex`, `rank_distance_tests.tex`, `ladder.tex`.",
            "main-table": later + "`paper/tables/main.tex`.",
            "alpha-table": later + "`paper/tables/scaling.tex`."}


def readme_blocks(root: str | os.PathLike, params: dict, *, n_resamples: int = N_RESAMPLES) -> dict[str, str]:
    """Every generated block of README.md, from ``root/results`` and ``params`` (nothing is written); while a run
    of the study has no results, :func:`pending_blocks`."""
    results_dir = Path(root) / "results"
    missing = missing_runs(results_dir, params)
    if missing:
        return pending_blocks(missing, len(dict.fromkeys(grid_runs(params)["run"])))
    main = study_results(results_dir, params, "main")
    alpha = study_results(results_dir, params, "alpha").sort_values("alpha", kind="stable")
    sig_all = significance.significance_tests(results_dir, params, "hybrid", n_resamples=n_resamples)
    reported = yaml.safe_load((Path(root) / "paper" / "reported.yaml").read_text(encoding="utf-8"))
    prim = primary.primary_tests(sig_all, params, reported)
    sig = primary.marks_frame(primary.secondary_main(sig_all, params), prim)
    alpha_sig = significance.alpha_tests(results_dir, params, alpha, n_resamples=n_resamples)
    s2 = secondary.zeroshot_tests(results_dir, params, n_resamples=n_resamples)
    s3 = secondary.rank_distance_tests(results_dir, params, n_resamples=n_resamples)
    s4 = ladder.ladder_tests(results_dir, ladder.ladder_results(results_dir, params), params, n_resamples=n_resamples)
    return {"primary": primary_block(prim), "main-table": main_table(main), "verdict": verdict(main, sig, alpha_sig),
            "secondary": secondary_block(s2, s3, s4),
            "alpha-table": alpha_table(alpha, float(params["train"]["alpha"]))}


def fill_blocks(text: str, blocks: Mapping[str, str], source: str = "README") -> str:
    """``text`` with every ``<!-- name -->...<!-- /name -->`` block of ``blocks`` replaced by its new content; a
    block missing from ``text`` is an error (nothing is written half-way)."""
    for name, body in blocks.items():
        start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
        i, j = text.find(start), text.find(end)
        if i < 0 or j < i:
            raise SystemExit(f"error: {source}: no block {start} ... {end} to fill")
        text = text[:i + len(start)] + "\n" + body.rstrip("\n") + "\n" + text[j:]
    return text


def generated_files(root: str | os.PathLike, params: dict,
                    extra: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, str]:
    """``{path relative to root: new text}`` for README.md (:func:`readme_blocks`) and every file of ``extra``
    (``{path: {block: text}}``, e.g. the study's status in docs/STUDY.md and costs in docs/COSTS.md)."""
    root = Path(root)
    wanted: dict[str, dict[str, str]] = {"README.md": readme_blocks(root, params)}
    for path, blocks in (extra or {}).items():
        wanted.setdefault(path, {}).update(blocks)
    return {path: fill_blocks((root / path).read_text(encoding="utf-8"), blocks, path)
            for path, blocks in wanted.items()}


def write(root: str | os.PathLike, params: dict, extra: Mapping[str, Mapping[str, str]] | None = None) -> list[str]:
    """Write :func:`generated_files` (only the files whose text changed); return the paths written."""
    written = []
    for path, text in generated_files(root, params, extra).items():
        target = Path(root) / path
        if target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            written.append(path)
    return written
