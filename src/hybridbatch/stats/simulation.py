"""Simulated per-query results with the structure of the real data, for validating the statistics.

Languages as groups, qids shared across languages, per-qid effects, a per-seed system offset with sd
``tau`` and per-row noise: :func:`simulate_systems` draws two systems A and B (optionally a true macro
difference ``delta``). ``tests/test_stats.py`` checks the false-positive rate of
:func:`hybridbatch.stats.seeded.compare_runs` under a null with seed-to-seed variance; ``benchmarks/stats_power.py``
reports false-positive rates and power (figures in docs/statistics.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _simulation_layout(rng: np.random.Generator, n_qids: int, n_langs: int, coverage: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Row -> (language index, qid index) of a simulated setting; every qid kept in language 0."""
    gi, qi = np.meshgrid(np.arange(n_langs), np.arange(n_qids), indexing="ij")
    gi, qi = gi.ravel(), qi.ravel()
    if coverage < 1:
        keep = rng.random(len(gi)) < coverage
        keep[:n_qids] = True  # language 0 has every qid: no qid and no group is empty
        gi, qi = gi[keep], qi[keep]
    return gi, qi


def _simulate_values(rng: np.random.Generator, gi: np.ndarray, qi: np.ndarray, n_seeds: tuple[int, int],
                     delta: float, tau: float, sd_qid: float, sd_system_qid: float, sd_seed_qid: float,
                     sd_noise: float, sd_lang: float, base: float) -> tuple[np.ndarray, np.ndarray]:
    """(k_A, n_rows) and (k_B, n_rows) values of the model of :func:`simulate_systems`."""
    n_langs, n_qids = int(gi.max()) + 1, int(qi.max()) + 1
    common = base + rng.normal(0, sd_lang, n_langs)[gi] + rng.normal(0, sd_qid, n_qids)[qi]
    out = []
    for s, k in enumerate(n_seeds):
        system = common + rng.normal(0, sd_system_qid, n_qids)[qi] + (delta if s == 1 else 0.0)
        seeds = (system + rng.normal(0, tau, (int(k), 1)) + rng.normal(0, sd_seed_qid, (int(k), n_qids))[:, qi]
                 + rng.normal(0, sd_noise, (int(k), len(gi))))
        out.append(seeds)
    return out[0], out[1]


def simulate_systems(seed: int | np.random.Generator = 0, *, n_qids: int = 200, n_langs: int = 5,
                     n_seeds: tuple[int, int] = (2, 2), delta: float = 0.0, tau: float = 0.01,
                     sd_qid: float = 0.2, sd_system_qid: float = 0.05, sd_seed_qid: float = 0.05,
                     sd_noise: float = 0.15, sd_lang: float = 0.05, base: float = 0.6, coverage: float = 1.0,
                     setting: str = "mo") -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """Per-query frames of two systems A and B with the structure of the real data, for validating tests.

    Groups are languages (``(l, l)`` pairs, as in Mo.); every qid occurs in every language (or, with
    ``coverage < 1``, in a random subset, the same for every run, as in MLQA-R). The value of system s,
    seed i, language g, qid q is::

        base + lang[g] + u[q] + v[s, q] + b[s, i] + e[s, i, q] + e[s, i, g, q] + delta * (s == B)

    with ``lang ~ N(0, sd_lang)`` (fixed language difficulty), ``u ~ N(0, sd_qid)`` (question difficulty,
    shared by both systems), ``v ~ N(0, sd_system_qid)`` (a system's own question effects, the same in every
    seed), ``b ~ N(0, tau)`` (the per-seed offset of the whole run: what seed-averaged tests miss),
    ``e[s,i,q] ~ N(0, sd_seed_qid)`` (a seed's question effects, shared across languages) and row noise
    ``N(0, sd_noise)``. Values are not clipped to [0, 1], so the expected macro difference B - A is exactly
    ``delta``; ``delta = 0`` is the null (same mean, independent seed offsets). Returns ``(a_frames,
    b_frames)``, lists of ``n_seeds[0]`` and ``n_seeds[1]`` frames.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    gi, qi = _simulation_layout(rng, n_qids, n_langs, coverage)
    values_a, values_b = _simulate_values(rng, gi, qi, n_seeds, delta, tau, sd_qid, sd_system_qid, sd_seed_qid,
                                          sd_noise, sd_lang, base)
    langs = np.array([f"l{j}" for j in range(n_langs)])[gi]
    qids = np.array([f"q{i:05d}" for i in range(n_qids)])[qi]
    keys = pd.DataFrame({"setting": setting, "query_lang": langs, "corpus_lang": langs, "qid": qids})
    return ([keys.assign(ap=v) for v in values_a], [keys.assign(ap=v) for v in values_b])
