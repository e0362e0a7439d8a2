"""Ctrl-C while the LMs are checked, built or probed: one line, exit 130, no traceback, nothing written.

The probe is made slow by an endpoint that accepts connections and never answers; SIGINT is sent once the
CLI's pre-flight has connected to it (so the signal lands in the probe, not in the imports before)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.parametrize("module, args", [
    ("programs.simulate", ["--agents", "4", "--years", "1", "--steps-per-year", "1", "--timeout", "30"]),
    ("eval.compare", ["--agents", "4", "--seeds", "0", "--years", "1", "--steps-per-year", "1", "--planners", "llm"]),
    ("optimize.planner", []),
])
def test_ctrl_c_during_the_probe_is_one_line_and_130(module, args, tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(120)
        port = listener.getsockname()[1]
        out = tmp_path / ("run.json" if module == "optimize.planner" else "run")
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", module, "--lm", "openai/slow", "--api-base",
                                 f"http://127.0.0.1:{port}/v1", *args, "--out", str(out)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            conn, _ = listener.accept()  # the pre-flight's GET /models: now the CLI waits on this socket
            with conn:
                time.sleep(0.3)
                proc.send_signal(signal.SIGINT)
                stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, (stdout[-500:], stderr[-1500:])
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert "interrupted" in stderr and "nothing was written" in stderr
    assert not out.exists()
