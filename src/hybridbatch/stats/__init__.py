"""Statistics: macro means, cluster-bootstrap intervals, paired randomization tests, Holm; the seed-aware
comparison of systems; simulated per-query results for validating them."""
