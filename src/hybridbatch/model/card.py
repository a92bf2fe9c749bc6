"""Hugging Face model cards (``README.md``) for the checkpoints this project trains.

:func:`render` is a pure function of a checkpoint's ``training_summary.json`` (written by
:func:`hybridbatch.training.loop.train`: a ``config`` block -- the fields of :class:`hybridbatch.records.RunRecord`
-- plus steps, batch size, batch counts and the validation history), of the run's
``results/<run>/metrics.json`` (written by the ``evaluate`` stage) and of its fold's zero-shot baseline
``results/<fold>-zeroshot/metrics.json`` (the base model, not fine-tuned). Both are read tolerantly: keys a
file predates (e.g. ``alpha_schedule`` or ``mono_share``) are shown as "n/a", never guessed. The card holds
no dates and no host-specific values, so the same inputs give the same bytes.

The card is built with ``huggingface_hub``: :func:`card_data` makes the metadata (:class:`ModelCardData`,
with a ``model-index`` of :class:`EvalResult` -- this run's metrics and, as separately named
``zeroshot_base_*`` metrics, its baseline's), and ``ModelCard.from_template`` fills the Jinja template
``card_template.md`` (shipped with the package) with the sections that
:func:`hybridbatch.model.card_sections.template_context` prepares from the facts of
:mod:`hybridbatch.model.card_facts` (data sets, base models, licences, metric labels). The
run's name (``model-index`` name, or ``model_name`` when there is no evaluation) and the weights' SHA-256 in
the body tie a card to one checkpoint: ``src/stages/export_model.py`` refuses to pair a card with another
run's weights. The usage snippets load ``model_id`` (``repo_id``, else the checkpoint's directory
``models/<run>``); :func:`with_repo_id` points them at a hub repository.

Licence of the weights. The base encoders are permissively licensed (multilingual-E5 and XLM-R: MIT;
LaBSE: Apache-2.0); the training data are not all (MLQA-R: CC BY-NC 4.0). A card states the most
restrictive licence among its training data (``cc-by-nc-4.0`` for a model trained on MLQA-R,
``cc-by-sa-4.0`` on XQuAD-R), a deliberately conservative choice; ``other`` when the training data's
licences cannot be combined into one or are unknown. ``render(..., license=...)`` overrides it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from hybridbatch.model.card_facts import (  # noqa: F401 (re-exported: the card's public names)
    ARTIFACT_BIBTEX, BASE_MODELS, DATASETS, DEFAULT_SETTINGS, HYPERPARAMETERS, PAPER_BIBTEX, TATOEBA, WEIGHTS_LINE,
    DatasetInfo, _TATOEBA_LABELS, _is_number, _sources, base_model_info, combined_license, comparable, eval_blocks,
    index_keys, metric_label, run_config, run_name)
from hybridbatch.model.card_sections import template_context

PIPELINE_TAG = "sentence-similarity"
WEIGHTS_FILE = "model.safetensors"
#: the Jinja template of the card's body (package data: pyproject ``[tool.setuptools.package-data]``)
TEMPLATE = Path(__file__).with_name("card_template.md")
_WEIGHTS_RE = re.compile(r"^- \*\*Weights\*\*: `model\.safetensors`, SHA-256 `([0-9a-f]{64})`$", re.MULTILINE)
#: the line of each usage snippet that names the model it loads (rewritten by :func:`with_repo_id`)
_MODEL_ID_RE = re.compile(r'^model_id = "[^"\n]*"', re.MULTILINE)
_REPO_ID_RE = re.compile(r"[\w.\-/]+")
#: model-index task of the LAReQA and Tatoeba evaluations
TASK_TYPE = "text-retrieval"
#: prefix of the model-index metric types that hold the zero-shot base model's value, not this model's
BASELINE_PREFIX = "zeroshot_base_"


def eval_results(metrics: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> list:
    """The ``model-index`` entries: this run's metrics, then (types ``zeroshot_base_*``) its baseline's where
    it used the same pool, per evaluation set; Tatoeba's accuracies (types ``acc1_*``) where present."""
    from huggingface_hub import EvalResult  # noqa: PLC0415

    def entries(block, keys, info, task_name, of_baseline=False, kind=""):
        prefix, note = (BASELINE_PREFIX, " (base model, zero-shot)") if of_baseline else ("", "")
        return [EvalResult(task_type=TASK_TYPE, task_name=task_name, dataset_type=info.index_type or info.name,
                           dataset_name=info.name, dataset_split=info.split, metric_type=prefix + kind + key,
                           metric_name=metric_label(key) + note, metric_value=round(float(block[key]), 4))
                for key in keys if _is_number(block.get(key))]

    results, base_blocks = [], eval_blocks(baseline or {})
    for name, block in eval_blocks(metrics).items():
        info = DATASETS.get(name) or DatasetInfo(name, "other", "unknown", "", None, "", index_type=name)
        results += entries(block, index_keys(block), info, "LAReQA answer retrieval")
        if comparable(block, base_blocks.get(name)):
            results += entries(base_blocks[name], index_keys(block), info, "LAReQA answer retrieval", True)
    tatoeba, base = metrics.get("tatoeba"), (baseline or {}).get("tatoeba")
    if isinstance(tatoeba, dict) and _is_number(tatoeba.get("mean")):
        results += entries(tatoeba, list(_TATOEBA_LABELS), TATOEBA, "Bitext retrieval", kind="acc1_")
        if comparable(tatoeba, base):
            results += entries(base, list(_TATOEBA_LABELS), TATOEBA, "Bitext retrieval", True, kind="acc1_")
    return results


# -- the card's metadata ----------------------------------------------------------------------------------

def card_data(summary: Mapping[str, Any], metrics: Mapping[str, Any] | None = None,
              baseline: Mapping[str, Any] | None = None, *, library_name: str = "sentence-transformers",
              license: str | None = None):
    """The card's metadata as ``huggingface_hub.ModelCardData`` (with its ``model-index``)."""
    from huggingface_hub import ModelCardData  # noqa: PLC0415

    metrics = metrics or {}
    config = run_config(summary, metrics)
    sources = _sources(summary, config)
    langs = set(config.get("train_languages") or [])
    langs |= {lang for block in eval_blocks(metrics).values() for lang in block.get("languages") or []}
    hub, base_licence, _ = base_model_info(config.get("base_model"))
    licence = license or combined_license([*(DATASETS[s].license if s in DATASETS else None for s in sources),
                                           *([base_licence] if hub else [])])
    strategy = config.get("strategy")
    datasets = sorted({DATASETS[s].hub_id for s in sources if s in DATASETS and DATASETS[s].hub_id})
    run = config.get("run")
    results = eval_results(metrics, baseline) if run else []
    return ModelCardData(
        language=sorted(langs) or None, license=licence,
        license_name="training-data-licences" if licence == "other" else None, library_name=library_name,
        tags=["sentence-transformers", "sentence-similarity", "feature-extraction", "dense-retrieval",
              "multilingual", "cross-lingual-retrieval", "hybridbatch",
              *([f"batch-strategy-{strategy}"] if strategy else [])],
        base_model=hub, datasets=datasets or None, pipeline_tag=PIPELINE_TAG, model_name=run,
        eval_results=results or None)


def front_matter(summary: Mapping[str, Any], metrics: Mapping[str, Any] | None = None,
                 baseline: Mapping[str, Any] | None = None, **kwargs) -> dict[str, Any]:
    """The card's YAML metadata as plain data (key order = the order written)."""
    return card_data(summary, metrics, baseline, **kwargs).to_dict()


# -- the card ---------------------------------------------------------------------------------------------

def render(summary: Mapping[str, Any], metrics: Mapping[str, Any] | None = None, *,
           baseline: Mapping[str, Any] | None = None, library_name: str = "sentence-transformers",
           settings: Mapping[str, Any] | None = None, hyperparameters: Mapping[str, Any] | None = None,
           weights_sha256: str | None = None, repo_id: str | None = None, license: str | None = None) -> str:
    """The model card (``README.md`` text) of one trained checkpoint.

    ``summary``: the checkpoint's ``training_summary.json``; ``metrics``: ``results/<run>/metrics.json``
    (``None``/empty: no evaluation section); ``baseline``: the fold's ``results/<fold>-zeroshot/metrics.json``
    (shown beside the run's numbers where it used the same pool); ``settings``: the checkpoint's
    ``hybridbatch_encoder.json`` (pooling, prefixes, max length); ``hyperparameters``: params.yaml ``train``
    values (keys of :data:`HYPERPARAMETERS` are shown); ``weights_sha256``: of ``model.safetensors``;
    ``repo_id``: what the usage snippets load (default ``models/<run>``); ``license``: overrides the licence
    derived from the training data.
    """
    from huggingface_hub import ModelCard  # noqa: PLC0415

    if repo_id is not None and not _REPO_ID_RE.fullmatch(repo_id):
        raise ValueError(f"not a repository id or directory: {repo_id!r}")
    data = card_data(summary, metrics, baseline, library_name=library_name, license=license)
    context = template_context(summary, metrics or {}, baseline, library_name=library_name, settings=settings,
                               hyperparameters=hyperparameters, weights_sha256=weights_sha256, repo_id=repo_id)
    card = ModelCard.from_template(data, template_path=str(TEMPLATE), **context)
    return str(card).rstrip("\n") + "\n"


# -- reading a card back ----------------------------------------------------------------------------------

def parse_card(text: str) -> tuple[dict[str, Any], str]:
    """(front matter, body) of a card; ValueError when it has no YAML front matter."""
    if not text.startswith("---\n"):
        raise ValueError("no YAML front matter (the card must start with '---')")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ValueError("unterminated YAML front matter")
    try:
        meta = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"front matter is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(meta, dict):
        raise ValueError("the front matter is not a mapping")
    return meta, text[end + 5:]


def card_run_name(meta: Mapping[str, Any]) -> str | None:
    """The run a card describes: its ``model-index`` name, else its ``model_name``."""
    index = meta.get("model-index")
    if isinstance(index, list) and index and isinstance(index[0], dict) and index[0].get("name"):
        return str(index[0]["name"])
    return meta.get("model_name")


def card_weights_sha256(text: str) -> str | None:
    """The SHA-256 of ``model.safetensors`` a card names, if any."""
    m = _WEIGHTS_RE.search(text)
    return m.group(1) if m else None


def with_repo_id(text: str, repo_id: str) -> str:
    """The card with its usage snippets loading ``repo_id`` (a hub id such as ``org/name``)."""
    if not _REPO_ID_RE.fullmatch(repo_id):
        raise ValueError(f"not a repository id: {repo_id!r}")
    return _MODEL_ID_RE.sub(f'model_id = "{repo_id}"', text)
