"""Concurrent batches of DSPy calls: one batch per simulation step, LMs assigned round-robin.

All agents of a step go to the LM together: a ``BatchRunner`` maps a function over the batch on a
bounded thread pool (``concurrency`` calls in flight), carrying the caller's DSPy settings
(``dspy.context`` overrides such as ``disable_history``) into each worker thread, as ``dspy.Parallel``
does, but without its straggler re-runs, progress bar or error cap: our agents catch their own failures
and fall back, so every item of a batch always gets an answer.

Also here: the fallback counter shared by the agents, and rollout ids. A rollout id only keys DSPy's
response cache (so two agents with identical prompts are not handed one cached answer by a real model);
DSPy strips it before the request, so it never reaches an engine: the offline engine, which seeds its
noise from the prompt text, gives identical prompts of distinct agents the same answer.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import dspy

from programs.lm.compat import carry_context
from programs.lm.models import in_process
from signatures.types import validate_number  # noqa: F401  (the one numeric check; agents import it from here)

T = TypeVar("T")
R = TypeVar("R")

class FallbackCounter:
    """Thread-safe counts of fallbacks (by kind) and of clamped answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.counts[kind] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.counts.items()))

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    def __deepcopy__(self, memo: dict) -> "FallbackCounter":
        # DSPy optimizers deep-copy programs; a lock cannot be copied, the counts can.
        new = FallbackCounter()
        new.counts.update(self.snapshot())
        return new

    def __getstate__(self) -> dict:
        return {"counts": self.snapshot()}

    def __setstate__(self, state: dict) -> None:
        self._lock = threading.Lock()
        self.counts = Counter(state.get("counts", {}))


def classify_error(exc: BaseException) -> str:
    """Fallback kind of an exception raised by an LM call through DSPy."""
    from dspy.utils.exceptions import AdapterParseError

    from programs.lm.structured import TruncatedAnswer

    if isinstance(exc, TruncatedAnswer):
        return "truncated"
    if _context_overflow(exc):
        return "context_overflow"
    if isinstance(exc, AdapterParseError):
        return "parse_error"
    if isinstance(exc, (ValueError, TypeError)) and "parse" in str(exc).lower():
        return "parse_error"
    return "lm_error"


def _context_overflow(exc: BaseException | None) -> bool:
    """A prompt longer than the model's context window (``--n-ctx``), however DSPy or LiteLLM wrapped it."""
    from dspy.lm15 import ContextLengthError

    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ContextLengthError) or type(exc).__name__ == "ContextWindowExceededError":
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def rollout_id(seed: int, kind: str, *keys: int) -> int:
    """A stable non-negative 31-bit id for one call (same inputs -> same id, across processes)."""
    h = hashlib.blake2b(f"{seed}|{kind}|{'|'.join(map(str, keys))}".encode(), digest_size=4).digest()
    return int.from_bytes(h, "little") & 0x7FFFFFFF


def lm_config(lm: dspy.BaseLM | None, rid: int | None) -> dict[str, Any]:
    """Per-call LM config: the rollout id only where it can matter (temperature > 0).

    DSPy warns about and ignores rollout ids at temperature 0, where identical prompts should agree.
    """
    if rid is None or lm is None:
        return {}
    temperature = (getattr(lm, "kwargs", None) or {}).get("temperature")
    if temperature is not None and temperature <= 0:
        return {}
    return {"rollout_id": int(rid)}


#: The most threads one batch runs on (``SimulationConfig.concurrency`` allows at most this per endpoint).
MAX_THREADS = 1024


def batch_threads(lms: Sequence[dspy.BaseLM], concurrency: int) -> int:
    """Threads for a batch of calls to ``lms``: the one rule for simulations, examples and optimizers.

    The in-process engines are CPU-bound: threads would only contend for the GIL (offline engine: measured
    ~1.8x slower at 4 threads on 2 cores; the local model is one llama.cpp context behind one lock, already
    using every core), so their batches run inline. Served LMs get ``concurrency`` threads per endpoint
    (each ``EndpointLM`` bounds its own requests in flight), at most ``MAX_THREADS``.
    """
    if not lms or all(in_process(lm) for lm in lms):
        return 1
    return min(MAX_THREADS, max(1, int(concurrency)) * len(lms))


class BatchRunner:
    """Map a function over a batch with at most ``concurrency`` calls in flight.

    Results come back in input order. An exception escaping ``fn`` is returned in place of its result
    (never raised), so a batch always yields one entry per item. The thread pool is created lazily and
    reused across batches; ``concurrency=1`` runs inline in the calling thread.
    """

    def __init__(self, concurrency: int = 8) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency={concurrency!r} must be an integer >= 1")
        self.concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="dspy-batch")
            return self._pool

    def map(self, fn: Callable[[T], R], items: Sequence[T] | Iterable[T]) -> list[R | BaseException]:
        items = list(items)
        if self.concurrency == 1 or len(items) <= 1:
            return [_safe(fn, x) for x in items]
        # The caller's dspy.context() overrides follow each item into the pool thread.
        run = carry_context(lambda x: _safe(fn, x))
        return list(self._executor().map(run, items))

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __enter__(self) -> "BatchRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
        except Exception:
            pass


def _safe(fn: Callable[[T], R], x: T) -> R | BaseException:
    try:
        return fn(x)
    except Exception as exc:  # the caller decides what a failure means
        return exc


def round_robin(lms: Sequence[dspy.BaseLM], i: int) -> dspy.BaseLM:
    """The LM serving agent ``i`` (agents spread evenly across endpoints)."""
    return lms[i % len(lms)]


def make_predictor(signature: Any, module_type: str = "predict") -> dspy.Module:
    """``dspy.Predict`` or ``dspy.ChainOfThought`` of a signature (``module_type`` in {predict, cot})."""
    if module_type == "predict":
        return dspy.Predict(signature)
    if module_type in ("cot", "chain_of_thought"):
        return dspy.ChainOfThought(signature)
    raise ValueError(f"module_type={module_type!r} must be 'predict' or 'cot'")
