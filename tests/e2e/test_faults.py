"""A run through the real network client survives a server failing 20% of its requests.

`programs.serve` injects HTTP 500, 429 (with Retry-After), hangs past the client timeout, truncated and
non-JSON bodies and out-of-range answers; the client retries with back-off, counts every attempt, and the
agents fall back (counted) when an answer is unusable. The server's own counts are compared with the run's.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from tests.e2e.conftest import read_steps, run_cli, serve

#: Server fault kind -> the client's error kind for that failed attempt.
CLIENT_KIND = {"http500": "server_error", "http429": "rate_limited", "hang": "timeout", "truncated": "transport",
               "nonjson": "bad_body"}
SIM = ["--agents", "8", "--years", "2", "--steps-per-year", "3", "--brackets", "three", "--seed", "3",
       "--no-progress", "--no-cache"]


def test_simulate_completes_under_20_percent_faults(tmp_path: Path, env: dict[str, str]):
    with serve(tmp_path, "--fail-rate", "0.2", "--seed", "3", "--retry-after-s", "0.2") as server:
        r = run_cli("programs.simulate", SIM + ["--lm", "openai/offline", "--api-base", server.url, "--timeout", "2",
                                                "--num-retries", "4", "--retry-backoff", "0.1",
                                                "--out", str(tmp_path / "run")], env)
        seen = server.stats()
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "run"
    steps = read_steps(run)
    assert [s["t"] for s in steps] == list(range(6))  # no step missing
    assert all(len(s["hours"]) == 8 and all(0 <= h <= 100 for h in s["hours"]) for s in steps)
    summary = json.loads((run / "summary.json").read_text())
    req = summary["requests"]

    # Every request the server answered (or dropped) was an attempt of the client, and vice versa.
    assert req["attempts"] == seen["requests"] == req["calls"] + req["retries"]
    assert req["calls"] == 8 * 6 + 1  # 8 workers x 6 steps + the planner's year-1 proposal
    # Every injected transport-level fault is one counted client error of the matching kind ...
    served = seen["faults"]
    assert {CLIENT_KIND[k]: v for k, v in served.items() if k in CLIENT_KIND} == req["errors"]
    assert sum(v for k, v in served.items() if k in CLIENT_KIND) >= 5  # the mix was really exercised
    # ... and was retried, unless it was the last allowed attempt (then the call failed and the agent fell back).
    assert req["retries"] > 0 and req["retries"] + req["failed"] == sum(req["errors"].values())
    assert req["backoff_s"] > 0
    # Every unusable answer is a counted fallback: failed calls and out-of-range answers (never clamped).
    fb = summary["fallbacks"]
    assert fb.get("lm_error", 0) == req["failed"]
    assert sum(fb.values()) == req["failed"] + served.get("out_of_range", 0)
    # The per-step log carries the same counts, so a resumed run reports them too.
    assert sum(s["requests"][0]["attempts"] for s in steps) == req["attempts"]
    assert "retries" in r.stdout and f"{req['retries']} retries" in r.stdout


def test_eval_compare_completes_under_20_percent_faults(tmp_path: Path, env: dict[str, str]):
    # eval.compare keeps the client's default 60 s timeout, so a hang is a 1 s stall and a dropped connection.
    with serve(tmp_path, "--fail-rate", "0.2", "--seed", "5", "--hang-s", "1", "--retry-after-s", "0.2") as server:
        r = run_cli("eval.compare", ["--agents", "8", "--years", "2", "--steps-per-year", "2", "--seeds", "1",
                                     "--planners", "llm,saez", "--oracle-trials", "5", "--oracle-refine", "0",
                                     "--lm", "openai/offline", "--api-base", server.url, "--no-plots",
                                     "--no-progress", "--out", str(tmp_path / "cmp")], env, timeout=150)
        seen = server.stats()
    assert r.returncode == 0, r.stderr[-3000:]
    faults = sum(v for k, v in seen["faults"].items() if k != "out_of_range")
    assert seen["requests"] >= 8 * 4 + 1 + faults and faults > 0
    with open(tmp_path / "cmp" / "summary.csv", newline="") as f:
        rows = {row["planner"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"llm", "saez"} and float(rows["llm"]["welfare"]) > 0
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "offline engine" in report  # the served stand-in is labelled as such
    # Out-of-range answers reached the LM simulations (the planner's, and the LM workers' of the empirical Saez
    # elasticity) and were counted there as fallbacks (never clamped).
    out_of_range = seen["faults"].get("out_of_range", 0)
    counted = [int(n) for n in re.findall(r"(?:llm|saez_empirical):out_of_range (\d+)", report)]
    assert sum(counted) == out_of_range
