"""Simulation: config validation, workers learning within a year, malformed answers, determinism, resume."""

from __future__ import annotations


import numpy as np
import pytest
from dspy.utils.dummies import DummyLM

from economy.welfare import social_welfare
from programs.lm import ConfigError
from programs.simulation.runlog import RunLog, read_steps
from programs.simulation.records import RunSummary, StepRecord
from programs.simulation import RESUMABLE_CHANGES, Simulation, load_config
from tests.programs.fakes import simulation, FunctionEngine, garbage_engine, lm

SMALL = dict(agents=12, years=2, steps_per_year=4, brackets="three", initial_rates=[10, 20, 30])


@pytest.mark.parametrize("settings, message", [
    (dict(agents=0), "agents=0"),
    (dict(scenario="anarchy"), "scenario='anarchy'"),
    (dict(workers="robots"), "workers='robots'"),
    (dict(brackets="nordic"), "brackets='nordic'"),
    (dict(swf="happiness"), "swf='happiness'"),
    (dict(temperature=3.0), "temperature=3.0"),
    (dict(kappa=-1.0), "kappa=-1.0"),
    (dict(utility_mix={"selfish": 1.0}), "utility_mix="),
    (dict(brackets="three", initial_rates=[10, 20]), "initial_rates has 2 entries"),
    (dict(initial_rates=[10, 20, 30, 40, 50, 60, 170]), "initial_rates[6]=170"),
    (dict(steps_per_yaer=3), "steps_per_yaer: unknown setting"),
])
def test_bad_config_names_the_field(settings, message):
    with pytest.raises(ConfigError) as err:
        load_config(**settings)
    line = str(err.value)
    assert message in line and "\n" not in line


def test_llm_workers_approach_the_best_response_within_a_tax_year():
    cfg = load_config(agents=20, years=1, steps_per_year=20, seed=1)
    sim = simulation(cfg)
    records = [sim.step() for _ in range(cfg.total_steps)]
    gaps = [r.gap_median for r in records]
    # The first step explores around 40 h; by the end of the year the median worker is close to optimal.
    assert gaps[0] > 4.0
    assert gaps[-1] < 0.2 * gaps[0] and gaps[-1] < 1.5
    br = sim.best_response()
    assert np.median(np.abs(np.asarray(records[-1].hours) - br)) == pytest.approx(gaps[-1])


def test_gym_like_surface():
    cfg = load_config(**SMALL, workers="rational")
    sim = simulation(cfg)
    obs = sim.reset()
    assert obs == {"t": 0, "year": 0, "rates": [0.1, 0.2, 0.3], "hours": None}
    rec = sim.step()
    assert isinstance(rec, StepRecord) and rec.t == 0 and rec.k == 0 and len(rec.utility) == cfg.agents
    assert rec.event.kind == "initial" and rec.gap_median == 0.0  # rational workers
    assert StepRecord.model_validate(rec.log_line()) == rec  # the log line reads back as the record
    while not sim.done:
        sim.step()
    with pytest.raises(RuntimeError, match="episode is over"):
        sim.step()
    assert sim.reset()["t"] == 0 and sim.planner.years == []


def test_same_seed_same_results_and_another_seed_differs():
    a = simulation(load_config(**SMALL)).run(progress=False)
    b = simulation(load_config(**SMALL, concurrency=3)).run(progress=False)
    c = simulation(load_config(**SMALL, seed=7)).run(progress=False)
    a.config.pop("concurrency"), b.config.pop("concurrency")
    assert a == b
    assert c.welfare_by_year != a.welfare_by_year


def test_malformed_answers_finish_the_run_with_fallbacks_counted():
    cfg = load_config(**SMALL, scenario="bounded")
    engine = garbage_engine(share=0.4)
    sim = Simulation(cfg, lms=[lm(engine)])
    records = [sim.step() for _ in range(cfg.total_steps)]
    assert [r.t for r in records] == list(range(cfg.total_steps))  # no step missing
    hours = np.array([r.hours for r in records])
    assert hours.shape == (8, 12) and np.all((hours >= 0) & (hours <= 100))
    s = sim.summary()
    worker_fb = sum(sum(r.fallbacks.values()) for r in records)
    assert worker_fb > 0 and s.fallbacks.get("out_of_range", 0) > 0 and s.clamped == 0
    assert sum(s.fallbacks.values()) >= worker_fb
    assert len(s.welfare_by_year) == 2 and all(np.isfinite(s.welfare_by_year))


def test_dummy_lm_that_never_answers_properly():
    # Every call of every agent gets unparseable text: workers keep 40 h (then their last hours), the
    # planner keeps the schedule in force, satisfaction defaults to satisfied.
    cfg = load_config(**SMALL, scenario="bounded")
    dummy = DummyLM([{"nothing": "useful"}] * 10_000)
    s = Simulation(cfg, lms=[dummy]).run(progress=False)
    assert s.final.rates_percent == [10.0, 20.0, 30.0]
    assert s.final.mean_hours == 40.0
    n_worker_calls = cfg.agents * cfg.total_steps
    assert s.fallbacks["parse_error"] == n_worker_calls + 1 + cfg.agents * cfg.years  # + planner + satisfaction
    assert s.years[-1].year_end_share == 1.0


def test_bounded_scenario_halves_unsatisfied_utility_in_the_planners_reward():
    from programs.lm.offline import answer_request

    def fn(request):
        if "`satisfied`" in (request.system or ""):  # RateSatisfaction: nobody is ever satisfied
            return "[[ ## satisfied ## ]]\nFalse\n\n[[ ## completed ## ]]"
        return answer_request(request)

    cfg = load_config(**SMALL, scenario="bounded", workers="rational")
    sim = Simulation(cfg, lms=[lm(FunctionEngine(fn))])
    records = [sim.step() for _ in range(cfg.steps_per_year)]  # year 0, still under the initial schedule
    last = records[-1]
    assert last.year_end.kind == "satisfaction" and last.year_end.values == [False] * cfg.agents
    assert all(r.year_end is None for r in records[:-1])
    out = sim._outcome(np.asarray(last.hours))
    expected = social_welfare(0.5 * out.utility, skill=sim.skill, income=out.income, swf=cfg.swf)
    assert last.welfare == pytest.approx(expected)
    assert sim.planner.years[0].welfare == pytest.approx(expected, abs=1e-4)
    # Steps before the year's end are not judged: their welfare is the plain one.
    assert records[0].welfare == pytest.approx(sim._outcome(np.asarray(records[0].hours)).welfare)
    assert sim.summary().years[0].year_end_share == 0.0


def _run_logged(tmp_path, name, years, **extra):
    cfg = load_config(**{**SMALL, **extra, "years": years})
    if (tmp_path / name / "config.json").exists():
        log, records = RunLog.open_resume(tmp_path / name, cfg.model_dump(), resumable=RESUMABLE_CHANGES)
    else:
        log, records = RunLog.create(tmp_path / name, cfg.model_dump()), []
    sim = simulation(cfg)
    sim.replay(records)
    try:
        return sim.run(progress=False, log=log)
    finally:
        log.close()


@pytest.mark.parametrize("scenario", ["rational", "bounded", "democratic"])
def test_resume_after_a_stop_gives_the_unbroken_summary(tmp_path, scenario):
    unbroken = _run_logged(tmp_path, "unbroken", 3, scenario=scenario, election_every=2)
    _run_logged(tmp_path, "stopped", 1, scenario=scenario, election_every=2)
    resumed = _run_logged(tmp_path, "stopped", 3, scenario=scenario, election_every=2)
    assert resumed == unbroken
    assert RunSummary.model_validate_json((tmp_path / "stopped" / "summary.json").read_text()) == unbroken
    assert len(read_steps(tmp_path / "stopped" / "steps.jsonl")) == 12


def test_a_kill_mid_write_loses_only_the_step_in_flight(tmp_path):
    unbroken = _run_logged(tmp_path, "unbroken", 2)
    lines = (tmp_path / "unbroken" / "steps.jsonl").read_text().splitlines(keepends=True)
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "config.json").write_text((tmp_path / "unbroken" / "config.json").read_text())
    (killed / "steps.jsonl").write_text("".join(lines[:5]) + lines[5][: len(lines[5]) // 2])  # a torn line
    assert len(read_steps(killed / "steps.jsonl")) == 5
    assert _run_logged(tmp_path, "killed", 2) == unbroken


def test_resume_refuses_other_settings_and_foreign_logs(tmp_path):
    _run_logged(tmp_path, "run", 1)
    cfg = load_config(**{**SMALL, "seed": 5})
    with pytest.raises(ConfigError, match="seed=5 differs"):
        RunLog.open_resume(tmp_path / "run", cfg.model_dump(), resumable=RESUMABLE_CHANGES)
    with pytest.raises(ConfigError, match="already holds a run log"):
        RunLog.create(tmp_path / "run", cfg.model_dump())
    # A log whose numbers this configuration cannot reproduce is refused on replay.
    records = read_steps(tmp_path / "run" / "steps.jsonl")
    records[1]["welfare"] += 1.0
    with pytest.raises(ValueError, match="welfare recomputes"):
        simulation(load_config(**SMALL)).replay(records)


def test_runs_keep_no_dspy_history_or_trace():
    import dspy
    from dspy.clients.base_lm import GLOBAL_HISTORY

    before = len(GLOBAL_HISTORY)
    trace_before = len(dspy.settings.trace)
    sim = simulation(load_config(**SMALL))
    sim.run(progress=False)
    assert sim.lms[0].history == [] and len(GLOBAL_HISTORY) == before
    assert len(dspy.settings.trace) == trace_before
    assert sim.worker.history == [] and sim.planner.history == []


def test_custom_cutoffs_are_a_first_class_bracket_set():
    cfg = load_config(agents=10, years=2, steps_per_year=1, workers="rational", brackets="0,50000,200000",
                      initial_rates=[5, 10, 20])
    assert cfg.brackets == [0.0, 50000.0, 200000.0]
    assert cfg.initial_tax_schedule().rates.tolist() == [0.05, 0.10, 0.20]
    s = simulation(cfg).run(progress=False)
    assert s.rates_percent_by_year[0] == [5.0, 10.0, 20.0] and len(s.rates_percent_by_year[1]) == 3
    # With no initial rates, custom cut-offs start untaxed.
    assert load_config(brackets=[0, 1000]).initial_tax_schedule().rates.tolist() == [0.0, 0.0]
    for bad, msg in (("0,abc,100000", "'abc' is not a number"), ("nope", "not a preset"),
                     ("0,100,50", "strictly increasing")):
        with pytest.raises(ConfigError, match=msg):
            load_config(brackets=bad)
