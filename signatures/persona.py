"""WritePersona: turn census-style demographics into a one-sentence persona (``docs/design.md`` §4.1)."""

from __future__ import annotations

import dspy

__all__ = ["WritePersona"]


class WritePersona(dspy.Signature):
    """Write a short, natural persona of a US worker from their demographics, in the second person
    ("You are ..."). Use only the facts given (age, sex, occupation, education, income, ...); invent
    nothing else. One or two sentences."""

    demographics: str = dspy.InputField(desc="the worker's demographic fields, e.g. 'age: 34; sex: female; ...'")
    persona: str = dspy.OutputField(desc="the persona, one or two sentences")
