"""An earned-income credit financed by a flat tax, as one piecewise-linear schedule with negative rates.

The credit (the 2024 US EITC's shape for one qualifying child, IRS Rev. Proc. 2023-34) pays
``credit_rate`` of earnings up to ``PHASE_IN_END``, holds its maximum ``credit_rate * PHASE_IN_END`` up to
``PHASE_OUT_START`` and withdraws it at ``phase_out_rate = max_credit / (PHASE_OUT_END - PHASE_OUT_START)``
until it is gone at ``PHASE_OUT_END``. A flat tax ``tax_rate`` on all earnings pays for it, and what
revenue is left is returned as the economy's equal lump-sum rebate (``economy.world.outcome``), so the
credit is financed by a smaller rebate. Net marginal rates by bracket:

    [0, 12,390)        tax_rate - credit_rate     (negative when the credit exceeds the tax)
    [12,390, 22,720)   tax_rate
    [22,720, 49,084)   tax_rate + phase_out_rate
    [49,084, inf)      tax_rate

At ``credit_rate = 0.34`` the phase-out rate is 15.98%, the statute's. Here every worker is eligible as a
single filer with one child; the real credit also depends on family size and investment income.
"""

from __future__ import annotations

from economy.tax import RATE_FLOOR, TaxSchedule

__all__ = ["PHASE_IN_END", "PHASE_OUT_START", "PHASE_OUT_END", "eitc_schedule", "phase_out_rate", "GROUPS",
           "group_of"]

PHASE_IN_END = 12_390.0
PHASE_OUT_START = 22_720.0
PHASE_OUT_END = 49_084.0

#: Who the credit touches, by potential income (income at 40 h a week): the range each worker's
#: untaxed 40-hour income falls in.
GROUPS = ("phase-in", "plateau", "phase-out", "above")


def phase_out_rate(credit_rate: float) -> float:
    """The rate at which the maximum credit ``credit_rate * PHASE_IN_END`` is withdrawn over the phase-out."""
    return credit_rate * PHASE_IN_END / (PHASE_OUT_END - PHASE_OUT_START)


def eitc_schedule(credit_rate: float, tax_rate: float = 0.20) -> TaxSchedule:
    """The net schedule (flat tax plus credit); its phase-in rate may be negative (``min_rate=RATE_FLOOR``).

    Raises ValueError naming the argument when a rate is outside [0, 1] or a net rate leaves [-1, 1].
    """
    for name, x in (("credit_rate", credit_rate), ("tax_rate", tax_rate)):
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"{name}={x:g} is outside [0, 1] (a fraction, e.g. 0.34 for 34%)")
    rates = [tax_rate - credit_rate, tax_rate, tax_rate + phase_out_rate(credit_rate), tax_rate]
    return TaxSchedule([0.0, PHASE_IN_END, PHASE_OUT_START, PHASE_OUT_END], rates, min_rate=RATE_FLOOR)


def group_of(potential_income: float) -> str:
    """The credit range a worker's 40-hour income falls in (one of ``GROUPS``)."""
    if potential_income < PHASE_IN_END:
        return "phase-in"
    if potential_income < PHASE_OUT_START:
        return "plateau"
    if potential_income < PHASE_OUT_END:
        return "phase-out"
    return "above"
