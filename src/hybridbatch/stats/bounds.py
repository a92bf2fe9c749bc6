"""One-sided test of a difference against a bound: "is the effect smaller than the paper's?" (docs/statistics.md,
docs/PREREGISTRATION.md §2).

H0 ``delta >= bound`` against H1 ``delta < bound``, on the same variance and degrees of freedom as the seed-aware
two-sided test of :mod:`hybridbatch.stats.seeded`: a question part ``V_q`` (``df_q`` = qids - 1) and a seed part
``V_s`` (Welch-Satterthwaite ``df_s``), each widened by its own Student t quantile and added in quadrature. The
one-sided upper bound at level ``1 - a`` is ``estimate + sqrt(V_q t_{df_q}(a)**2 + V_s t_{df_s}(a)**2)``
(``t_df(a)``: the upper ``a`` quantile); ``p`` is the ``a`` at which that bound just reaches ``bound``, so
``p < a`` exactly when the one-sided ``1 - a`` interval lies below ``bound``. With one part present it is the
ordinary one-sided t test of ``(estimate - bound) / se`` (Welch's when only the seed part is there).

A row of :func:`seeded.compare_runs` holds everything the test needs (``diff``, ``se_question``, ``n_queries``,
``se_seed``, ``df_seed``): :func:`below_bound_p` reads it, so the bound test uses exactly the superiority test's
variance.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from scipy import stats as sps

from hybridbatch.stats.seeded import _combined_interval

__all__ = ["shifted_one_sided_p", "one_sided_upper", "below_bound_p", "row_parts"]


def shifted_one_sided_p(estimate: float, bound: float, var_q: float, df_q: float, var_s: float = 0.0,
                        df_s: float = math.inf) -> float:
    """p of H0 ``delta >= bound`` against ``delta < bound`` (module docstring): small when ``estimate`` lies
    well below ``bound``; .5 at ``estimate == bound``; above .5 when the estimate exceeds the bound.

    It is half the two-sided p of ``estimate - bound == 0`` on the same interval (the two-sided interval at
    ``1 - 2a`` and the one-sided one at ``1 - a`` share their upper end), or one minus that half above the bound.
    """
    if not (np.isfinite(estimate) and np.isfinite(bound)):
        raise ValueError(f"estimate {estimate!r} and bound {bound!r} must be finite")
    d = float(estimate) - float(bound)
    _, _, p_two = _combined_interval(d, var_q, df_q, var_s, df_s, 0.95)
    return float(p_two / 2 if d < 0 else 1 - p_two / 2)


def one_sided_upper(estimate: float, var_q: float, df_q: float, var_s: float = 0.0, df_s: float = math.inf,
                    confidence: float = 0.95) -> float:
    """The upper end of the one-sided ``confidence`` interval of ``estimate`` (both parts, module docstring):
    ``shifted_one_sided_p(estimate, bound, ...) < 1 - confidence`` exactly when it lies below ``bound``."""
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence!r}")
    a = 1 - confidence
    total = 0.0
    if var_q > 0:
        total += var_q * float(sps.t.isf(a, df_q)) ** 2
    if var_s > 0:
        total += var_s * float(sps.t.isf(a, df_s)) ** 2
    return float(estimate + math.sqrt(total))


def row_parts(row: Mapping) -> tuple[float, float, float, float]:
    """``(V_q, df_q, V_s, df_s)`` of a :func:`seeded.compare_runs` row (``se_question``, ``n_queries``,
    ``se_seed``, ``df_seed``)."""
    return (float(row["se_question"]) ** 2, float(row["n_queries"]) - 1.0, float(row["se_seed"]) ** 2,
            float(row["df_seed"]))


def below_bound_p(row: Mapping, bound: float) -> float:
    """:func:`shifted_one_sided_p` of a :func:`seeded.compare_runs` row's ``diff`` against ``bound``, on the
    row's own variance parts (:func:`row_parts`)."""
    return shifted_one_sided_p(float(row["diff"]), bound, *row_parts(row))
