"""The offline engine answers hand-written prompts sensibly, deterministically, in each adapter's format."""

import asyncio
import json

import dspy
import numpy as np
import pytest

from programs.lm.offline import (
    OFFLINE_LABEL,
    AsyncOfflineEngine,
    OfflineEngine,
    _es_sigma,
    answer,
    offline_lm,
)
from signatures import ChooseLabor, PlannerYear, ProposeTaxSchedule, Schedule, WorkerStep

KAPPA, DELTA = 0.0269, 3.5

# ── hand-written prompts, in the shape DSPy's ChatAdapter writes them (no simulator involved) ──

WORKER_SYSTEM = """Your input fields are:
1. `persona` (str): who you are
2. `skill` (float): your pre-tax income in $/year if you work 40 hours a week
3. `schedule` (Schedule): the tax schedule in force
4. `last_rebate` (float): the lump-sum rebate you received last step, in $/year
5. `history` (list[WorkerStep]): your recent steps, oldest first
6. `best` (list[WorkerStep]): your best past steps by utility, best first
Your output fields are:
1. `hours` (float): weekly hours you will work next, a number in [0, 100]
All interactions will be structured in the following way, with the appropriate values filled in.

[[ ## persona ## ]]
{persona}

[[ ## hours ## ]]
{hours}        # note: the value you produce must be a single float value

[[ ## completed ## ]]
In adhering to this structure, your objective is:
        Choose your weekly hours."""

PLANNER_SYSTEM = """Your input fields are:
1. `cutoffs` (list[float]): bracket lower bounds in $/year
2. `current_rates_percent` (list[float]): the marginal rates in force now
3. `history` (list[PlannerYear]): recent tax years, oldest first
4. `best` (list[PlannerYear]): the best past tax years
Your output fields are:
1. `rates_percent` (list[float]): next year's marginal rates in percent
All interactions will be structured in the following way, with the appropriate values filled in.

[[ ## rates_percent ## ]]
{rates_percent}

[[ ## completed ## ]]
In adhering to this structure, your objective is:
        Choose next year's rates."""

REMINDER = "Respond with the corresponding output fields, starting with the field `[[ ## hours ## ]]`."


def user(**fields) -> str:
    parts = [f"[[ ## {k} ## ]]\n{v if isinstance(v, str) else json.dumps(v)}" for k, v in fields.items()]
    return "\n\n".join(parts + [REMINDER])


def row(step, hours, utility, skill=40000.0, rate=0.0, rebate=0.0, consumption=None):
    z = skill * hours / 40
    tax = rate * z
    c = z - tax + rebate if consumption is None else consumption
    return dict(step=step, hours=hours, pretax_income=z, tax=tax, rebate=rebate, consumption=c, utility=utility)


def ego_row(step, hours, skill, rate, rebate=500.0):
    z = skill * hours / 40
    c = z - rate * z + rebate
    return row(step, hours, c - KAPPA * hours**DELTA, skill=skill, rate=rate, rebate=rebate)


def worker_hours(history, *, skill=40000.0, rate_percent=0.0, seed=0, temperature=0.0, best=()):
    msg = user(persona="A worker.", skill=str(skill),
               schedule={"cutoffs": [0.0], "rates_percent": [rate_percent]},
               last_rebate="0.0", history=list(history), best=list(best))
    out = answer(WORKER_SYSTEM, [("user", msg)], seed=seed, temperature=temperature)
    assert out.startswith("[[ ## hours ## ]]\n") and out.rstrip().endswith("[[ ## completed ## ]]")
    return float(out.split("\n")[1])


def rational_hours(skill, rate):
    """Interior optimum of v*l*(1-t) - kappa*l**delta (flat tax): ((1-t) v / (kappa delta))^(1/(delta-1))."""
    return ((1 - rate) * skill / 40 / (KAPPA * DELTA)) ** (1 / (DELTA - 1))


def planner_rates(history, *, current=(10.0, 20.0, 30.0), seed=0, best=None, demos=()):
    hist = [dict(year=y, rates_percent=list(r), welfare=w, revenue=1e6, mean_hours=40.0,
                 agents_per_bracket=[3, 2, 1]) for y, r, w in history]
    msgs = []
    for demo_in, demo_out in demos:
        msgs += [("user", user(**demo_in)), ("assistant", f"[[ ## rates_percent ## ]]\n{json.dumps(demo_out)}\n\n"
                                                         "[[ ## completed ## ]]")]
    msgs.append(("user", user(cutoffs=[0.0, 50000.0, 150000.0], current_rates_percent=list(current),
                              history=hist, best=hist if best is None else best)))
    out = answer(PLANNER_SYSTEM, msgs, seed=seed)
    return json.loads(out.split("\n")[1])


# ── worker ──


def test_first_step_explores_around_40_hours():
    hs = [worker_hours([], seed=s, temperature=1.0) for s in range(40)]
    assert all(25 <= h <= 55 for h in hs)
    assert abs(np.mean(hs) - 40) < 1.5
    assert worker_hours([], temperature=0.0) == 40.0  # no noise at temperature 0


def test_second_step_probes_a_different_hours_value():
    h = worker_hours([row(0, 40.0, 100.0)])
    assert abs(h - 40.0) == pytest.approx(8.0)


def test_moves_toward_the_utility_peak_at_30_hours():
    # Utility peaks at 30 h and is not "consumption minus a power-law cost": the local quadratic is used.
    util = lambda h: 1000.0 - (h - 30.0) ** 2  # noqa: E731
    hs = [40.0, 45.0, 35.0]
    history = [row(i, h, util(h)) for i, h in enumerate(hs)]
    assert worker_hours(history) == pytest.approx(30.0, abs=0.05)
    # Iterating from two probes far from the peak converges there, even with noise.
    hs = [40.0, 48.0]
    for i in range(12):
        hs.append(worker_hours([row(j, h, util(h)) for j, h in enumerate(hs)][-8:], seed=i, temperature=1.0))
    assert abs(np.mean(hs[-5:]) - 30.0) < 1.5
    assert all(0 <= h <= 100 for h in hs)


def test_learns_its_effort_cost_and_best_responds():
    # utility = consumption - kappa h^3.5 exactly (an egotistical worker): two points identify the cost,
    # and the worker heads for the analytic optimum under a 50% flat tax: 30.3 h.
    skill, rate = 38100.0, 0.5
    target = rational_hours(skill, rate)
    assert target == pytest.approx(30.3, abs=0.1)
    h = worker_hours([ego_row(0, 40.0, skill, rate), ego_row(1, 48.0, skill, rate)],
                     skill=skill, rate_percent=50.0)
    assert h == pytest.approx(target, abs=0.15)


def test_schedule_change_re_prices_old_hours():
    # History lived under a 10% flat tax; the prompt now shows 50%: rows whose tax does not match the
    # schedule are old, and the learned cost re-prices them under the new rate.
    skill = 38100.0
    old = [ego_row(i, h, skill, 0.10) for i, h in enumerate([40.0, 44.0, 41.0])]
    h = worker_hours(old, skill=skill, rate_percent=50.0)
    assert h == pytest.approx(rational_hours(skill, 0.5), abs=0.15)
    assert rational_hours(skill, 0.1) > 38  # the old optimum was elsewhere


def test_schedule_change_without_a_cost_model_re_explores_near_best_hours():
    util = lambda h: -abs(h - 44.0)  # noqa: E731  (not an accounting identity)
    old = [row(i, h, util(h), rate=0.10, consumption=0.0) for i, h in enumerate([40.0, 44.0, 48.0])]
    hs = [worker_hours(old, rate_percent=30.0, seed=s) for s in range(20)]
    assert abs(np.mean(hs) - 44.0) < 2.5 and np.std(hs) > 0.5


def test_worker_answers_stay_in_range():
    # A history pushing up at 100 h and one pushing down at 0 h.
    up = [row(i, h, h) for i, h in enumerate([96.0, 98.0, 100.0])]
    down = [row(i, h, -h) for i, h in enumerate([4.0, 2.0, 0.0])]
    for s in range(10):
        assert 0.0 <= worker_hours(up, seed=s, temperature=2.0) <= 100.0
        assert 0.0 <= worker_hours(down, seed=s, temperature=2.0) <= 100.0


def test_deterministic_per_prompt_and_seed():
    hist = [row(0, 40.0, 10.0), row(1, 48.0, 12.0)]
    a = worker_hours(hist, seed=7, temperature=1.0)
    assert a == worker_hours(hist, seed=7, temperature=1.0)
    others = {worker_hours(hist, seed=s, temperature=1.0) for s in range(8)}
    assert len(others) > 4  # seeds give different noise
    # A different prompt (another persona) gets different noise at the same seed.
    msg = lambda p: user(persona=p, skill="40000.0", schedule={"cutoffs": [0.0], "rates_percent": [0.0]},  # noqa: E731
                         last_rebate="0.0", history=hist, best=[])
    outs = {answer(WORKER_SYSTEM, [("user", msg(f"Worker {i}"))], seed=1, temperature=1.0) for i in range(6)}
    assert len(outs) > 3


# ── planner ──


def test_es_step_follows_the_one_fifth_rule():
    pts = lambda ws: [(i, [0.0], w) for i, w in enumerate(ws)]  # noqa: E731
    assert _es_sigma(pts([1.0]))[0] == pytest.approx(8.0)
    assert _es_sigma(pts([1.0, 2.0, 3.0])) == (pytest.approx(8.0 * 1.5**2), 2, 0)  # two successes
    assert _es_sigma(pts([3.0, 2.0, 1.0, 0.0, -1.0])) == (pytest.approx(8.0 * 1.5**-1), 0, 4)
    assert _es_sigma(pts([5.0] + [0.0] * 80))[0] == 0.5  # clipped at the floor


def test_planner_proposes_near_the_best_schedule_seen():
    best = [40.0, 25.0, 60.0]
    history = [(0, [10.0, 20.0, 30.0], 1.0), (1, best, 5.0), (2, [50.0, 50.0, 50.0], 2.0),
               (3, [35.0, 20.0, 70.0], 3.0), (4, [45.0, 30.0, 65.0], 4.0)]
    props = np.array([planner_rates(history, seed=s) for s in range(30)])
    assert props.shape == (30, 3)
    assert np.all((props >= 0) & (props <= 100))
    # One success in four changes: sigma = 8 * 1.5**(1 - 3/4) = 8.9 points around the best.
    assert np.abs(props.mean(axis=0) - best).max() < 5.0
    assert 5.0 < props.std(axis=0).mean() < 13.0


def test_planner_starts_from_its_demonstration():
    demo_in = dict(cutoffs=[0.0, 50000.0, 150000.0], current_rates_percent=[0.0, 0.0, 0.0], history=[], best=[])
    demo_out = [33.0, 44.0, 55.0]
    first = planner_rates([(0, [10.0, 20.0, 30.0], 1.0)], demos=[(demo_in, demo_out)])
    assert first == demo_out
    # Once the demonstration has been tried, the ES takes over from the best year.
    later = planner_rates([(0, [10.0, 20.0, 30.0], 1.0), (1, demo_out, 2.0)], demos=[(demo_in, demo_out)], seed=3)
    assert later != demo_out and np.abs(np.array(later) - demo_out).max() < 40


def test_planner_without_history_perturbs_current_rates():
    a = planner_rates([], current=(20.0, 20.0, 20.0), seed=1)
    assert a == planner_rates([], current=(20.0, 20.0, 20.0), seed=1)
    assert a != planner_rates([], current=(20.0, 20.0, 20.0), seed=2)
    assert len(a) == 3 and all(0 <= r <= 100 for r in a)


def test_planner_demo_through_dspy_predict():
    lm = offline_lm(seed=0)
    cut = [0.0, 50000.0, 150000.0]
    year0 = PlannerYear(year=0, rates_percent=[10.0, 20.0, 30.0], welfare=1.0, revenue=1.0, mean_hours=40.0,
                        agents_per_bracket=[1, 1, 1])
    prog = dspy.Predict(ProposeTaxSchedule)
    prog.demos = [dspy.Example(cutoffs=cut, current_rates_percent=[0.0, 0.0, 0.0], history=[], best=[],
                               rates_percent=[12.0, 34.0, 56.0])]
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        p = prog(cutoffs=cut, current_rates_percent=[10.0, 20.0, 30.0], history=[year0], best=[year0])
    assert p.rates_percent == [12.0, 34.0, 56.0]


# ── other tasks, formats and the engine protocol ──


def test_json_and_unknown_prompts():
    msg = user(persona="A worker.", skill="40000.0", schedule={"cutoffs": [0.0], "rates_percent": [0.0]},
               last_rebate="0.0", history=[], best=[])
    out = json.loads(answer(WORKER_SYSTEM, [("user", msg)], temperature=0.0, json_mode=True))
    assert out == {"hours": 40.0}
    assert OFFLINE_LABEL in answer("You are a helpful assistant.", [("user", "Hello")])
    # Output fields the engine has no policy for get typed defaults.
    sys_ = "Your input fields are:\n1. `q` (str):\nYour output fields are:\n1. `n` (int):\n2. `ok` (bool):\n3. `s` (str):"
    out = answer(sys_, [("user", "[[ ## q ## ]]\nwhat?")])
    assert "[[ ## n ## ]]\n0" in out and "[[ ## ok ## ]]\nfalse" in out and "[[ ## s ## ]]\nN/A" in out


def _ws(i, h):
    z = 38000.0 * h / 40
    return WorkerStep(step=i, hours=h, pretax_income=z, tax=0.2 * z, rebate=0.0, consumption=0.8 * z,
                      utility=0.8 * z - KAPPA * h**DELTA)


def test_engine_stream_async_and_saved_state(tmp_path):
    lm = offline_lm(seed=5)
    args = dict(persona="p", skill=38000.0, schedule=Schedule(cutoffs=[0.0], rates_percent=[20.0]),
                last_rebate=0.0, history=[_ws(0, 40.0), _ws(1, 45.0)], best=[])
    prog = dspy.Predict(ChooseLabor)
    with dspy.context(lm=lm):
        sync = prog(**args).hours

        async def run():
            return (await prog.acall(**args)).hours

        assert asyncio.run(run()) == sync
    # Streaming yields the same text as complete().
    request = dspy.lm15.Request(model="offline", system=WORKER_SYSTEM, messages=(dspy.lm15.Message.user(
        user(persona="p", skill="1.0", schedule={"cutoffs": [0.0], "rates_percent": [0.0]}, last_rebate="0",
             history=[], best=[])),))
    eng = OfflineEngine(seed=5)
    text = "".join(getattr(e.delta, "text", "") for e in eng.stream(request) if getattr(e, "type", "") == "delta")
    assert text == eng.complete(request).message.text
    assert eng.complete(request).usage.output_tokens > 0
    # A program holding the LM saves and loads it (the engine class and seed are recorded).
    prog.set_lm(lm)
    path = tmp_path / "worker.json"
    prog.save(str(path))
    state = json.loads(path.read_text())
    assert state["lm"]["engine"] == {"class": "programs.lm.offline:OfflineEngine", "state": {"seed": 5}}
    assert state["lm"]["async_engine"]["class"] == "programs.lm.offline:AsyncOfflineEngine"
    loaded = dspy.Predict(ChooseLabor)
    loaded.load(str(path), allow_unsafe_lm_state=True)
    with dspy.context(lm=offline_lm(seed=99)):  # the program's own LM wins over the context's
        assert loaded(**args).hours == sync
    assert OfflineEngine.load_state({"seed": 3}).seed == 3 and AsyncOfflineEngine.load_state({}).seed == 0
