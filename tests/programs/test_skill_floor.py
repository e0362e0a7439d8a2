"""``skill_floor`` as a simulation setting: validated, stored, and used by every welfare the loop computes."""

from __future__ import annotations

import numpy as np
import pytest

from economy.constants import MIN_WAGE_SKILL
from economy.labor import best_response
from economy.world import outcome
from programs.errors import ConfigError
from programs.simulation import load_config
from programs.simulation.env import PlannerEnv
from programs.simulation.cli import parser as simulate_parser


def test_default_is_the_minimum_wage_and_presets_resolve_to_numbers():
    assert load_config().skill_floor == MIN_WAGE_SKILL == 7.25 * 52
    assert load_config(skill_floor="none").skill_floor == 0.0
    assert load_config(skill_floor="min_wage").skill_floor == MIN_WAGE_SKILL
    assert load_config(skill_floor=12.5).skill_floor == 12.5
    assert simulate_parser().parse_args([]).skill_floor == "min_wage"


@pytest.mark.parametrize("bad", [-1, "cheap", float("nan"), float("inf"), True])
def test_bad_floor_is_one_line_naming_the_field_and_range(bad):
    with pytest.raises(ConfigError) as e:
        load_config(skill_floor=bad)
    msg = str(e.value)
    assert msg.startswith("skill_floor=") and ">= 0" in msg and "\n" not in msg


@pytest.mark.parametrize("floor", [0.0, MIN_WAGE_SKILL, 2000.0])
def test_the_loops_welfare_uses_the_configured_floor(floor):
    cfg = load_config(agents=40, years=2, steps_per_year=1, workers="rational", brackets="three", skill_floor=floor)
    env = PlannerEnv(cfg)
    env.reset(seed=3)
    rates = np.array([0.1, 0.3, 0.4])
    _, reward, *_ = env.step(rates)
    sim = env.sim
    hours = best_response(sim.skill, sim.schedule, kappa=sim.kappa)
    want = outcome(sim.population, sim.schedule, hours, "inverse_skill", kappa=sim.kappa, skill_floor=floor).welfare
    assert reward == pytest.approx(want, rel=1e-12)
    other = outcome(sim.population, sim.schedule, hours, "inverse_skill", kappa=sim.kappa,
                    skill_floor=1000.0 if floor != 1000.0 else 0.0).welfare
    assert reward != pytest.approx(other, rel=1e-6)  # the floor matters on this population
    env.close()


def test_simulate_cli_refuses_a_bad_floor_in_one_line(capsys, tmp_path):
    from programs.simulation import cli

    code = cli.main(["--skill-floor", "-2", "--agents", "5", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: skill_floor=") and ">= 0" in err and "\n" not in err


def test_optimize_planner_takes_the_floor_into_its_economy(capsys, monkeypatch, tmp_path):
    import optimize.planner as opt
    from optimize.situations import EconomySpec

    monkeypatch.chdir(tmp_path)
    assert opt.resolve(opt.parser().parse_args([])).econ.skill_floor == MIN_WAGE_SKILL
    assert opt.resolve(opt.parser().parse_args(["--skill-floor", "none"])).econ.skill_floor == 0.0
    assert EconomySpec(skill_floor=0.0) != EconomySpec()  # economies (and their oracles) are cached per floor
    assert opt.main(["--skill-floor", "-1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--skill-floor=-1.0 is outside [0, inf)" in err
