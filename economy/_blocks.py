"""Cache-sized blocks of agents for the economy's hot paths (``docs/design.md`` §3.8).

A numpy pass over 1,000,000 float64 values streams 8 MB through memory and allocates an 8 MB temporary
(page faults, expensive in a VM). A chain of ten such passes, as a best response or a world step is, is
then bound by memory traffic, not arithmetic. Running the same chain on blocks of :data:`BLOCK` agents
keeps every temporary in the core's L2 cache, in buffers made once per call (:class:`Scratch`): the same
operations in the same order, so the same bits; the 1M-agent world step takes about half the CPU time it
took without blocks (README, Benchmarks). The loop is over blocks of agents, never over agents; a
population smaller than one block is one block.

Blocks are independent, and numpy releases the GIL inside every ufunc, gather and sort, so a pass over
blocks can also run on a few threads (:func:`map_blocks`, :func:`run`): each thread takes the next block
in order and has its own :class:`Scratch`; every block is computed by exactly the same operations, and
every result (a block of an array, a block's partial sum) lands in its block's place, so the caller
combines partial sums in block order: the bits do not depend on the thread count or on thread timing.
How many threads (:func:`thread_count`): :func:`set_threads`, else the ``ECONOMY_THREADS`` environment
variable, else the usable cores (CPU affinity) capped by ``OMP_NUM_THREADS`` when that is set, which is how
``eval.parallel``'s worker processes (``OMP_NUM_THREADS=1``) stay at one thread each. Without an explicit
count a pass over fewer than :data:`PARALLEL_MIN` agents stays on the calling thread (no pool at all).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BLOCK", "MAX_THREADS", "PARALLEL_MIN", "THREADS_ENV", "Scratch", "blocks", "check_threads", "count_at_least",
    "dot", "map_blocks", "run", "set_threads", "thread_count", "workers",
]

T = TypeVar("T")

#: Agents per block: ~256 KB per float64 temporary, so a chain's few temporaries fit in a 1-2 MB L2.
BLOCK: int = 1 << 15

#: Without an explicit thread count, passes over fewer agents than this (4 blocks) run on the calling thread:
#: small steps (an oracle's 10,000 agents) are unchanged and never start a pool.
PARALLEL_MIN: int = 4 * BLOCK

#: The environment variable that sets the economy's thread count (an integer in [1, MAX_THREADS]).
THREADS_ENV = "ECONOMY_THREADS"

#: The largest thread count :func:`set_threads` and ``ECONOMY_THREADS`` accept.
MAX_THREADS = 256

# Below this many values the binary search of searchsorted beats the per-threshold passes.
_SEARCH_BELOW = 1024


def blocks(n: int, size: int = BLOCK) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``, each of at most ``size`` elements (none when ``n == 0``)."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class Scratch:
    """Scratch arrays of one block's length, made once per call and reused by every block.

    A fresh temporary per block would cost more than the arithmetic: 256 KB is above glibc's mmap
    threshold, so each one is an mmap, 64 page faults (costly in a VM) and an munmap.
    ``scratch(name, k)`` returns the first ``k`` elements of the buffer ``name`` (made on first use).
    """

    def __init__(self, n: int) -> None:
        self._size = max(1, min(n, BLOCK))
        self._bufs: dict[str, NDArray] = {}

    def __call__(self, name: str, k: int, dtype: type = np.float64) -> NDArray:
        buf = self._bufs.get(name)
        if buf is None:
            buf = self._bufs[name] = np.empty(self._size, dtype=dtype)
        return buf[:k]


def count_at_least(x: NDArray[np.float64], thresholds: NDArray[np.float64], scratch: Scratch | None = None) -> NDArray[np.intp]:
    """Number of ``thresholds`` (ascending, shape (k,)) that each ``x`` (shape (n,)) is ``>=``, shape (n,).

    Equal to ``np.searchsorted(thresholds, x, side="right")`` for finite ``x``. For a few dozen thresholds
    and a block of values, one compare-and-add pass per threshold over one byte per value is ~5x faster
    than the binary search (~25 ns per value, branchy). With ``scratch`` (then ``n <= BLOCK``) the result
    is a view of its buffer ``"count_at_least"``, valid until the next call with the same scratch.
    """
    n, k = x.size, thresholds.size
    if n < _SEARCH_BELOW or k > 255:
        return np.searchsorted(thresholds, x, side="right")
    buf = scratch if scratch is not None else (lambda name, k, dtype: np.empty(k, dtype=dtype))
    count = buf("count_at_least.u8", n, np.uint8)
    passed = buf("count_at_least.bool", n, np.bool_)
    as_byte = passed.view(np.uint8)  # a same-type uint8 add: no bool -> uint8 cast per element
    count.fill(0)
    for t in thresholds:  # a loop over the thresholds, not the values
        np.greater_equal(x, t, out=passed)
        np.add(count, as_byte, out=count)
    out = buf("count_at_least", n, np.intp)
    np.copyto(out, count)
    return out


def dot(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """``sum(a * b)`` of two 1-D float64 arrays on one thread.

    ``np.dot`` hands 1-D products to BLAS, which spins up every core's thread for a memory-bound sum:
    ~10x the CPU time of this single SIMD pass on a million values, and contention on a shared machine.
    """
    return float(np.einsum("i,i->", a, b))


# -- threads ------------------------------------------------------------------------------------

_override: int | None = None  # set_threads
_pool: ThreadPoolExecutor | None = None  # helper threads (the caller is always one more), made on first use
_pool_lock = threading.Lock()
_local = threading.local()  # .busy: this thread is running blocks (a nested pass then stays on it)


def check_threads(value: object, name: str = "threads") -> int:
    """``value`` as a thread count (an integer in [1, MAX_THREADS]), or ``ValueError`` naming ``name`` and the range."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 1 <= value <= MAX_THREADS:
        return int(value)
    raise _threads_error(name, value)


def _threads_error(name: str, value: object) -> ValueError:
    return ValueError(f"{name}={value!r} must be an integer in [1, {MAX_THREADS}] (the economy's worker threads)")


def set_threads(n: int | None) -> None:
    """Fix the economy's thread count (``None``: back to automatic, :func:`thread_count`).

    An explicit count applies to every pass of at least two blocks, however small the step; results are
    the same bits for every count. The current pool is shut down (its threads joined), so a smaller count
    leaves no idle threads behind.
    """
    global _override
    _override = None if n is None else check_threads(n, "threads")
    _shutdown_pool()


def thread_count() -> int:
    """The threads a large pass runs on: :func:`set_threads`, else ``ECONOMY_THREADS``, else automatic.

    Automatic is the usable cores (this process's CPU affinity, not the machine's core count), capped by
    ``OMP_NUM_THREADS`` when it is a positive integer: a process whose numerical libraries are pinned to
    one thread (``eval.parallel``'s workers) does not start threads of its own either.
    """
    return _resolve()[0]


def workers(n: int) -> int:
    """Threads for one pass over ``n`` agents: 1 for one block, inside a pass, or (automatic) below ``PARALLEL_MIN``."""
    n_blocks = -(-n // BLOCK)
    if n_blocks < 2 or getattr(_local, "busy", False):
        return 1
    count, explicit = _resolve()
    if not explicit and n < PARALLEL_MIN:
        return 1
    return min(count, n_blocks)


def _resolve() -> tuple[int, bool]:
    """(thread count, whether it was set explicitly)."""
    if _override is not None:
        return _override, True
    env = os.environ.get(THREADS_ENV, "")
    if env.strip():
        if not (env.strip().isdigit() and 1 <= int(env) <= MAX_THREADS):
            raise _threads_error(THREADS_ENV, env)
        return int(env), True
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        cores = min(cores, int(omp))
    return max(1, min(cores, MAX_THREADS)), False


def map_blocks(fn: Callable[[slice, Scratch], T], n: int, *, threads: int | None = None) -> list[T]:
    """``[fn(blk, scratch) for blk in blocks(n)]``, the blocks spread over ``threads`` (default :func:`workers`).

    ``fn`` must write only its own block of any shared output; its return values (e.g. a block's partial
    sum) come back in block order, so the caller combines them in one fixed order whatever the timing.
    """
    tasks = [lambda scratch, blk=blk: fn(blk, scratch) for blk in blocks(n)]
    return run(tasks, workers=workers(n) if threads is None else threads, size=n)


def run(tasks: Sequence[Callable[[Scratch], T]], *, workers: int, size: int) -> list[T]:
    """Every ``task(scratch)``, results in task order, on ``workers`` threads (the calling thread one of them).

    Tasks start in list order, each worker taking the next one; a slow task belongs first so that it does
    not finish last. Each worker has its own ``Scratch(size)``. The caller's numpy error state applies in
    every worker (``np.errstate`` is per thread). If tasks raise, the first failing task's exception in list
    order is raised (the one a sequential run would raise), once every started task has finished; so is an
    interruption of the caller (``KeyboardInterrupt``), after which no helper starts another task.
    """
    if workers <= 1 or len(tasks) <= 1:
        scratch = Scratch(size)
        return [task(scratch) for task in tasks]
    results: list = [None] * len(tasks)
    errors: dict[int, BaseException] = {}
    order = iter(range(len(tasks)))
    lock = threading.Lock()
    err = np.geterr()

    def drain() -> None:
        scratch = Scratch(size)
        outer = getattr(_local, "busy", False)
        _local.busy = True
        try:
            with np.errstate(**err):
                while not errors:
                    with lock:
                        i = next(order, None)
                    if i is None:
                        return
                    try:
                        results[i] = tasks[i](scratch)
                    except BaseException as e:  # noqa: BLE001 (raised by the caller, in list order)
                        errors[i] = e
        finally:
            _local.busy = outer

    helpers = _submit(drain, min(workers, len(tasks)) - 1)
    try:
        drain()
        for f in helpers:
            if not f.cancel():  # cancelled: it had not started, and nothing is left for it
                f.result()
    except BaseException:  # the caller interrupted: no helper starts another task; theirs end first
        errors.setdefault(len(tasks), RuntimeError("interrupted"))
        wait(helpers)
        raise
    if errors:
        raise errors[min(errors)]
    return results


_pool_size = 0


def _submit(fn: Callable[[], None], copies: int) -> list[Future]:
    """``copies`` runs of ``fn`` on the shared helper pool (made, or remade larger, on demand)."""
    global _pool, _pool_size
    with _pool_lock:  # under the lock: nobody shuts the pool down between the look-up and the submits
        if _pool is None or _pool_size < copies:
            if _pool is not None:
                _pool.shutdown(wait=False)  # its threads finish what they hold, exit, and are joined at exit
            _pool, _pool_size = ThreadPoolExecutor(max_workers=copies, thread_name_prefix="economy-blocks"), copies
        return [_pool.submit(fn) for _ in range(copies)]


def _shutdown_pool() -> None:
    global _pool, _pool_size
    with _pool_lock:
        pool, _pool, _pool_size = _pool, None, 0
    if pool is not None:
        pool.shutdown(wait=True)


def _forget_pool_in_child() -> None:
    # A forked child has none of the parent's threads: drop the pool (and a lock a helper may have held).
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)
