"""No silent hours of fallbacks (issue 10): FallbackGuard, the loop's call counts, exit 3 and --resume."""

from __future__ import annotations

import json
import shlex

import pytest

from programs.simulation import cli as simulate
from programs.simulation import load_config
from programs.simulation.guard import FallbackGuard, FallbackStop
from programs.simulation.runlog import RunLog
from tests.programs.fakes import FunctionEngine, lm, offline_counting_engine, simulation

SMALL = dict(agents=4, years=2, steps_per_year=3, brackets="three", scenario="rational", workers="llm", seed=0)


def failing_engine() -> FunctionEngine:
    """Every answer is prose without fields: every call a parse_error fallback."""
    return FunctionEngine(lambda request: "Sorry, I would rather not say.")


def test_guard_needs_patience_consecutive_failed_steps():
    g = FallbackGuard(max_rate=0.5, patience=3)
    g.observe(0, 10, {"parse_error": 6})
    g.observe(1, 10, {"parse_error": 6})
    g.observe(2, 10, {"parse_error": 5})  # exactly the share: not over it, the streak restarts
    g.observe(3, 0, {})                   # a step without LM calls neither counts nor breaks a streak
    g.observe(4, 10, {"lm_error": 9})
    g.observe(5, 10, {"parse_error": 7, "lm_error": 1})
    with pytest.raises(FallbackStop) as info:
        g.observe(6, 10, {"lm_error": 8, "truncated": 1})
    stop = info.value
    assert (stop.t, stop.steps, stop.calls) == (6, 3, 30)
    assert list(stop.causes.items()) == [("lm_error", 18), ("parse_error", 7), ("truncated", 1)]  # dominant first
    line = stop.line("python -m programs.simulate --out x --resume")
    assert "\n" not in line and "lm_error 18, parse_error 7, truncated 1" in line
    assert line.endswith("continue with: python -m programs.simulate --out x --resume")


@pytest.mark.parametrize("rate, patience", [(-0.1, 3), (1.5, 3), (0.5, 0), (0.5, 1.5), (True, 3)])
def test_guard_rejects_bad_settings(rate, patience):
    with pytest.raises(ValueError):
        FallbackGuard(rate, patience)


def test_loop_counts_calls_and_stops_an_always_failing_engine(tmp_path):
    cfg = load_config(**SMALL)
    engine = failing_engine()
    sim = simulation(cfg, lms=[lm(engine)])
    log = RunLog.create(tmp_path, cfg.model_dump(), lm="fake", overwrite=True)
    with pytest.raises(FallbackStop) as info:
        sim.run(progress=False, log=log, guard=FallbackGuard(0.5, 3))
    log.close()
    # rational scenario, LM workers: 4 worker calls a step, plus the planner's at the first step of year 1
    # (year 0 runs the initial schedule). The third step (t=2) trips the guard; nothing after it runs.
    # 12 answers, 24 requests: DSPy's ChatAdapter retries each failed parse once with its JSON adapter.
    assert engine.calls == 24 and sim.t == 3
    assert info.value.causes == {"parse_error": 12} and info.value.calls == 12
    lines = (tmp_path / "steps.jsonl").read_text().splitlines()
    assert [json.loads(x)["t"] for x in lines] == [0, 1, 2]  # every step up to the stop, whole
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 3


def test_loop_call_count_matches_the_engine():
    cfg = load_config(**SMALL)
    engine = offline_counting_engine()
    sim = simulation(cfg, lms=[lm(engine)])
    calls = []
    while not sim.done:
        sim.step()
        calls.append(sim.last_calls)
    assert calls == [4, 4, 4, 5, 4, 4] and sum(calls) == engine.calls  # the planner's call at t=3


def test_cli_exits_3_with_one_line_and_resume_continues(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "run")
    argv = ["--agents", "4", "--years", "2", "--steps-per-year", "3", "--brackets", "three", "--no-progress",
            "--out", out, "--fallback-patience", "2"]
    real = simulate.build_lms
    monkeypatch.setattr(simulate, "build_lms", lambda *a, **k: [lm(failing_engine())])
    assert simulate.main(argv) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("stopped: more than 50% of the LM calls fell back for 2 consecutive steps")
    assert "parse_error 8" in err[0]
    command = err[0].split("continue with: ")[1]
    assert command == shlex.join(["python", "-m", "programs.simulate", *argv, "--resume"])  # every setting kept
    assert len((tmp_path / "run" / "steps.jsonl").read_text().splitlines()) == 2
    monkeypatch.setattr(simulate, "build_lms", real)  # the server is back: the resume command continues
    assert simulate.main(shlex.split(command)[3:]) == 0
    assert "resumed at step 2 of 6" in capsys.readouterr().out
    assert len((tmp_path / "run" / "steps.jsonl").read_text().splitlines()) == 6


@pytest.mark.parametrize("flag, value, message", [("--max-fallback-rate", "2", "--max-fallback-rate=2.0"),
                                                  ("--fallback-patience", "0", "--fallback-patience=0")])
def test_cli_bad_guard_settings_exit_2(flag, value, message, tmp_path, capsys):
    assert simulate.main(["--out", str(tmp_path / "x"), flag, value]) == 2
    assert message in capsys.readouterr().err


def test_a_served_run_writes_its_answers_to_the_summary(tmp_path, capsys, monkeypatch):
    # A served (structured-output) run ends by adding the answer counts to the typed RunSummary; this
    # raised TypeError ('RunSummary' object does not support item assignment) after part A's merge.
    from programs.lm.server import serve_in_thread

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    url, stop = serve_in_thread(fail_rate=0.0)
    try:
        code = simulate.main(["--agents", "3", "--years", "1", "--steps-per-year", "2", "--brackets", "three",
                              "--no-progress", "--lm", "openai/offline", "--api-base", url, "--no-cache",
                              "--out", str(tmp_path / "run")])
    finally:
        stop()
    assert code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["answers"]["calls"] == 6 and summary["requests"]["calls"] >= 6
    assert "answers this session (auto structured output)" in capsys.readouterr().out
