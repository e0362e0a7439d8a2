"""The LM that writes instructions (programs.lm.structured: ``with_writing_budget``).

DSPy's optimizers call it with their own prompts, not through the agents' ``StructuredAdapter``: on the real
model a MIPROv2 proposal (its dataset summary) ran to the end of the 8,192-token window, ~11 minutes for one
answer. Every answer of that LM has a token budget.
"""

from __future__ import annotations

import dspy
import pytest
from dspy.propose.dataset_summary_generator import DatasetDescriptor
from dspy.utils.exceptions import AdapterParseError

from programs.lm import build_lms
from programs.lm.reasoning import REASONING_ROOM, ReasoningPlan
from programs.lm.structured import (
    INSTRUCTION_TOKENS,
    mark,
    with_writing_budget,
)
from tests.programs.fakes import writer_engine


def _lm(engine, marked: bool = True) -> dspy.LM:
    lm = dspy.LM("fake/engine", engine=engine, cache=False, temperature=1.0, num_retries=0)
    return mark(lm) if marked else lm


def test_a_writing_lm_gets_a_token_budget_on_every_answer():
    (served,) = build_lms("openai/m", "http://127.0.0.1:9/v1")
    assert served.kwargs.get("max_tokens") is None  # what DSPy's proposers would have sent: nothing
    lm = with_writing_budget(served)
    assert lm.kwargs["max_tokens"] == INSTRUCTION_TOKENS and served.kwargs.get("max_tokens") is None
    assert with_writing_budget(served, 300).kwargs["max_tokens"] == 300  # --max-tokens
    # A reasoning model keeps room to reason, under the key DSPy built it with.
    reasoning = ReasoningPlan(True, True, None, "dspy").apply(dspy.LM("openai/o4-mini", temperature=1.0,
                                                                      max_tokens=16000, cache=False))
    assert "max_completion_tokens" in reasoning.kwargs
    got = with_writing_budget(reasoning)
    assert got.kwargs["max_completion_tokens"] == INSTRUCTION_TOKENS + REASONING_ROOM
    assert "max_tokens" not in got.kwargs


def test_the_writing_budget_reaches_a_proposers_request():
    eng = writer_engine()
    lm = with_writing_budget(_lm(eng, marked=False))
    with dspy.context(lm=lm), pytest.raises(AdapterParseError):
        dspy.Predict(DatasetDescriptor)(examples="[]")
    assert eng.requests and all(r.config.max_tokens == INSTRUCTION_TOKENS for r in eng.requests)
