"""Means and 95% confidence intervals over the replications of each parameter combination.

The interval is Student's t: ``mean ± t(0.975, n-1) · s / √n``, with ``s`` the sample standard
deviation (n-1 in the denominator). It assumes the replications are independent draws of the
same random quantity, which is what seeds derived from the replication index give (docs/studies.md).
With one replication there is no interval (NaN); values that are NaN in a run (no latency when
nothing was delivered) are left out, so ``n`` counts the runs that measured something.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import NamedTuple

__all__ = ["CONFIDENCE", "Estimate", "estimate", "t_quantile_975"]

#: The confidence level of every interval mailsim draws.
CONFIDENCE = 0.95

#: t(0.975, df) for df = 1..30 (the two-sided 95% critical values of any statistics table).
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """Student's t quantile at 0.975 with ``df`` degrees of freedom (df >= 1).

    Up to 30 the table; beyond, the Cornish-Fisher expansion around the normal quantile
    (Abramowitz and Stegun 26.7.5), whose error there is below 1e-5.
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = NormalDist().inv_cdf(0.975)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


class Estimate(NamedTuple):
    """One metric at one parameter combination, over its replications."""

    #: How many replications measured the metric.
    n: int
    #: The sample mean (NaN when n is 0).
    mean: float
    #: The sample standard deviation (NaN below two values).
    std: float
    #: The 95% confidence interval (NaN below two values).
    ci_low: float
    ci_high: float


def estimate(values: Sequence[float]) -> Estimate:
    """The mean of ``values`` with its 95% confidence interval, NaN values left out."""
    kept = [value for value in values if not math.isnan(value)]
    n = len(kept)
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    mean = math.fsum(kept) / n
    if n == 1:
        return Estimate(1, mean, math.nan, math.nan, math.nan)
    std = math.sqrt(math.fsum((value - mean) ** 2 for value in kept) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return Estimate(n, mean, std, mean - half, mean + half)
