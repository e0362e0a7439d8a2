"""Blocks on threads (economy._blocks.run / map_blocks): the same bits as one thread, the knob, the pool's life."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import economy._blocks as B
from economy._blocks import BLOCK, MAX_THREADS, PARALLEL_MIN, THREADS_ENV, Scratch, map_blocks, run
from economy.labor import best_response
from economy.population import Population
from economy.tax import TaxSchedule
from economy.welfare import gini, social_welfare
from economy.world import outcome

ROOT = Path(__file__).resolve().parents[2]
US_2024 = TaxSchedule.preset("us_federal_2024")
NON_CONVEX = US_2024.with_rates([0.5, 0.1, 0.6, 0.2, 0.7, 0.3, 0.8])  # several candidates per segment
N = 4 * BLOCK + 1234  # five blocks, the last one short


@pytest.fixture(autouse=True)
def automatic_threads(monkeypatch: pytest.MonkeyPatch):
    """Every test starts and ends with the automatic count and no pool (whatever the environment says)."""
    for var in (THREADS_ENV, "OMP_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    B.set_threads(None)
    yield
    B.set_threads(None)


def pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("economy-blocks")]


def skills(n: int = N, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).lognormal(6.5, 1.2, n)
    v[[0, BLOCK, 3 * BLOCK + 7, n - 1]] = 0.0  # zero skills in several blocks
    return v


def step(v, schedule: TaxSchedule, swf: str, floor: float):
    h = best_response(getattr(v, "skill", v), schedule)
    return h, outcome(v, schedule, h, swf, skill_floor=floor)


ARRAYS = ("hours", "income", "tax", "consumption", "utility", "objective")


@pytest.mark.parametrize("swf", ["inverse_skill", "paper", "utilitarian", "rawlsian", "atkinson"])
@pytest.mark.parametrize("floor", [377.0, 0.0])
def test_threads_change_no_bit(swf: str, floor: float) -> None:
    # Arrays and scalars (welfare and Gini included: partial sums are added in block order) are identical
    # for every thread count, on a convex and a non-convex schedule.
    v = skills()
    for schedule in (US_2024, NON_CONVEX):
        B.set_threads(1)
        h1, o1 = step(v, schedule, swf, floor)
        for k in (2, 3, 7):
            B.set_threads(k)
            hk, ok = step(v, schedule, swf, floor)
            assert hk.tobytes() == h1.tobytes()
            for name in ARRAYS:
                assert getattr(ok, name).tobytes() == getattr(o1, name).tobytes(), (k, name)
            assert ok.metrics() == o1.metrics(), k  # exactly, not approximately


def test_threads_change_no_bit_with_a_population_and_its_caches() -> None:
    # The cached skill order (the Gini's sort) and utility types (an objective of its own) on threads.
    pop = Population.sample(N, seed=3)
    B.set_threads(1)
    _, o1 = step(pop, US_2024, "inverse_skill", 377.0)
    B.set_threads(2)
    _, o2 = step(pop, US_2024, "inverse_skill", 377.0)
    for name in ARRAYS:
        assert getattr(o2, name).tobytes() == getattr(o1, name).tobytes(), name
    assert o2.metrics() == o1.metrics()


def test_taxes_welfare_and_gini_alone_change_no_bit() -> None:
    rng = np.random.default_rng(4)
    z, u, v = rng.uniform(-1e3, 2e6, N), rng.normal(3e4, 1e4, N), skills()
    results = []
    for k in (1, 2, 4):
        B.set_threads(k)
        results.append((US_2024.tax(z).tobytes(), US_2024.with_top_income_cap(1e6).tax(z).tobytes(),
                        social_welfare(u, skill=v), social_welfare(u, skill=v, skill_floor=0.0), gini(z.clip(0))))
    assert results[1] == results[0] and results[2] == results[0]


def test_the_caller_and_a_helper_share_the_blocks() -> None:
    B.set_threads(2)
    seen = map_blocks(lambda blk, scratch: (blk.start, threading.current_thread().name), 40 * BLOCK)
    assert [start for start, _ in seen] == list(range(0, 40 * BLOCK, BLOCK))  # block order, whatever the timing
    names = {name for _, name in seen}
    assert threading.current_thread().name in names or len(names) == 1  # (a loaded machine may serve one alone)
    assert all(name == threading.current_thread().name or name.startswith("economy-blocks") for name in names)


def test_each_worker_has_its_own_scratch() -> None:
    B.set_threads(3)
    out = np.empty(9 * BLOCK)

    def fill(blk: slice, scratch: Scratch) -> None:
        buf = scratch("x", blk.stop - blk.start)
        buf.fill(blk.start)  # another worker writing the same buffer would show up below
        out[blk] = buf

    map_blocks(fill, out.size)
    np.testing.assert_array_equal(out, np.repeat(np.arange(0, 9 * BLOCK, BLOCK), BLOCK))


def test_the_first_failing_task_in_list_order_raises_after_the_others() -> None:
    finished = []

    def task(i: int):
        def go(scratch: Scratch) -> int:
            if i in (3, 5):
                raise KeyError(i)
            finished.append(i)
            return i
        return go

    for k in (1, 2, 4):
        finished.clear()
        with pytest.raises(KeyError) as e:
            run([task(i) for i in range(8)], workers=k, size=BLOCK)
        assert e.value.args == (3,)
        assert {0, 1, 2} <= set(finished)  # everything before the failure ran


def test_a_pass_inside_a_pass_stays_on_its_thread() -> None:
    # A nested pass (e.g. TaxSchedule.tax inside a block) never waits for the pool: no deadlock.
    B.set_threads(2)

    def outer(blk: slice, scratch: Scratch) -> tuple[int, int]:
        inner = map_blocks(lambda b, s: threading.current_thread().name, 3 * BLOCK)
        return B.workers(3 * BLOCK), len(set(inner))

    assert set(map_blocks(outer, 6 * BLOCK)) == {(1, 1)}


def test_the_callers_numpy_error_state_holds_on_every_thread() -> None:
    B.set_threads(2)
    x = np.zeros(8 * BLOCK)

    def divide(blk: slice, scratch: Scratch) -> None:
        np.divide(1.0, x[blk], out=scratch("y", blk.stop - blk.start))

    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        map_blocks(divide, x.size)
    with np.errstate(divide="ignore"):
        map_blocks(divide, x.size)  # no warning on any thread


def test_small_steps_stay_on_one_thread_unless_asked() -> None:
    assert B.workers(PARALLEL_MIN - 1) == 1 and B.workers(BLOCK) == 1
    assert B.workers(PARALLEL_MIN) == min(B.thread_count(), PARALLEL_MIN // BLOCK)
    B.set_threads(2)
    assert B.workers(2 * BLOCK) == 2 and B.workers(BLOCK) == 1  # explicit: any step of two blocks or more
    B.set_threads(None)
    v = np.random.default_rng(0).lognormal(6.5, 1.2, 10_000)
    best_response(v, US_2024)
    outcome(v, US_2024, best_response(v, US_2024))
    assert pool_threads() == []  # an oracle-sized step starts no pool


def test_the_thread_count_is_validated_naming_the_field_and_the_range(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (0, -1, MAX_THREADS + 1, 2.0, True, "2", None.__class__):
        with pytest.raises(ValueError, match=rf"threads=.* must be an integer in \[1, {MAX_THREADS}\]"):
            B.set_threads(bad)  # type: ignore[arg-type]
    B.set_threads(np.int64(3))
    assert B.thread_count() == 3
    B.set_threads(None)
    for bad in ("zero", "0", "1.5", str(MAX_THREADS + 1)):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=rf"{THREADS_ENV}='{bad}' must be an integer in \[1, {MAX_THREADS}\]"):
            B.thread_count()
    monkeypatch.setenv(THREADS_ENV, " 5 ")
    assert B.thread_count() == 5 and B.workers(2 * BLOCK) == 2  # explicit, like set_threads
    B.set_threads(1)
    assert B.thread_count() == 1  # set_threads wins over the environment


def test_automatic_is_the_usable_cores_capped_by_omp_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    cores = len(os.sched_getaffinity(0))
    assert B.thread_count() == min(cores, MAX_THREADS)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what eval.parallel sets in its worker processes
    assert B.thread_count() == 1 and B.workers(10**6) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1000")
    assert B.thread_count() == min(cores, MAX_THREADS)  # a cap, never more than the cores
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # not ours to judge (OpenMP's nested syntax): ignored
    assert B.thread_count() == min(cores, MAX_THREADS)


def test_set_threads_joins_the_pool() -> None:
    B.set_threads(3)
    map_blocks(lambda blk, scratch: None, 8 * BLOCK)
    assert len(pool_threads()) <= 2  # the caller is the third
    B.set_threads(1)
    assert pool_threads() == []


CHILD = """
import sys
sys.path.insert(0, {root!r})
import hashlib
import numpy as np
import economy._blocks as B
from economy.labor import best_response
from economy.tax import TaxSchedule
from economy.world import outcome
v = np.random.default_rng(0).lognormal(6.5, 1.2, 5 * B.BLOCK)
s = TaxSchedule.preset("us_federal_2024")
o = outcome(v, s, best_response(v, s))
print(B.workers(v.size), o.welfare.hex(), o.gini.hex(), hashlib.sha256(o.utility.tobytes()).hexdigest())
"""


def test_a_process_with_a_pool_exits_cleanly_with_the_same_bits() -> None:
    # The pool's threads are joined at interpreter exit: the process ends, promptly, with its result.
    code = CHILD.format(root=str(ROOT))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", THREADS_ENV)}
    one = subprocess.run([sys.executable, "-c", code], env={**env, THREADS_ENV: "1"}, capture_output=True,
                         text=True, timeout=60)
    two = subprocess.run([sys.executable, "-c", code], env={**env, THREADS_ENV: "2"}, capture_output=True,
                         text=True, timeout=60)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    assert one.stdout.split()[0] == "1" and two.stdout.split()[0] == "2"
    assert one.stdout.split()[1:] == two.stdout.split()[1:]


def _child_step(threads: int) -> tuple[int, str, bytes]:
    B.set_threads(threads)
    v = skills()
    o = outcome(v, US_2024, best_response(v, US_2024))
    return B.workers(v.size), o.welfare.hex(), o.utility.tobytes()


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_worker_processes_get_the_same_bits(method: str) -> None:
    # spawn (eval.parallel's): the child makes its own pool. fork after the parent's pool exists: the child
    # has none of its threads and must not wait for them.
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} on this platform")
    B.set_threads(2)
    parent = _child_step(2)
    assert pool_threads()
    with multiprocessing.get_context(method).Pool(1) as pool:
        child = pool.apply_async(_child_step, (2,)).get(timeout=60)
    assert child == parent
