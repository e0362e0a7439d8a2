"""Timings of the economy's hot paths against their targets (a script, not a test).

    python bench/bench_economy.py            # full sizes
    python bench/bench_economy.py --quick    # sizes / 10 (the oracle on 1,000 agents), a smoke run: it
                                             # prints timings only, no verdict (the targets are full-size)

Figures: one world step (rational best responses + outcome) for 1,000,000 agents on the 2024 brackets
(target <= 0.05 s, issue 21), Saez rates on 1,000,000 incomes (<= 1 s), and the oracle on 10,000 agents
with the 7 brackets of 2024 (<= 60 s). The world step reports the best of 7 runs in wall time (the
verdict) and in process CPU time (user + system, page faults included, summed over threads), with each
half's CPU time, the threads its passes ran on (``economy._blocks.workers``: ``ECONOMY_THREADS`` or the
usable cores; one below 131,072 agents) and the load average: on a shared machine the wall figure is inflated by the others' load,
the CPU figure much less. A second line times the same step on one thread (no verdict), the work the
threads share. Saez reports the best of 3 (time.perf_counter).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from economy._blocks import set_threads, workers  # noqa: E402
from economy.labor import best_response  # noqa: E402
from economy.oracle import oracle_schedule  # noqa: E402
from economy.population import Population, gb2_sample  # noqa: E402
from economy.saez import saez_rates  # noqa: E402
from economy.tax import TaxSchedule  # noqa: E402
from economy.constants import HOURS_REF  # noqa: E402
from economy.welfare import welfare_weights  # noqa: E402
from economy.world import outcome  # noqa: E402


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Fastest of ``repeat`` runs in seconds."""
    return best_wall_and_cpu(fn, repeat)[0]


def best_wall_and_cpu(fn: Callable[[], object], repeat: int = 7) -> tuple[float, float]:
    """Fastest of ``repeat`` runs in wall seconds and, separately, in process CPU seconds."""
    wall = cpu = np.inf
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return float(wall), float(cpu)


def world_step_times(n: int = 1_000_000, repeat: int = 7) -> dict[str, float]:
    """One world step of ``n`` agents on the 2024 brackets: rational best responses, then the outcome.

    Best of ``repeat``: ``wall`` and ``cpu`` of the whole step, ``cpu_best_response`` and ``cpu_outcome``
    of each half (seconds), and ``threads``, the threads its passes ran on (``economy._blocks.workers``).
    The skills are a plain writable array, so no cache of ``economy.world`` helps.
    """
    skill = gb2_sample(n, np.random.default_rng(0)) / HOURS_REF
    schedule = TaxSchedule.preset("us_federal_2024")
    hours = best_response(skill, schedule)
    wall, cpu = best_wall_and_cpu(lambda: outcome(skill, schedule, best_response(skill, schedule), "inverse_skill"), repeat)
    return {"wall": wall, "cpu": cpu, "cpu_best_response": best_wall_and_cpu(lambda: best_response(skill, schedule), repeat)[1],
            "cpu_outcome": best_wall_and_cpu(lambda: outcome(skill, schedule, hours, "inverse_skill"), repeat)[1],
            "threads": float(workers(n))}


def load_average() -> str:
    """The 1-minute load average (``uptime``), or "n/a" where the OS has none."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


QUICK = "quick size: no verdict; the target is for the full size"


def report(name: str, seconds: float, target: float, note: str = "", *, verdict: bool = True, why: str = QUICK) -> None:
    """One line; the target, ratio and verdict only when the figure is the one the target is for (else ``why``)."""
    if not verdict:
        print(f"{name:<44} {seconds:8.3f} s   ({why})  {note}")
        return
    ratio = seconds / target
    word = "ok" if seconds <= target else "OVER TARGET"
    # The target as given (0.05, not rounded to 0.1): the printed ratio is seconds / printed target.
    print(f"{name:<44} {seconds:8.3f} s   target {target:>5g} s   ratio {ratio:5.2f}  {word}  {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shrink every size by 10: a smoke run that prints timings without a verdict")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    n_big = 1_000_000 // scale
    n_oracle = 10_000 // scale

    rng = np.random.default_rng(0)
    skill = gb2_sample(n_big, rng) / HOURS_REF
    schedule = TaxSchedule.preset("us_federal_2024")
    full = not args.quick
    print(f"economy benchmarks ({'full sizes' if full else 'quick: sizes / 10, timings only, no verdict'})")

    w = world_step_times(n_big)
    report(f"world step, best responses, {n_big:,} agents", w["wall"], 0.05,
           f"(wall, best of 7; CPU {1e3 * w['cpu']:.1f} ms: best responses {1e3 * w['cpu_best_response']:.1f}, "
           f"outcome {1e3 * w['cpu_outcome']:.1f}; {w['threads']:.0f} threads; load average {load_average()} on "
           f"{len(os.sched_getaffinity(0))} cores)", verdict=full)
    set_threads(1)
    try:
        w1 = world_step_times(n_big)
    finally:
        set_threads(None)
    report("world step, best responses, one thread", w1["wall"], 0.05,
           f"(wall, best of 7; CPU {1e3 * w1['cpu']:.1f} ms: best responses {1e3 * w1['cpu_best_response']:.1f}, "
           f"outcome {1e3 * w1['cpu_outcome']:.1f}; load average {load_average()})",
           verdict=False, why="no verdict: the same step on one thread, for comparison")

    incomes = skill * best_response(skill, schedule)
    weights = welfare_weights(skill, "inverse_skill", income=incomes)
    report(
        f"saez_rates on {n_big:,} incomes",
        best_of(lambda: saez_rates(incomes, weights, schedule, 0.4)),
        1.0,
        verdict=full,
    )

    pop = Population.sample(n_oracle, seed=0)
    t = time.perf_counter()
    res = oracle_schedule(pop, "us_federal_2024", seed=0)
    dt = time.perf_counter() - t
    rates = ", ".join(f"{100 * r:.1f}" for r in res.schedule.rates)
    report(
        f"oracle, {n_oracle:,} agents, 7 brackets",
        dt,
        60.0,
        f"({res.n_evaluations} evaluations, {1e3 * dt / res.n_evaluations:.1f} ms each; rates [{rates}]%)",
        verdict=full,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
