"""The household's typed signature and the pydantic type of its history rows (``docs/design.md`` §8.4).

As in ``signatures/``: the docstring is the task instruction the LM reads; inputs and history rows are
typed, and the type validates its ranges naming the field, because DSPy enforces no bounds itself.
Money is in dollars per year; the answer is a percent of cash on hand.
"""

from __future__ import annotations

import math

import dspy
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["HouseholdYear", "SplitIncome"]


class HouseholdYear(BaseModel):
    """One past year of a household: what it had, consumed and saved ($/year)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    year: int = Field(ge=0, description="year index (0-based)")
    income: float = Field(description="disposable income that year: pre-tax income - tax + rebate, >= 0")
    cash_on_hand: float = Field(description="income + last year's savings with interest, >= 0")
    consumption: float = Field(description="spent on consumption, in [0, cash_on_hand]")
    saving: float = Field(description="carried to next year (earns interest), >= 0")

    @field_validator("income", "cash_on_hand", "consumption", "saving")
    @classmethod
    def _money_ok(cls, v: float, info) -> float:
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{info.field_name}={v:g} must be a finite amount >= 0 ($/year)")
        return v


class SplitIncome(dspy.Signature):
    """You are a household deciding how much of your money to spend this year and how much to save.

    Each year you receive your disposable income (your earnings after tax plus the government's lump-sum
    rebate). Your cash on hand is that income plus last year's savings with interest. You consume part of
    it now; the rest is saved and earns the interest rate shown until next year. You cannot borrow, and
    anything left after your final year is lost. You want to maximise the sum, over this and your remaining
    years, of discount_factor^k × ln(consumption in year k), k = 0 for this year. Your future incomes are
    not known; your history shows your past ones. Answer with the percent of your cash on hand you consume
    this year, a number in [0, 100]."""

    persona: str = dspy.InputField(desc="who you are")
    years_left: int = dspy.InputField(desc="years you will still decide, including this one (1 = the final year)")
    interest_rate_percent: float = dspy.InputField(desc="interest earned on savings until next year, in percent")
    discount_factor: float = dspy.InputField(desc="how much a unit of next year's log-consumption counts now")
    income: float = dspy.InputField(desc="your disposable income this year, $/year")
    cash_on_hand: float = dspy.InputField(desc="income plus last year's savings with interest, $/year")
    history: list[HouseholdYear] = dspy.InputField(desc="your past years, oldest first")
    consume_percent: float = dspy.OutputField(desc="percent of cash on hand consumed this year, in [0, 100]")
