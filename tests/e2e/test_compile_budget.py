"""Issue 19: ``optimize.planner --budget`` is a hard cap on the requests the client sends, even against an
endpoint that fails half its requests (retries are requests too; ``programs.serve --fail-rate 0.5``)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import run_cli, serve

TINY = ["--agents", "10", "--years", "3", "--train-seeds", "0-3", "--val-seeds", "4-5", "--heldout-seeds", "100-103",
        "--oracle-trials", "10", "--oracle-refine", "0", "--quiet"]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, budget", [("bootstrap", 60), ("gepa", 70)])
def test_budget_caps_requests_against_a_half_failing_endpoint(tmp_path, env, optimizer, budget):
    out = tmp_path / "p.json"
    with serve(tmp_path, "--fail-rate", "0.5", "--faults", "http500,nonjson") as server:
        r = run_cli("optimize.planner", [*TINY, "--lm", "openai/offline-engine", "--api-base", server.url,
                                         "--optimizer", optimizer, "--budget", str(budget), "--out", str(out)],
                    env, timeout=600)
        stats = server.stats()
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(out.with_name("p.summary.json").read_text())
    b = s["budget"]
    # The client counts every attempt (retries included; a DSPy cache hit too, so the server may see fewer),
    # and never passes the budget; the endpoint really did fail requests.
    assert stats["requests"] <= b["total_calls"] <= budget
    assert sum(stats["faults"].values()) > 0, (stats, b)
    assert b["total_calls"] == b["compile_calls"] + b["evaluation_calls"]
    # Failures are reported by cause; with half the requests failing some retries run out or are refused.
    assert s["failures"]["lm_errors"] or b["refused_calls"] or s["failures"]["unusable_answers"]["planner"]
    assert "failures:" in r.stdout and "paired over held-out seeds" in r.stdout
