"""The statistics the benchmark reports and routes on. Pure.

* `wilson` — the Wilson score interval for a pass ratio (Wilson, 1927): unlike the
  normal approximation it stays inside [0, 1] and is honest for small samples, so a
  1/1 (lower bound 0.21) does not outrank a 19/20 (0.76).
* `mcnemar_exact` — the exact (binomial) McNemar test on paired per-task outcomes:
  of the tasks whose outcome changed between two runs, are the losses more than
  chance would give? It is what `--compare` calls a regression on.
* `spread` — mean and sample standard deviation, for the ± of speed figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["Z95", "mcnemar_exact", "spread", "wilson"]

#: two-sided 95% normal quantile
Z95 = 1.959963984540054


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (low, high) of `passed` successes in `n` trials."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= passed <= n:
        raise ValueError("passed must be between 0 and n")
    p = passed / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(losses: int, gains: int) -> float:
    """One-sided exact McNemar p-value that `losses` (pass→fail) exceed `gains` (fail→pass)
    by chance: P(X ≥ losses) for X ~ Binomial(losses + gains, 1/2)."""
    n = losses + gains
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(losses, n + 1))
    return min(1.0, float(tail) / float(2**n))


def spread(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None where undefined)."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)
