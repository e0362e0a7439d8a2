"""The local model through the framework against bare llama-cpp-python and against the hardware's limit.

    python bench/bench_local.py [--model local | local:/path/model.gguf] [--agents 4] [--years 2] [--steps-per-year 3]

One run, interleaved. The framework side is a real simulation (``programs.simulate --lm local``, by default
issue 10's run: 4 agents, 2 years, 3 steps a year, 25 answers), i.e. DSPy, the structured adapter,
``LocalEngine`` with prefix reuse and forced answer prefixes (``programs.lm.llama_prefix``), validation
and the economy. Right after each of its answers, on a second ``Llama`` of the same file, loaded the same
way and with the same threads, and with the same messages, schema, budget, temperature and seed:

- **bare, no reuse**: ``create_chat_completion`` on an emptied context, which is what a script without
  prefix reuse pays for every answer (the whole prompt evaluated, the whole JSON decoded under the
  grammar). Target: the framework is >= 4x faster.
- **the limit**: the same bare model evaluating only the prompt tokens the framework evaluated (its
  context cut back to the prefix the framework reused) and then one decoding step (a forward pass and an
  argmax over the vocabulary, no grammar) per token the model chose. Nothing can be cheaper on this model
  and machine without changing what is computed. Target: framework/limit >= 0.8.

The time spent on the bare side is taken out of the framework's. Wall time and process CPU time are
both printed: on a machine shared with other jobs wall time is inflated and CPU time is the steadier
figure. Needs the ``local`` extra; the model is a real language model.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from programs.lm import llama_prefix  # noqa: E402
from programs.lm import local as local_mod  # noqa: E402


@dataclass
class Side:
    """Wall and CPU seconds and token counts of one side."""

    wall: float = 0.0
    cpu: float = 0.0
    prompt: int = 0
    reused: int = 0
    completion: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def add_time(self, t0: tuple[float, float]) -> tuple[float, float]:
        t1 = (time.perf_counter(), time.process_time())
        self.wall += t1[0] - t0[0]
        self.cpu += t1[1] - t0[1]
        return t1


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def second_llama(path: str, n_ctx: int):
    """A second ``Llama`` of ``path`` loaded by the framework's own loader (same parameters)."""
    key = next(k for k in local_mod._MODELS if k[0] == path)  # noqa: SLF001 - (path, load settings)
    first = local_mod._MODELS.pop(key)  # noqa: SLF001 - load again, then put the framework's back
    try:
        return local_mod._llama(path, n_ctx)[0]  # noqa: SLF001
    finally:
        local_mod._MODELS[key] = first  # noqa: SLF001


class Bench:
    """Wraps ``PrefixRunner.chat``: after each framework answer, the bare measurements of the same prompt."""

    def __init__(self, bare) -> None:
        self.bare = bare
        self.framework, self.noreuse, self.limit = Side(), Side(), Side()
        self.hook = Side()  # everything the wrapper spends, taken out of the framework's total
        self.answers = 0
        self.prefill_tokens = self.prefill_s = 0.0
        self.decode_tokens = self.decode_s = 0.0

    def wrap(self, chat):
        bench = self

        def timed_chat(runner, messages, schema=None, **kw):
            result = chat(runner, messages, schema=schema, **kw)
            t0 = _now()
            prompt = runner.reuse.kv.live()[: result.prompt_tokens].copy()
            completion = int((result.completion.get("usage") or {}).get("completion_tokens") or 0)
            bench.answers += 1
            bench.framework.prompt += result.prompt_tokens
            bench.framework.reused += result.reused
            bench.framework.completion += completion
            bench.measure(messages, schema, kw, prompt, result.reused, completion)
            bench.hook.add_time(t0)
            return result

        return timed_chat

    def measure(self, messages, schema, kw, prompt: np.ndarray, reused: int, completion: int) -> None:
        import llama_cpp

        bare = self.bare
        kwargs = dict(kw)
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        bare.reset()
        t = _now()
        out = bare.create_chat_completion(messages=messages, **kwargs)
        self.noreuse.add_time(t)
        usage = out.get("usage") or {}
        self.noreuse.prompt += int(usage.get("prompt_tokens") or 0)
        self.noreuse.completion += int(usage.get("completion_tokens") or 0)

        # The limit: the context cut back to the prefix the framework reused (a prefix of the bare prompt).
        live = np.asarray(bare.input_ids[: bare.n_tokens], dtype=np.int32)
        keep = min(reused, llama_prefix.common_prefix(live, prompt))
        bare._ctx.kv_cache_seq_rm(-1, keep, -1)  # noqa: SLF001
        bare.n_tokens = keep
        new = prompt[keep:].tolist()
        n_vocab = bare.n_vocab()
        t = _now()
        bare.eval(new)
        t1 = self.limit.add_time(t)
        self.prefill_tokens += len(new)
        self.prefill_s += t1[1] - t[1]
        for i in range(completion):
            logits = llama_cpp.llama_get_logits_ith(bare._ctx.ctx, -1)  # noqa: SLF001
            token = int(np.ctypeslib.as_array(ctypes.cast(logits, ctypes.POINTER(ctypes.c_float)),
                                              shape=(n_vocab,)).argmax())
            if i + 1 < completion:  # the framework never evaluates its last token (it stops on it)
                bare.eval([token])
        t2 = self.limit.add_time(t1)
        self.limit.prompt += len(prompt)
        self.limit.reused += keep
        self.limit.completion += completion
        self.decode_tokens += completion
        self.decode_s += t2[1] - t1[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="local", help="local | local:/path/model.gguf")
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--years", type=int, default=2)
    ap.add_argument("--steps-per-year", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from programs.simulate import main as simulate

    local_mod.check_local(args.model)
    path, n_ctx = local_mod.model_path(args.model), local_mod.N_CTX
    local_mod._llama(path, n_ctx)  # noqa: SLF001 - load both models before any timing
    bench = Bench(second_llama(path, n_ctx))
    threads = local_mod.n_threads()
    chat = llama_prefix.PrefixRunner.chat
    llama_prefix.PrefixRunner.chat = bench.wrap(chat)
    try:
        with tempfile.TemporaryDirectory() as out:
            t0 = _now()
            rc = simulate(["--lm", args.model, "--agents", str(args.agents), "--years", str(args.years),
                           "--steps-per-year", str(args.steps_per_year), "--seed", str(args.seed),
                           "--no-progress", "--out", str(Path(out) / "run")])
            bench.framework.add_time(t0)
    finally:
        llama_prefix.PrefixRunner.chat = chat
    if rc:
        print(f"the simulation failed (exit {rc})")
        return rc
    f, nr, lim = bench.framework, bench.noreuse, bench.limit
    f.wall -= bench.hook.wall
    f.cpu -= bench.hook.cpu
    print()
    print(f"model: {local_mod.describe_local(args.model)}; {bench.answers} answers "
          f"({args.agents} agents, {args.years} years x {args.steps_per_year} steps), {threads} thread(s); "
          f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rows = [("framework (simulation, DSPy, prefix reuse)", f), ("bare create_chat_completion, no reuse", nr),
            ("limit: new prompt tokens + chosen tokens", lim)]
    for name, s in rows:
        reused = f" ({s.reused} reused, {s.prompt - s.reused} evaluated)" if s is not nr else " (all evaluated)"
        print(f"{name:<44} {s.wall:7.1f} s wall {s.cpu:7.1f} CPU-s  prompt {s.prompt}{reused}, "
              f"completion {s.completion}")
    print(f"bare model: prefill {bench.prefill_tokens / max(bench.prefill_s, 1e-9):.0f} tokens/CPU-s, decode "
          f"{bench.decode_tokens / max(bench.decode_s, 1e-9):.1f} tokens/CPU-s (one answer's new tokens at a time)")
    print(f"speed-up vs bare without reuse: {nr.wall / f.wall:.2f}x wall, {nr.cpu / f.cpu:.2f}x CPU (target >= 4)")
    print(f"framework vs the limit: {lim.wall / f.wall:.2f} wall, {lim.cpu / f.cpu:.2f} CPU (target >= 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
