"""PlannerAgent: validated rates, fallbacks, bounded history, DSPy JSON save/load, welfare rising."""

from __future__ import annotations

import json
import math

import dspy
import numpy as np
import pytest
from dspy.utils.dummies import DummyLM

from economy.tax import TaxSchedule
from programs.lm import build_lms
from programs.agents.tax_planner import FixedPlanner, PlannerAgent, planner_year, validate_rates
from programs.simulation import load_config
from signatures import PlannerYear, ProposeTaxSchedule
from tests.programs.fakes import simulation, FunctionEngine, lm

THREE = TaxSchedule.preset("three", [0.10, 0.20, 0.30])


@pytest.mark.parametrize(
    "raw, rates, kind",
    [([10, 20, 30], [10.0, 20.0, 30.0], None), (["5", 0, 100], [5.0, 0.0, 100.0], None),
     ([-5, 50, 140], None, "out_of_range"), ([10, 20], None, "invalid"),
     ([10, 20, 30, 40], None, "invalid"), ([10, math.nan, 30], None, "non_finite"),
     ("10, 20, 30", None, "invalid"), (None, None, "invalid"), ([10, "x", 30], None, "invalid")],
)
def test_validate_rates(raw, rates, kind):
    r, k = validate_rates(raw, 3)
    assert k == kind
    if rates is not None:
        assert r == rates


def test_offline_proposal_is_a_valid_schedule_on_the_same_brackets():
    [offline] = build_lms("offline")
    agent = PlannerAgent("three")
    prop = agent.plan(THREE, lm=offline)
    new, fb = prop.schedule(THREE), prop.fallback
    assert fb is None and prop.clamped == 0 and isinstance(new, TaxSchedule)
    assert new.cutoffs.tolist() == [0.0, 90_000.0, 159_100.0]
    assert np.all((new.rates >= 0) & (new.rates <= 1)) and new != THREE


def test_out_of_range_rates_fall_back_and_are_counted():
    # Policy (issue 11 item 9): a rate outside [0, 100] is not clamped into range; the rates in force stay.
    answer = "[[ ## rates_percent ## ]]\n[-10, 55.5, 180]\n\n[[ ## completed ## ]]"
    agent = PlannerAgent("three")
    prop = agent.plan(THREE, lm=lm(FunctionEngine(lambda r: answer)))
    assert prop.fallback == "out_of_range" and prop.schedule(THREE) == THREE
    assert prop.clamped == 0 and prop.counts() == {"out_of_range": 1}
    assert agent.fallbacks.snapshot() == {"out_of_range": 1}


@pytest.mark.parametrize("answer, kind", [
    ("[[ ## rates_percent ## ]]\n[10, 20]\n\n[[ ## completed ## ]]", "invalid"),  # one rate missing
    ("I would raise taxes on the rich.", "parse_error"),
])
def test_malformed_answers_keep_the_current_schedule(answer, kind):
    agent = PlannerAgent("three")
    prop = agent.plan(THREE, lm=lm(FunctionEngine(lambda r: answer)))
    assert prop.fallback == kind and prop.schedule(THREE) == THREE and prop.counts() == {kind: 1}
    assert agent.fallbacks.snapshot() == {kind: 1}


def test_dummy_lm_garbage_falls_back():
    agent = PlannerAgent("three")
    prop = agent.plan(THREE, lm=DummyLM([{"rates_percent": "higher"}] * 3))
    assert prop.schedule(THREE) == THREE and prop.fallback == "parse_error"


def test_history_window_and_best_years():
    agent = PlannerAgent("three", history_len=3, best_k=2)
    welfare = [5.0, 9.0, 1.0, 9.0, 2.0, 3.0]
    for y, w in enumerate(welfare):
        agent.record_year(PlannerYear(year=y, rates_percent=[y, y, y], welfare=w, revenue=0.0, mean_hours=40.0,
                                      agents_per_bracket=[1, 0, 0]))
    assert [y.year for y in agent.prompt_history()] == [3, 4, 5]
    # The two best years are 1 and 3 (a tie: the earlier first); year 3 is in the history, so not repeated.
    assert [y.year for y in agent.prompt_best()] == [1]
    agent.history_len = 1
    assert [y.year for y in agent.prompt_best()] == [1, 3]  # best first; ties keep the earlier year
    agent.history_len = 3
    seen = {}

    def fn(request):
        seen["chat"] = "\n".join(m.text or "" for m in request.messages)
        return "[[ ## rates_percent ## ]]\n[1, 2, 3]\n\n[[ ## completed ## ]]"

    agent.plan(THREE, lm=lm(FunctionEngine(fn)))
    history = seen["chat"].split("[[ ## history ## ]]")[1].split("[[ ## best ## ]]")[0]
    assert [r["year"] for r in json.loads(history)] == [3, 4, 5]


def test_planner_year_counts_agents_per_bracket():
    income = np.array([0.0, 50_000.0, 89_999.0, 90_000.0, 200_000.0])
    y = planner_year(2, THREE, 1.23456789, 1e5, 38.5, income)
    assert y.agents_per_bracket == [3, 1, 1] and y.rates_percent == [10.0, 20.0, 30.0]
    assert y.welfare == 1.2346


def test_save_and_load_class_and_instance_forms(tmp_path):
    agent = PlannerAgent("three", module_type="cot", history_len=4, best_k=1)
    demo = dspy.Example(cutoffs=[0, 90_000, 159_100], current_rates_percent=[0, 0, 0], history=[], best=[],
                        rates_percent=[30, 40, 50]).with_inputs("cutoffs", "current_rates_percent", "history", "best")
    agent.propose.predict.demos = [demo]
    path = tmp_path / "planner.json"
    agent.save(str(path))
    assert "api_key" not in path.read_text()

    loaded = PlannerAgent.load(path)
    assert isinstance(loaded, PlannerAgent)
    assert (loaded.module_type, loaded.history_len, loaded.best_k) == ("cot", 4, 1)
    assert loaded.cutoffs == [0.0, 90_000.0, 159_100.0]
    assert loaded.propose.predict.demos[0]["rates_percent"] == [30, 40, 50]

    other = PlannerAgent("three", module_type="cot")
    assert other.load(path) is other and other.propose.predict.demos[0]["rates_percent"] == [30, 40, 50]
    assert PlannerAgent.load(path, history_len=9).history_len == 9


def test_load_a_bare_predict_saved_by_an_optimizer(tmp_path):
    bare = dspy.Predict(ProposeTaxSchedule)
    bare.signature = bare.signature.with_instructions("Tuned instructions.")
    path = tmp_path / "bare.json"
    bare.save(str(path))
    agent = PlannerAgent.load(path)
    assert agent.module_type == "predict"
    assert agent.propose.signature.instructions == "Tuned instructions."


@pytest.mark.parametrize("module_type", ["predict", "cot"])
def test_a_program_saved_before_the_inputs_were_reordered_loads_each_description_on_its_field(tmp_path, module_type):
    """DSPy restores field descriptions by position; a saved program from an older input order (or with an
    output prefix rewritten by COPRO) must not land them on the wrong fields."""
    agent = PlannerAgent("three", module_type=module_type)
    path = tmp_path / "planner.json"
    agent.save(str(path))
    state = json.loads(path.read_text())
    key = "propose" if module_type == "predict" else "propose.predict"
    fields = state[key]["signature"]["fields"]
    for f in fields:
        f["description"] = "saved: " + f["prefix"]
    fields[-1]["prefix"] = "Next Year's Rates:"  # an optimizer's rewritten output prefix
    state[key]["signature"]["fields"] = fields[::-1][1:] + [fields[-1]]  # inputs reversed, output last
    path.write_text(json.dumps(state))

    loaded = PlannerAgent.load(path)
    pred = loaded.propose if module_type == "predict" else loaded.propose.predict
    extras = {name: f.json_schema_extra for name, f in pred.signature.fields.items()}
    for name, x in extras.items():
        if name != "rates_percent":
            assert x["desc"] == "saved: " + x["prefix"], name
    assert extras["rates_percent"]["prefix"] == "Next Year's Rates:"
    assert extras["rates_percent"]["desc"] == "saved: Rates Percent:"

    state[key]["signature"]["fields"] = fields[:-1]
    path.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="compiled for another signature"):
        PlannerAgent.load(path)


def test_fixed_planner_keeps_its_schedule():
    p = FixedPlanner(THREE)
    prop = p.plan(TaxSchedule.none("three"))
    assert prop.schedule(TaxSchedule.none("three")) == THREE and prop.fallback is None


def test_planner_welfare_rises_across_tax_years():
    # Rational workers respond exactly, so year-to-year welfare moves only with the planner's rates.
    cfg = load_config(agents=50, years=6, steps_per_year=1, workers="rational", brackets="three", seed=0)
    s = simulation(cfg).run(progress=False)
    w = s.welfare_by_year
    assert len(w) == 6 and s.fallbacks == {}
    assert max(w[1:]) > 1.1 * w[0]  # the best later year clearly beats the zero-tax start (oracle: ~2x)
    assert np.mean(w[3:]) > np.mean(w[:3])  # and the second half of the episode beats the first
    assert s.rates_percent_by_year[0] == [0.0, 0.0, 0.0]
