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
