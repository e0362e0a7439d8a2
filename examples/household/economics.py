"""The household's economics: the exact consumption rule (the yardstick) and lifetime utility.

A household with cash on hand ``x``, income ``y`` expected to persist (it does not know next year's
taxes), interest ``r``, patience ``beta`` and ``N`` years left maximises ``sum_k beta^k ln C_k`` subject
to ``sum_k C_k / (1+r)^k = x + y * A`` with ``A = sum_{k=1}^{N-1} (1+r)^-k``. With log utility the
first-year consumption is the share ``(1 - beta) / (1 - beta^N)`` (``1/N`` when ``beta = 1``) of that
wealth. When ``beta (1+r) >= 1`` consumption does not fall over the plan, so the path never needs
borrowing and the no-borrowing constraint does not bind: the rule is exact under those expectations
(``HouseholdScenario`` requires it). Vectorised over households, numpy only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["consume_share", "simulate_paths", "lifetime_utility", "check_preferences", "CONSUMPTION_FLOOR"]

#: Consumption below $1 a year counts as $1 in ln(C) (a household that earned nothing at all).
CONSUMPTION_FLOOR = 1.0


def check_preferences(interest_rate: float, discount_factor: float) -> None:
    """ValueError naming the setting unless ``0 <= r <= 1``, ``0 < beta <= 1`` and ``beta (1+r) >= 1``."""
    if not 0.0 <= interest_rate <= 1.0:
        raise ValueError(f"interest_rate={interest_rate:g} is outside [0, 1] (a fraction, e.g. 0.05)")
    if not 0.0 < discount_factor <= 1.0:
        raise ValueError(f"discount_factor={discount_factor:g} is outside (0, 1]")
    if discount_factor * (1.0 + interest_rate) < 1.0 - 1e-12:
        raise ValueError(f"discount_factor*(1+interest_rate)={discount_factor * (1 + interest_rate):.4g} < 1: "
                         "the closed-form rule is exact only for patient households (>= 1)")


def consume_share(cash: ArrayLike, income: ArrayLike, years_left: int, interest_rate: float,
                  discount_factor: float) -> NDArray[np.float64]:
    """The optimal share of cash on hand to consume this year, shape of ``cash`` (1.0 in the final year)."""
    x = np.asarray(cash, dtype=np.float64)
    y = np.asarray(income, dtype=np.float64)
    n = int(years_left)
    if n < 1:
        raise ValueError(f"years_left={years_left} must be >= 1")
    a = sum((1.0 + interest_rate) ** -k for k in range(1, n))
    b = float(discount_factor)
    mpc = 1.0 / n if b == 1.0 else (1.0 - b) / (1.0 - b**n)
    c = (x + y * a) * mpc
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(x > 0, c / np.where(x > 0, x, 1.0), 1.0)
    return np.clip(share, 0.0, 1.0)


def simulate_paths(incomes: ArrayLike, shares: ArrayLike | None, interest_rate: float,
                   discount_factor: float | None = None) -> dict[str, NDArray[np.float64]]:
    """Income, cash on hand, consumption, end-of-year savings and shares over the years, shape (T, n) each.

    ``incomes`` (T, n) are disposable incomes; ``shares`` (T, n) the shares consumed (fractions). With
    ``shares=None`` the exact rule chooses them (``discount_factor`` needed), on the same incomes.
    """
    y = np.asarray(incomes, dtype=np.float64)
    t_years, n = y.shape
    cash = np.zeros((t_years, n))
    cons = np.zeros((t_years, n))
    save = np.zeros((t_years, n))
    used = np.zeros((t_years, n))
    carried = np.zeros(n)
    for t in range(t_years):  # a loop over the few years, vectorised over households
        cash[t] = (1.0 + interest_rate) * carried + y[t]
        if shares is None:
            used[t] = consume_share(cash[t], y[t], t_years - t, interest_rate, discount_factor)
        else:
            used[t] = np.asarray(shares, dtype=np.float64)[t]
        cons[t] = used[t] * cash[t]
        save[t] = cash[t] - cons[t]
        carried = save[t]
    return {"income": y, "cash": cash, "consumption": cons, "saving": save, "share": used}


def lifetime_utility(consumption: ArrayLike, discount_factor: float) -> NDArray[np.float64]:
    """``sum_t beta^t ln(max(C_t, CONSUMPTION_FLOOR))`` per household, shape (n,)."""
    c = np.maximum(np.asarray(consumption, dtype=np.float64), CONSUMPTION_FLOOR)
    w = discount_factor ** np.arange(c.shape[0])
    return (w[:, None] * np.log(c)).sum(axis=0)
