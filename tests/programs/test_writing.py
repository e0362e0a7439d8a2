"""The LM that writes instructions (programs.lm.structured: ``with_writing_budget``, ``WritingAdapter``).

DSPy's optimizers call it with their own prompts, not through the agents' ``StructuredAdapter``: on the real
model a MIPROv2 proposal asked for DSPy's chat format in prose ran to the end of the 8,192-token window
(~11 minutes) and, with a budget, came back as prose no adapter parses. These tests pin what fixes both:
a token budget on every answer, and the proposers' signatures answered through a schema with bounded text.
"""

from __future__ import annotations

import dspy
import pytest
from dspy.propose.dataset_summary_generator import DatasetDescriptor
from dspy.utils.exceptions import AdapterParseError

from programs.lm import build_lms
from programs.lm.reasoning import REASONING_ROOM, ReasoningPlan
from programs.lm.structured import (
    INSTRUCTION_MAX_CHARS,
    INSTRUCTION_TOKENS,
    WritingAdapter,
    mark,
    output_schema,
    token_budget,
    with_writing_budget,
    writing_adapter,
)
from programs.lm.writer import writer_lm
from tests.programs.fakes import WRITTEN, writer_engine


def _lm(engine, marked: bool = True) -> dspy.LM:
    lm = dspy.LM("fake/engine", engine=engine, cache=False, temperature=1.0, num_retries=0)
    return mark(lm) if marked else lm


class Proposal(dspy.Signature):
    """Propose an instruction."""

    task: str = dspy.InputField()
    proposed_instruction: str = dspy.OutputField()
    prefix: str = dspy.OutputField()
    weights: list[int] = dspy.OutputField()


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


def test_text_fields_are_bounded_only_when_asked():
    plain = output_schema(Proposal)["properties"]
    assert plain["proposed_instruction"] == {"type": "string"}  # pydantic's, unbounded
    bounded = output_schema(Proposal, text_max_chars=INSTRUCTION_MAX_CHARS)["properties"]
    assert bounded["proposed_instruction"] == bounded["prefix"] == {"type": "string", "minLength": 1,
                                                                   "maxLength": INSTRUCTION_MAX_CHARS}
    assert bounded["weights"] == plain["weights"]  # not text: pydantic's schema as before
    assert token_budget(Proposal, text_tokens=INSTRUCTION_TOKENS) == token_budget(Proposal) + 2 * (
        INSTRUCTION_TOKENS - 128)


def test_a_proposal_the_chat_format_cannot_parse_parses_through_the_writing_adapter():
    eng = writer_engine()
    lm = _lm(eng)
    with dspy.context(lm=lm), pytest.raises(AdapterParseError):  # DSPy's default adapters: the real failure
        dspy.Predict(DatasetDescriptor)(examples="[]")
    eng.requests.clear()
    with dspy.context(lm=lm, adapter=WritingAdapter()):
        got = dspy.Predict(DatasetDescriptor)(examples="[]")
    assert got.observations == WRITTEN
    (cfg,) = [r.config for r in eng.requests]  # one request
    schema = cfg.response_format.get("schema") or cfg.response_format["json_schema"]["schema"]
    assert schema["properties"]["observations"]["maxLength"] == INSTRUCTION_MAX_CHARS
    assert cfg.max_tokens == token_budget(DatasetDescriptor, text_tokens=INSTRUCTION_TOKENS)


def test_an_unmarked_lm_is_answered_as_without_the_adapter():
    # The offline engine and writer are not marked: under the adapter their requests are DSPy's defaults.
    seen = {}
    for label, adapter in (("default", None), ("writing", WritingAdapter())):
        eng = writer_engine()
        with dspy.context(lm=_lm(eng, marked=False), **({"adapter": adapter} if adapter else {})):
            with pytest.raises(AdapterParseError):
                dspy.Predict(DatasetDescriptor)(examples="[]")
        seen[label] = [(r.config.response_format, r.config.max_tokens) for r in eng.requests]
    assert seen["writing"] == seen["default"] and all(f is None for f, _ in seen["default"])


def test_writing_adapter_only_for_a_marked_lm():
    assert isinstance(writing_adapter(_lm(writer_engine())), WritingAdapter)
    assert writing_adapter(_lm(writer_engine(), marked=False)) is None
    assert writing_adapter(writer_lm()) is None and writing_adapter(None) is None
    assert isinstance(writing_adapter(_lm(writer_engine()).copy(rollout_id=3)), WritingAdapter)  # MIPROv2 copies it
