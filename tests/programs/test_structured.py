"""Structured outputs and token budgets (programs.lm.structured): schemas, the adapter, back-off, truncation."""

from __future__ import annotations

import json

import dspy
import pytest
from dspy.lm15 import InvalidRequestError, Message, Request, Response, TextPart, Usage

from economy.constants import MAX_HOURS
from programs.agents.batch import classify_error
from programs.agents.electorate import Electorate
from programs.agents.satisfaction import SatisfactionRater
from programs.agents.tax_planner import PlannerAgent
from programs.agents.worker import WorkerAgent
from programs.lm import build_lms
from programs.lm.structured import (
    FIELD_TOKENS,
    PERSONA_MAX_CHARS,
    StructuredOptions,
    TruncatedAnswer,
    mark,
    options_of,
    output_schema,
    rejects_schema,
    response_format,
    structured_summary,
    token_budget,
)
from signatures import ChooseLabor, Platform, ProposeTaxSchedule, RateSatisfaction, Schedule, Vote, WorkerStep, WritePersona
from programs.lm.offline import answer_request

SCHED = Schedule(cutoffs=[0.0, 90000.0, 159100.0], rates_percent=[10.0, 20.0, 30.0])
ROW = WorkerStep(step=0, hours=40.0, pretax_income=50000.0, tax=5000.0, rebate=1000.0, consumption=46000.0,
                 utility=100.0)


def _lm(engine, mode: str = "auto", max_tokens: int | None = None) -> dspy.LM:
    return mark(dspy.LM("fake/engine", engine=engine, cache=False, temperature=0.7, num_retries=0), mode, max_tokens)


class Capture:
    """An engine answering a fixed text, remembering every request's config."""

    def __init__(self, text: str | None = None, out_tokens: int = 3, reject: bool = False) -> None:
        self.text, self.out_tokens, self.reject = text, out_tokens, reject
        self.configs: list = []

    def complete(self, request: Request) -> Response:
        self.configs.append(request.config)
        if self.reject and request.config.response_format is not None:
            raise InvalidRequestError("json_schema response_format is not supported by this server", status=400)
        text = self.text
        if text is None:  # plain chat format when no schema was sent
            text = "[[ ## hours ## ]]\n35\n\n[[ ## completed ## ]]"
        return Response(id=None, model="fake", message=Message.assistant([TextPart(text)]), finish_reason="stop",
                        usage=Usage(input_tokens=50, output_tokens=self.out_tokens))


# ───────────────────────────── schemas ─────────────────────────────


def test_worker_schema_is_an_integer_enum_of_the_hours_range():
    s = output_schema(ChooseLabor)
    assert s["required"] == ["hours"] and s["additionalProperties"] is False
    hours = s["properties"]["hours"]
    assert hours["type"] == "integer"
    assert hours["enum"] == list(range(0, int(MAX_HOURS) + 1))  # an enum is enforced by llama.cpp; min/max are not


def test_planner_schema_has_one_integer_percent_per_bracket():
    s = output_schema(ProposeTaxSchedule, {"cutoffs": [0.0, 90000.0, 159100.0]})
    rates = s["properties"]["rates_percent"]
    assert rates["minItems"] == rates["maxItems"] == 3
    assert rates["items"] == {"type": "integer", "enum": list(range(101))}
    seven = output_schema(ProposeTaxSchedule, {"current_rates_percent": [10.0] * 7})["properties"]["rates_percent"]
    assert seven["minItems"] == seven["maxItems"] == 7


def test_vote_schema_is_built_per_call_from_the_candidates_running():
    a = Platform(candidate="Candidate A", rates_percent=[10, 20, 30])
    c = Platform(candidate="Candidate C", rates_percent=[0, 0, 50])
    s = output_schema(Vote, {"candidates": [a, c]})
    assert s["properties"]["candidate"] == {"type": "string", "enum": ["Candidate A", "Candidate C"]}
    # The same names as plain dicts (a prompt's JSON), and a different field of candidates in another call.
    s2 = output_schema(Vote, {"candidates": [{"candidate": "Candidate B", "rates_percent": [1, 2, 3]}]})
    assert s2["properties"]["candidate"]["enum"] == ["Candidate B"]


def test_satisfaction_persona_and_reasoning_schemas():
    assert output_schema(RateSatisfaction)["properties"]["satisfied"] == {"type": "boolean"}
    persona = output_schema(WritePersona)["properties"]["persona"]
    assert persona["type"] == "string" and persona["maxLength"] == PERSONA_MAX_CHARS
    cot = dspy.ChainOfThought(ChooseLabor).predict.signature
    s = output_schema(cot)
    assert list(s["properties"]) == ["reasoning", "hours"]
    assert s["properties"]["reasoning"]["maxLength"] > 0


def test_unknown_fields_get_pydantic_schemas_with_defs_hoisted():
    class Odd(dspy.Signature):
        """x"""

        q: str = dspy.InputField()
        rows: list[WorkerStep] = dspy.OutputField()
        n: int = dspy.OutputField()

    s = output_schema(Odd)
    assert s["properties"]["n"]["type"] == "integer"
    assert s["properties"]["rows"]["items"]["$ref"] == "#/$defs/WorkerStep" and "WorkerStep" in s["$defs"]
    fmt = response_format(Odd)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == s


def test_budgets_are_sized_per_signature_and_larger_for_cot():
    worker = token_budget(ChooseLabor)
    planner = token_budget(ProposeTaxSchedule, {"cutoffs": [0.0] * 7})
    persona = token_budget(WritePersona)
    cot = token_budget(dspy.ChainOfThought(ChooseLabor).predict.signature)
    assert worker < planner < persona < cot
    assert cot - worker == FIELD_TOKENS["reasoning"]
    assert token_budget(ProposeTaxSchedule, {"cutoffs": [0.0] * 7}) > token_budget(ProposeTaxSchedule, {"cutoffs": [0.0]})


def test_options_validate_mode_and_budget():
    with pytest.raises(ValueError, match="structured='maybe'"):
        StructuredOptions(mode="maybe")
    with pytest.raises(ValueError, match="max_tokens=0"):
        StructuredOptions(max_tokens=0)


# ───────────────────────────── the adapter ─────────────────────────────


def test_the_adapter_sends_the_schema_and_the_budget():
    eng = Capture('{"hours": 42}')
    lm = _lm(eng)
    pred = WorkerAgent()(persona="You are a nurse.", skill=50000.0, schedule=SCHED, lm=lm)
    assert pred.hours == 42.0 and pred.fallback is None
    cfg = eng.configs[-1]
    assert cfg.response_format["type"] == "json_schema"
    assert cfg.response_format["schema"] == output_schema(ChooseLabor)
    assert cfg.max_tokens == token_budget(ChooseLabor)
    assert options_of(lm).snapshot()["structured"] == 1


def test_vote_schema_reaches_the_server_with_this_calls_names():
    eng = Capture('{"candidate": "Candidate B"}')
    plats = [Platform(candidate=n, rates_percent=[10, 20, 30]) for n in ("Candidate A", "Candidate B")]
    pred = Electorate()(persona="p", history=[ROW], cutoffs=SCHED.cutoffs, candidates=plats, lm=_lm(eng))
    assert pred.candidate == "Candidate B"
    assert eng.configs[-1].response_format["schema"]["properties"]["candidate"]["enum"] == ["Candidate A", "Candidate B"]


def test_planner_and_satisfaction_go_through_the_adapter():
    eng = Capture('{"rates_percent": [5, 15, 25]}')
    pred = PlannerAgent("three")(cutoffs=SCHED.cutoffs, current_rates_percent=[10, 20, 30], lm=_lm(eng))
    assert pred.rates_percent == [5.0, 15.0, 25.0]
    assert eng.configs[-1].response_format["schema"]["properties"]["rates_percent"]["maxItems"] == 3
    eng2 = Capture('{"satisfied": false}')
    assert SatisfactionRater()(persona="p", this_year=ROW, lm=_lm(eng2)).satisfied is False
    assert eng2.configs[-1].max_tokens == token_budget(RateSatisfaction)


def test_off_sends_no_schema_and_max_tokens_overrides_the_budget():
    eng = Capture()
    pred = WorkerAgent()(persona="p", skill=50000.0, schedule=SCHED, lm=_lm(eng, "off", max_tokens=77))
    assert pred.hours == 35.0
    assert eng.configs[-1].response_format is None and eng.configs[-1].max_tokens == 77


def test_auto_backs_off_once_counted_when_the_server_rejects_the_schema(caplog):
    eng = Capture(reject=True)
    lm = _lm(eng, "auto")
    agent = WorkerAgent()
    with caplog.at_level("WARNING", logger="programs.lm.structured"):
        for _ in range(3):
            assert agent(persona="p", skill=50000.0, schedule=SCHED, lm=lm).hours == 35.0
    snap = options_of(lm).snapshot()
    assert snap["backed_off"] is True and snap["backoffs"] == 1 and snap["plain"] == 3
    # One rejected request, then plain prompts only; the warning is logged once.
    assert [c.response_format is not None for c in eng.configs] == [True, False, False, False]
    assert sum("rejected the structured-output schema" in r.message for r in caplog.records) == 1
    assert agent.fallbacks.snapshot() == {}
    assert structured_summary([lm])["backed_off"] == 1


def test_on_never_backs_off_a_rejection_is_an_lm_error():
    eng = Capture(reject=True)
    lm = _lm(eng, "on")
    agent = WorkerAgent()
    for _ in range(2):
        assert agent(persona="p", skill=50000.0, schedule=SCHED, lm=lm, fallback_hours=30.0).fallback == "lm_error"
    assert all(c.response_format is not None for c in eng.configs)
    assert options_of(lm).snapshot()["backed_off"] is False


class Picky:
    """An engine rejecting the response_formats ``reject(rf)`` picks (a 400 naming response_format)."""

    def __init__(self, reject) -> None:
        self.reject, self.forms = reject, []

    def complete(self, request: Request) -> Response:
        rf = request.config.response_format
        self.forms.append(None if rf is None else rf["type"])
        if rf is not None and self.reject(rf):
            raise InvalidRequestError("response_format rejected: unsupported schema", status=400)
        text = '{"hours": 35}' if rf is not None else "[[ ## hours ## ]]\n35\n\n[[ ## completed ## ]]"
        return Response(id=None, model="fake", message=Message.assistant([TextPart(text)]), finish_reason="stop",
                        usage=Usage(input_tokens=50, output_tokens=3))


def test_wire_forms_switch_only_when_the_same_request_is_taken_in_the_other_form():
    assert response_format(ChooseLabor, form="json_object") == {"type": "json_object",
                                                                "schema": output_schema(ChooseLabor)}
    # (DSPy's custom engines cannot carry the json_object form, so the ladder is checked on the options;
    # tests/e2e and the realmodel tier cover llama-cpp-python's server.)
    opts = StructuredOptions()
    opts.took(1, "ChooseLabor", "srv")  # json_schema rejected for this request, json_object accepted
    assert opts.form == 1 and opts.sends_schema and opts.snapshot()["form_switches"] == 1
    opts.took(0, "Vote", "srv")  # json_object has been accepted: one call taken in another form moves nothing
    assert opts.form == 1 and opts.snapshot()["form_switches"] == 1
    assert opts.snapshot()["decisions"] == [{"decision": "form json_object", "call": "ChooseLabor",
                                             "reason": "json_schema rejected, json_object accepted"}]
    again = StructuredOptions()
    again.took(0, "ChooseLabor", "srv")
    again.took(1, "Vote", "srv")  # the endpoint's form was accepted before: no switch
    assert again.form == 0 and "form_switches" not in again.snapshot()


def test_one_calls_bad_schema_does_not_turn_structured_output_off():
    # An endpoint that takes schemas but rejects one call's (here: any schema naming 'Candidate Z', in both
    # forms). That call alone goes plain, counted and named in the summary; the rest stay structured.
    eng = Picky(lambda rf: "Candidate Z" in json.dumps(rf))
    lm = _lm(eng, "auto")
    agent = WorkerAgent()
    assert agent(persona="p", skill=50000.0, schedule=SCHED, lm=lm).hours == 35.0
    plats = [Platform(candidate=n, rates_percent=[10, 20, 30]) for n in ("Candidate A", "Candidate Z")]
    Electorate()(persona="p", history=[ROW], cutoffs=SCHED.cutoffs, candidates=plats, lm=lm)
    assert agent(persona="p", skill=50000.0, schedule=SCHED, lm=lm).hours == 35.0
    # The vote's request: rejected as json_schema (json_object cannot be carried to a custom engine), then
    # plain for this call only.
    assert eng.forms == ["json_schema", "json_schema", None, "json_schema"]
    snap = options_of(lm).snapshot()
    assert snap["backed_off"] is False and snap["form"] == "json_schema" and snap["schema_rejected"] == 1
    summary = structured_summary([lm])
    assert summary["schema_rejected"] == 1 and summary["backed_off"] == 0
    assert [(d["decision"], d["call"]) for d in summary["decisions"]] == [("this call plain", "Vote")]


def test_an_endpoint_that_never_took_a_schema_backs_off_naming_the_call():
    eng = Picky(lambda rf: True)
    lm = _lm(eng, "auto")
    assert WorkerAgent()(persona="p", skill=50000.0, schedule=SCHED, lm=lm).hours == 35.0
    assert eng.forms == ["json_schema", None]  # rejected in every form it can take, then plain
    assert [(d["decision"], d["call"]) for d in structured_summary([lm])["decisions"]] == [("plain prompts",
                                                                                            "ChooseLabor")]


def test_a_schema_rejection_is_not_retried_by_the_endpoint_client():
    from dspy.utils.exceptions import LMServerError

    from programs.lm.endpoint import error_kind

    # llama-cpp-python's server: a 500 naming response_format for OpenAI's json_schema form.
    msg = "1 validation error: ('body', 'response_format', 'type') Input should be 'text' or 'json_object'"
    assert rejects_schema(LMServerError(msg, status=500))
    assert error_kind(LMServerError(msg, status=500)) is None
    assert error_kind(LMServerError("overloaded", status=500)) == "server_error"


def test_rejects_schema_only_for_schema_errors():
    from dspy.utils.exceptions import LMInvalidRequestError, LMServerError, LMTimeoutError

    assert rejects_schema(LMInvalidRequestError("response_format json_schema unsupported", status=400))
    assert not rejects_schema(LMInvalidRequestError("unknown model", status=400))
    assert not rejects_schema(LMTimeoutError("timed out while sending the json_schema"))
    assert not rejects_schema(LMServerError("grammar", status=503))


@pytest.mark.parametrize("text", ['{"hours": 4', '{"hours": 40}'])
def test_an_answer_that_uses_its_whole_budget_is_a_counted_truncated_fallback(text):
    # Cut mid-JSON (repairable to a wrong number) or not: using every token means finish_reason=length.
    budget = token_budget(ChooseLabor)
    eng = Capture(text, out_tokens=budget)
    lm = _lm(eng)
    agent = WorkerAgent()
    pred = agent(persona="p", skill=50000.0, schedule=SCHED, lm=lm, fallback_hours=33.0)
    assert pred.fallback == "truncated" and pred.hours == 33.0
    assert agent.fallbacks.snapshot() == {"truncated": 1}
    assert options_of(lm).snapshot()["truncated"] == 1


def test_truncated_answers_are_classified_apart_from_parse_errors():
    assert classify_error(TruncatedAnswer("StructuredAdapter", ChooseLabor, "{", "cut")) == "truncated"


def test_usage_is_passed_to_an_enclosing_tracker_and_not_counted_twice():
    # One home for tokens (issue 18): the run's usage by role; the structured-output counters count answers.
    from dspy.utils.usage_tracker import UsageTracker

    lm = _lm(Capture('{"hours": 40}', out_tokens=5))
    outer = UsageTracker()
    with dspy.context(usage_tracker=outer):
        WorkerAgent()(persona="p", skill=50000.0, schedule=SCHED, lm=lm)
    totals = outer.get_total_tokens()["fake/engine"]
    assert totals["completion_tokens"] == 5 and totals["prompt_tokens"] == 50
    assert "completion_tokens" not in options_of(lm).snapshot() and options_of(lm).snapshot()["structured"] == 1


def test_unmarked_lms_are_called_as_before():
    # A dspy.LM built by hand (and the offline engine) keep DSPy's chat format, no schema, no budget.
    eng = Capture()
    lm = dspy.LM("fake/engine", engine=eng, cache=False, temperature=0.7, num_retries=0)
    assert WorkerAgent()(persona="p", skill=50000.0, schedule=SCHED, lm=lm).hours == 35.0
    assert eng.configs[-1].response_format is None and eng.configs[-1].max_tokens is None
    assert options_of(build_lms("offline")[0]) is None


def test_build_lms_marks_served_models_with_the_knobs():
    (lm,) = build_lms("openai/m", "http://127.0.0.1:9/v1", structured="off", max_tokens=64)
    opts = options_of(lm)
    assert opts.mode == "off" and opts.max_tokens == 64
    # Copies (DSPy optimizers copy LMs) share the endpoint's options and counters.
    assert options_of(lm.copy(temperature=1.0)) is opts


def test_the_offline_engine_answers_the_same_through_a_schema_free_call(monkeypatch):
    # The offline engine is never marked, so its requests carry no schema and no budget, and its seeded
    # answer is the one it gives a plain DSPy chat prompt.
    (lm,) = build_lms("offline", seed=3)
    assert options_of(lm) is None
    engine = lm.engine
    seen: list = []
    real = engine.complete

    def spy(request):
        response = real(request)
        seen.append((request, response))
        return response

    monkeypatch.setattr(engine, "complete", spy)
    pred = WorkerAgent()(persona="p", skill=50000.0, schedule=SCHED, lm=lm)
    assert len(seen) == 1  # the engine answered this call
    request, response = seen[0]
    assert request.config.response_format is None and request.config.max_tokens is None
    text = "".join(p.text for p in response.message.parts)
    assert text == answer_request(request, seed=3)  # the seeded chat-mode answer, not the JSON one
    assert text.startswith("[[ ## ") and not text.lstrip().startswith("{")
    hours = float(text.split("[[ ## hours ## ]]")[1].split("[[")[0])
    assert pred.fallback is None and pred.hours == hours


def test_the_system_message_is_rendered_once_per_signature_and_equals_a_fresh_rendering():
    from programs.lm.structured import StructuredAdapter

    adapter = StructuredAdapter()
    fresh = dspy.JSONAdapter().format_system_message
    for sig in (ChooseLabor, ProposeTaxSchedule, Vote):
        first = adapter.format_system_message(sig)
        assert first == fresh(sig)
        assert adapter.format_system_message(sig) is first  # the cached text, not a new rendering
    other = ChooseLabor.with_instructions("Choose hours; be brief.")
    assert "be brief" in adapter.format_system_message(other)
    assert "be brief" not in adapter.format_system_message(ChooseLabor)


def test_the_prompts_are_dspys_rendering_for_every_signature():
    # The real-model tier and prefix reuse depend on the exact text: the adapter's fast rendering of the
    # inputs must give DSPy's own messages (ChatAdapter's user message, DSPy's value formatting).
    from programs.lm.structured import StructuredAdapter
    from tests.programs.lm.test_compat import _inputs_for, _signatures

    class DSPyRendering(StructuredAdapter):
        format_user_message_content = dspy.ChatAdapter.format_user_message_content

    ours, theirs = StructuredAdapter(), DSPyRendering()
    for sig in _signatures():
        for inputs in _inputs_for(sig):
            assert ours.format(sig, [], inputs) == theirs.format(sig, [], inputs), sig.__name__
    msgs = ours.format(ChooseLabor, [], {"persona": "p", "skill": 50000.0, "schedule": SCHED, "history": [ROW],
                                          "best": [], "last_rebate": 12.5})
    assert msgs[1]["content"].startswith("[[ ## persona ## ]]\np\n\n[[ ## skill ## ]]\n50000.0\n\n[[ ## schedule ## ]]\n"
                                          '{"cutoffs": [0.0, 90000.0, 159100.0], "rates_percent": [10.0, 20.0, 30.0]}')


def test_a_usage_meter_counts_served_answers_by_role_without_adapter_or_lm_events():
    # The meter watches modules only, so the adapter runs its LM call with no global callbacks (DSPy's
    # dispatch of each event to it cost ~0.5 ms per answer), and still gets every answer and token.
    from programs.lm.usage import UsageMeter

    seen: list = []

    class Spy(Capture):
        def complete(self, request: Request) -> Response:
            seen.append(list(dspy.settings.get("callbacks", None) or []))
            return super().complete(request)

    meter = UsageMeter()
    lm = _lm(Spy('{"hours": 40}', out_tokens=5))
    with meter.installed():
        for _ in range(2):
            assert WorkerAgent()(persona="p", skill=50000.0, schedule=SCHED, lm=lm).hours == 40.0
    assert seen == [[], []]
    worker = meter.take()["worker"]
    assert worker["calls"] == 2 and worker["prompt_tokens"] == 100 and worker["completion_tokens"] == 10
