"""examples.household: the new agent's parts, the registered scenario, replay, and the CLI (small, offline)."""

import json

import dspy
import numpy as np
import pytest
from pydantic import ValidationError

from examples.household import (
    HouseholdAgent, HouseholdInput, HouseholdScenario, HouseholdYear, SplitIncome, consume_share, lifetime_utility,
    simulate_paths,
)
from examples.household.__main__ import main
from examples.household.economics import check_preferences
from examples.household.offline_policy import household_policy
from programs.agents import BatchRunner
from programs.lm import build_lms
from programs.lm.offline import POLICIES
from programs.simulation import Simulation, load_config
from programs.simulation.runlog import RunLog, read_steps
from programs.simulation.scenarios import SCENARIOS


def test_consume_share_by_hand_and_against_a_grid():
    # Two years, beta 0.99, r 5%, cash 200, income 100: FOC 1/C = beta*1.05/(1.05(200-C)+100) -> C = 310/(1.05 + 1.0395).
    c = 310.0 / (1.05 + 0.99 * 1.05)
    assert float(consume_share(200.0, 100.0, 2, 0.05, 0.99)) == pytest.approx(c / 200.0, rel=1e-12)
    grid = np.linspace(1.0, 199.999, 400_001)
    best = grid[np.argmax(np.log(grid) + 0.99 * np.log(1.05 * (200 - grid) + 100))]
    assert best == pytest.approx(c, abs=1e-3)
    assert float(consume_share(500.0, 100.0, 1, 0.05, 0.99)) == 1.0  # the final year: spend everything
    assert float(consume_share(100.0, 100.0, 3, 0.0, 1.0)) == pytest.approx(1.0)  # beta(1+r)=1: smooth = income


def test_preferences_and_types_are_validated_naming_the_field():
    with pytest.raises(ValueError, match=r"discount_factor\*\(1\+interest_rate\)=0.9975 < 1"):
        check_preferences(0.05, 0.95)
    with pytest.raises(ValueError, match=r"interest_rate=2 is outside \[0, 1\]"):
        HouseholdScenario(2.0, 0.99)
    with pytest.raises(ValidationError, match=r"saving=-5 must be a finite amount >= 0"):
        HouseholdYear(year=0, income=1.0, cash_on_hand=1.0, consumption=1.0, saving=-5.0)
    assert SCENARIOS["household"] is HouseholdScenario


def test_offline_policy_is_registered_and_answers_the_rule_through_dspy():
    assert POLICIES["consume_percent"] is household_policy
    [lm] = build_lms("offline", temperature=0.0)
    with dspy.context(lm=lm):
        pred = dspy.Predict(SplitIncome)(persona="A nurse.", years_left=2, interest_rate_percent=5.0,
                                          discount_factor=0.99, income=100.0, cash_on_hand=200.0, history=[])
    assert pred.consume_percent == pytest.approx(100 * 310.0 / 2.0895 / 200.0, abs=0.01)


def test_agent_falls_back_to_the_last_share_and_counts_by_kind():
    agent = HouseholdAgent()
    h = HouseholdInput(agent_id=0, persona="p", years_left=2, interest_rate_percent=5.0, discount_factor=0.99,
                       income=1.0, cash_on_hand=1.0, fallback_percent=80.0)
    agent.decide = lambda **kw: dspy.Prediction(consume_percent=150.0)
    assert agent(h).consume_percent == 80.0
    agent.decide = lambda **kw: dspy.Prediction(consume_percent="lots")
    assert agent(HouseholdInput(**{**h.__dict__, "fallback_percent": None})).consume_percent == 100.0

    def boom(**kw):
        raise RuntimeError("down")

    agent.decide = boom
    percent, kinds = agent.decide_batch([h, h], lms=[object()], runner=BatchRunner(1))
    assert percent.tolist() == [80.0, 80.0] and kinds == ["lm_error", "lm_error"]
    assert agent.fallbacks.snapshot() == {"invalid": 1, "lm_error": 2, "out_of_range": 1}


def test_scenario_runs_logs_and_replays(tmp_path):
    lms = build_lms("offline", seed=0)
    config = load_config(agents=5, years=3, steps_per_year=2, scenario="household", seed=0)
    scenario = HouseholdScenario(0.05, 0.99)
    sim = Simulation(config, lms, scenario=scenario)
    with RunLog.create(tmp_path / "run", config.model_dump(), lm="offline") as log:
        summary = sim.run(progress=False, log=log)
    records = read_steps(tmp_path / "run" / "steps.jsonl")
    saving = [r["year_end"] for r in records if "year_end" in r]
    assert [s["kind"] for s in saving] == ["saving"] * 3 and all(len(s["values"]) == 5 for s in saving)
    assert saving[-1]["values"] == [100.0] * 5  # the final year spends everything
    paths = scenario.paths(sim)
    assert paths["cash"].shape == (3, 5) and np.all(paths["saving"] >= 0)
    rule = simulate_paths(paths["income"], None, 0.05, 0.99)
    gap = lifetime_utility(rule["consumption"], 0.99) - lifetime_utility(paths["consumption"], 0.99)
    assert np.all(np.abs(gap) < 0.05)
    # A fresh simulation rebuilt from the log alone holds the same households.
    again = HouseholdScenario(0.05, 0.99)
    sim2 = Simulation(config, lms, scenario=again)
    sim2.replay(records)
    assert again.percents == scenario.percents
    assert sim2.summary().model_dump() == summary.model_dump()
    np.testing.assert_array_equal(again.paths(sim2)["saving"], paths["saving"])
    sim.close()
    sim2.close()


def test_cli_runs_offline_writes_the_run_log_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "hh"
    argv = ["--agents", "4", "--years", "2", "--steps-per-year", "2", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "offline engine (not a language model)" in text and "NOT a language model" in text
    assert "consumed % LM / rule" in text and "lifetime utility" in text
    assert json.loads((out / "config.json").read_text())["config"]["scenario"] == "household"
    assert (out / "summary.json").exists()
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "already holds a run log" in err and err.strip().count("\n") == 0


def test_cli_bad_preferences_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--discount-factor", "0.9"])
    assert e.value.code == 2 and "< 1" in capsys.readouterr().err
