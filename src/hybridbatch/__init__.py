"""hybridbatch: hybrid batch training for multilingual dense retrieval.

Reproduction artifact for Elmahdy, Lin & Ahmad (2024), "Synergistic Approach for Simultaneous
Optimization of Monolingual, Cross-lingual, and Multilingual Information Retrieval".

Layout, bottom floor first (a module imports only from its own floor or below; docs/ARCHITECTURE.md):

    io, folds, params, overlays, records,   -- the shared base: atomic writes; the fold definition; the one
    strategies, grid                           params reader and validator; named overlays; a run's record;
                                               the strategy registry; run names and the experiment grid
    sampling/    pools, samplers, build, rows -- batch samplers (numpy only); rows: over a user's own rows
    data/        raw, training, sources     -- vendored data, the questions a run trains on, extra sources
    model/       encoder, e5import, e5s1, hub, card, card_facts, card_sections (+ card_template.md)
    training/    losses, gradcache, distributed, checkpoints, loop
    evaluation/  metrics, lareqa, any_model, bm25, tatoeba, miracl, miracl_corpus, cache
    stats/       inference, seeded, bounds, simulation
    reporting/   results, significance, primary, secondary, ladder, latex, tables, language_tables, curves,
                 readme
    integrations/ sentence_transformers -- the strategy batch sampler, trainer and evaluator for sentence-transformers
    pipeline/    plan, workers, dvcrun, study, quickcheck, reproduce, deps
"""

__version__ = "0.1.0"
