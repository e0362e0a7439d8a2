"""Issue 11 item 2: ``optimize.planner`` probes ``--api-base``, refuses to save a compile whose LM calls all
failed, and ``--budget`` bounds every LM call of the run (scoring included)."""

from __future__ import annotations

import json

import optimize.planner as cli
from programs.lm.server import serve_in_thread

TINY = ["--agents", "10", "--years", "2", "--train-seeds", "0-1", "--val-seeds", "2", "--heldout-seeds", "100-101",
        "--oracle-trials", "10", "--oracle-refine", "0", "--quiet"]


def test_an_unreachable_api_base_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    import optimize.cli

    monkeypatch.setattr(optimize.cli, "run_compile", lambda cfg: (_ for _ in ()).throw(AssertionError("ran")))
    rc = cli.main(["--lm", "openai/x", "--api-base", "http://127.0.0.1:1/v1", "--out", str(tmp_path / "p.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "unreachable" in err and len(err.strip().splitlines()) == 1


def test_a_compile_where_every_call_fails_is_an_error_and_saves_nothing(tmp_path, capsys):
    url, stop = serve_in_thread(fail_rate=1.0, faults=["http500"])
    try:
        out = tmp_path / "p.json"
        rc = cli.main(TINY + ["--lm", "openai/offline-engine", "--api-base", url, "--out", str(out)])
    finally:
        stop()
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "every LM call failed" in err and "nothing was saved" in err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not out.with_name("p.summary.json").exists()


def test_budget_bounds_every_call_including_scoring(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert cli.main(TINY + ["--budget", "40", "--out", str(out)]) == 0
    s = json.loads(out.with_name("p.summary.json").read_text())
    b = s["budget"]
    assert b["limit"] == 40
    assert b["total_calls"] == b["compile_calls"] + b["evaluation_calls"] <= 40
    assert b["evaluation_calls"] <= b["evaluation_bound"]
    assert "used" in capsys.readouterr().out


def test_an_lm_failure_the_optimizer_does_not_survive_keeps_the_uncompiled_program(tmp_path, capsys, monkeypatch):
    """MIPROv2's instruction proposer does not catch a prompt over the local window (a real-model compile died
    on one): counted, the uncompiled program and its held-out scores saved, exit 3."""
    import dspy
    from dspy.utils.exceptions import ContextWindowExceededError

    import optimize.compile

    def overflow(*_a, **_k):
        raise ContextWindowExceededError(model="local/x", message="Requested tokens (4481) exceed context window of 4096")

    monkeypatch.setattr(optimize.compile, "compile_planner", overflow)
    out = tmp_path / "p.json"
    rc = cli.main(TINY + ["--budget", "40", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 3, captured.err
    s = json.loads(out.with_name("p.summary.json").read_text())
    ab = s["failures"]["compile_aborted"]
    assert ab["cause"] == "ContextWindowExceededError" and "4481" in ab["message"]
    h = s["heldout"]
    assert [r["before"] for r in h["per_situation"]] == [r["after"] for r in h["per_situation"]]
    assert h["delta_mean"] == 0 and s["validation"] is None
    assert not s["program"]["instructions_changed"] and s["program"]["demos"] == 0
    assert "the compile stopped on an LM failure (ContextWindowExceededError" in captured.out
    from programs.agents.tax_planner import PlannerAgent

    agent = PlannerAgent.load(out)  # the way eval.compare's 'compiled' planner loads it
    assert not agent.propose.demos


def test_a_bug_in_the_compile_is_not_swallowed(tmp_path, capsys, monkeypatch):
    import optimize.compile

    monkeypatch.setattr(optimize.compile, "compile_planner",
                        lambda *_a, **_k: (_ for _ in ()).throw(KeyError("a bug")))
    out = tmp_path / "p.json"
    assert cli.main(TINY + ["--out", str(out)]) == 1
    assert "KeyError" in capsys.readouterr().err and not out.exists()
