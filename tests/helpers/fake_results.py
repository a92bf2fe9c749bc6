"""A synthetic, schema-conformant ``results/`` tree for the report notebooks and the paper build.

Every run of a params dict's grid gets ``results/<run>/metrics.json`` and ``results/<run>/per_query.parquet``
(the layout the evaluation stage writes; see ``hybridbatch.reporting.results``). The runs are enumerated here
independently of ``hybridbatch.reporting.results.grid_runs`` so a mismatch between the two shows up in the tests.
The metrics are computed from the per-query rows (macro means), so tables, figures and significance
tests agree. Small: 3-4 languages per dataset, a few dozen questions.

Effects are built in so that some comparisons are significant and some are not: Hybrid is clearly above
X-X-mono in Cr./Mul. and equal to it in Mo. (up to seed noise).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = ("main", "per_language", "bias", "scaling")
# exactly what each notebook writes (besides notebooks/executed/<name>.ipynb): the DVC stages' outs
OUTPUTS = {
    "main": ["paper/tables/main.tex", "paper/tables/recall.tex", "paper/tables/rank_distance.tex",
             "paper/tables/significance.tex", "paper/tables/confidence.tex", "paper/tables/paper_vs_ours.tex",
             "paper/tables/training_runs.tex",
             "figures/main.pdf", "figures/main.png",
             "paper/tables/primary.tex", "paper/tables/vs_zeroshot.tex", "paper/tables/ladder.tex",
             "figures/ladder.pdf", "figures/ladder.png"],
    "per_language": ["paper/tables/per_language_xquad_r.tex", "paper/tables/per_language_mlqa_r.tex",
                     "paper/tables/tatoeba.tex", "figures/heatmaps.pdf", "figures/heatmaps.png", "figures/tatoeba.pdf",
                     "figures/tatoeba.png", "paper/tables/miracl.tex"],
    "bias": ["paper/tables/bias.tex", "figures/bias.pdf", "figures/bias.png", "paper/tables/rank_distance_tests.tex"],
    "scaling": ["paper/tables/scaling.tex", "paper/tables/alpha_significance.tex", "figures/scaling_size.pdf", "figures/scaling_size.png",
                "figures/scaling_languages.pdf", "figures/scaling_languages.png", "figures/alpha.pdf",
                "figures/alpha.png"],
}

# every MLQA-R language is an XQuAD-R language (as in the real sets); el is unseen in fold mlqa2xquad
LANGUAGES = {"xquad_r": ["ar", "de", "el", "en"], "mlqa_r": ["ar", "de", "en"]}
TATOEBA = ["ar", "de", "el"]

PARAMS = {
    "folds": {
        "mlqa2xquad": {"train": "mlqa_r", "eval": "xquad_r", "language_order": ["en", "ar", "de"]},
        "xquad2mlqa": {"train": "xquad_r", "eval": "mlqa_r", "language_order": ["en", "ar", "de", "el"]},
    },
    # the previous study's shape (one main block: both folds x every strategy x the same seeds;
    # no ladder rung); the alpha sweep and Tatoeba on the main seeds
    "grid": {
        "folds": ["mlqa2xquad", "xquad2mlqa"],
        "strategies": ["xx", "xx-mixed", "xy", "hybrid"],
        "main": {"primary": {"folds": ["mlqa2xquad", "xquad2mlqa"], "strategies": ["xx", "xx-mixed", "xy", "hybrid"],
                             "seeds": [1, 2]},
                 "secondary": {"folds": [], "strategies": [], "seeds": []},
                 "mixed": {"folds": [], "strategies": [], "seeds": []}},
        "tatoeba_seeds": [1, 2],
        "ladder": {"fold": "mlqa2xquad", "steps": [], "strategies": ["xx", "xy", "hybrid"], "seeds": [1, 2]},
        "scaling_fold": "mlqa2xquad",
        "scaling_seeds": [1],
        "scaling_strategies": ["xx", "xy", "hybrid"],
        "layers": [4, 8],
        "n_languages": [2],
        "alphas": [0.25, 0.75],
        "alpha_seeds": [1, 2],
    },
}

# additive AP effect per setting (mo, cr, mul)
EFFECTS = {"zeroshot": (0.0, 0.0, 0.0), "bm25": (-0.03, 0.0, 0.0), "xx": (0.10, 0.02, 0.00),
           "xx-mixed": (0.08, 0.05, 0.03), "xy": (0.04, 0.10, 0.09), "hybrid": (0.10, 0.11, 0.10)}
LAYER_PARAMS = 1_774_464  # non-embedding parameters per layer of multilingual-e5-small
EMBEDDING_PARAMS = 96_090_624
TRAIN_STEPS = 40


def fake_params() -> dict:
    return copy.deepcopy(PARAMS)


def main_cells(params: dict) -> dict[tuple[str, str], list[int]]:
    """``{(fold, strategy): seeds}`` of the main table, read from the blocks of ``grid.main`` here (not through
    ``hybridbatch.grid``), in the order fold, then strategy, of ``grid.folds`` / ``grid.strategies``."""
    g = params["grid"]
    cells = {(f, s): list(b["seeds"]) for b in g["main"].values() if b["seeds"] for f in b["folds"]
             for s in b["strategies"]}
    return {(f, s): cells[(f, s)] for f in g["folds"] for s in g["strategies"] if (f, s) in cells}


# the pre-registered study's shape (configs/study.yaml; hybridbatch.params.GridParams): three blocks whose cells
# have different seed lists, a ladder rung, Tatoeba on fewer seeds than the main table
STUDY_GRID = {
    "folds": ["mlqa2xquad", "xquad2mlqa"],
    "strategies": ["xx", "xx-mixed", "xy", "hybrid"],
    "main": {"primary": {"folds": ["mlqa2xquad"], "strategies": ["xx", "xy", "hybrid"], "seeds": [1, 2, 3]},
             "secondary": {"folds": ["xquad2mlqa"], "strategies": ["xx", "xy", "hybrid"], "seeds": [1, 2]},
             "mixed": {"folds": ["mlqa2xquad", "xquad2mlqa"], "strategies": ["xx-mixed"], "seeds": [1, 2]}},
    "tatoeba_seeds": [1, 2],
    "ladder": {"fold": "mlqa2xquad", "steps": [160], "strategies": ["xx", "xy", "hybrid"], "seeds": [1, 2]},
    "scaling_fold": "mlqa2xquad",
    "scaling_seeds": [1],
    "scaling_strategies": ["xx", "xy", "hybrid"],
    "layers": [4, 8],
    "n_languages": [2],
    "alphas": [0.25, 0.75],
    "alpha_seeds": [1, 2],
}


def fake_study_params() -> dict:
    """:func:`fake_params` with the pre-registered study's grid (:data:`STUDY_GRID`); :func:`write_fake_results`
    writes its runs, the ladder's included."""
    return {**copy.deepcopy(PARAMS), "grid": copy.deepcopy(STUDY_GRID)}


def enumerate_runs(params: dict) -> list[dict]:
    """Every run of the grid as a config dict (``metrics.json["config"]`` minus the parameters)."""
    g, folds = params["grid"], params["folds"]
    out: dict[str, dict] = {}

    def add(fold, strategy, seed=None, layers=12, n=None, alpha=None):
        prefix = fold + (f"-L{layers}" if layers != 12 else "") + (f"-n{n}" if n is not None else "")
        if strategy in ("zeroshot", "bm25"):
            run = f"{prefix}-{strategy}"
        elif alpha is not None and alpha != 0.5:
            run = f"{prefix}-hybrid-a{alpha}-s{seed}"
        else:
            run = f"{prefix}-{strategy}-s{seed}"
        train_ds = folds[fold]["train"]
        if strategy in ("zeroshot", "bm25"):
            train_langs, n_langs = sorted(LANGUAGES[train_ds]), None
        elif n is None:
            train_langs = sorted(LANGUAGES[train_ds])
            n_langs = len(train_langs)
        else:
            train_langs, n_langs = sorted(folds[fold]["language_order"][:n]), n
        out[run] = {"run": run, "fold": fold, "strategy": strategy, "seed": seed,
                    "alpha": (0.5 if alpha is None else alpha) if strategy == "hybrid" else None,
                    "layers": layers, "n_languages": n_langs, "train_languages": train_langs,
                    "eval_dataset": folds[fold]["eval"]}
        if strategy not in ("zeroshot", "bm25") and n is None:  # the training-languages runs stay "older"
            out[run].update(training_keys(run, strategy, out[run]["alpha"]))

    cells = main_cells(params)
    for fold in g["folds"]:
        add(fold, "zeroshot")
        add(fold, "bm25")
        for (f, s), seeds in cells.items():
            for seed in seeds if f == fold else ():
                add(fold, s, seed)
    fold = g["scaling_fold"]
    for k in g["layers"]:
        add(fold, "zeroshot", layers=k)
    for seed in g["scaling_seeds"]:
        for k in g["layers"]:
            for s in g["scaling_strategies"]:
                add(fold, s, seed, layers=k)
        for k in g["n_languages"]:
            for s in g["scaling_strategies"]:
                add(fold, s, seed, n=k)
    for seed in g["alpha_seeds"]:  # the alpha sweep (its 0 / 0.5 / 1 points: main runs)
        for a in g["alphas"]:
            add(fold, "hybrid", seed, alpha=a)
    ladder = g.get("ladder") or {}
    for k in ladder.get("steps") or []:  # the budget ladder: train.steps -> k
        for s in ladder["strategies"]:
            for seed in ladder["seeds"]:
                cfg = ladder_config(params, ladder["fold"], s, seed, k)
                out[cfg["run"]] = cfg
    return list(out.values())


def training_keys(run: str, strategy: str, alpha: float | None) -> dict:
    """What the training stage records in a trained run's config (``hybridbatch.records.RunRecord``): the alpha
    schedule (hybrid only), the realised share of monolingual batches over the whole run and over the batches
    the kept model saw, the kept and total steps. The training-languages runs go without them (as results
    written before these keys existed)."""
    best = 20 + _stable_seed(run) % 20
    if strategy == "hybrid":  # the "exact" schedule: round(alpha * steps) monolingual batches in the run
        share = round(alpha * TRAIN_STEPS) / TRAIN_STEPS
        kept = float(min(1.0, max(0.0, share + (_stable_seed(run) % 7 - 3) / 100)))  # a prefix of the run
    else:
        share = kept = 0.0 if strategy == "xy" else 1.0  # xx, xx-mixed: every pair monolingual
    return {"alpha_schedule": "exact" if strategy == "hybrid" else None, "mono_share": share,
            "mono_share_kept": kept, "steps": TRAIN_STEPS, "best_step": best}


def _effect(cfg: dict) -> np.ndarray:
    eff = np.array(EFFECTS[cfg["strategy"]], dtype=float)
    if cfg["strategy"] == "hybrid" and cfg["alpha"] not in (None, 0.5):  # between X-Y (0) and X-X-mono (1)
        a = cfg["alpha"]
        eff = a * np.array(EFFECTS["xx"]) + (1 - a) * np.array(EFFECTS["xy"]) + 0.01
    if cfg["strategy"] != "bm25":
        eff *= 0.5 + 0.5 * cfg["layers"] / 12
        if cfg["n_languages"] is not None and cfg["strategy"] != "zeroshot":
            eff *= 0.6 + 0.4 * cfg["n_languages"] / 7
        eff -= 0.15 * (12 - cfg["layers"]) / 12  # smaller encoders retrieve worse
    return eff


def per_query_frame(cfg: dict, languages: list[str], n_qids: int) -> pd.DataFrame:
    """Per-query rows of one run: a question difficulty shared by all runs and languages, the strategy's
    effect, and run-specific noise (seeded by the run name)."""
    base_rng = np.random.default_rng(0)
    difficulty = base_rng.uniform(0.25, 0.75, size=n_qids)
    lang_shift = {l: base_rng.normal(0, 0.03) for l in languages}
    rng = np.random.default_rng(_stable_seed(cfg["run"]))
    eff = _effect(cfg)
    rows = []
    settings = [("mo", l, l) for l in languages]
    if cfg["strategy"] != "bm25":
        settings += [("cr", q, c) for q in languages for c in languages if q != c]
        settings += [("mul", q, "all") for q in languages]
    for setting, q, c in settings:
        e = eff[("mo", "cr", "mul").index(setting)]
        ap = np.clip(difficulty + lang_shift[q] + e + rng.normal(0, 0.02, n_qids), 0.0, 1.0)
        rd = (np.clip(420 * (1 - 2.5 * eff[2]) + rng.normal(0, 40, n_qids), 0, None) if setting == "mul"
              else np.zeros(n_qids))
        for i in range(n_qids):
            rows.append({"setting": setting, "query_lang": q, "corpus_lang": c, "qid": f"q{i:03d}", "ap": ap[i],
                         "rr": min(1.0, ap[i] + 0.05), "ndcg10": min(1.0, ap[i] + 0.03), "r1": float(ap[i] > 0.5),
                         "r10": float(ap[i] > 0.2), "rank_distance": float(rd[i])})
    return pd.DataFrame(rows)


def _stable_seed(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode("utf-8"))


def _macro(df: pd.DataFrame, setting: str, col: str) -> float:
    sub = df[df["setting"] == setting]
    return float(sub.groupby(["query_lang", "corpus_lang"])[col].mean().mean())


def metrics_json(cfg: dict, pq: pd.DataFrame, languages: list[str], with_tatoeba: bool) -> dict:
    ds = cfg["eval_dataset"]
    bm25 = cfg["strategy"] == "bm25"
    settings = ["mo"] if bm25 else ["mo", "cr", "mul"]
    block: dict = {}
    cols = {"map": "ap", "mrr": "rr", "ndcg10": "ndcg10"}
    for s in settings:
        for name, col in cols.items():
            block[f"{name}_{s}"] = _macro(pq, s, col)
    block["r1_mo"] = _macro(pq, "mo", "r1")
    if not bm25:
        block["r1_cr"] = _macro(pq, "cr", "r1")
        block["r10_mul"] = _macro(pq, "mul", "r10")
        block["rank_distance"] = _macro(pq, "mul", "rank_distance")
    per_language: dict = {}

    def by_lang(setting, col):
        sub = pq[pq["setting"] == setting]
        return {l: float(v) for l, v in sub.groupby("query_lang")[col].mean().items()}

    for s in settings:
        if s == "cr":
            continue
        for name, col in cols.items():
            per_language[f"{name}_{s}"] = by_lang(s, col)
    per_language["r1_mo"] = by_lang("mo", "r1")
    per_pair = {"map": {}, "r1": {}}
    pairs = pq[pq["setting"].isin(["mo", "cr"])].groupby(["query_lang", "corpus_lang"])
    for r in pairs[["ap", "r1", "rr", "ndcg10"]].mean().reset_index().to_dict("records"):
        key = f"{r['query_lang']}-{r['corpus_lang']}"
        per_pair["map"][key], per_pair["r1"][key] = float(r["ap"]), float(r["r1"])
        if r["query_lang"] != r["corpus_lang"]:
            for name, col in (("map_cr", "ap"), ("r1_cr", "r1"), ("mrr_cr", "rr"), ("ndcg10_cr", "ndcg10")):
                per_pair.setdefault(name, {})[key] = float(r[col])
    if not bm25:
        per_language["r10_mul"] = by_lang("mul", "r10")
        per_language["rank_distance"] = by_lang("mul", "rank_distance")
        bias = {"xx": 0.9, "xx-mixed": 0.7, "xy": 0.45, "hybrid": 0.5, "zeroshot": 0.8}[cfg["strategy"]]
        for k, scale in ((1, 1.0), (10, 0.6), (100, 0.35)):
            vals = {l: float(min(1.0, bias * scale + 0.02 * i)) for i, l in enumerate(languages)}
            per_language[f"same_lang@{k}"] = vals
            block[f"same_lang@{k}"] = float(np.mean(list(vals.values())))
    block["per_language"] = per_language
    block["per_pair"] = per_pair
    seen = [l for l in languages if l in cfg["train_languages"]]
    unseen = [l for l in languages if l not in cfg["train_languages"]]
    for name, langs in (("seen", seen), ("unseen", unseen)):
        if not langs or bm25:
            block[name] = {"languages": langs, "map_mo": None, "map_cr": None, "map_mul": None, "rank_distance": None}
            continue
        cr = [v for k, v in per_pair["map_cr"].items() if k.split("-")[0] in langs]
        block[name] = {"languages": langs,
                       "map_mo": float(np.mean([per_language["map_mo"][l] for l in langs])),
                       "map_cr": float(np.mean(cr)),
                       "map_mul": float(np.mean([per_language["map_mul"][l] for l in langs])),
                       "rank_distance": float(np.mean([per_language["rank_distance"][l] for l in langs]))}
    n = len(languages)
    block.update({"seen_languages": seen, "languages": list(languages),
                  "n_queries": int(len(pq[pq["setting"] == "mo"])), "n_candidates": 40 * n,
                  "n_cross_pairs": 0 if bm25 else n * (n - 1), "candidate_text": "sentence"})
    if bm25:
        block["settings"] = ["mo"]
    params = None if bm25 else EMBEDDING_PARAMS + cfg["layers"] * LAYER_PARAMS
    config = dict(cfg, parameters=params, non_embedding_parameters=None if bm25 else cfg["layers"] * LAYER_PARAMS)
    out = {"config": config, ds: block}
    if with_tatoeba:
        eff = 0.5 + _effect(cfg)[1]
        per_lang = {l: {"x2en": float(np.clip(eff + 0.05 * i, 0, 1)),
                        "en2x": float(np.clip(eff + 0.04 * i - 0.02, 0, 1)), "n": 100} for i, l in enumerate(TATOEBA)}
        x2en = float(np.mean([v["x2en"] for v in per_lang.values()]))
        en2x = float(np.mean([v["en2x"] for v in per_lang.values()]))
        out["tatoeba"] = {"per_language": per_lang, "x2en": x2en, "en2x": en2x, "mean": (x2en + en2x) / 2}
    return out


def write_fake_results(results_dir: Path, params: dict | None = None, n_qids: int = 24) -> list[str]:
    """Write every run of ``params`` (default :data:`PARAMS`; the ladder's runs too, see :func:`write_run`) under
    ``results_dir``; returns the run names. Tatoeba: the zero-shot encoders and the main runs of
    ``grid.tatoeba_seeds`` (as the evaluation stage)."""
    params = params or fake_params()
    g = params["grid"]
    names = []
    for cfg in enumerate_runs(params):
        n_train = len(LANGUAGES[params["folds"][cfg["fold"]]["train"]])
        main_grid = (cfg["layers"] == 12 and cfg["n_languages"] in (None, n_train) and cfg["alpha"] in (None, 0.5)
                     and cfg["strategy"] != "bm25" and cfg["fold"] in g["folds"] and "-steps" not in cfg["run"])
        with_tatoeba = main_grid and (cfg["strategy"] == "zeroshot" or cfg["seed"] in g["tatoeba_seeds"])
        write_run(results_dir, cfg, n_qids, with_tatoeba)
        names.append(cfg["run"])
    return names


def write_run(results_dir: Path, cfg: dict, n_qids: int, with_tatoeba: bool) -> None:
    """``results/<run>/{per_query.parquet,metrics.json}`` of one run; a budget-ladder run (``-steps<k>-``) gets the
    main run's per-query values plus :data:`LADDER_GAIN` and its own noise."""
    langs = LANGUAGES[cfg["eval_dataset"]]
    pq = per_query_frame(cfg, langs, n_qids)
    if "-steps" in cfg["run"]:
        gain = pq["setting"].map(dict(zip(("mo", "cr", "mul"), LADDER_GAIN[cfg["strategy"]])))
        pq["ap"] = np.clip(pq["ap"] + gain, 0.0, 1.0)
    out = Path(results_dir) / cfg["run"]
    out.mkdir(parents=True, exist_ok=True)
    pq.to_parquet(out / "per_query.parquet", index=False)
    (out / "metrics.json").write_text(json.dumps(metrics_json(cfg, pq, langs, with_tatoeba), indent=2,
                                                 sort_keys=True))


MIRACL_LANGUAGES = {"sw": 0.41, "te": None}  # a language with a corpus (its nDCG@10) and one without


def write_fake_miracl(results_dir: Path, runs) -> None:
    """``results/<run>/miracl.json`` as the ``miracl`` stage writes it: "ok" where :data:`MIRACL_LANGUAGES` has a
    value (a corpus is present), "corpus-absent" otherwise."""
    for i, run in enumerate(runs):
        per = {}
        for lang, ndcg in MIRACL_LANGUAGES.items():
            head = {"topics": 30, "judged_queries": 25, "lang": lang}
            per[lang] = ({**head, "status": "ok", "ndcg@10": ndcg + 0.01 * i, "recall@100": 0.8 + 0.01 * i,
                          "n_queries": 25} if ndcg is not None else
                         {**head, "status": "corpus-absent", "message": "no passages"})
        out = Path(results_dir) / run
        out.mkdir(parents=True, exist_ok=True)
        present = [l for l, v in MIRACL_LANGUAGES.items() if v is not None]
        (out / "miracl.json").write_text(json.dumps({"miracl_dev": {"run": run, "languages_with_corpus": present,
                                                                    "per_language": per}}, indent=2))


def make_report_root(root: Path, params: dict | None = None) -> Path:
    """A working directory like the repository's for the report stages: params.yaml (the repository's, with the
    small ``grid`` and ``folds`` of ``params``), results/ (fake) and paper/ (main.tex, reported.yaml)."""
    params = params or fake_params()
    root.mkdir(parents=True, exist_ok=True)
    full = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    full.update(params)
    fold, seed = next((f, seeds[0]) for (f, s), seeds in main_cells(full).items() if s == "hybrid")
    full["miracl"].update({"runs": {f"{fold}-zeroshot": "models/e5-small", f"{fold}-hybrid-s{seed}": "models/hybrid"},
                           "languages": list(MIRACL_LANGUAGES)})
    (root / "params.yaml").write_text(yaml.safe_dump(full, sort_keys=False))
    write_fake_results(root / "results", params)
    write_fake_miracl(root / "results", full["miracl"]["runs"])
    (root / "paper").mkdir(exist_ok=True)
    for name in ("main.tex", "reported.yaml"):
        shutil.copy(REPO / "paper" / name, root / "paper" / name)
    return root


def run_notebook(root: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    """``python src/stages/report.py notebooks/<name>.ipynb --params params.yaml`` in ``root`` (the DVC command)."""
    cmd = [sys.executable, str(REPO / "src" / "stages" / "report.py"), str(REPO / "notebooks" / f"{name}.ipynb"),
           "--params", "params.yaml", *extra]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True)


_CACHE: dict[str, Path] = {}


def executed_reports(tmp_path_factory) -> Path:
    """A report root (see :func:`make_report_root`) in which all four notebooks have run; made once per
    test session and shared by the tests that need the generated tables and figures."""
    if "root" not in _CACHE:
        root = make_report_root(tmp_path_factory.mktemp("report") / "repo")
        for name in NOTEBOOKS:
            proc = run_notebook(root, name)
            if proc.returncode != 0:
                raise AssertionError(f"notebook {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
        _CACHE["root"] = root
    return _CACHE["root"]


LADDER = {"fold": "mlqa2xquad", "steps": [480], "strategies": ["xx", "xy", "hybrid"], "seeds": [1, 2, 3]}
LADDER_GAIN = {"xx": (0.02, 0.0, 0.0), "xy": (0.0, 0.01, 0.01), "hybrid": (0.03, 0.03, 0.03)}  # mo, cr, mul


def ladder_config(params: dict, fold: str, strategy: str, seed: int, steps: int) -> dict:
    """The config of the budget-ladder run ``<fold>-steps<k>-<strategy>-s<seed>`` (``config.steps`` = k)."""
    run = f"{fold}-steps{steps}-{strategy}-s{seed}"
    train_langs = sorted(LANGUAGES[params["folds"][fold]["train"]])
    cfg = {"run": run, "fold": fold, "strategy": strategy, "seed": seed,
           "alpha": 0.5 if strategy == "hybrid" else None, "layers": 12, "n_languages": len(train_langs),
           "train_languages": train_langs, "eval_dataset": params["folds"][fold]["eval"]}
    cfg.update(training_keys(run, strategy, cfg["alpha"]), steps=steps)
    return cfg


def write_fake_ladder(results_dir: Path, params: dict | None = None, ladder: dict | None = None,
                      n_qids: int = 24) -> list[str]:
    """The budget ladder's longer runs of ``ladder`` (default :data:`LADDER`, whatever ``params`` configures) under
    ``results_dir`` (:func:`write_run`). Seeds may differ from the main grid's (the default has 3 against the main
    grid's 2). Returns the run names."""
    params = params or fake_params()
    ladder = ladder or LADDER
    names = []
    for k in ladder["steps"]:
        for s in ladder["strategies"]:
            for seed in ladder["seeds"]:
                cfg = ladder_config(params, ladder["fold"], s, seed, k)
                write_run(results_dir, cfg, n_qids, False)
                names.append(cfg["run"])
    return names
