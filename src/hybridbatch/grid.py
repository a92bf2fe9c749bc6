"""Which runs make each study of the report: the params file's ``grid`` / ``folds``, run names and run specs.

Run names (docs/PROTOCOL.md §1.6, params.yaml ``grid`` / ``folds``; see :func:`run_name`):

* main table: ``<fold>-<strategy>-s<seed>``, the zero-shot encoder ``<fold>-zeroshot`` and the lexical
  baseline ``<fold>-bm25`` (monolingual setting only); the runs are the blocks of ``grid.main`` (each a
  cross product folds x strategies x seeds, so a fold x strategy cell has its own seeds; :func:`main_blocks`);
* budget ladder: ``<fold>-steps<k>-<strategy>-s<seed>`` (``grid.ladder``: ``train.steps`` replaced by k); the
  main budget is the main run;
* model size: ``<fold>-L<k>-<strategy>-s<seed>`` and ``<fold>-L<k>-zeroshot``; the full encoder is the main run;
* training languages: ``<fold>-n<k>-<strategy>-s<seed>``; all languages is the main run;
* alpha sweep: ``<fold>-hybrid-a<alpha>-s<seed>``; alpha 0.5 is the main hybrid run, 0 the X-Y run and 1 the
  X-X-mono run (the hybrid sampler with alpha 0 / 1 draws exactly their batch sequences).

Also the report's fixed vocabulary (datasets, settings, studies). The strategies (labels, display order,
colours, which are trained) come from :mod:`hybridbatch.strategies` only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from hybridbatch import strategies
from hybridbatch.folds import Fold, fold_from
from hybridbatch.params import read_params

DATASET_LABELS = {"xquad_r": "XQuAD-R", "mlqa_r": "MLQA-R"}
DATASET_ORDER = ("xquad_r", "mlqa_r")  # the paper's column order
SETTINGS = ("mo", "cr", "mul")
SETTING_LABELS = {"mo": "Mo.", "cr": "Cr.", "mul": "Mul."}
SETTING_NAMES = {"mo": "Monolingual", "cr": "Cross-lingual", "mul": "Multilingual"}
MODEL_NOTE = "multilingual-e5-small, offline protocol"
OURS = f"ours ({MODEL_NOTE})"
STUDIES = ("main", "size", "languages", "alpha", "ladder")

SPEC_COLUMNS = ["study", "run", "fold", "train_dataset", "eval_dataset", "strategy", "seed", "layers", "n_languages",
                "alpha", "steps"]


def is_reference(strategy: str) -> bool:
    """A reference system (zero-shot encoder, BM25): registered and not trained, so it has no seed."""
    return strategy in strategies.STRATEGIES and not strategies.STRATEGIES[strategy].trained


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


def ordered(items: Iterable[str], order: Sequence[str]) -> list[str]:
    """``items`` (unique) in ``order``; items not in ``order`` follow, in their first-seen order."""
    seen = list(dict.fromkeys(items))
    return [x for x in order if x in seen] + [x for x in seen if x not in order]


def strategy_rank(strategy: str) -> int:
    """Position of ``strategy`` in the registry's display order (unknown ones last)."""
    return strategies.ORDER.index(strategy) if strategy in strategies.ORDER else len(strategies.ORDER)


# ------------------------------------------------------------------------------ params and run names


def load_params(path: str | os.PathLike) -> dict:
    """The params file (:func:`hybridbatch.params.read_params`, the one reader), checked for the two sections
    the report reads (``grid`` and ``folds``)."""
    params = read_params(path)
    for section in ("grid", "folds"):
        if not isinstance(params.get(section), dict):
            raise KeyError(f"{path} has no '{section}' section")
    return params


def fold_spec(params: dict, fold: str) -> Fold:
    """``folds.<fold>`` of a params mapping, validated: the one fold definition (:mod:`hybridbatch.folds`)."""
    return fold_from(params["folds"], fold, "params")


def untrainable_languages(params: dict, fold: str, languages: Iterable[str]) -> list[str]:
    """Evaluation ``languages`` that no run of ``fold`` can train on: outside ``folds.<fold>.language_order``
    (XQuAD-R's el, ru, th, tr in fold mlqa2xquad)."""
    order = set(fold_spec(params, fold).language_order)
    return sorted(l for l in languages if l not in order)


def run_name(fold: str, strategy: str, seed: int | None = None, *, layers: int | None = None,
             n_languages: int | None = None, alpha: float | None = None, steps: int | None = None) -> str:
    """The results directory name of one run (the DVC stages' names, see the module docstring).

    ``alpha`` is written as the params file gives it (``str`` of the YAML value: 0.25 -> ``a0.25``), as
    DVC's ``${item.alpha}`` does. ``steps``: a budget-ladder run (None: the main budget, ``train.steps``).
    """
    prefix = fold + (f"-L{layers}" if layers is not None else "")
    prefix += f"-n{n_languages}" if n_languages is not None else ""
    prefix += f"-steps{steps}" if steps is not None else ""
    if is_reference(strategy):
        if steps is not None or (strategy == "bm25" and (layers is not None or n_languages is not None)):
            raise ValueError(f"the {strategy} reference has no training budget, model size or training languages")
        return f"{prefix}-{strategy}"
    if seed is None:
        raise ValueError(f"a trained run ({strategy}) needs a seed")
    if alpha is not None:
        if strategy != "hybrid":
            raise ValueError(f"alpha is a hybrid setting, not one of {strategy!r}")
        return f"{prefix}-hybrid-a{alpha}-s{seed}"
    return f"{prefix}-{strategy}-s{seed}"


def _spec(params: dict, study: str, fold: str, strategy: str, seed=None, layers=None, n_languages=None,
          alpha=None, named_alpha=None, steps=None) -> dict:
    f = fold_spec(params, fold)
    return {"study": study,
            "run": run_name(fold, strategy, seed, layers=layers, n_languages=n_languages, alpha=named_alpha,
                            steps=steps),
            "fold": fold, "train_dataset": f.train, "eval_dataset": f.eval, "strategy": strategy,
            "seed": seed, "layers": layers, "n_languages": n_languages, "alpha": alpha, "steps": steps}


def main_blocks(params: dict) -> dict[str, dict[str, list]]:
    """The main table's blocks, ``{name: {folds, strategies, seeds}}`` (``grid.main``, in its order). An older
    params file (one cross product ``grid.folds`` x ``grid.strategies`` x ``grid.seeds``) is one block "main"."""
    g = params["grid"]
    if g.get("main") is None:
        return {"main": {"folds": list(g["folds"]), "strategies": list(g["strategies"]), "seeds": list(g["seeds"])}}
    return {name: {k: list(b.get(k) or []) for k in ("folds", "strategies", "seeds")} for name, b in g["main"].items()}


def cell_seeds(params: dict) -> dict[tuple[str, str], list[int]]:
    """``{(fold, strategy): seeds}`` of every main-table cell with runs (blocks do not overlap)."""
    return {(f, s): list(b["seeds"]) for b in main_blocks(params).values() if b["seeds"]
            for f in b["folds"] for s in b["strategies"]}


def alpha_seeds(params: dict) -> list[int]:
    """The alpha sweep's seeds: ``grid.alpha_seeds`` (an older params file: ``grid.seeds``)."""
    g = params["grid"]
    return list(g["alpha_seeds"] if g.get("alpha_seeds") is not None else g.get("seeds") or [])


def tatoeba_seeds(params: dict) -> list[int]:
    """The seeds whose main runs are evaluated on Tatoeba too (``grid.tatoeba_seeds``; an older params file:
    every main run); the zero-shot encoder always is."""
    g = params["grid"]
    return list(g["tatoeba_seeds"] if g.get("tatoeba_seeds") is not None else g.get("seeds") or [])


def scaling_seeds(params: dict) -> list[int]:
    """The seeds of the scaling studies: ``grid.scaling_seeds`` (a list; an older params file's single
    ``grid.scaling_seed`` is read as a list of one)."""
    g = params["grid"]
    if g.get("scaling_seeds") is not None:
        return list(g["scaling_seeds"])
    return [g["scaling_seed"]] if g.get("scaling_seed") is not None else []


def grid_runs(params: dict, study: str | None = None) -> pd.DataFrame:
    """The runs of one study (or of all of them), one row each, built from ``params['grid']``.

    Columns (:data:`SPEC_COLUMNS`): ``study`` (main | size | languages | alpha | ladder), ``run``, ``fold``,
    ``train_dataset``, ``eval_dataset``, ``strategy``, ``seed``, ``layers``, ``n_languages``, ``alpha``, ``steps``.
    A run serving several studies (a main run is the full-size point of the size ladder, ...) has one row per
    study. ``layers``, ``n_languages``, ``alpha`` and ``steps`` are None where the run's own config tells them
    (``report.load_results`` fills them in): the full encoder, all training languages, the main hybrid run's
    alpha, the main budget (``train.steps``). "main": per fold (display order) its zero-shot and BM25 runs, then
    each cell of :func:`main_blocks` (strategies in display order) with its seeds. The alpha study's endpoints are
    the X-Y run (alpha 0) and the X-X-mono run (alpha 1); it runs :func:`alpha_seeds`. The model-size and
    training-language studies run every seed of :func:`scaling_seeds`; the ladder ``grid.ladder``'s strategies x
    seeds per step count. A point's full-size / all-language / alpha-0.5 / main-budget run is the main run of
    that fold, strategy and seed where the main table has it.
    """
    if study is not None and study not in STUDIES:
        raise ValueError(f"unknown study {study!r}; one of {STUDIES}")
    g = params["grid"]
    cells = cell_seeds(params)
    rows: list[dict] = []

    def main_exists(fold, strategy, seed) -> bool:
        return seed in cells.get((fold, strategy), ())

    if study in (None, "main"):
        for fold in ordered([f for f, _ in cells] + list(g["folds"]), list(g["folds"])):
            rows.append(_spec(params, "main", fold, "zeroshot"))
            rows.append(_spec(params, "main", fold, "bm25"))
            for strategy in ordered([s for f, s in cells if f == fold], list(g["strategies"])):
                rows += [_spec(params, "main", fold, strategy, seed) for seed in cells[(fold, strategy)]]
    if study in (None, "size", "languages", "alpha"):
        rows += _scaling_rows(params, study, main_exists)
    ladder = g.get("ladder") or {}
    if study in (None, "ladder") and ladder.get("fold") is not None:
        fold, lseeds = ladder["fold"], list(ladder.get("seeds") or [])
        lstrategies = list(ladder.get("strategies") or [])
        for k in list(ladder.get("steps") or []):
            rows += [_spec(params, "ladder", fold, s, seed, steps=k) for s in lstrategies for seed in lseeds]
        rows += [_spec(params, "ladder", fold, s, seed) for s in lstrategies for seed in lseeds
                 if ladder.get("steps") and main_exists(fold, s, seed)]
    return pd.DataFrame(rows, columns=SPEC_COLUMNS, dtype=object)


def _scaling_rows(params: dict, study: str | None, main_exists) -> list[dict]:
    """The rows of the size, languages and alpha studies (:func:`grid_runs`)."""
    g = params["grid"]
    fold, sseeds = g.get("scaling_fold"), scaling_seeds(params)
    scaling = list(g.get("scaling_strategies") or [])
    rows: list[dict] = []
    if fold is None:
        return rows
    if study in (None, "size"):
        for k in list(g.get("layers") or []):
            rows.append(_spec(params, "size", fold, "zeroshot", layers=k))
            rows += [_spec(params, "size", fold, s, seed, layers=k) for s in scaling for seed in sseeds]
        if fold in g["folds"]:
            rows.append(_spec(params, "size", fold, "zeroshot"))
        rows += [_spec(params, "size", fold, s, seed) for s in scaling for seed in sseeds if main_exists(fold, s, seed)]
    if study in (None, "languages"):
        for k in list(g.get("n_languages") or []):
            rows += [_spec(params, "languages", fold, s, seed, n_languages=k) for s in scaling for seed in sseeds]
        rows += [_spec(params, "languages", fold, s, seed) for s in scaling for seed in sseeds
                 if main_exists(fold, s, seed)]
    if study in (None, "alpha"):
        for seed in alpha_seeds(params):  # its 0 / 0.5 / 1 points are main runs of the same seed
            if main_exists(fold, "xy", seed):
                rows.append(_spec(params, "alpha", fold, "xy", seed, alpha=0.0))
            for a in list(g.get("alphas") or []):
                rows.append(_spec(params, "alpha", fold, "hybrid", seed, alpha=float(a), named_alpha=a))
            if main_exists(fold, "hybrid", seed):
                rows.append(_spec(params, "alpha", fold, "hybrid", seed))
            if main_exists(fold, "xx", seed):
                rows.append(_spec(params, "alpha", fold, "xx", seed, alpha=1.0))
    return rows


def trained_runs(params: dict) -> pd.DataFrame:
    """Every trained run of the grid once (a run serving several studies keeps its first row): the runs of the
    "training runs" table. Same columns as :func:`grid_runs`."""
    specs = grid_runs(params)
    specs = specs[[not is_reference(s) for s in specs["strategy"]]]
    return specs.drop_duplicates("run").reset_index(drop=True)
