"""ChooseLabor: a worker picks its weekly hours (``docs/design.md`` §4.1).

The input fields are in prompt order, laid out for models that reuse an evaluated prompt prefix: what
never changes for a worker first (persona, skill), then what changes once a tax year (schedule), then
the history that grows by a row each step, and last what changes every step (``docs/design.md`` §6.6).
"""

from __future__ import annotations

import dspy

from signatures.types import Schedule, WorkerStep

__all__ = ["ChooseLabor"]


class ChooseLabor(dspy.Signature):
    """You are a worker choosing how many hours to work each week.

    Working `hours` per week earns skill × hours / 40 dollars per year before tax. You pay income tax on
    that income under the marginal schedule shown (each bracket's rate applies only to the part of your
    income inside that bracket), and every worker receives the same lump-sum rebate, which returns the
    government's revenue equally. You want to maximise your own utility. You are not told its formula:
    learn from your history how the utility you experienced depended on your hours (more hours bring
    more income but cost effort, and the cost grows steeply), exploring when the history is too short
    to tell. Answer with the weekly hours you will work next, a number in [0, 100]."""

    persona: str = dspy.InputField(desc="who you are")
    skill: float = dspy.InputField(desc="your pre-tax income in $/year if you work 40 hours a week")
    schedule: Schedule = dspy.InputField(
        desc="the tax schedule in force: bracket lower bounds in $/year and marginal rates in percent"
    )
    history: list[WorkerStep] = dspy.InputField(
        desc="your recent steps, oldest first: hours/week, pre-tax income, tax, rebate, consumption ($/year), utility"
    )
    best: list[WorkerStep] = dspy.InputField(
        desc="your best past steps by utility, best first, leaving out those already in history"
    )
    last_rebate: float = dspy.InputField(desc="the lump-sum rebate you received last step, in $/year")
    hours: float = dspy.OutputField(desc="weekly hours you will work next, a number in [0, 100]")
