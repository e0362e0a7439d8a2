"""Optuna tuning: the end-to-end score, the knobs reaching the planner, and two processes sharing one study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import optimize.planner as cli
from optimize.tune import Knobs, TuneSettings, check_storage, end_to_end_score, planner_with, run_study
from tests.optimize.conftest import SMALL

ROOT = Path(__file__).resolve().parents[2]
SUB = ["--agents", "6", "--years", "2", "--tune-seeds", "0", "--train-seeds", "0", "--heldout-seeds", "100",
       "--oracle-trials", "10", "--oracle-refine", "40", "--quiet"]


def test_end_to_end_score_is_the_mean_normalised_welfare_after_year_0():
    s = TuneSettings(econ=SMALL, seeds=[0], years=3, workers="rational")
    score, per_year = end_to_end_score(s, Knobs(history_len=3, steps_per_year=1, temperature=0.7, n_demos=0), 0)
    assert len(per_year) == 2 and score == pytest.approx(sum(per_year) / 2)
    assert all(0.0 <= x <= 1.0 for x in per_year)


def test_knobs_reach_the_planner(small_sets):
    pool = [e for e in small_sets[0] if e.year == 1]
    s = TuneSettings(econ=SMALL, seeds=[0], demo_pool=pool)
    agent = planner_with(s, history_len=7, n_demos=2)
    assert agent.history_len == 7 and agent.best_k == 3
    assert agent.propose.demos == pool[:2]
    assert planner_with(s, 2, 0).propose.demos == []


def test_in_memory_study_adds_trials_and_respects_the_budget():
    import dspy

    from optimize.budget import CallCounter
    from optimize.tune import max_calls_per_trial

    s = TuneSettings(econ=SMALL, seeds=[1], years=2, workers="llm")
    study = run_study(s, trials=2, storage=None, study_name="mem", seed=0)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 2
    assert set(study.best_params) == {"history_len", "steps_per_year", "temperature", "n_demos"}
    assert 0.0 <= study.best_value <= 1.0
    # A budget of one trial's worst case: the study stops after the first trial.
    counter = CallCounter()
    with dspy.context(callbacks=[counter]):
        study = run_study(s, trials=5, storage=None, study_name="mem2", seed=0, counter=counter,
                          budget=max_calls_per_trial(s) + 1)
    assert len(study.trials) == 1 and counter.total <= max_calls_per_trial(s)


def test_on_trial_sees_every_trial_this_process_ends_the_failed_one_too(monkeypatch):
    """``--mlflow``'s trial runs: Optuna's callbacks never see a trial that failed and stopped the study, so
    ``run_study`` hands it to ``on_trial`` itself (once), then lets the error through."""
    import optimize.tune as tune

    real = tune.end_to_end_score
    calls = []

    def flaky(settings, knobs, seed):
        calls.append(seed)
        if len(calls) == 3:
            raise RuntimeError("the third simulation broke")
        return real(settings, knobs, seed)

    monkeypatch.setattr(tune, "end_to_end_score", flaky)
    seen: list[tuple[int, str, float | None]] = []
    s = TuneSettings(econ=SMALL, seeds=[1], years=2, workers="rational")
    with pytest.raises(RuntimeError, match="third simulation"):
        run_study(s, trials=5, storage=None, study_name="flaky", seed=0,
                  on_trial=lambda study, t: seen.append((t.number, t.state.name, t.value)))
    assert [(n, state) for n, state, _ in seen] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "FAIL")]
    assert seen[0][2] is not None and seen[2][2] is None


@pytest.mark.parametrize("url, ok", [("sqlite:///x.db", True), ("postgresql://u:p@h/db", True),
                                     ("sqlite://", False), ("redis://h", False), ("x", False)])
def test_check_storage(url, ok):
    if ok:
        assert check_storage(url) == url
    else:
        with pytest.raises(ValueError):
            check_storage(url)


def test_two_processes_share_one_sqlite_study(tmp_path, capsys):
    """Each process adds --trials N to the shared study: two processes leave 2N complete trials."""
    n = 2
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "optimize.planner", "--tune", "--storage", url, "--study-name",
                               "shared", "--trials", str(n), *SUB, "--out", str(tmp_path / f"p{i}.json")],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=url)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 2 * n and len(study.trials) == 2 * n
    # Both wrote a program and a summary that reports the shared study.
    for i in range(2):
        summary = json.loads((tmp_path / f"p{i}.summary.json").read_text())
        assert summary["study"]["study_name"] == "shared" and summary["trials_added_by_this_process"] == n
        assert summary["storage"] == url
    # A third run (here in-process) resumes the same study.
    assert cli.main(["--tune", "--storage", url, "--study-name", "shared", "--trials", "1", *SUB,
                     "--out", str(tmp_path / "p2.json")]) == 0
    assert len(optuna.load_study(study_name="shared", storage=url).trials) == 2 * n + 1
    assert f"study 'shared': {2 * n + 1} trials" in capsys.readouterr().out


def test_tune_cli_in_memory_reports_both_heldout_figures(tmp_path, capsys):
    out = tmp_path / "tuned.json"
    assert cli.main(["--tune", "--trials", "2", *SUB, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    s = json.loads((tmp_path / "tuned.summary.json").read_text())
    h = s["heldout"]
    assert f"given knobs {h['before']['mean']:.4f} -> best knobs {h['after']['mean']:.4f}" in printed
    assert s["workers"] == "llm" and s["storage"] is None and s["study"]["by_state"] == {"COMPLETE": 2}
    from programs.agents.tax_planner import PlannerAgent

    agent = PlannerAgent.load(out)
    assert agent.history_len == s["program"]["history_len"] and len(agent.propose.demos) == s["program"]["demos"]
