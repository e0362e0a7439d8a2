"""--dry-run (issue 10): answers by role counted by hand, the same as a real run's, nothing built or written."""

from __future__ import annotations

import pytest

from programs.simulation import cli as simulate
from programs.simulation import load_config
from programs.simulation.dryrun import calls_by_role, dry_run
from tests.programs.fakes import simulation


@pytest.fixture
def no_lm(monkeypatch):
    import programs.lm

    def refuse(*a, **k):
        raise AssertionError("--dry-run built an LM")
    monkeypatch.setattr(simulate, "build_lms", refuse)
    monkeypatch.setattr(programs.lm, "build_lms", refuse)


def test_hand_counts_of_a_tiny_configuration():
    # 3 agents x 2 years x 2 steps = 12 worker answers; the planner moves once (year 1; year 0 is initial).
    tiny = dict(agents=3, years=2, steps_per_year=2, brackets="three", workers="llm")
    assert calls_by_role(load_config(**tiny, scenario="rational")) == {"worker": 12, "planner": 1}
    # bounded: + 3 satisfaction answers at the end of each of the 2 years.
    assert calls_by_role(load_config(**tiny, scenario="bounded")) == {"worker": 12, "planner": 1, "satisfaction": 6}
    # democratic, elections in years 0 and 2 of 3 (3 candidates' platforms + 3 votes each), the planner in year 1.
    demo = load_config(**{**tiny, "years": 3}, scenario="democratic", election_every=2, n_candidates=3)
    assert calls_by_role(demo) == {"worker": 18, "planner": 3 + 1 + 3, "voter": 6}
    assert calls_by_role(load_config(**{**tiny, "workers": "rational"}, scenario="rational")) == {"planner": 1}
    plan = dry_run({"worker": 12, "planner": 1}, n_brackets=3)
    assert plan.prompt_tokens == {"worker": 12 * 920, "planner": 900}


@pytest.mark.parametrize("scenario, extra", [("rational", {}), ("bounded", {}),
                                             ("democratic", {"election_every": 2, "n_candidates": 2})])
def test_the_count_is_what_a_run_asks(scenario, extra):
    cfg = load_config(agents=3, years=3, steps_per_year=2, brackets="three", workers="llm", scenario=scenario, **extra)
    sim = simulation(cfg)
    sim.run(progress=False)
    asked = {r: u.calls for r, u in sim.summary().usage.by_role.items()}
    assert asked == calls_by_role(cfg)


def test_simulate_dry_run_prints_and_exits_0_without_an_lm(tmp_path, capsys, no_lm):
    out = tmp_path / "run"
    assert simulate.main(["--agents", "3", "--years", "2", "--steps-per-year", "2", "--brackets", "three",
                          "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith(": 13 LM answers (worker 12, planner 1)")
    assert "~11,940 prompt" in lines[1] and "nothing was built or called" in lines[1]  # 12 x 920 + 900
    assert lines[2].startswith("estimated cost: unknown")  # the offline engine has no price
    assert not out.exists()  # nothing written
    assert simulate.main(["--agents", "3", "--years", "2", "--steps-per-year", "2", "--brackets", "three",
                          "--out", str(out), "--dry-run", "--price-in", "1", "--price-out", "0"]) == 0
    assert "$0.01194 (--price-in 1 / --price-out 0" in capsys.readouterr().out  # 11,940 prompt tokens x $1/M


def test_a_registered_scenario_is_counted_as_it_states():
    # The household example asks every household once a year (role "other"); the count is the scenario's
    # own statement (Scenario.lm_calls), and equals what a run asks.
    import examples.household.scenario  # noqa: F401  (registers "household")
    from programs.lm import build_lms
    from programs.simulation import Simulation

    cfg = load_config(agents=3, years=3, steps_per_year=1, brackets="three", workers="rational", scenario="household")
    assert calls_by_role(cfg) == {"planner": 2, "other": 9}
    sim = Simulation(cfg, build_lms("offline", seed=cfg.seed))
    sim.run(progress=False)
    assert {r: u.calls for r, u in sim.summary().usage.by_role.items()} == calls_by_role(cfg)
    lines = dry_run(calls_by_role(cfg), n_brackets=3).lines("x")
    assert "11 LM answers (planner 2, other 9)" in lines[0] and "not estimated for other" in lines[1]


def test_a_scenario_states_its_first_year_planning_and_its_own_checks():
    from programs.lm import ConfigError
    from programs.simulation.scenarios import SCENARIOS, RationalScenario, register_scenario

    @register_scenario
    class PlansFromYearZero(RationalScenario):
        name = "plans_from_year_zero_test"
        plan_first_year = True

        @classmethod
        def check_config(cls, config):
            if config.years < 2:
                raise ValueError(f"years={config.years} must be >= 2 for {cls.name}")

    try:
        cfg = load_config(agents=3, years=2, steps_per_year=1, workers="rational", scenario=PlansFromYearZero.name)
        assert calls_by_role(cfg) == {"planner": 2}  # years 0 and 1
        with pytest.raises(ConfigError, match="years=1 must be >= 2"):
            load_config(agents=3, years=1, scenario=PlansFromYearZero.name)
        with pytest.raises(ConfigError, match="n_candidates=4 exceeds agents=3"):
            load_config(agents=3, scenario="democratic", n_candidates=4)
    finally:
        SCENARIOS.pop(PlansFromYearZero.name)


def test_importing_a_configuration_does_not_load_dspy():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; import programs.simulation.config as c; "
            "c.load_config(scenario='democratic', agents=5); print('dspy' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[3], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    assert r.stdout.strip() == "False"
