"""Typed DSPy signatures of the economy's agents and the pydantic types they exchange.

Rates are in percent (0–100) because that is how an LLM reads tax rates; cut-offs and money in
dollars per year; labor in hours per week. This package imports only pydantic and dspy.
"""

from signatures.labor import ChooseLabor
from signatures.persona import WritePersona
from signatures.satisfaction import RateSatisfaction
from signatures.tax import ProposeTaxSchedule
from signatures.types import (
    MAX_HOURS,
    Platform,
    PlannerYear,
    Schedule,
    WorkerStep,
    check_hours,
    check_rates_percent,
)
from signatures.vote import Vote

__all__ = [
    "ChooseLabor",
    "ProposeTaxSchedule",
    "Vote",
    "RateSatisfaction",
    "WritePersona",
    "Schedule",
    "WorkerStep",
    "PlannerYear",
    "Platform",
    "MAX_HOURS",
    "check_hours",
    "check_rates_percent",
]
