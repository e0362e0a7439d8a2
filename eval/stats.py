"""Means and Student-t confidence intervals over seeds; paired differences between two planners."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class PairedResult:
    """Mean of the per-seed differences ``a - b``, the half-width of its CI, the paired t-test's p-value, n."""

    mean: float
    half_width: float
    p_value: float
    n: int


def paired_ci(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, level: float = 0.95) -> PairedResult:
    """Paired comparison of two planners on the same seeds: ``a[i] - b[i]`` for each seed ``i``.

    The interval is the Student-t interval of the mean difference (``mean_ci`` of the differences) and
    the p-value that of ``scipy.stats.ttest_rel`` (two-sided). Pairs with a NaN on either side are dropped.
    With fewer than two pairs the half-width and the p-value are NaN; with zero spread the half-width is
    0 and the p-value NaN (0 difference) or 0 (a constant non-zero difference).
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired_ci needs one value per seed on both sides, got {x.size} and {y.size}")
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    d = x - y
    m, half = mean_ci(d, level)
    n = int(d.size)
    if n < 2:
        return PairedResult(m, half, math.nan, n)
    if float(d.std(ddof=1)) == 0.0:
        return PairedResult(m, 0.0, math.nan if m == 0.0 else 0.0, n)
    p = float(stats.ttest_rel(x, y).pvalue)
    return PairedResult(m, half, p, n)
