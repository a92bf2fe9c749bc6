"""Evaluation: rank metrics (numpy only), the LAReQA protocol (Mo./Cr./Mul.) for any retriever, BM25, Tatoeba,
MIRACL, and the embedding cache."""
