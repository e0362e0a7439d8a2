"""Means and Student-t confidence intervals over seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its two-sided Student-t confidence interval.

    Parameters
    ----------
    values : array-like, shape (n,)
        One value per seed. NaNs are dropped (a planner that produced no value for a seed).
    level : float
        Confidence level in (0, 1).

    Returns
    -------
    (mean, half_width) : tuple of float
        ``half_width = t_{(1+level)/2, n-1} * s / sqrt(n)`` with ``s`` the sample standard deviation
        (ddof=1). With one value the half-width is NaN (no spread to estimate); with none both are NaN.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level} is outside (0, 1)")
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return math.nan, math.nan
    m = float(x.mean())
    if n == 1:
        return m, math.nan
    s = float(x.std(ddof=1))
    t = float(stats.t.ppf(0.5 + level / 2.0, df=n - 1))
    return m, t * s / math.sqrt(n)


def format_ci(mean: float, half: float, fmt: str = "{:,.1f}",
              bounds: tuple[float, float] | None = None) -> str:
    """``"12.3 ± 0.4"`` (or just the mean when the half-width is unknown).

    With ``bounds`` (the possible range, e.g. ``(0, 100)`` for a rate in percent) an interval that reaches
    past them is shown clipped, as ``"22.8 [0.0, 100.0]*"``: a Student-t interval over a few seeds can be
    wider than the quantity's range, and the asterisk says it was clipped.
    """
    if math.isnan(mean):
        return "–"
    if math.isnan(half):
        return fmt.format(mean)
    if bounds is not None and (mean - half < bounds[0] or mean + half > bounds[1]):
        lo, hi = max(mean - half, bounds[0]), min(mean + half, bounds[1])
        return f"{fmt.format(mean)} [{fmt.format(lo)}, {fmt.format(hi)}]*"
    return f"{fmt.format(mean)} ± {fmt.format(half)}"
