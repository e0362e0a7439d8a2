"""The offline engine's answer to ``SplitIncome``, registered with ``programs.lm.offline.register_policy``.

This is the **offline engine** (a deterministic numeric stand-in), **not a language model**. Like every
offline policy it reads only the prompt: the years left, the interest rate, the discount factor, this
year's income and the cash on hand, and answers the textbook rule for log utility when income is expected
to persist (``economics.consume_share``), plus a little noise scaled by the temperature (none in the final
year, when everything is spent). It is near-exact by construction: offline runs test the plumbing, not
how a language model saves.
"""

from __future__ import annotations

import math

import numpy as np

from examples.household.economics import consume_share
from programs.lm.offline import register_policy

__all__ = ["household_policy", "OUTPUT_FIELD"]

OUTPUT_FIELD = "consume_percent"
_NOISE_POINTS = 1.5  # sd of the noise in percentage points at temperature 1


def _num(x: object, default: float) -> float:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def household_policy(inp: dict, demos: list, rng: np.random.Generator, temperature: float | None
                     ) -> tuple[dict, str]:
    """Offline-engine policy for ``consume_percent`` (see the module docstring)."""
    n = max(1, int(_num(inp.get("years_left"), 1.0)))
    r = min(max(_num(inp.get("interest_rate_percent"), 0.0) / 100.0, 0.0), 1.0)
    beta = min(max(_num(inp.get("discount_factor"), 1.0), 1e-6), 1.0)
    cash = max(_num(inp.get("cash_on_hand"), 0.0), 0.0)
    income = min(max(_num(inp.get("income"), 0.0), 0.0), cash) if cash > 0 else 0.0
    share = float(consume_share(cash, income, n, r, beta))
    percent = 100.0 * share
    if n > 1:
        scale = 1.0 if temperature is None else min(max(float(temperature), 0.0), 2.0)
        percent += rng.normal(0.0, _NOISE_POINTS * scale)
    percent = min(max(percent, 0.0), 100.0)
    why = (f"With {n} year(s) left, {100 * r:g}% interest and patience {beta:g}, spreading my wealth "
           f"(cash ${cash:,.0f} plus this year's income expected to persist) gives {100 * share:.1f}% now.")
    return {OUTPUT_FIELD: round(percent, 2)}, why


register_policy(OUTPUT_FIELD, household_policy)
