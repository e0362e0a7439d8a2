"""Pydantic types exchanged by the agents' signatures (``docs/design.md`` §4.1).

Units, as an LLM reads them: tax rates in PERCENT (0–100), cut-offs and incomes in dollars per year,
labor in hours per week. Every model validates its ranges and names the offending field in the error,
e.g. ``rates_percent[2]=140 is outside [0, 100]``, because DSPy enforces no ``ge``/``le`` bounds itself.

Negative marginal rates (a wage subsidy, e.g. an earned-income credit's phase-in) are allowed in a
``Schedule`` down to its own ``min_rate_percent`` (default 0, at least -100), as in the economy's
``TaxSchedule(min_rate=...)``; a ``WorkerStep``'s ``tax`` is then negative (a net credit received).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from economy.constants import MAX_HOURS
from economy.tax import RATE_FLOOR, TaxSchedule, to_fraction, to_percent

__all__ = [
    "MAX_HOURS",
    "Schedule",
    "WorkerStep",
    "PlannerYear",
    "Platform",
    "check_hours",
    "check_rates_percent",
    "validate_number",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _finite(name: str, x: float) -> float:
    if not math.isfinite(x):
        raise ValueError(f"{name}={x} must be a finite number")
    return x


def validate_number(value: object, lo: float, hi: float) -> tuple[float, str | None]:
    """``(x, None)`` for a finite number in [lo, hi], else ``(nan, kind)``.

    The one range check of a number, for a config, a pydantic field or an LM's answer; ``kind`` is
    ``invalid`` (not a number; a bool is not one), ``non_finite`` or ``out_of_range``. Callers that must
    raise turn the kind into their own one-line message; agents count it as a fallback, never clamping
    (``docs/design.md`` §4.2).
    """
    if value is None or isinstance(value, bool):
        return math.nan, "invalid"
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan, "invalid"
    if not math.isfinite(x):
        return math.nan, "non_finite"
    if not lo <= x <= hi:
        return math.nan, "out_of_range"
    return x + 0.0, None  # + 0.0: -0.0 reads as 0


def check_hours(hours: float, name: str = "hours") -> float:
    """Return ``hours`` as a float if it is a finite number in [0, 100], else raise ValueError naming it."""
    h, kind = validate_number(hours, 0.0, MAX_HOURS)
    if kind == "invalid":
        raise ValueError(f"{name}={hours!r} is not a number of hours per week in [0, {MAX_HOURS:g}]")
    if kind is not None:
        raise ValueError(f"{name}={float(hours):g} is outside [0, {MAX_HOURS:g}] hours per week")
    return h


def check_rates_percent(
    rates: Sequence[float], n_brackets: int | None = None, name: str = "rates_percent", *, low: float = 0.0
) -> list[float]:
    """Validate marginal rates in percent.

    Parameters
    ----------
    rates : sequence of float, shape (k,)
        One marginal rate per bracket, each in [low, 100].
    n_brackets : int, optional
        Required length ``k``.
    low : float in [-100, 0]
        The lowest rate allowed (default 0; negative for a schedule with wage subsidies).

    Returns
    -------
    list of float, shape (k,)
    """
    lo = float(low) + 0.0
    if isinstance(rates, (str, bytes)) or not isinstance(rates, Sequence):
        raise ValueError(f"{name} must be a list of numbers in [{lo:g}, 100], got {type(rates).__name__}")
    out = []
    for i, r in enumerate(rates):
        x, kind = validate_number(r, lo, 100.0)
        if kind == "invalid":
            raise ValueError(f"{name}[{i}]={r!r} is not a number in [{lo:g}, 100]")
        if kind is not None:
            raise ValueError(f"{name}[{i}]={float(r):g} is outside [{lo:g}, 100] (percent)")
        out.append(x)
    if n_brackets is not None and len(out) != n_brackets:
        raise ValueError(f"{name} has {len(out)} entries but there are {n_brackets} brackets (one rate per bracket)")
    return out


def _check_cutoffs(cutoffs: Sequence[float], name: str = "cutoffs") -> list[float]:
    out = [float(c) for c in cutoffs]
    if not out:
        raise ValueError(f"{name} must hold at least one bracket lower bound (the first is usually 0)")
    for i, c in enumerate(out):
        if not math.isfinite(c) or c < 0:
            raise ValueError(f"{name}[{i}]={c:g} must be a finite, non-negative amount in $/year")
        if i and c <= out[i - 1]:
            raise ValueError(f"{name} must be strictly increasing: {name}[{i}]={c:g} <= {name}[{i - 1}]={out[i - 1]:g}")
    return out


class Schedule(BaseModel):
    """A piecewise-linear marginal tax schedule as an LLM reads it.

    ``cutoffs[j]`` is the lower bound ($/year) of bracket ``j``; the top bracket is open-ended.
    ``rates_percent[j]`` is the marginal rate (percent) on income inside bracket ``j``, in
    ``[min_rate_percent, 100]``. ``min_rate_percent`` (default 0) admits negative rates (a wage subsidy);
    it is shown to the LM only when it is not 0, so default schedules serialise exactly as before.
    """

    model_config = _FROZEN

    min_rate_percent: float = Field(0.0, description="lowest marginal rate allowed, in percent, in [-100, 0] "
                                    "(0: no subsidies; negative: the schedule may subsidise earnings)")
    cutoffs: list[float] = Field(description="bracket lower bounds in $/year, non-negative and increasing")
    rates_percent: list[float] = Field(description="marginal tax rate of each bracket in percent, each in [0, 100]")

    @field_validator("cutoffs")
    @classmethod
    def _cutoffs_ok(cls, v: list[float]) -> list[float]:
        return _check_cutoffs(v)

    @field_validator("min_rate_percent")
    @classmethod
    def _min_rate_ok(cls, v: float) -> float:
        if not (100.0 * RATE_FLOOR <= v <= 0.0):  # also rejects NaN
            raise ValueError(f"min_rate_percent={v:g} is outside [{100.0 * RATE_FLOOR:g}, 0] (percent)")
        return v + 0.0

    @field_validator("rates_percent")
    @classmethod
    def _rates_ok(cls, v: list[float], info) -> list[float]:
        return check_rates_percent(v, low=info.data.get("min_rate_percent", 0.0))

    @model_serializer(mode="wrap")
    def _serialise(self, handler):
        d = handler(self)
        low = d.pop("min_rate_percent", 0.0)
        if low:  # only a schedule that admits subsidies says so; others serialise as they always did
            d["min_rate_percent"] = low
        return d

    @classmethod
    def from_tax_schedule(cls, schedule: TaxSchedule) -> "Schedule":
        """The schedule as an LLM reads it (rates in percent), keeping its ``min_rate``."""
        return cls(cutoffs=schedule.cutoffs.tolist(), rates_percent=to_percent(schedule.rates),
                   min_rate_percent=to_percent([schedule.min_rate])[0])

    @model_validator(mode="after")
    def _same_length(self) -> "Schedule":
        if len(self.rates_percent) != len(self.cutoffs):
            raise ValueError(
                f"rates_percent has {len(self.rates_percent)} entries but cutoffs has {len(self.cutoffs)} "
                "(one rate per bracket)"
            )
        return self

    def tax(self, income: float) -> float:
        """Tax owed in $/year on a pre-tax ``income`` (negative income pays nothing)."""
        return float(self.to_tax_schedule().tax(float(income)))

    def to_tax_schedule(self) -> TaxSchedule:
        """The economy's schedule (rates as fractions): the one implementation of the piecewise tax."""
        return TaxSchedule(self.cutoffs, to_fraction(self.rates_percent), min_rate=float(to_fraction([self.min_rate_percent])[0]))


class WorkerStep(BaseModel):
    """One step of a worker's own record: what it chose and what it got (money in $/year)."""

    model_config = _FROZEN

    step: int = Field(ge=0, description="step index within the run (0-based)")
    hours: float = Field(description="weekly hours worked, in [0, 100]")
    pretax_income: float = Field(description="pre-tax income in $/year, >= 0")
    tax: float = Field(description="net tax paid in $/year (negative: a net credit received, under a schedule "
                       "with negative marginal rates)")
    rebate: float = Field(description="equal lump-sum rebate received in $/year, >= 0")
    consumption: float = Field(description="pre-tax income - tax + rebate, in $/year")
    utility: float = Field(description="the utility the worker experienced (higher is better)")

    @field_validator("hours")
    @classmethod
    def _hours_ok(cls, v: float) -> float:
        return check_hours(v)

    @field_validator("pretax_income", "rebate")
    @classmethod
    def _nonneg(cls, v: float, info) -> float:
        _finite(info.field_name, v)
        if v < 0:
            raise ValueError(f"{info.field_name}={v:g} must be >= 0 ($/year)")
        return v

    @field_validator("tax", "consumption", "utility")
    @classmethod
    def _finite_ok(cls, v: float, info) -> float:
        return _finite(info.field_name, v)


class PlannerYear(BaseModel):
    """One tax year as the planner saw it: the rates in force and what they produced."""

    model_config = _FROZEN

    year: int = Field(ge=0, description="tax year index (0-based)")
    rates_percent: list[float] = Field(description="marginal rate of each bracket in percent, each in [0, 100]")
    welfare: float = Field(description="social welfare reached that year (higher is better)")
    revenue: float = Field(description="total tax revenue in $/year")
    mean_hours: float = Field(description="mean weekly hours worked, in [0, 100]")
    agents_per_bracket: list[int] = Field(description="number of workers whose income fell in each bracket")

    @field_validator("rates_percent")
    @classmethod
    def _rates_ok(cls, v: list[float]) -> list[float]:
        return check_rates_percent(v)

    @field_validator("welfare", "revenue")
    @classmethod
    def _finite_ok(cls, v: float, info) -> float:
        return _finite(info.field_name, v)

    @field_validator("mean_hours")
    @classmethod
    def _hours_ok(cls, v: float) -> float:
        return check_hours(v, "mean_hours")

    @field_validator("agents_per_bracket")
    @classmethod
    def _counts_ok(cls, v: list[int]) -> list[int]:
        for i, n in enumerate(v):
            if n < 0:
                raise ValueError(f"agents_per_bracket[{i}]={n} must be >= 0")
        return v

    @model_validator(mode="after")
    def _same_length(self) -> "PlannerYear":
        if self.agents_per_bracket and len(self.agents_per_bracket) != len(self.rates_percent):
            raise ValueError(
                f"agents_per_bracket has {len(self.agents_per_bracket)} entries but rates_percent has "
                f"{len(self.rates_percent)} (one count per bracket)"
            )
        return self


class Platform(BaseModel):
    """A candidate's election platform: the marginal rates it would set on the shared brackets."""

    model_config = _FROZEN

    candidate: str = Field(min_length=1, description="the candidate's name, as it must be answered")
    rates_percent: list[float] = Field(description="proposed marginal rate of each bracket in percent, each in [0, 100]")
    pitch: str = Field(default="", description="the candidate's one-line pitch")

    @field_validator("candidate")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("candidate must be a non-empty name")
        return v.strip()

    @field_validator("rates_percent")
    @classmethod
    def _rates_ok(cls, v: list[float]) -> list[float]:
        return check_rates_percent(v)
