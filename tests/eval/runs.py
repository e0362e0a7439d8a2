"""Small known runs for the page and viewer tests (tests/eval/test_page.py, tests/browser/)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: A democratic simulation with an election every year: 5 agents, 2 tax years x 2 steps (offline engine).
SIM_ARGS = ["--agents", "5", "--years", "2", "--steps-per-year", "2", "--scenario", "democratic",
            "--election-every", "1", "--lm", "offline", "--no-progress"]
SIM_AGENTS, SIM_YEARS, SIM_STEPS = 5, 2, 4

#: A comparison with an LM planner (offline engine), the yardsticks and two seeds (for intervals).
CMP_PLANNERS = ["llm", "oracle", "saez", "us_federal", "none"]
CMP_ARGS = ["--planners", ",".join(CMP_PLANNERS), "--agents", "8", "--seeds", "0-1", "--years", "2",
            "--steps-per-year", "1", "--oracle-trials", "5", "--oracle-refine", "0", "--no-plots", "--no-progress"]


def simulation_run(out: Path) -> Path:
    """Run ``programs.simulate`` with ``SIM_ARGS`` into ``out``."""
    from programs.simulation.cli import main

    assert main(SIM_ARGS + ["--out", str(out)]) == 0
    return out


def comparison_run(out: Path) -> Path:
    """Run ``eval.compare`` with ``CMP_ARGS`` into ``out``."""
    from eval.compare import main

    assert main(CMP_ARGS + ["--out", str(out)]) == 0
    return out


class Viewer:
    """``python -m eval.view RUN_DIR --port 0`` in a subprocess; its URL from the line it prints."""

    def __init__(self, run_dir: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "eval.view", str(run_dir), "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        line = self.proc.stdout.readline()
        assert " at http://127.0.0.1:" in line, (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.url = line.split(" at ")[1].split()[0]

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=30) as r:
            return r.read()

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return self.proc.returncode, err
