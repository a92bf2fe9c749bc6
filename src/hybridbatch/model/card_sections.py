"""The body of a model card: what :func:`template_context` hands to the Jinja template ``card_template.md``.

Every value comes from the run's own record (``training_summary.json``, ``metrics.json`` and its
``config``), from the fold's zero-shot baseline (``results/<fold>-zeroshot/metrics.json``) or from the
checkpoint's encoder settings; a missing fact is shown as "n/a" or left out, never guessed. Prose that does
not depend on the run lives in the template.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from hybridbatch.model.card_facts import (ARTIFACT_BIBTEX, DATASETS, DEFAULT_SETTINGS, HYPERPARAMETERS, PAPER_BIBTEX,
                                    WEIGHTS_LINE, _NC, _num, _table, _val, _worse, base_model_info, comparable,
                                    eval_blocks, index_keys, metric_label, run_config, table_keys, _sources)
from hybridbatch.strategies import STRATEGIES


def template_context(summary: Mapping[str, Any], metrics: Mapping[str, Any], baseline: Mapping[str, Any] | None,
                     *, library_name: str, settings: Mapping[str, Any] | None,
                     hyperparameters: Mapping[str, Any] | None, weights_sha256: str | None,
                     repo_id: str | None) -> dict[str, Any]:
    """The template's variables (see ``card_template.md``)."""
    config = run_config(summary, metrics)
    run = config.get("run") or "model"
    strategy = config.get("strategy")
    strat = STRATEGIES.get(strategy) if strategy else None
    return {
        "run": run,
        "strategy_label": strat.label if strat else (strategy or "unknown"),
        "strategy_description": strat.description if strat else "",
        "model_facts": model_facts(config, summary, settings, library_name, weights_sha256),
        "data_table": data_table(_sources(summary, config)),
        "data_facts": data_facts(config, summary),
        "procedure_table": procedure_table(config, summary, hyperparameters),
        "validation_table": validation_table(summary.get("validation") or [], config.get("best_step")),
        "has_hyperparameters": bool(hyperparameters),
        "evaluations": evaluations(metrics, baseline),
        "baseline_run": (baseline or {}).get("config", {}).get("run") if baseline else None,
        "tatoeba": tatoeba_text(metrics, baseline),
        "usage": usage(settings, library_name, repo_id or f"models/{run}"),
        "limitations": limitations(config, summary, metrics, baseline),
        "paper_bibtex": PAPER_BIBTEX,
        "artifact_bibtex": ARTIFACT_BIBTEX,
    }


def model_facts(config: Mapping[str, Any], summary: Mapping[str, Any], settings: Mapping[str, Any] | None,
                library_name: str, weights_sha256: str | None) -> list[str]:
    """The bullets of the "Model" section."""
    hub, _, note = base_model_info(config.get("base_model"))
    base = config.get("base_model")
    facts = [f"**Base model**: [{hub}](https://huggingface.co/{hub}) (checkpoint `{base}`"
             + (f"; {note}" if note else "") + ")" if hub else f"**Base model**: {_val(base)}"]
    if settings:
        facts.append(f"**Encoding**: {settings.get('pooling', 'n/a')} pooling"
                     + (", L2-normalised" if settings.get("normalize", True) else "")
                     + f"; query prefix `{settings.get('query_prefix', '')!s}`, passage prefix "
                     f"`{settings.get('passage_prefix', '')!s}`; at most {settings.get('max_length', 'n/a')} tokens")
    layers, params = config.get("layers"), config.get("parameters") or summary.get("parameters")
    if layers or params:
        outside = config.get("non_embedding_parameters") or summary.get("non_embedding_parameters")
        facts.append(f"**Size**: {_num(layers)} layers, {_num(params)} parameters ({_num(outside)} outside the "
                     "word embeddings)")
    if weights_sha256:
        facts.append(WEIGHTS_LINE.format(sha=weights_sha256)[2:])
    facts.append("**Library**: loads with "
                 + ("`sentence-transformers` (modules.json, prompts `query` / `passage`), "
                    if library_name == "sentence-transformers" else "")
                 + "plain `transformers` (`AutoModel`, then pool as below), or `hybridbatch.model.encoder.DualEncoder`")
    return facts


def data_table(sources: Sequence[str]) -> str:
    rows = []
    for s in sources or ["n/a"]:
        info = DATASETS.get(s)
        rows.append([info.name if info else _val(s), info.license_label if info else "unknown (see its source)",
                     f"{info.description}; {info.url}" if info else "a `train.sources` entry (params.yaml)"])
    return _table(["source", "licence", "what"], rows)


def data_facts(config: Mapping[str, Any], summary: Mapping[str, Any]) -> list[str]:
    n_langs = (summary.get("config") or {}).get("n_languages")  # set by training for a language-ladder run only
    return [f"**Training languages**: {_val(config.get('train_languages'))}"
            + (f" (the first {n_langs} of the fold's language order)" if n_langs else ""),
            f"**Questions trained on**: {_num(summary.get('train_questions'))} (answer groups held out for "
            "validation are never trained on)",
            f"**Fold**: {_val(config.get('fold'))} (train on {_val(config.get('train_dataset'))}, evaluate "
            f"zero-shot on {_val(config.get('eval_dataset'))})"]


def procedure_table(config: Mapping[str, Any], summary: Mapping[str, Any],
                    hyperparameters: Mapping[str, Any] | None) -> str:
    strategy = config.get("strategy")
    strat = STRATEGIES.get(strategy) if strategy else None
    rows = [
        ("strategy", f"{_val(strategy)} ({strat.label if strat else strategy or 'unknown'})"),
        ("alpha (P(monolingual batch), hybrid only)", _val(config.get("alpha"))),
        ("alpha schedule", _val(config.get("alpha_schedule"))),
        ("realised monolingual share (all steps)", _val(config.get("mono_share"))),
        ("monolingual share of the kept steps", _val(config.get("mono_share_kept"))),
        ("optimiser steps", _val(config.get("steps"))),
        ("evaluated step (fixed budget: the last step)" if (hyperparameters or {}).get("keep_best") is False else
         "kept step (early stopping on validation loss)", _val(config.get("best_step"))),
        ("batch size (pairs)", _val(config.get("batch_size"))),
        ("batches by kind", _val(summary.get("batches"))),
        ("seed", _val(config.get("seed"))),
    ]
    rows += [(key, _val(hyperparameters[key])) for key in HYPERPARAMETERS if key in (hyperparameters or {})]
    return _table(["setting", "value"], [list(r) for r in rows])


def validation_table(history: Sequence[Mapping[str, Any]], kept: Any) -> str | None:
    if not history:
        return None
    return _table(["step", "validation loss"],
                  [[f"{h.get('step')}" + (" (kept)" if kept is not None and h.get("step") == kept else ""),
                    _num(h.get("val_loss"), 4)] for h in history])


# -- evaluation -------------------------------------------------------------------------------------------

def pool_text(block: Mapping[str, Any]) -> str:
    """Which pool an evaluation ran on, from its own record (``sample_fraction``, counts)."""
    text = block.get("candidate_text")
    counts = (f"{_num(block.get('n_queries'))} queries against {_num(block.get('n_candidates'))} candidate "
              + (f"{text}s" if isinstance(text, str) else "texts"))
    frac = block.get("sample_fraction")
    if isinstance(frac, (int, float)) and frac < 1:
        return (f"a seeded {frac:.0%} sample of the set's paragraphs ({counts}; a smaller pool is easier than the "
                "full one: not comparable with the paper's numbers)")
    if frac is None:
        return f"{counts} (whether the pool was sampled is not recorded)"
    return f"the full pool ({counts})"


def _digits(key: str) -> int:
    return 1 if key == "rank_distance" else 3


def metrics_table(block: Mapping[str, Any], base: Mapping[str, Any] | None) -> str:
    """One row per metric: this run, and where given the base model zero-shot and the change."""
    rows = []
    for key in table_keys(block):
        cells = [metric_label(key), _num(float(block[key]), _digits(key))]
        if base is not None:
            b = base.get(key)
            cells += ([_num(float(b), _digits(key)), f"{block[key] - b:+.{_digits(key)}f}"]
                      if isinstance(b, (int, float)) else ["n/a", "n/a"])
        rows.append(cells)
    header = ["metric", "this run"] + (["base model, zero-shot", "change"] if base is not None else [])
    return _table(header, rows)


def evaluations(metrics: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One entry per LAReQA evaluation set: title, pool, table, notes."""
    base_blocks = eval_blocks(baseline or {})
    out = []
    for name, block in eval_blocks(metrics).items():
        info = DATASETS.get(name)
        base = base_blocks.get(name)
        same = comparable(block, base)
        notes = []
        if baseline and not same:
            notes.append("The zero-shot baseline was evaluated on another pool: it is not shown.")
        for part in ("seen", "unseen"):
            sub = block.get(part)
            if isinstance(sub, dict) and sub.get("languages"):
                notes.append(f"**{part.capitalize()} languages** ({_val(sub.get('languages'))}): mAP Mo. "
                             f"{_num(sub.get('map_mo'))}, Cr. {_num(sub.get('map_cr'))}, Mul. "
                             f"{_num(sub.get('map_mul'))}; rank distance {_num(sub.get('rank_distance'), 1)}")
        out.append({"title": info.name if info else name, "candidate_text": _val(block.get("candidate_text")),
                    "pool": pool_text(block), "languages": _val(block.get("languages")),
                    "table": metrics_table(block, base if same else None), "notes": notes})
    return out


def tatoeba_text(metrics: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> str | None:
    t = metrics.get("tatoeba")
    if not isinstance(t, dict) or t.get("mean") is None:
        return None
    b = (baseline or {}).get("tatoeba") if comparable(t, (baseline or {}).get("tatoeba")) else {}
    base = (f" Base model, zero-shot: mean {_num(b.get('mean'))} (x->en {_num(b.get('x2en'))}, en->x "
            f"{_num(b.get('en2x'))})." if b.get("mean") is not None else "")
    return (f"Mean {_num(t.get('mean'))} (x->en {_num(t.get('x2en'))}, en->x {_num(t.get('en2x'))}) over "
            f"{_val(sorted(t.get('per_language') or {}))} paired with English.{base}")


# -- usage and limitations --------------------------------------------------------------------------------

def usage(settings: Mapping[str, Any] | None, library_name: str, model_id: str) -> dict[str, Any]:
    s = {**DEFAULT_SETTINGS, **(settings or {})}
    return {"model_id": model_id, "sentence_transformers": library_name == "sentence-transformers",
            "pooling": s["pooling"], "normalize": bool(s["normalize"]), "max_length": int(s["max_length"]),
            "query_prefix": repr(s["query_prefix"] or ""), "passage_prefix": repr(s["passage_prefix"] or "")}


def _budget(config: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    steps, batch = config.get("steps"), config.get("batch_size")
    if not (isinstance(steps, int) and isinstance(batch, int)):
        return "The training budget (steps, batch size) is not in this run's record."
    questions, kept = summary.get("train_questions"), config.get("best_step")
    return (f"Fine-tuned for {steps:,} optimiser steps of {batch} question-answer pairs ({steps * batch:,} pairs "
            "in all" + (f", from {questions:,} training questions" if isinstance(questions, int) else "")
            + (f"; the checkpoint of step {kept} is kept" if kept is not None else "") + "): a short budget. "
            "The checkpoint exists to compare batch strategies, not to be a strong general-purpose retriever.")


def _against_baseline(name: str, block: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    worse = [f"{metric_label(k)} {_num(float(base[k]), _digits(k))} -> {_num(float(block[k]), _digits(k))}"
             for k in index_keys(block) if isinstance(base.get(k), (int, float)) and _worse(k, block[k], base[k])]
    out = [f"On {name} it is worse than its base model zero-shot on: {'; '.join(worse)}." if worse else
           f"On {name} it is at least as good as its base model zero-shot on every metric of the model index."]
    if isinstance(block.get("same_lang@1"), (int, float)):
        was = base.get("same_lang@1")
        out.append(f"Language bias on {name}: in the multilingual pool {block['same_lang@1']:.1%} of the "
                   "top-1 candidates are in the query's language"
                   + (f" (base model: {was:.1%})" if isinstance(was, (int, float)) else "") + ".")
    return out


def limitations(config: Mapping[str, Any], summary: Mapping[str, Any], metrics: Mapping[str, Any],
                baseline: Mapping[str, Any] | None) -> list[str]:
    """The card's limitations, from the run's own record."""
    seed = config.get("seed")
    out = [_budget(config, summary),
           f"A single training run (seed {seed}): variation across seeds is not shown here; compare runs with "
           "other seeds before reading a difference between strategies." if seed is not None
           else "The training seed is not in this run's record."]
    blocks, base_blocks = eval_blocks(metrics), eval_blocks(baseline or {})
    for name, block in blocks.items():
        title = DATASETS[name].name if name in DATASETS else name
        out.append(f"Evaluated zero-shot on {title}: {pool_text(block)}, in {_val(block.get('languages'))}; "
                   "other domains, long passages and other languages are untested.")
        if comparable(block, base_blocks.get(name)):
            out += _against_baseline(title, block, base_blocks[name])
    if not blocks:
        out.append("No retrieval evaluation is recorded for this checkpoint.")
    t, bt = metrics.get("tatoeba"), (baseline or {}).get("tatoeba")
    if comparable(t, bt) and all(isinstance(x.get("mean"), (int, float)) for x in (t, bt)) and t["mean"] < bt["mean"]:
        out.append(f"On Tatoeba it is worse than its base model zero-shot: mean accuracy@1 {_num(bt['mean'])} -> "
                   f"{_num(t['mean'])}.")
    out.append("Trained on narrow-domain Wikipedia question-answer data; the base model's biases carry over.")
    nc = [DATASETS[s].name for s in _sources(summary, config) if s in DATASETS and DATASETS[s].license == _NC]
    if nc:
        out.append(f"Non-commercial restrictions of the training data ({', '.join(nc)}: CC BY-NC 4.0) are carried "
                   "by this card's licence: research use only.")
    out.append("Check the licence (front matter) and the training data's licences before any use.")
    return out
