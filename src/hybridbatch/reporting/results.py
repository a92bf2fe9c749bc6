"""What the report notebooks read: the runs' results loaded into tidy frames, seed summaries and per-language /
per-pair / per-query frames. No metric is computed here (the evaluation stage does that); no figure is drawn
here (the notebooks do that, from the frames built here).

The report's other modules: :mod:`hybridbatch.grid` (which runs make each study, run names),
:mod:`hybridbatch.strategies` (labels, order, colours), :mod:`hybridbatch.reporting.significance` (tests on per-query
values), :mod:`hybridbatch.reporting.latex` (formatting, booktabs) and :mod:`hybridbatch.reporting.tables` (the paper's tables).

Every ``results/<run>/metrics.json`` has a ``config`` block (run, fold, strategy, seed, alpha, layers,
n_languages, train_languages, parameters, non_embedding_parameters, eval_dataset; trained runs also
alpha_schedule, mono_share, mono_share_kept, best_step and steps, absent from older results) and one block
per evaluation dataset; :func:`load_results` flattens both into one row per run.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from hybridbatch.stats import inference as stats
from hybridbatch import strategies
from hybridbatch.grid import DATASET_ORDER, SPEC_COLUMNS, dataset_label, grid_runs, ordered, untrainable_languages
from hybridbatch.io import atomic_path
from hybridbatch.reporting.latex import isnull

CONFIG_FILLED = ("seed", "layers", "n_languages", "alpha")  # spec value, else the run's config value
# what the training stage adds to a trained run's config (absent from older results: NaN / None when loaded)
HELDOUT_METRICS = ("map_mo", "map_mul")  # per query language in metrics.json; see add_heldout
TRAINING_KEYS = ("alpha_schedule", "mono_share", "mono_share_kept", "best_step", "steps")


# --------------------------------------------------------------------------------------------- loading


def metrics_path(results_dir: str | os.PathLike, run: str) -> Path:
    return Path(results_dir) / run / "metrics.json"


def _missing_error(paths: list[Path]) -> FileNotFoundError:
    more = f" (and {len(paths) - 1} more: {', '.join(str(p) for p in paths[1:4])}{' ...' if len(paths) > 4 else ''})" \
        if len(paths) > 1 else ""
    return FileNotFoundError(f"{paths[0]} is missing{more}: run `dvc repro` to produce the results the report "
                             "reads (or `dvc exp run` for a configured grid)")


def check_results(results_dir: str | os.PathLike, runs: Iterable[str], name: str = "metrics.json") -> None:
    """Raise FileNotFoundError naming the first missing ``results/<run>/<name>`` (and how many others)."""
    paths = [Path(results_dir) / r / name for r in dict.fromkeys(runs)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise _missing_error(missing)


def read_metrics(results_dir: str | os.PathLike, run: str) -> dict:
    path = metrics_path(results_dir, run)
    if not path.is_file():
        raise _missing_error([path])
    return json.loads(path.read_text(encoding="utf-8"))


def num(v: Any) -> float:
    """A JSON number as float; None / missing / non-numbers -> NaN."""
    if isinstance(v, bool) or v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _block(data: dict, spec: dict, path: Path) -> dict:
    ds = spec["eval_dataset"]
    cfg_ds = data.get("config", {}).get("eval_dataset")
    if cfg_ds is not None and cfg_ds != ds:
        raise ValueError(f"{path}: evaluated on {cfg_ds!r}, but fold {spec['fold']!r} evaluates on {ds!r}")
    if ds not in data:
        raise KeyError(f"{path} has no {ds!r} block (has {sorted(k for k in data if k != 'config')})")
    return data[ds]


def load_results(results_dir: str | os.PathLike, specs: pd.DataFrame) -> pd.DataFrame:
    """One row per spec row (see :func:`grid.grid_runs`): the spec, the run's config and its headline metrics.

    Added columns: ``parameters``, ``non_embedding_parameters``, ``train_languages`` (list) from the config
    (a trained run's ``n_languages``, where neither the spec nor the config gives it, is the number of its
    ``train_languages``);
    the training keys :data:`TRAINING_KEYS` (``alpha_schedule`` a string, the others numbers; missing --
    NaN / None -- where the config lacks them or has None: references, older results); every scalar metric of the evaluation dataset's block
    (``map_mo`` ... ``rank_distance``, ``same_lang@k``, ``n_queries`` ...; NaN where absent, e.g. BM25's
    Cr./Mul.); ``<metric>_seen`` and ``<metric>_unseen`` (NaN where the split is empty) with
    ``seen_languages`` / ``unseen_languages``; ``tatoeba`` (mean bitext accuracy, NaN where not evaluated).
    Raises FileNotFoundError naming the first missing metrics.json.
    """
    check_results(results_dir, specs["run"])
    rows = []
    for spec in specs.to_dict("records"):
        path = metrics_path(results_dir, spec["run"])
        data = json.loads(path.read_text(encoding="utf-8"))
        cfg = data.get("config", {})
        m = _block(data, spec, path)
        row = dict(spec)
        for c in CONFIG_FILLED:
            if isnull(row[c]):
                row[c] = cfg.get(c)
        row["parameters"] = num(cfg.get("parameters"))
        row["non_embedding_parameters"] = num(cfg.get("non_embedding_parameters"))
        row["train_languages"] = list(cfg.get("train_languages") or [])
        if isnull(row["n_languages"]) and row["train_languages"] and row["strategy"] in strategies.TRAINED:
            # a run trained on all of its fold's languages records no count
            row["n_languages"] = len(row["train_languages"])
        schedule = cfg.get("alpha_schedule")
        row["alpha_schedule"] = None if schedule is None else str(schedule)
        for k in TRAINING_KEYS[1:]:
            row[k] = num(cfg.get(k))
        row["languages"] = list(m.get("languages") or [])
        for k, v in m.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row[k] = float(v)
            elif v is None and k.split("_")[0] in ("map", "r1", "r10", "mrr", "ndcg10"):
                row[k] = math.nan
        per_language = m.get("per_language") or {}
        for k in HELDOUT_METRICS:
            row[f"{k}_by_lang"] = {str(l): num(v) for l, v in (per_language.get(k) or {}).items()}
        for split in ("seen", "unseen"):
            block = m.get(split) or {}
            row[f"{split}_languages"] = list(block.get("languages") or [])
            for k in ("map_mo", "map_cr", "map_mul", "rank_distance"):
                row[f"{k}_{split}"] = num(block.get(k))
        row["tatoeba"] = num(data["tatoeba"].get("mean")) if isinstance(data.get("tatoeba"), dict) else math.nan
        rows.append(row)
    if not rows:  # a study with no configured run (e.g. grid.layers: [])
        return pd.DataFrame(columns=SPEC_COLUMNS + ["parameters", "non_embedding_parameters", "train_languages",
                                                    *TRAINING_KEYS, "languages", "map_mo", "map_cr", "map_mul",
                                                    "rank_distance"])
    return pd.DataFrame(rows)


def study_results(results_dir: str | os.PathLike, params: dict, study: str) -> pd.DataFrame:
    """:func:`load_results` of :func:`grid.grid_runs` ``(params, study)``, with the held-out columns of
    :func:`add_heldout`."""
    return add_heldout(load_results(results_dir, grid_runs(params, study)), params)


def add_heldout(results: pd.DataFrame, params: dict) -> pd.DataFrame:
    """``<metric>_heldout`` (for :data:`HELDOUT_METRICS`): the macro mean over the *held-out* query languages
    of the run's fold -- the evaluation languages outside ``folds.<fold>.language_order``, which no run of the
    fold trains on (XQuAD-R's el, ru, th, tr in fold mlqa2xquad) -- and ``heldout_languages``. Unlike
    *unseen* (outside the run's own training languages), this set is the same for every run of a fold, so
    runs with different training languages are compared on the same languages. NaN where the fold has none."""
    out = results.copy()
    langs_col, values = [], {k: [] for k in HELDOUT_METRICS}
    for r in out.to_dict("records"):
        langs = untrainable_languages(params, r["fold"], r.get("languages") or []) if r.get("fold") else []
        langs_col.append(langs)
        for k in HELDOUT_METRICS:
            by_lang = r.get(f"{k}_by_lang") or {}
            vals = [by_lang.get(l, math.nan) for l in langs]
            values[k].append(float(np.mean(vals)) if vals and not any(isnull(v) for v in vals) else math.nan)
    out["heldout_languages"] = langs_col
    for k in HELDOUT_METRICS:
        out[f"{k}_heldout"] = values[k]
    return out


def datasets_of(results: pd.DataFrame) -> list[str]:
    """The evaluation datasets present, in the paper's order."""
    return ordered(results["eval_dataset"], DATASET_ORDER)


def strategies_of(results: pd.DataFrame, include: Sequence[str] = strategies.ORDER) -> list[str]:
    """The strategies present, in the registry's display order, restricted to ``include``."""
    return [s for s in ordered(results["strategy"], strategies.ORDER) if s in include]


def dataset_title(results: pd.DataFrame, dataset: str) -> str:
    """``XQuAD-R (trained on MLQA-R)``."""
    train = results.loc[results["eval_dataset"] == dataset, "train_dataset"].iloc[0]
    return f"{dataset_label(dataset)} (trained on {dataset_label(train)})"


def unseen_languages(results: pd.DataFrame, dataset: str) -> list[str]:
    """Evaluation languages outside the training languages of the trained main runs on ``dataset``.

    Empty when every evaluation language was trained on (MLQA-R in fold xquad2mlqa)."""
    sub = results[(results["eval_dataset"] == dataset) & results["strategy"].isin(strategies.TRAINED)]
    if sub.empty:
        return []
    langs = [set(x) for x in sub["unseen_languages"]]
    return sorted(set.union(*langs)) if langs else []


def training_languages(results: pd.DataFrame, fold: str) -> list[str]:
    """The union of the trained main runs' training languages in ``fold`` (empty if it has none)."""
    sub = results.loc[(results["fold"] == fold) & results["strategy"].isin(strategies.TRAINED), "train_languages"]
    return sorted(set().union(*[set(x) for x in sub])) if len(sub) else []


def long_metrics(results: pd.DataFrame, metrics: Sequence[str],
                 id_vars: Sequence[str] = ("eval_dataset", "fold", "strategy", "seed", "run")) -> pd.DataFrame:
    """``results`` melted to one row per (run, metric): columns ``id_vars``, ``metric``, ``value``."""
    present = [m for m in metrics if m in results.columns]
    out = results[list(id_vars) + present].melt(id_vars=list(id_vars), var_name="metric", value_name="value")
    out["value"] = out["value"].astype(float)
    return out


def training_runs(results: pd.DataFrame) -> pd.DataFrame:
    """The trained runs of ``results`` once each, in display order (strategy, then fold, seed and run), with
    the training keys: columns ``run, fold, strategy, seed, alpha, alpha_schedule, mono_share,
    mono_share_kept, best_step, steps`` (NaN / None where the run's config lacks a key)."""
    cols = ["run", "fold", "strategy", "seed", "alpha", *TRAINING_KEYS]
    sub = results[results["strategy"].isin(strategies.TRAINED)]
    sub = sub.reindex(columns=cols).drop_duplicates("run")
    for c in ("seed", "steps", "best_step"):  # integers (None where missing), not floats
        sub[c] = pd.Series([None if isnull(v) else int(v) for v in sub[c]], index=sub.index, dtype=object)
    sub["alpha_schedule"] = [v if isinstance(v, str) else None for v in sub["alpha_schedule"]]
    order = {"_rank": [strategies.ORDER.index(s) for s in sub["strategy"]],
             "_seed": [-1 if v is None else v for v in sub["seed"]]}
    return (sub.assign(**order).sort_values(["_rank", "fold", "_seed", "run"], kind="stable")
            .drop(columns=list(order)).reset_index(drop=True))


# ----------------------------------------------------------------------------------- seed summaries


def seed_summary(results: pd.DataFrame, metrics: Sequence[str],
                 by: Sequence[str] = ("eval_dataset", "strategy")) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof 1) over seeds: one row per ``by`` group and metric.

    Columns: ``by``, ``metric``, ``mean``, ``sd`` (NaN for a single run), ``n`` (runs with a value).
    """
    long = long_metrics(results, metrics, id_vars=list(by))
    g = long.dropna(subset=["value"]).groupby(list(by) + ["metric"], sort=False)["value"]
    out = g.agg(mean="mean", sd=lambda v: float(v.std(ddof=1)) if len(v) > 1 else math.nan, n="count")
    return out.reset_index()


def seed_means(results: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """``metrics`` averaged over seeds within each ``by`` group (a scaling point: strategy and layers, ...),
    with ``<metric>_sd`` (sample sd, NaN for one run) and ``n_runs``; groups in first-seen order, NaN keys
    kept (a zero-shot row has no alpha). With one seed per point: the runs' own values."""
    if results.empty:
        return pd.DataFrame(columns=list(by) + list(metrics) + [f"{m}_sd" for m in metrics] + ["n_runs"])
    g = results.groupby(list(by), sort=False, dropna=False)
    out = g[list(metrics)].mean()
    sd = g[list(metrics)].std(ddof=1).add_suffix("_sd")
    return pd.concat([out, sd, g.size().rename("n_runs")], axis=1).reset_index()


def summary_lookup(summary: pd.DataFrame, by: Sequence[str] = ("eval_dataset", "strategy")) -> dict:
    """``{(*by values, metric): (mean, sd, n)}`` of a :func:`seed_summary` frame."""
    return {tuple(r[c] for c in by) + (r["metric"],): (r["mean"], r["sd"], int(r["n"]))
            for r in summary.to_dict("records")}


def seeds_of(results: pd.DataFrame) -> list[int]:
    """The seeds of the trained runs in ``results``."""
    return sorted({int(s) for s in results.loc[results["strategy"].isin(strategies.TRAINED), "seed"].dropna()})


def seed_counts(results: pd.DataFrame) -> dict[str, dict[str, int]]:
    """``{eval dataset: {strategy: number of seeds}}`` of the trained runs in ``results``, in the paper's
    dataset order and the registry's strategy order."""
    trained = results[results["strategy"].isin(strategies.TRAINED)]
    return {ds: {s: int(trained.loc[(trained["eval_dataset"] == ds) & (trained["strategy"] == s), "seed"].nunique())
                 for s in strategies_of(trained[trained["eval_dataset"] == ds])}
            for ds in datasets_of(trained)}


def seed_counts_text(results: pd.DataFrame, label=lambda ds: ds) -> str:
    """``XQuAD-R: 10 a strategy, X-X (mixed) 3; MLQA-R: 5 a strategy, X-X (mixed) 3``: each evaluation set's most
    common seed count and the strategies that differ from it (``label``: the dataset's display name)."""
    parts = []
    for ds, counts in seed_counts(results).items():
        common = max(sorted(set(counts.values()), reverse=True), key=list(counts.values()).count)
        odd = [f"{strategies.label(s)} {n}" for s, n in counts.items() if n != common]
        parts.append(f"{label(ds)}: {common} a strategy" + "".join(f", {o}" for o in odd))
    return "; ".join(parts)


def seeds_note(results: pd.DataFrame) -> str:
    """``mean $\\pm$ sd over 2 seeds (13, 14)`` for the trained main runs; with unequal seed counts across cells,
    each cell's (:func:`seed_counts_text`), the seeds being the first ones of the seed list."""
    seeds = seeds_of(results)
    counts = {n for per in seed_counts(results).values() for n in per.values()}
    if len(counts) > 1:
        listed = (f"{seeds[0]}--{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1))
                  else ", ".join(map(str, seeds)))
        return (rf"mean $\pm$ sample sd over each cell's seeds, the first ones of {listed} "
                rf"({seed_counts_text(results, dataset_label)})")
    if len(seeds) > 1:
        return rf"mean $\pm$ sample sd over {len(seeds)} seeds ({', '.join(map(str, seeds))})"
    if seeds:
        return f"a single seed ({seeds[0]}), no sd"
    return "single runs"


# ------------------------------------------------------------------------------------- per-query values


def load_per_query(results_dir: str | os.PathLike, run: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    path = Path(results_dir) / run / "per_query.parquet"
    if not path.is_file():
        raise _missing_error([path])
    return pd.read_parquet(path, columns=list(columns) if columns else None)


def per_seed_per_query(results_dir: str | os.PathLike, runs: Sequence[str], value: str = "ap",
                       settings: Sequence[str] | None = None) -> list[pd.DataFrame]:
    """Per-query ``value`` of each of ``runs`` (a system's seeds; one run for zero-shot / BM25), in order:
    the per-seed lists :func:`seeded.compare_runs` and :func:`seeded.seeded_bootstrap_ci` take."""
    check_results(results_dir, runs, "per_query.parquet")
    frames = []
    for run in runs:
        df = load_per_query(results_dir, run, ["setting", "query_lang", "corpus_lang", "qid", value])
        frames.append(df[df["setting"].isin(settings)].reset_index(drop=True) if settings else df)
    return frames


def rank_distance_per_query(results_dir: str | os.PathLike, specs: pd.DataFrame) -> pd.DataFrame:
    """Per-query rank distance of the multilingual setting, averaged over each strategy's seeds:
    columns ``eval_dataset, strategy, query_lang, qid, rank_distance``."""
    out = []
    for (ds, strategy), group in specs.groupby(["eval_dataset", "strategy"], sort=False):
        frames = per_seed_per_query(results_dir, list(group["run"]), "rank_distance", ["mul"])
        avg = stats.average_runs(frames, "rank_distance")
        avg.insert(0, "strategy", strategy)
        avg.insert(0, "eval_dataset", ds)
        out.append(avg[["eval_dataset", "strategy", "query_lang", "qid", "rank_distance"]])
    return pd.concat(out, ignore_index=True)


# ------------------------------------------------------------------------------ per-language frames


def _cross_by_query_language(per_pair: dict, metric: str) -> dict[str, float]:
    """``per_pair[metric]`` (keys ``"<query lang>-<corpus lang>"``, X != Y) averaged per query language: the
    macro average over the corpus languages, as the Cr. headline averages over ordered pairs."""
    by_lang: dict[str, list[float]] = {}
    for pair, v in (per_pair.get(metric) or {}).items():
        q, c = pair.split("-", 1)
        if q != c:
            by_lang.setdefault(q, []).append(num(v))
    return {q: sum(vs) / len(vs) for q, vs in by_lang.items()}


def per_language_values(block: dict, metric: str) -> dict[str, float]:
    """``{query language: value}`` of one metric of an evaluation block: ``per_language[metric]``; for a
    cross-lingual metric the evaluation stage does not store per language (``map_cr``, ``r1_cr``, ...), the
    mean over corpus languages of ``per_pair[metric]``. Empty when neither is stored (e.g. BM25's Cr.)."""
    stored = (block.get("per_language") or {}).get(metric)
    if stored:
        return {l: num(v) for l, v in stored.items()}
    if metric.endswith("_cr"):
        return _cross_by_query_language(block.get("per_pair") or {}, metric)
    return {}


def per_language_frame(results_dir: str | os.PathLike, specs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """:func:`per_language_values` of ``metric`` for every run: columns ``eval_dataset, fold, strategy, seed,
    run, lang, value`` (runs without that metric, e.g. BM25's Mul., contribute nothing)."""
    rows = []
    for spec in specs.to_dict("records"):
        path = metrics_path(results_dir, spec["run"])
        m = _block(read_metrics(results_dir, spec["run"]), spec, path)
        for lang, v in per_language_values(m, metric).items():
            rows.append({"eval_dataset": spec["eval_dataset"], "fold": spec["fold"], "strategy": spec["strategy"],
                         "seed": spec["seed"], "run": spec["run"], "lang": lang, "value": v})
    return pd.DataFrame(rows, columns=["eval_dataset", "fold", "strategy", "seed", "run", "lang", "value"])


def per_pair_frame(results_dir: str | os.PathLike, specs: pd.DataFrame, metric: str = "map") -> pd.DataFrame:
    """``per_pair[metric]`` of every run (keys ``"<query lang>-<corpus lang>"``): columns ``eval_dataset,
    fold, strategy, seed, run, query_lang, corpus_lang, value``."""
    rows = []
    for spec in specs.to_dict("records"):
        path = metrics_path(results_dir, spec["run"])
        m = _block(read_metrics(results_dir, spec["run"]), spec, path)
        for pair, v in (m.get("per_pair", {}).get(metric) or {}).items():
            q, c = pair.split("-", 1)
            rows.append({"eval_dataset": spec["eval_dataset"], "fold": spec["fold"], "strategy": spec["strategy"],
                         "seed": spec["seed"], "run": spec["run"], "query_lang": q, "corpus_lang": c, "value": num(v)})
    return pd.DataFrame(rows, columns=["eval_dataset", "fold", "strategy", "seed", "run", "query_lang", "corpus_lang",
                                       "value"])


def tatoeba_frame(results_dir: str | os.PathLike, specs: pd.DataFrame) -> pd.DataFrame:
    """Tatoeba 1-NN accuracy of every run that has it: columns ``fold, eval_dataset, strategy, seed, run, lang,
    direction`` (``x2en`` | ``en2x``), ``value``."""
    rows = []
    for spec in specs.to_dict("records"):
        tat = read_metrics(results_dir, spec["run"]).get("tatoeba")
        if not isinstance(tat, dict):
            continue
        for lang, acc in (tat.get("per_language") or {}).items():
            for direction in ("x2en", "en2x"):
                if direction in acc:
                    rows.append({"fold": spec["fold"], "eval_dataset": spec["eval_dataset"],
                                 "strategy": spec["strategy"], "seed": spec["seed"], "run": spec["run"],
                                 "lang": lang, "direction": direction, "value": num(acc[direction])})
    return pd.DataFrame(rows, columns=["fold", "eval_dataset", "strategy", "seed", "run", "lang", "direction", "value"])


def pair_matrix(pairs: pd.DataFrame, dataset: str, strategy: str,
                languages: Sequence[str] | None = None) -> pd.DataFrame:
    """Query language x corpus language matrix of the seed-mean ``per_pair`` values of one strategy."""
    sub = pairs[(pairs["eval_dataset"] == dataset) & (pairs["strategy"] == strategy)]
    mat = sub.groupby(["query_lang", "corpus_lang"])["value"].mean().unstack("corpus_lang")
    langs = list(languages) if languages is not None else sorted(set(mat.index) | set(mat.columns))
    return mat.reindex(index=langs, columns=langs)


# ---------------------------------------------------------------------------------------------- figures


def save_figure(fig, stem: str | os.PathLike) -> None:
    """Save ``fig`` as ``stem.pdf`` and ``stem.png``, atomically, without timestamps (reproducible bytes):
    the PDF without CreationDate / Producer, the PNG without the Software chunk (matplotlib writes no date
    into a PNG)."""
    stem = Path(stem)
    with atomic_path(stem.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    with atomic_path(stem.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", dpi=150, metadata={"Software": None})


def load_miracl(results_dir: str | os.PathLike, runs: Iterable[str], languages: Sequence[str]) -> pd.DataFrame:
    """MIRACL dev per run and language (``results/<run>/miracl.json``, the ``miracl`` stage): one row per
    (run, lang) with ``status`` ("ok" or "corpus-absent"), ``ndcg10``, ``recall100`` (NaN when the corpus is
    absent), ``topics`` and ``judged_queries``. Raises FileNotFoundError naming a missing file."""
    runs = list(dict.fromkeys(runs))
    check_results(results_dir, runs, "miracl.json")
    rows = []
    for run in runs:
        data = json.loads((Path(results_dir) / run / "miracl.json").read_text(encoding="utf-8"))["miracl_dev"]
        per = data.get("per_language") or {}
        for lang in languages:
            r = per.get(lang) or {"status": "not-evaluated"}
            rows.append({"run": run, "lang": lang, "status": str(r.get("status")), "ndcg10": num(r.get("ndcg@10")),
                         "recall100": num(r.get("recall@100")), "topics": num(r.get("topics")),
                         "judged_queries": num(r.get("judged_queries"))})
    return pd.DataFrame(rows, columns=["run", "lang", "status", "ndcg10", "recall100", "topics", "judged_queries"])


def run_label(run: str) -> str:
    """A row label for a run name (:func:`grid.run_name`): ``X-Y, seed 13``, ``zero-shot``, ``Hybrid (alpha
    0.25), 4 layers, seed 13`` ...; the fold is left out (the table says it)."""
    m = re.fullmatch(r"(?P<fold>[^-]+)(?:-L(?P<layers>\d+))?(?:-n(?P<n>\d+))?-(?P<rest>.+?)(?:-a(?P<alpha>[0-9.]+))?"
                     r"(?:-s(?P<seed>\d+))?", run)
    if not m:
        return run
    parts = [strategies.label(m["rest"]) + (f" ($\\alpha$ {m['alpha']})" if m["alpha"] else "")]
    parts += [f"{m['layers']} layers"] if m["layers"] else []
    parts += [f"{m['n']} languages"] if m["n"] else []
    parts += [f"seed {m['seed']}"] if m["seed"] else []
    return ", ".join(parts)


MIN_CLAIM_SEEDS = 3  # fewer seeds per point: the study's results are exploratory (README, docs/statistics.md)


def seeds_text(seeds: Sequence[int]) -> str:
    """``mean over seeds 13, 14, 15``; with fewer than :data:`MIN_CLAIM_SEEDS` seeds the text says the points
    are exploratory: ``seed 13 (exploratory: one seed)``."""
    seeds = list(seeds)
    if not seeds:
        return "no seed"
    text = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean over seeds {', '.join(map(str, seeds))}"
    if len(seeds) < MIN_CLAIM_SEEDS:
        text += f" (exploratory: {'one seed' if len(seeds) == 1 else f'{len(seeds)} seeds'})"
    return text

