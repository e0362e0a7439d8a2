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
