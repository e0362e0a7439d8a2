"""Worker decisions per second: the whole framework path against a bare ``dspy.Predict``, same run.

    python bench/bench_agents.py [--agents 100] [--steps 10] [--threads N] [--repeats 3]

Framework: ``Simulation.step()`` with LLM workers on the offline engine, i.e. ``WorkerAgent.decide_batch``
(one concurrent batch per step, validation, fallbacks, rollout ids), plus the world maths, the bounded
histories and the step record. Bare: ``dspy.Predict(ChooseLabor)`` called on the same engine with exactly
the inputs the framework sent (captured by replaying its records), with the same threads per batch,
under the same DSPy settings (history and trace off). Each side is timed ``--repeats`` times,
alternating, and the best time counts. The targets: a ratio >= 0.8 (the framework adds at most 20%), and
the bare rate, the offline engine's own speed through ``dspy.Predict``, >= 50 decisions/s.
The offline engine is a numeric stand-in, not a language model: with a real LM the network dominates
and the ratio moves toward 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dspy  # noqa: E402

from programs.agents.batch import BatchRunner  # noqa: E402
from programs.lm import OFFLINE_LABEL, build_lms  # noqa: E402
from programs.simulation import Simulation, load_config  # noqa: E402
from economy.tax import to_percent  # noqa: E402
from signatures import ChooseLabor, Schedule  # noqa: E402


def framework(cfg, lms, threads: int) -> tuple[float, list[dict]]:
    sim = Simulation(cfg, lms=lms)
    sim.runner = BatchRunner(threads)
    t0 = time.perf_counter()
    records = [sim.step() for _ in range(cfg.total_steps)]
    dt = time.perf_counter() - t0
    sim.close()
    return dt, records


def captured_inputs(cfg, lms, records) -> list[list[dict]]:
    """Per step, the ChooseLabor inputs of every worker, rebuilt by replaying the framework's records."""
    sim = Simulation(cfg, lms=lms)
    batches = []
    for rec in records:
        if rec.k == 0:
            sim._apply_year_start(rec.event)
        sched = Schedule(cutoffs=sim.schedule.cutoffs.tolist(), rates_percent=to_percent(sim.schedule.rates))
        batches.append([dict(persona=m.persona, skill=m.skill, schedule=sched, last_rebate=sim.last_rebate,
                             history=list(m.history), best=m.prompt_best()) for m in sim.memories])
        sim._apply_step(rec.decisions())
    return batches


def bare(batches, lm, concurrency: int) -> tuple[float, int]:
    predict = dspy.Predict(ChooseLabor)
    n = 0
    with ThreadPoolExecutor(max_workers=concurrency) as pool, dspy.context(disable_history=True, trace=None):
        from programs.lm.compat import carry_context

        one = carry_context(lambda kw: predict(**kw, lm=lm).hours)

        t0 = time.perf_counter()
        for batch in batches:
            if concurrency == 1:
                out = [one(kw) for kw in batch]
            else:
                out = list(pool.map(one, batch))
            n += len(out)
        dt = time.perf_counter() - t0
    return dt, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=100)
    p.add_argument("--steps", type=int, default=10, help="worker steps (one tax year)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per batch on both sides (default: the simulation's choice, inline for offline)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    cfg = load_config(agents=a.agents, years=1, steps_per_year=a.steps, seed=a.seed)
    lms = build_lms("offline", seed=a.seed, temperature=cfg.temperature)
    n = a.agents * a.steps
    threads = a.threads or Simulation(cfg, lms=lms).runner.concurrency  # both sides get the same pool size
    print(f"LM: {OFFLINE_LABEL}; {a.agents} workers x {a.steps} steps = {n} decisions per pass, "
          f"{threads} thread(s) per batch, best of {a.repeats}")

    fw_times, bare_times = [], []
    _, records = framework(cfg, lms, threads)  # warm-up, and the inputs the bare path will replay
    batches = captured_inputs(cfg, lms, records)
    for _ in range(a.repeats):
        dt, recs = framework(cfg, lms, threads)
        assert [r.hours for r in recs] == [r.hours for r in records], "the framework run is not deterministic"
        fw_times.append(dt)
        dt, m = bare(batches, lms[0], threads)
        assert m == n
        bare_times.append(dt)
    fw = n / min(fw_times)
    br = n / min(bare_times)
    print(f"framework (Simulation.step, WorkerAgent batch): {fw:8.1f} decisions/s")
    print(f"bare dspy.Predict(ChooseLabor), same inputs:      {br:8.1f} decisions/s "
          "(the offline engine through DSPy; target >= 50/s, ~300/s on an idle 2-core machine)")
    print(f"ratio framework / bare: {fw / br:.2f} (target >= 0.80)")


if __name__ == "__main__":
    main()
