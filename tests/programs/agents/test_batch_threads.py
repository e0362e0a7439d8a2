"""Issue 18: one thread-count rule (``programs.agents.batch.batch_threads``) for the simulation, the examples
and the optimizer, which counted threads per endpoint nowhere (one endpoint's worth for any number)."""

from __future__ import annotations

import dspy
import pytest

from programs.agents.batch import MAX_THREADS, batch_threads
from programs.lm import build_lms


class _Served(dspy.BaseLM):
    """A stand-in for a served LM: only its model name matters to the rule (never called)."""

    def __init__(self) -> None:
        super().__init__(model="openai/served")


def test_in_process_engines_run_inline():
    assert batch_threads(build_lms("offline", None, seed=0), 8) == 1
    assert batch_threads([], 8) == 1


def test_served_lms_get_concurrency_threads_per_endpoint():
    assert batch_threads([_Served()], 8) == 8
    assert batch_threads([_Served(), _Served(), _Served()], 5) == 15
    assert batch_threads([_Served()] * 3, 1000) == MAX_THREADS


def test_mixed_in_process_and_served_count_every_endpoint():
    assert batch_threads(build_lms("offline", None, seed=0) + [_Served()], 4) == 8


def test_the_simulation_and_the_examples_use_the_rule():
    from examples.common import threads_for
    from programs.simulation import Simulation, SimulationConfig

    lms = [_Served(), _Served()]
    sim = Simulation(SimulationConfig(agents=4, years=1, concurrency=3), lms=lms)
    assert sim.runner.concurrency == batch_threads(lms, 3) == 6
    assert threads_for(lms, 3) == 6


def test_the_optimizer_counts_every_endpoint(tmp_path, monkeypatch):
    import optimize.compile
    import optimize.planner as cli
    from programs.lm.server import serve_in_thread

    seen: list[int] = []
    real = optimize.compile.evaluate_program

    def spy(*args, num_threads: int = 1, **kw):
        seen.append(num_threads)
        return real(*args, num_threads=num_threads, **kw)

    monkeypatch.setattr(optimize.compile, "evaluate_program", spy)
    servers = [serve_in_thread(), serve_in_thread()]
    try:
        argv = ["--agents", "10", "--years", "2", "--train-seeds", "0-1", "--val-seeds", "2",
                "--heldout-seeds", "100", "--oracle-trials", "10", "--oracle-refine", "0", "--quiet",
                "--optimizer", "bootstrap", "--lm", "openai/threads-test", "--concurrency", "3",  # its own name: no cache hits shared with other tests
                "--out", str(tmp_path / "p.json")]
        for url, _ in servers:
            argv += ["--api-base", url]
        assert cli.main(argv) == 0
    finally:
        for _, stop in servers:
            stop()
    assert seen and set(seen) == {6}  # 3 threads for each of the 2 endpoints
