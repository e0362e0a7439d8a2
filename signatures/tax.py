"""ProposeTaxSchedule: the planner sets next year's marginal rates (``docs/design.md`` §4.1).

Input fields in prompt order: the fixed cut-offs, the history that grows by a year, and last the rates
in force, which change every year (the layout that lets a model reuse its evaluated prefix, §6.6).
"""

from __future__ import annotations

import dspy

from signatures.types import PlannerYear

__all__ = ["ProposeTaxSchedule"]


class ProposeTaxSchedule(dspy.Signature):
    """You are a tax planner choosing next year's marginal income-tax rates to maximise social welfare.

    The bracket cut-offs are fixed; you choose one marginal rate per bracket, in percent (0–100). All tax
    revenue is returned to the workers as an equal lump-sum rebate. Workers respond to your rates by
    changing their hours: high rates redistribute more but discourage work and shrink the income being
    taxed. Each past year shows the rates in force, the welfare they produced, revenue, mean weekly
    hours and how many workers fell in each bracket. Learn from that history which rates raise
    welfare: keep what worked, and try changes of a size that reflects how often past changes helped.
    Answer with one rate in [0, 100] per bracket."""

    cutoffs: list[float] = dspy.InputField(desc="bracket lower bounds in $/year (the top bracket is open-ended)")
    history: list[PlannerYear] = dspy.InputField(desc="recent tax years, oldest first")
    best: list[PlannerYear] = dspy.InputField(
        desc="the past tax years with the highest welfare, best first, leaving out those already in history"
    )
    current_rates_percent: list[float] = dspy.InputField(desc="the marginal rates in force now, percent per bracket")
    rates_percent: list[float] = dspy.OutputField(
        desc="next year's marginal rate for each bracket in percent, one number in [0, 100] per cut-off"
    )
