"""RateSatisfaction: is a worker satisfied with this year's outcome (``docs/design.md`` §4.1, bounded scenario)."""

from __future__ import annotations

import dspy

from signatures.types import WorkerStep

__all__ = ["RateSatisfaction"]


class RateSatisfaction(dspy.Signature):
    """You are a worker looking back on this tax year. Compare this year's outcome with last year's
    (hours per week; income, tax, rebate and consumption in $/year; the utility you experienced) and say
    whether you are satisfied with how the year went for you, as the person you are. Answer true or false."""

    persona: str = dspy.InputField(desc="who you are")
    this_year: WorkerStep = dspy.InputField(desc="your outcome this year")
    last_year: WorkerStep | None = dspy.InputField(desc="your outcome last year, or None in the first year")
    satisfied: bool = dspy.OutputField(desc="true if you are satisfied with this year, else false")
