"""Batch sampling (numpy only, the light core): question pools, the batch samplers of every strategy with their
invariants, and the builder that turns a registry entry of :mod:`hybridbatch.strategies` into a sampler."""
