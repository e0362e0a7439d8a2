"""Reasoning models (programs.lm.reasoning): detection, what they are built with, budgets, truncation, and
reasoning tokens and cache hits in the usage (programs.lm.usage via programs.lm.structured)."""

from __future__ import annotations

import dspy
import pytest
from dspy.lm15 import Message, Request, Response, TextPart, Usage
from dspy.utils.exceptions import LMConfigurationError

from programs.agents.worker import WorkerAgent
from programs.errors import ConfigError
from programs.lm import build_lms, check_lm_config
from programs.lm.compat import dspy_reasoning_rule, observe_calls
from programs.lm.reasoning import (
    ASSUMED_REASONING_TOKENS,
    MIN_BUDGET,
    REASONING_ROOM,
    ReasoningPlan,
    plan_of,
    reasoning_plan,
)
from programs.lm.structured import mark, options_of, token_budget
from programs.lm.usage import UsageMeter
from programs.simulation.dryrun import dry_run
from signatures import ChooseLabor, Schedule

SCHED = Schedule(cutoffs=[0.0, 90000.0, 159100.0], rates_percent=[10.0, 20.0, 30.0])
URL = "http://127.0.0.1:9/v1"  # never called: building an LM sends nothing


class Reasoner:
    """A fake reasoning model: ``reasoning`` reasoning tokens out of the request's budget, then the answer
    (or nothing and finish_reason length when the reasoning used the budget up). Counts its calls."""

    def __init__(self, reasoning: int, text: str = '{"hours": 40}', answer_tokens: int = 5) -> None:
        self.reasoning, self.text, self.answer_tokens = reasoning, text, answer_tokens
        self.budgets: list[int | None] = []

    def complete(self, request: Request) -> Response:
        budget = request.config.max_tokens
        self.budgets.append(budget)
        if budget is not None and self.reasoning + self.answer_tokens > budget:
            return Response(id=None, model="fake", message=Message.assistant([TextPart("")]), finish_reason="length",
                            usage=Usage(input_tokens=50, output_tokens=budget, reasoning_tokens=min(budget, self.reasoning)))
        return Response(id=None, model="fake", message=Message.assistant([TextPart(self.text)]), finish_reason="stop",
                        usage=Usage(input_tokens=50, output_tokens=self.reasoning + self.answer_tokens,
                                    reasoning_tokens=self.reasoning))


def _reasoning_lm(engine, *, cache: bool = False, max_tokens: int | None = None) -> dspy.LM:
    lm = mark(dspy.LM("fake/reasoner", engine=engine, cache=cache, temperature=1.0, num_retries=0), "auto", max_tokens)
    return ReasoningPlan(reasons=True, fixed_sampling=True, source="dspy").apply(lm)


# ───────────────────────────── which models reason ─────────────────────────────


@pytest.mark.parametrize("model", ["openai/gpt-5-mini", "openai/gpt-5", "openai/o4-mini", "openai/o3", "openai/o1-mini",
                                   "openai/gpt-5.1"])
def test_openai_reasoning_families_follow_dspys_rule(model):
    plan = reasoning_plan(model, URL)
    assert plan.reasons and plan.fixed_sampling and plan.source == "dspy"
    # The rule is DSPy's own: DSPy refuses to build such a model at temperature 0.7 or with a small budget.
    with pytest.raises(LMConfigurationError):
        dspy.LM(model, temperature=0.7, api_base=URL, api_key="x")
    with pytest.raises(LMConfigurationError):
        dspy.LM(model, temperature=1.0, max_tokens=40, api_base=URL, api_key="x")


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "openai/offline-engine", "openai/gpt-5-chat-latest",
                                   "hosted_vllm/Qwen/Qwen3-8B"])
def test_other_served_models_do_not_reason_unless_declared(model):
    assert not dspy_reasoning_rule(model)
    dspy.LM(model, temperature=0.7, max_tokens=40, api_base=URL, api_key="x")  # DSPy builds them as asked
    assert reasoning_plan(model, URL) == ReasoningPlan()
    declared = reasoning_plan(model, URL, "high")  # a self-hosted reasoning model is declared by its effort
    assert declared.reasons and not declared.fixed_sampling and declared.source == "--reasoning-effort"


def test_hosted_models_are_also_looked_up_in_litellm():
    # LiteLLM knows reasoning models DSPy's OpenAI rule does not cover; behind --api-base a name proves nothing.
    plan = reasoning_plan("deepseek/deepseek-reasoner")
    assert plan.reasons and not plan.fixed_sampling and plan.source == "litellm"
    assert reasoning_plan("deepseek/deepseek-reasoner", URL) == ReasoningPlan()
    assert not reasoning_plan("openai/gpt-4o-mini").reasons


@pytest.mark.parametrize("lm", ["offline", "local", "local:/x/model.gguf"])
def test_in_process_models_never_reason_and_refuse_an_effort(lm):
    assert reasoning_plan(lm) == ReasoningPlan()
    with pytest.raises(ConfigError, match="reasoning_effort='low' is for a reasoning model"):
        reasoning_plan(lm, None, "low")


def test_an_effort_outside_the_list_is_one_line():
    with pytest.raises(ConfigError, match=r"reasoning_effort='extreme' must be one of low, medium, high"):
        check_lm_config("openai/gpt-5-mini", URL, reasoning_effort="extreme")
    with pytest.raises(ConfigError, match="reasoning_effort"):
        check_lm_config("offline", reasoning_effort="low")


# ───────────────────────────── what the LM is built with ─────────────────────────────


def test_a_reasoning_model_is_built_at_temperature_one_with_its_effort():
    # Before: DSPy's LMConfigurationError (temperature 0.7) escaped build_lms as a traceback.
    (lm,) = build_lms("openai/gpt-5-mini", URL, temperature=0.7, reasoning_effort="low")
    assert lm.kwargs["temperature"] == 1.0 and lm.kwargs["reasoning_effort"] == "low"
    assert lm.kwargs.get("max_completion_tokens") is None  # per-answer budgets, all >= MIN_BUDGET
    assert plan_of(lm).reasons and plan_of(lm).effort == "low"
    (plain,) = build_lms("openai/gpt-4o-mini", URL, temperature=0.7)
    assert plain.kwargs["temperature"] == 0.7 and "reasoning_effort" not in plain.kwargs
    assert not plan_of(plain).reasons


def test_a_max_tokens_below_dspys_floor_is_refused_for_a_reasoning_model_only():
    with pytest.raises(ConfigError, match=rf"max_tokens=100 is below {MIN_BUDGET}"):
        check_lm_config("openai/o4-mini", URL, max_tokens=100)
    check_lm_config("openai/o4-mini", URL, max_tokens=MIN_BUDGET)
    check_lm_config("openai/gpt-4o-mini", URL, max_tokens=100)


def test_settings_dspy_refuses_are_one_config_error(monkeypatch):
    import programs.lm.endpoint as endpoint

    def refuse(*a, **k):
        raise LMConfigurationError("OpenAI's reasoning models require passing temperature=1.0")

    monkeypatch.setattr(endpoint, "EndpointLM", refuse)  # the endpoint backend builds through it
    with pytest.raises(ConfigError, match=r"^lm='openai/gpt-5-mini': OpenAI's reasoning models require"):
        build_lms("openai/gpt-5-mini", URL)


def test_budgets_leave_room_to_reason():
    plan = reasoning_plan("openai/gpt-5-mini", URL)
    assert plan.budget(40) == 40 + REASONING_ROOM >= MIN_BUDGET
    assert ReasoningPlan().budget(40) == 40
    eng = Reasoner(reasoning=300)
    pred = WorkerAgent()(persona="p", skill=50000.0, schedule=SCHED, lm=_reasoning_lm(eng))
    assert pred.fallback is None and pred.hours == 40
    assert eng.budgets == [token_budget(ChooseLabor) + REASONING_ROOM]


# ───────────────────────────── truncation and usage ─────────────────────────────


def test_reasoning_that_uses_the_whole_budget_is_a_counted_truncated_fallback():
    eng = Reasoner(reasoning=50_000)
    lm = _reasoning_lm(eng)
    agent = WorkerAgent()
    pred = agent(persona="p", skill=50000.0, schedule=SCHED, lm=lm, fallback_hours=33.0)
    assert pred.fallback == "truncated" and pred.hours == 33.0
    assert agent.fallbacks.snapshot() == {"truncated": 1}  # not a parse error, though no answer came back
    assert options_of(lm).snapshot()["truncated"] == 1


def test_reasoning_tokens_are_counted_apart_by_role():
    meter = UsageMeter()
    with meter.installed():
        WorkerAgent()(persona="p", skill=50000.0, schedule=SCHED, lm=_reasoning_lm(Reasoner(reasoning=300)))
    assert meter.take() == {"worker": {"calls": 1, "prompt_tokens": 50, "completion_tokens": 305,
                                       "reasoning_tokens": 300, "cached": 0,
                                       "reused_prompt_tokens": 0}}


def test_an_openai_usage_entry_with_reasoning_details_is_read():
    # The shape OpenAI's chat completions report (and DSPy passes on): completion_tokens_details.reasoning_tokens.
    meter = UsageMeter()
    meter.add_usage("openai/o4-mini", {"prompt_tokens": 120, "completion_tokens": 900,
                                       "completion_tokens_details": {"reasoning_tokens": 832, "audio_tokens": None}})
    meter.add_usage("openai/gpt-4o-mini", {"prompt_tokens": 10, "completion_tokens": 3,
                                           "completion_tokens_details": None})
    assert meter.take() == {"other": {"calls": 0, "prompt_tokens": 130, "completion_tokens": 903,
                                      "reasoning_tokens": 832, "cached": 0,
                                      "reused_prompt_tokens": 0}}


def test_cache_hits_keep_their_tokens_and_their_truncation():
    # DSPy's cache replays a response with no usage; before, a replayed truncated answer was a parse error and
    # its tokens were lost. Now the stored response's finish reason and usage are read.
    dspy.cache.reset_memory_cache()
    ok, cut = Reasoner(reasoning=300), Reasoner(reasoning=50_000)
    results = []
    for _ in range(2):
        meter = UsageMeter()
        with meter.installed():
            a = WorkerAgent()
            p1 = a(persona="p", skill=50000.0, schedule=SCHED, lm=_reasoning_lm(ok, cache=True))
            p2 = a(persona="q", skill=50000.0, schedule=SCHED, lm=_reasoning_lm(cut, cache=True), fallback_hours=33.0)
        results.append((p1.fallback, p2.fallback, meter.take()["worker"]))
    assert len(ok.budgets) == len(cut.budgets) == 1  # the second round was served from the cache
    (f1, t1, u1), (f2, t2, u2) = results
    assert (f1, t1) == (f2, t2) == (None, "truncated")
    assert u1["cached"] == 0 and u2["cached"] == 2
    assert {k: v for k, v in u2.items() if k != "cached"} == {k: v for k, v in u1.items() if k != "cached"}
    assert u1["reasoning_tokens"] == 300 + token_budget(ChooseLabor) + REASONING_ROOM


def test_observed_calls_report_cache_hits():
    dspy.cache.reset_memory_cache()
    lm = dspy.LM("fake/reasoner", engine=Reasoner(reasoning=7), cache=True, temperature=1.0, num_retries=0)
    with observe_calls() as seen:
        lm("hello", max_tokens=100)
        lm("hello", max_tokens=100)
    assert [s["cache_hit"] for s in seen] == [False, True]
    assert [s["finish_reason"] for s in seen] == ["stop", "stop"]
    assert seen[0]["usage"]["completion_tokens"] == seen[1]["usage"]["completion_tokens"] == 12
    assert seen[1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 7
    with observe_calls() as other:
        pass
    assert other == [] and len(seen) == 2  # each block sees its own calls


# ───────────────────────────── --dry-run ─────────────────────────────


def test_dry_run_adds_assumed_reasoning_tokens_and_says_so():
    calls = {"worker": 100, "planner": 2}
    plain = dry_run(calls)
    plan = reasoning_plan("openai/gpt-5-mini", None, "high")
    est = dry_run(calls, reasoning=plan)
    assert est.reasoning_tokens == {"worker": 100 * ASSUMED_REASONING_TOKENS["high"],
                                    "planner": 2 * ASSUMED_REASONING_TOKENS["high"]}
    assert est.completion_max["worker"] == plain.completion_max["worker"] + 100 * REASONING_ROOM
    lines = est.lines("x")
    assert len(lines) == 3 and "ASSUMPTION of 4,096 per answer at effort high" in lines[2]
    assert len(plain.lines("x")) == 2 and not plain.reasoning_tokens
    # The cost is estimated on the answers' own budgets plus the assumed reasoning, not on the room to reason.
    line = est.cost_line("openai/gpt-5-mini", price_in=1.0, price_out=1.0)
    tokens = sum(est.prompt_tokens.values()) + sum(plain.completion_max.values()) + sum(est.reasoning_tokens.values())
    assert f"${tokens / 1e6:.4g}" in line


def test_eval_compare_refuses_settings_dspy_refuses_before_any_work(tmp_path, monkeypatch, capsys):
    # The LMs of a comparison are built per seed mid-run; a served model is now also built once up front.
    import programs.lm.endpoint as endpoint
    from eval import compare
    from programs.lm.server import serve_in_thread

    def refuse(*a, **k):
        raise LMConfigurationError("this model takes no such setting")

    monkeypatch.setattr(endpoint, "EndpointLM", refuse)  # the endpoint backend builds through it
    url, stop = serve_in_thread()
    try:
        with pytest.raises(SystemExit) as exit_:
            compare.main(["--lm", "openai/gpt-5-mini", "--api-base", url, "--planners", "llm,saez", "--agents", "4",
                          "--years", "2", "--steps-per-year", "1", "--seeds", "1", "--no-plots", "--no-progress",
                          "--out", str(tmp_path / "cmp")])
    finally:
        stop()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.strip().splitlines() == [
        "eval.compare: error: lm='openai/gpt-5-mini': this model takes no such setting"]
    assert not (tmp_path / "cmp").exists()
