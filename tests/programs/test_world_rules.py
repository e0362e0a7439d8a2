"""The reference's world rules as SimulationConfig options: hours grid, rate grid, move limit, income cap."""

from __future__ import annotations

import numpy as np
import pytest

from programs.agents.tax_planner import FixedPlanner, Proposal, limit_moves
from programs.agents.worker import validate_hours
from programs.lm import ConfigError
from programs.simulation import load_config
from economy.tax import TaxSchedule
from tests.programs.fakes import simulation


def test_hours_on_a_ten_hour_grid():
    assert validate_hours(43, grid=10) == (40.0, None)
    assert validate_hours(47.5, grid=10) == (50.0, None)
    assert validate_hours(43) == (43.0, None)  # no grid: any hours
    assert validate_hours(250, grid=10)[1] == "out_of_range"  # a fallback, never clamped onto the grid
    assert validate_hours(-3, grid=10)[1] == "out_of_range"
    assert validate_hours("x", grid=10)[1] == "invalid"


def test_a_move_of_plus_35_becomes_plus_20_and_is_counted_as_move_limited():
    rates, n = limit_moves([85, 50, 36], [50, 50, 50], max_move=20, grid=10)
    assert rates == [70.0, 50.0, 40.0] and n == 1  # -14 rounds to -10 on the grid (not a clamp)
    rates, n = limit_moves([0, 100, 95], [10, 90, 90], max_move=20, grid=10)
    assert rates == [0.0, 100.0, 90.0] and n == 0  # within the limit; +5 rounds half to even: 0, as numpy
    p = Proposal([85.0, 50.0, 36.0]).limited([50, 50, 50], 20, 10)
    # The move limit is a world rule: counted as move_limited, neither a clamp nor a fallback.
    assert p.rates_percent == [70.0, 50.0, 40.0] and p.move_limited == 1 and p.clamped == 0 and p.counts() == {}
    assert Proposal([85.0]).limited([50]) == Proposal([85.0])  # no rule: unchanged


def test_move_limit_keeps_rates_in_range():
    rates, n = limit_moves([130, -40], [90, 10], max_move=20, grid=10)
    assert rates == [100.0, 0.0] and n == 2


@pytest.mark.parametrize("settings, message", [
    (dict(hours_grid=0), "hours_grid=0"),
    (dict(rate_grid=-10), "rate_grid=-10"),
    (dict(max_rate_move=120), "max_rate_move=120"),
    (dict(brackets="three", top_income_cap=100_000), "top_income_cap=100000"),
])
def test_bad_world_rules_name_the_field(settings, message):
    with pytest.raises(ConfigError) as err:
        load_config(**settings)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_simulation_applies_every_rule_in_one_place():
    cfg = load_config(agents=8, years=3, steps_per_year=3, brackets="three", initial_rates=[50, 50, 50],
                      kappa="paper", swf="paper", hours_grid=10, rate_grid=10, max_rate_move=20,
                      top_income_cap=10_000_000, workers="llm")
    # A planner that always asks for 95% everywhere: +45 is cut to +20 each year (counted as move_limited).
    wants = TaxSchedule.preset("three", rates=[0.95, 0.95, 0.95])
    sim = simulation(cfg, planner=FixedPlanner(wants))
    assert sim.schedule.top_income_cap == 10_000_000
    summary = sim.run(progress=False)
    assert [y.rates_percent for y in summary.years] == [[50, 50, 50], [70, 70, 70], [90, 90, 90]]
    assert summary.move_limited == 6 and summary.clamped == 0  # 3 brackets x 2 planning years
    assert not {"clamped", "move_limited"} & set(summary.fallbacks)
    assert sum(y.move_limited for y in summary.years) == 6
    assert sim.schedule.top_income_cap == 10_000_000  # kept by every year's schedule
    assert all(h % 10 == 0 for h in sim.hours)  # LM workers' answers rounded onto the grid


def test_the_lm_planner_under_the_move_limit_is_move_limited_never_clamped():
    # README: `clamped` is only for non-LM planners. The offline planner's moves beyond 1 point are cut by
    # the world's rule and counted as such, and the election's platforms likewise.
    for scenario in ("rational", "democratic"):
        cfg = load_config(agents=6, years=3, steps_per_year=1, brackets="three", max_rate_move=1,
                          scenario=scenario, election_every=1, workers="rational")
        summary = simulation(cfg).run(progress=False)
        moved = [abs(a - b) for y0, y1 in zip(summary.rates_percent_by_year, summary.rates_percent_by_year[1:])
                 for a, b in zip(y0, y1)]
        assert max(moved) <= 1 + 1e-9
        assert summary.clamped == 0 and summary.move_limited > 0, scenario


def test_rational_workers_best_respond_on_the_grid():
    cfg = load_config(agents=8, years=1, steps_per_year=1, brackets="three", workers="rational", hours_grid=10,
                      kappa="paper")
    sim = simulation(cfg)
    sim.step()
    assert np.all(np.mod(sim.hours, 10) == 0)
