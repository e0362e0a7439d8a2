"""Requests per second through the real network client: concurrent batches vs one request at a time.

    python bench/bench_http.py [--latency-ms 100] [--concurrency 32] [--requests 960] [--sequential 30]

Starts ``python -m programs.serve`` (the offline engine over the OpenAI protocol, not a language model) in its
own process with a fixed latency per request, then sends worker decisions (``ChooseLabor`` through
``WorkerAgent.decide_batch``: DSPy adapter, ``EndpointLM`` with its per-endpoint bound, HTTP) in one batch
of ``--requests`` with ``--concurrency`` in flight, and the same kind of requests one by one, as the
earlier implementation did. The ideal concurrent rate is concurrency / latency (32 / 0.1 s = 320 req/s);
the target is >= 0.8 of it. The server's own request counter confirms the counts. Figures are printed,
not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dspy  # noqa: E402

from programs.agents.batch import BatchRunner  # noqa: E402
from programs.lm import build_lms  # noqa: E402
from programs.agents.worker import WorkerAgent, WorkerMemory  # noqa: E402
from signatures import Schedule  # noqa: E402

SCHEDULE = Schedule(cutoffs=[0.0, 11600.0, 47150.0], rates_percent=[10.0, 12.0, 22.0])


def start_server(latency_ms: float) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "programs.serve", "--port", str(port), "--latency-ms",
                             str(latency_ms)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/models", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("programs.serve did not start")


def server_requests(url: str) -> int:
    with urllib.request.urlopen(url + "/stats", timeout=5) as r:
        return int(json.loads(r.read())["requests"])


def batch(agent: WorkerAgent, lm: dspy.LM, runner: BatchRunner, n: int, offset: int) -> float:
    """Seconds for ``n`` distinct workers' decisions as one batch on ``runner``."""
    memories = [WorkerMemory(offset + i, f"worker {offset + i}, a nurse aged {25 + i % 40}", 38_000.0 + 97 * i)
                for i in range(n)]
    t0 = time.perf_counter()
    with dspy.context(disable_history=True, trace=None):
        d = agent.decide_batch(memories, SCHEDULE, 0.0, lms=[lm], runner=runner, seed=0, step=offset)
    dt = time.perf_counter() - t0
    bad = [k for k in d.fallback if k]
    if bad:
        raise SystemExit(f"{len(bad)} fallbacks ({bad[:3]}...): the benchmark would not measure what it says")
    return dt


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--requests", type=int, default=960, help="requests in the concurrent batch")
    ap.add_argument("--sequential", type=int, default=30, help="requests sent one by one")
    args = ap.parse_args(argv)

    proc, url = start_server(args.latency_ms)
    try:
        [lm] = build_lms("openai/offline", url, concurrency=args.concurrency, cache=False, timeout=30.0,
                         temperature=0.7)
        agent = WorkerAgent()
        pool = BatchRunner(args.concurrency)
        batch(agent, lm, pool, args.concurrency, offset=10_000_000)  # warm-up: threads, connections, imports
        before = server_requests(url)
        t_conc = batch(agent, lm, pool, args.requests, offset=0)
        n_conc = server_requests(url) - before
        before = server_requests(url)
        t_seq = batch(agent, lm, BatchRunner(1), args.sequential, offset=5_000_000)
        n_seq = server_requests(url) - before
        peak = lm.stats.take_max()
        pool.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    ideal = args.concurrency / (args.latency_ms / 1000.0)
    conc, seq = n_conc / t_conc, n_seq / t_seq
    print(f"server latency {args.latency_ms:g} ms; offline engine served over HTTP (not a language model); "
          f"{os.cpu_count()} CPUs")
    print(f"concurrent ({args.concurrency} in flight): {n_conc} requests in {t_conc:.2f} s = {conc:.1f} req/s; "
          f"ideal {ideal:.0f} req/s; {conc / ideal:.2f} of ideal (target >= 0.80); peak in flight {peak}")
    print(f"sequential (one at a time):  {n_seq} requests in {t_seq:.2f} s = {seq:.2f} req/s "
          f"(ideal {1000.0 / args.latency_ms:.1f})")
    print(f"concurrent / sequential: {conc / seq:.1f}x")


if __name__ == "__main__":
    main()
