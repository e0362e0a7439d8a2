"""Cache-sized blocks of agents for the economy's hot paths (``docs/design.md`` §3.8).

A numpy pass over 1,000,000 float64 values streams 8 MB through memory and allocates an 8 MB temporary
(page faults, expensive in a VM). A chain of ten such passes, as a best response or a world step is, is
then bound by memory traffic, not arithmetic. Running the same chain on blocks of :data:`BLOCK` agents
keeps every temporary in the core's L2 cache, in buffers made once per call (:class:`Scratch`): the same
operations in the same order, so the same bits; the 1M-agent world step takes about half the CPU time it
took without blocks (README, Benchmarks). The loop is over blocks of agents, never over agents; a
population smaller than one block is one block.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

__all__ = ["BLOCK", "Scratch", "blocks", "count_at_least", "dot"]

#: Agents per block: ~256 KB per float64 temporary, so a chain's few temporaries fit in a 1-2 MB L2.
BLOCK: int = 1 << 15

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
