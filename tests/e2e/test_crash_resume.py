"""Crash safety: a run killed with SIGKILL mid-year resumes with --resume and ends as an unbroken run.

Under the offline engine (deterministic for a seed): the resumed run must lose at most the step in flight,
drop a torn last line, and write the same steps.jsonl and the same summary.json as a run never interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import ROOT, run_cli

STEPS_PER_YEAR = 8
ARGS = ["--agents", "60", "--years", "4", "--steps-per-year", str(STEPS_PER_YEAR), "--brackets", "three",
        "--seed", "11", "--no-progress"]
TOTAL = 4 * STEPS_PER_YEAR


def complete_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return path.read_bytes().count(b"\n")


def test_sigkill_mid_year_then_resume_equals_an_unbroken_run(tmp_path: Path, env: dict[str, str]):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    r = run_cli("programs.simulate", ARGS + ["--out", str(whole)], env)
    assert r.returncode == 0, r.stderr[-2000:]

    proc = subprocess.Popen([sys.executable, "-m", "programs.simulate", *ARGS, "--out", str(broken)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = broken / "steps.jsonl"
    kill_at = STEPS_PER_YEAR + 3  # inside tax year 1
    deadline = time.monotonic() + 90
    try:
        while complete_lines(log) < kill_at and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    logged = complete_lines(log)
    assert kill_at <= logged < TOTAL and logged % STEPS_PER_YEAR != 0  # killed mid-year
    assert not (broken / "summary.json").exists()
    # A kill can land in the middle of a write: emulate the torn line it leaves.
    with open(log, "ab") as f:
        f.write(b'{"t": %d, "year": 1, "hours": [40.0, 3' % logged)

    r = run_cli("programs.simulate", ARGS + ["--out", str(broken), "--resume"], env)
    assert r.returncode == 0, r.stderr[-2000:]
    # Nothing logged was lost: the run continues from the first step not on disk.
    assert f"resumed at step {logged} of {TOTAL}" in r.stdout

    a = (whole / "steps.jsonl").read_text().splitlines()
    b = (broken / "steps.jsonl").read_text().splitlines()
    assert [json.loads(x)["t"] for x in b] == list(range(TOTAL))
    assert a == b  # byte for byte: every record, before and after the kill
    sa = json.loads((whole / "summary.json").read_text())
    sb = json.loads((broken / "summary.json").read_text())
    assert sa == sb  # the summary holds no wall-clock fields
    assert sa["steps"] == TOTAL and len(sa["welfare_by_year"]) == 4
