"""What the live viewer costs per redraw: building a simulation's page model from its run directory.

    python bench/bench_page.py [--agents 100] [--years 5] [--steps-per-year 25] [--repeats 3]

Runs one simulation with rational workers (no LM: the log has the same shape as an LM run's, without the
LM's time) into a temporary directory, then times ``page_model`` (process CPU time, best of ``--repeats``)
and prints the model's JSON size, the size of ``report.html`` and of ``plotly.min.js`` beside it. The
viewer rebuilds the model only when the run's files change, i.e. at most once per step; the target is a
rebuild well under a step's time with LM workers (seconds) and a page of a few MB at most.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.page import PAGE, PLOTLY_JS, model_json, page_model, write_html  # noqa: E402
from programs.simulation.cli import main as simulate  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=100)
    p.add_argument("--years", type=int, default=5)
    p.add_argument("--steps-per-year", type=int, default=25)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        code = simulate(["--agents", str(a.agents), "--years", str(a.years), "--steps-per-year", str(a.steps_per_year),
                         "--workers", "rational", "--no-progress", "--out", str(out)])
        assert code == 0, code
        page_model(out)  # imports and first-call set-up out of the timing
        best = float("inf")
        for _ in range(a.repeats):
            t0 = time.process_time()
            model = page_model(out)
            best = min(best, time.process_time() - t0)
        write_html(out)
        steps = a.years * a.steps_per_year
        print(f"{a.agents} agents x {steps} steps: page_model {best * 1000:.0f} ms CPU (best of {a.repeats}), "
              f"{best / steps * 1000:.2f} ms per step logged")
        print(f"model JSON {len(model_json(model)) / 1e6:.2f} MB; {PAGE} {(out / PAGE).stat().st_size / 1e6:.2f} MB; "
              f"{PLOTLY_JS} beside it {(out / PLOTLY_JS).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
