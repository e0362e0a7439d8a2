"""Scenarios are registered classes: adding one does not touch Simulation."""

from __future__ import annotations

import numpy as np
import pytest

from programs.errors import ConfigError
from programs.simulation import load_config
from programs.simulation.records import YearEnd
from programs.simulation.scenarios import SCENARIOS, RationalScenario, register_scenario, scenario_class
from tests.programs.fakes import simulation


def test_the_three_scenarios_are_registered():
    assert {"rational", "bounded", "democratic"} <= set(SCENARIOS)
    with pytest.raises(ValueError, match="unknown scenario 'x'"):
        scenario_class("x")
    with pytest.raises(ConfigError, match="scenario='x': must be one of"):
        load_config(scenario="x")


def test_a_new_scenario_plugs_in_by_name():
    @register_scenario
    class Floor(RationalScenario):
        """Every year's rates are at least 20%; the planner is rewarded with half the welfare."""

        name = "test_floor"

        def year_start(self, sim, year):
            e = super().year_start(sim, year)
            return e.model_copy(update={"rates": [max(r, 0.2) for r in e.rates]})

        def year_end(self, sim, out, year):
            return YearEnd(kind="halve", values=[0.5] * sim.config.agents)

        def reward(self, sim, out, decision):
            return float(out.welfare) * decision.values[0]

    try:
        cfg = load_config(agents=12, years=3, steps_per_year=2, workers="rational", brackets="three",
                          scenario="test_floor")
        sim = simulation(cfg)
        first, end = sim.step(), sim.step()  # tax year 0
        assert first.year_end is None and end.year_end.kind == "halve"
        assert end.welfare == pytest.approx(0.5 * float(sim._outcome(np.asarray(end.hours)).welfare))
        recs = [first, end] + [sim.step() for _ in range(cfg.total_steps - 2)]
        assert all(r >= 0.2 for rec in recs for r in rec.rates)
        assert sim.summary().years[0].year_end_share == 0.5
        with pytest.raises(ValueError, match="already registered"):
            register_scenario(type("Other", (RationalScenario,), {"name": "test_floor"}))
    finally:
        SCENARIOS.pop("test_floor", None)
