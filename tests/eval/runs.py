"""Small known runs for the page and viewer tests (tests/eval/test_page.py, tests/browser/)."""

from __future__ import annotations

from pathlib import Path

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
