"""WorkerAgent: validation, fallbacks, bounded memory, one concurrent batch spread over LMs."""

from __future__ import annotations

import math

import dspy
import numpy as np
import pytest
from dspy.utils.dummies import DummyLM

from programs.agents.batch import BatchRunner, rollout_id
from programs.lm import build_lms
from programs.agents.worker import DEFAULT_HOURS, WorkerAgent, WorkerMemory, validate_hours, worker_step
from signatures import Schedule
from tests.programs.fakes import FunctionEngine, garbage_engine, lm, offline_counting_engine, slow_engine

SCHED = Schedule(cutoffs=[0, 11600, 47150], rates_percent=[10, 12, 22])


def memories(n: int, history_len: int = 5, best_k: int = 3) -> list[WorkerMemory]:
    return [WorkerMemory(i, f"You are worker number {i}, a careful planner of your week.", 20_000 + 4_000 * i,
                         history_len, best_k) for i in range(n)]


@pytest.mark.parametrize(
    "raw, hours, kind",
    [(40, 40.0, None), ("37.5", 37.5, None), (0, 0.0, None), (100, 100.0, None),
     (150, None, "out_of_range"), (-3, None, "out_of_range"), (2975, None, "out_of_range"),
     (math.nan, None, "non_finite"), (math.inf, None, "non_finite"), ("lots", None, "invalid"),
     (None, None, "invalid"), (True, None, "invalid")],
)
def test_validate_hours(raw, hours, kind):
    # Policy (issue 11 item 9): an out-of-range number is a fallback, never clamped into range.
    h, k = validate_hours(raw)
    assert k == kind
    if hours is not None:
        assert h == hours


def test_memory_keeps_last_h_steps_and_top_k_by_utility():
    m = WorkerMemory(0, "p", 40_000, history_len=3, best_k=2)
    utilities = [5.0, 9.0, 1.0, 9.0, 2.0, 3.0]
    for t, u in enumerate(utilities):
        m.record(worker_step(t, 30 + t, 1000.0 * t, 0.0, 0.0, 1000.0 * t, u))
    assert [s.step for s in m.history] == [3, 4, 5]
    # Best first; the tie at 9.0 keeps the earlier step first.
    assert [(s.step, s.utility) for s in m.best] == [(1, 9.0), (3, 9.0)]
    assert m.last_hours == 35


def test_prompt_best_leaves_out_the_steps_the_history_shows():
    m = WorkerMemory(0, "p", 40_000, history_len=3, best_k=2)
    for t, u in enumerate([5.0, 9.0, 1.0, 9.0, 2.0, 3.0]):
        m.record(worker_step(t, 30 + t, 1000.0 * t, 0.0, 0.0, 1000.0 * t, u))
    # Best 1 and 3; step 3 is in the history (3, 4, 5), so the prompt shows it there only.
    assert [s.step for s in m.prompt_best()] == [1]
    assert [s.step for s in m.best] == [1, 3]  # the memory keeps both (a later window may drop step 3)


def test_structured_prompt_puts_what_changes_every_call_last():
    from programs.lm.structured import mark

    seen = {}

    def fn(request):
        seen["messages"] = request.messages
        return '{"hours": 38}'

    model = mark(lm(FunctionEngine(fn), temperature=0.0))
    m = WorkerMemory(0, "You are a nurse.", 55_837.22363016917, history_len=3, best_k=2)
    for t, u in enumerate([5.0, 9.0, 1.0, 9.0, 2.0]):  # history 2, 3, 4; best 1, 3
        m.record(worker_step(t, 30 + t, 1000.0 * t, 0.0, 0.0, 1000.0 * t, u))
    pred = WorkerAgent()(persona=m.persona, skill=m.skill, schedule=SCHED, last_rebate=5757.324288762724,
                         history=tuple(m.history), best=tuple(m.prompt_best()), lm=model)
    assert pred.hours == 38 and pred.fallback is None
    user = "\n".join(getattr(p, "text", "") or "" for msg in seen["messages"] if msg.role == "user"
                     for p in msg.parts)
    order = [user.index(f"[[ ## {f} ## ]]") for f in ("persona", "skill", "schedule", "history", "best",
                                                       "last_rebate")]
    assert order == sorted(order)
    assert "55837.22\n" in user and "5757.32" in user and "5757.324" not in user  # money to the cent
    assert user.rstrip().endswith("5757.32")  # nothing after the inputs that change every call
    assert '"step": 1' in user.split("[[ ## best ## ]]")[1] and '"step": 3' not in user.split("[[ ## best ## ]]")[1]


def test_worker_step_rounds_and_clips_round_off():
    s = worker_step(2, 40.123456, 38_000.004, -1e-9, 1234.5678, 39_234.567, 12.345678)
    assert (s.hours, s.pretax_income, s.tax, s.rebate, s.consumption, s.utility) == \
        (40.12, 38_000.0, 0.0, 1234.57, 39_234.57, 12.3457)


def test_offline_answer_is_valid_hours():
    [offline] = build_lms("offline")
    pred = WorkerAgent()(persona="You are a nurse.", skill=52_000, schedule=SCHED, last_rebate=0.0, lm=offline)
    assert pred.fallback is None and 0.0 <= pred.hours <= 100.0
    # No history: the engine explores around a full-time week.
    assert abs(pred.hours - 40.0) < 10.0


def test_malformed_answers_fall_back_to_last_valid_hours_and_are_counted():
    agent = WorkerAgent()
    dummy = DummyLM([{"hours": "a good amount"}] * 4)
    pred = agent(persona="p", skill=40_000, schedule=SCHED, fallback_hours=33.0, lm=dummy)
    assert (pred.hours, pred.fallback) == (33.0, "parse_error")
    # Before any valid choice the fallback is the default full-time week.
    pred = agent(persona="p", skill=40_000, schedule=SCHED, lm=dummy)
    assert (pred.hours, pred.fallback) == (DEFAULT_HOURS, "parse_error")
    assert agent.fallbacks.snapshot() == {"parse_error": 2}


def test_lm_exception_is_a_counted_fallback():
    def boom(request):
        raise RuntimeError("connection reset")

    agent = WorkerAgent()
    pred = agent(persona="p", skill=40_000, schedule=SCHED, fallback_hours=12.0, lm=lm(FunctionEngine(boom)))
    assert (pred.hours, pred.fallback) == (12.0, "lm_error")
    assert agent.fallbacks.snapshot() == {"lm_error": 1}


def test_batch_with_garbage_engine_answers_every_worker():
    agent = WorkerAgent()
    mems = memories(40)
    for m in mems:
        m.last_hours = 25.0
    d = agent.decide_batch(mems, SCHED, 0.0, lms=[lm(garbage_engine(share=0.5))], runner=BatchRunner(4))
    assert d.hours.shape == (40,) and np.all((d.hours >= 0) & (d.hours <= 100))
    fell = [i for i, k in enumerate(d.fallback) if k is not None]
    assert fell, "the garbage engine should have forced some fallbacks"
    assert np.all(d.hours[fell] == 25.0)
    counts = d.counts()
    assert sum(counts.values()) == len(fell) and "clamped" not in counts
    assert counts.get("out_of_range", 0) > 0  # the engine's 250 h answers fell back, none became 100 h


def test_batch_spreads_agents_round_robin_over_lms():
    engines = [offline_counting_engine(), offline_counting_engine(), offline_counting_engine()]
    lms = [lm(e) for e in engines]
    WorkerAgent().decide_batch(memories(10), SCHED, 0.0, lms=lms, runner=BatchRunner(3))
    assert [e.calls for e in engines] == [4, 3, 3]  # agents 0,3,6,9 / 1,4,7 / 2,5,8


def test_batch_is_concurrent_and_bounded():
    engine = slow_engine(0.05)
    WorkerAgent().decide_batch(memories(16), SCHED, 0.0, lms=[lm(engine)], runner=BatchRunner(8))
    assert engine.calls == 16
    assert 1 < len(engine.threads) <= 8  # several pool threads served the batch, never more than 8
    # (the speed-up itself is a figure in bench/bench_agents.py, not a timed assertion)


def test_batch_threads_inherit_dspy_context():
    seen = []

    def fn(request):
        seen.append("JSON object" in (request.system or ""))
        from programs.lm.offline import answer_request
        return answer_request(request)

    with dspy.context(adapter=dspy.JSONAdapter()):
        WorkerAgent().decide_batch(memories(6), SCHED, 0.0, lms=[lm(FunctionEngine(fn))], runner=BatchRunner(3))
    assert len(seen) == 6 and all(seen)


def test_batch_is_deterministic_and_independent_of_concurrency():
    [offline] = build_lms("offline", seed=3)
    a = WorkerAgent().decide_batch(memories(12), SCHED, 100.0, lms=[offline], runner=BatchRunner(1), step=4)
    b = WorkerAgent().decide_batch(memories(12), SCHED, 100.0, lms=[offline], runner=BatchRunner(4), step=4)
    assert np.array_equal(a.hours, b.hours)


def test_rollout_ids_are_stable_and_distinct():
    ids = {rollout_id(0, "work", 5, i) for i in range(1000)}
    assert len(ids) == 1000
    assert rollout_id(0, "work", 5, 7) == rollout_id(0, "work", 5, 7) != rollout_id(1, "work", 5, 7)


def test_cot_module_type_answers_too():
    [offline] = build_lms("offline")
    agent = WorkerAgent(module_type="cot")
    pred = agent(persona="p", skill=40_000, schedule=SCHED, lm=offline)
    assert pred.fallback is None and 0 <= pred.hours <= 100
    assert "decide.predict" in dict(agent.named_predictors())
    with pytest.raises(ValueError, match="module_type"):
        WorkerAgent(module_type="react")
