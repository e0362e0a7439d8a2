"""--concurrency bounds requests in flight per endpoint; several --api-base values share the agents.

The servers add latency so that requests overlap, and record the most requests they ever held at once.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import read_steps, run_cli, serve

AGENTS, YEARS, SPY = 16, 2, 2
ARGS = ["--agents", str(AGENTS), "--years", str(YEARS), "--steps-per-year", str(SPY), "--brackets", "three",
        "--no-progress", "--no-cache", "--lm", "openai/offline"]


def test_two_endpoints_each_hold_at_most_concurrency_requests(tmp_path: Path, env: dict[str, str]):
    with serve(tmp_path / "a", "--latency-ms", "60") as a, serve(tmp_path / "b", "--latency-ms", "60") as b:
        r = run_cli("programs.simulate", ARGS + ["--concurrency", "4", "--api-base", a.url, "--api-base", b.url,
                                                 "--out", str(tmp_path / "run")], env)
        sa, sb = a.stats(), b.stats()
    assert r.returncode == 0, r.stderr[-2000:]
    # Bounded per server, and the bound was reached (16 agents, 8 per server, each step).
    assert sa["max_in_flight"] == 4 and sb["max_in_flight"] == 4
    # Agents are spread round-robin: even ids on the first endpoint, odd on the second; the planner's
    # proposal (one per tax year after the first) goes to the first.
    steps = YEARS * SPY
    assert sb["requests"] == AGENTS // 2 * steps
    assert sa["requests"] == AGENTS // 2 * steps + (YEARS - 1)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    eps = summary["requests"]["endpoints"]
    assert [e["endpoint"] for e in eps] == [a.url, b.url]
    assert [e["attempts"] for e in eps] == [sa["requests"], sb["requests"]]
    assert all(e["max_in_flight"] <= 4 for e in eps) and summary["requests"]["retries"] == 0
    assert all(len(s["requests"]) == 2 for s in read_steps(tmp_path / "run"))


def test_one_endpoint_with_concurrency_two(tmp_path: Path, env: dict[str, str]):
    with serve(tmp_path / "a", "--latency-ms", "30") as a:
        r = run_cli("programs.simulate", ARGS + ["--agents", "8", "--concurrency", "2", "--api-base", a.url,
                                                 "--out", str(tmp_path / "run")], env)
        sa = a.stats()
    assert r.returncode == 0, r.stderr[-2000:]
    assert sa["max_in_flight"] == 2 and sa["requests"] == 8 * YEARS * SPY + (YEARS - 1)
