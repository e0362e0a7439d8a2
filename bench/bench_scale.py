"""LM agents at scale: one simulation step of N LM workers against a served engine, and the 1M-agent world step.

    python bench/bench_scale.py [--sizes 1000,10000,100000] [--latency-ms 100] [--concurrency 256]

For each size N, in a fresh client process (so its peak RSS is that size's alone): ``Simulation`` with N LM
workers (``WorkerAgent.decide_batch``: the DSPy adapter, ``EndpointLM``, HTTP) runs one step against
``python -m programs.serve`` started in its own process with ``--latency-ms`` per request (the offline engine
over the OpenAI protocol, a numeric stand-in, NOT a language model). Printed per size: agents per second of the
step, the client's CPU per answer (process CPU time, all its threads) apart from the server's (read from
/proc for the server's pid), and the client's peak RSS (its ``ru_maxrss``), with the population and the
simulation's construction counted in it. Targets (issue 21): 100,000 agents within 2 GB client RSS, client
CPU per answer <= 1 ms. Then one world step at 1,000,000 agents (rational best responses + the outcome,
``economy.world``; best of 7, wall and CPU time; target <= 0.05 s). Figures are printed, not asserted; on
a shared machine the wall figures are inflated by the others' load, the CPU-time figures much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_size(n: int, url: str, server_pid: int, concurrency: int) -> dict[str, float]:
    """One step of ``n`` LM workers against ``url``; runs in its own process (see ``main``)."""
    import dspy

    from programs.lm import build_lms
    from programs.simulation import Simulation, load_config

    t_build = time.perf_counter()
    cfg = load_config(agents=n, years=1, steps_per_year=1, workers="llm", scenario="rational", seed=0,
                      concurrency=concurrency)
    lms = build_lms("openai/offline", url, concurrency=concurrency, cache=False, timeout=120.0, num_retries=3,
                    temperature=0.7)
    sim = Simulation(cfg, lms=lms)
    sim.reset()
    build_s = time.perf_counter() - t_build
    rss_built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    c0, s0, t0 = time.process_time(), _cpu_of(server_pid), time.perf_counter()
    with dspy.context(disable_history=True):
        rec = sim.step()
    wall = time.perf_counter() - t0
    client_cpu, server_cpu = time.process_time() - c0, _cpu_of(server_pid) - s0
    fallbacks = sum((rec.fallbacks or {}).values()) if hasattr(rec, "fallbacks") else 0
    sim.close()
    return {"agents": n, "wall_s": wall, "agents_per_s": n / wall, "client_cpu_ms_per_answer": 1000 * client_cpu / n,
            "server_cpu_ms_per_answer": 1000 * server_cpu / n, "peak_rss_mb": resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_after_build_mb": rss_built, "build_s": build_s,
            "fallbacks": float(fallbacks)}


def world_step(n: int = 1_000_000) -> dict[str, float]:
    """Rational best responses and the outcome of ``n`` agents on the 2024 brackets (``bench_economy``'s measure)."""
    from bench_economy import world_step_times

    return world_step_times(n)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma list of LM-agent counts")
    ap.add_argument("--latency-ms", type=float, default=100.0, help="the server's delay per request")
    ap.add_argument("--concurrency", type=int, default=256, help="requests in flight from the client")
    ap.add_argument("--no-world", action="store_true", help="skip the 1M-agent world step")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # internal: one size, JSON out
    ap.add_argument("--url", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--server-pid", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one is not None:
        print(json.dumps(one_size(args.one, args.url, args.server_pid, args.concurrency)))
        return 0

    from bench_http import start_server

    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    print(f"LM agents at scale: programs.serve (offline engine over HTTP, not a language model) with "
          f"{args.latency_ms:g} ms per request in its own process; client concurrency {args.concurrency}; "
          f"{len(os.sched_getaffinity(0))} usable cores (shared machine: wall figures inflated by other load)")
    proc, url = start_server(args.latency_ms)
    try:
        for n in sizes:
            r = subprocess.run([sys.executable, __file__, "--one", str(n), "--url", url, "--server-pid",
                                str(proc.pid), "--concurrency", str(args.concurrency)], cwd=ROOT,
                               capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{n:>9,} agents: failed: {r.stderr.strip().splitlines()[-1:]}")
                continue
            m = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"{n:>9,} agents: {m['agents_per_s']:8,.0f} agents/s ({m['wall_s']:.1f} s wall); client CPU "
                  f"{m['client_cpu_ms_per_answer']:.2f} ms/answer (target <= 1), server CPU "
                  f"{m['server_cpu_ms_per_answer']:.2f} ms/answer; client peak RSS {m['peak_rss_mb']:,.0f} MB "
                  f"({m['rss_after_build_mb']:,.0f} MB before the step; target <= 2,048 at 100,000); "
                  f"fallbacks {m['fallbacks']:.0f}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    if not args.no_world:
        w = world_step()
        print(f"world step, 1,000,000 agents (best responses + outcome, best of 7): {w['wall']:.3f} s wall "
              f"(target <= 0.05 s, ratio {w['wall'] / 0.05:.2f}), {1e3 * w['cpu']:.1f} ms CPU; load average "
              f"{os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
