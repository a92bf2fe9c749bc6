"""Integrations with other training libraries (each imports its library; nothing here is imported by the core).

- :mod:`hybridbatch.integrations.sentence_transformers` -- the strategies' batches in
  ``SentenceTransformerTrainer`` and the LAReQA evaluator as a sentence-transformers evaluator.
"""
