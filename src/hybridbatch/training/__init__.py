"""Training: the contrastive loss, GradCache, data parallelism, resumable checkpoints and the training loop."""
