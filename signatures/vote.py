"""Vote: a worker chooses among candidates' tax platforms (``docs/design.md`` §4.1, democratic scenario)."""

from __future__ import annotations

import dspy

from signatures.types import Platform, WorkerStep

__all__ = ["Vote"]


class Vote(dspy.Signature):
    """You are a worker voting in an election for the tax planner.

    Each candidate proposes marginal income-tax rates (percent) on the same brackets. Your history shows
    the hours you have been working, your pre-tax income, the tax you paid and the equal lump-sum rebate
    you received (all money in $/year). Judge which platform would leave you best off, as the person you
    are, and answer with exactly one candidate's name as written."""

    persona: str = dspy.InputField(desc="who you are")
    history: list[WorkerStep] = dspy.InputField(desc="your recent steps, oldest first")
    cutoffs: list[float] = dspy.InputField(
        desc="bracket lower bounds in $/year shared by every platform (the top bracket is open-ended)"
    )
    candidates: list[Platform] = dspy.InputField(desc="the candidates and the marginal rates (percent) they propose")
    candidate: str = dspy.OutputField(desc="the name of the candidate you vote for, exactly as written")
