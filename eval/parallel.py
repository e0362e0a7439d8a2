"""Independent units of an evaluation in worker processes (``--jobs N`` of ``eval.compare``, ``eval.replicate``
and ``eval.calibration``), with results identical to running them one after another.

A :class:`Unit` is a module-level function and its arguments; a unit may wait for others (``after``) and build
its arguments from their results. :func:`run_units` runs them in-process in list order (``jobs=1``) or in
``jobs`` spawned processes, starting the first ready unit in list order whenever a process is free (the list
order is the priority), and returns every result by key. The caller assembles the results in its own fixed
order, so nothing depends on which unit finished first (``docs/design.md`` §7.1).

Each worker process has its numerical libraries pinned to one thread (``jobs`` processes on ``jobs`` cores
rather than ``jobs`` x cores threads) and ignores SIGINT: on Ctrl-C the parent cancels what has not started,
terminates the workers and raises ``KeyboardInterrupt`` once, so the CLI prints one line.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from programs.errors import ConfigError

#: Environment variables that size the thread pools of numpy's BLAS and friends; 1 in every worker process.
THREAD_VARS: tuple[str, ...] = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

#: The ``--jobs`` help text shared by every evaluation CLI.
JOBS_HELP = ("worker processes for the independent units (seeds x planners, oracles, robustness runs), >= 1; "
             "the output is identical for every value (default: the usable cores, {cores} here; 1 with --lm local, "
             "whose model would be loaded once per process)")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs: int | None, lm: str = "offline") -> int:
    """``--jobs``: the given value (checked), else the usable cores, or 1 for an in-process local model.

    The offline engine is built per unit in each process, so it scales; a local GGUF model is loaded once per
    process (hundreds of MB each, and llama.cpp already uses the cores), so it gets one process unless asked.
    """
    if jobs is not None:
        if jobs < 1:
            raise ConfigError(f"--jobs={jobs} must be >= 1")
        return int(jobs)
    from programs.lm.local import is_local

    return 1 if is_local(lm) else usable_cores()


def without_jobs(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--jobs N`` / ``--jobs=N``: the command recorded with the outputs, which do not depend on it."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--jobs":
            skip = True
        elif not a.startswith("--jobs="):
            out.append(a)
    return out


@dataclass(frozen=True)
class Unit:
    """One independent piece of work: ``fn(*args)``, or ``fn(*args(results))`` once the units ``after`` are done.

    ``fn`` must be a module-level function (worker processes import it by name); its arguments and result
    must pickle.
    """

    key: Hashable
    fn: Callable[..., Any]
    args: tuple[Any, ...] | Callable[[Mapping[Hashable, Any]], tuple[Any, ...]] = ()
    after: tuple[Hashable, ...] = ()
    label: str = field(default="", compare=False)

    def arguments(self, results: Mapping[Hashable, Any]) -> tuple[Any, ...]:
        return self.args(results) if callable(self.args) else self.args


def _init_worker() -> None:
    # Ctrl-C at a terminal reaches the whole process group: the parent alone handles it (and ends us).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_units(units: Sequence[Unit], jobs: int = 1, *, desc: str = "", progress: bool = True,
              on_done: Callable[[Unit, Any], None] | None = None) -> dict[Hashable, Any]:
    """Run ``units`` (each after its ``after`` units) and return ``{key: result}``.

    ``jobs=1`` runs them in this process in list order. An exception in a unit (e.g. ``FallbackStop``) stops the
    rest and is raised here; so is ``KeyboardInterrupt``, after every worker has been terminated. ``on_done``
    is called in this process, in completion order, with each finished unit and its result.
    """
    from tqdm.auto import tqdm

    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        raise ValueError("unit keys must be unique")
    known = set(keys)
    for u in units:
        missing = [k for k in u.after if k not in known]
        if missing:
            raise ValueError(f"unit {u.key!r} waits for unknown unit(s) {missing}")
    results: dict[Hashable, Any] = {}
    bar = tqdm(total=len(units), desc=desc, unit="unit", disable=not progress, file=sys.stderr)
    try:
        if jobs <= 1 or len(units) <= 1:
            for u in units:
                if any(k not in results for k in u.after):
                    raise ValueError(f"unit {u.key!r} is listed before a unit it waits for")
                bar.set_postfix_str(u.label or str(u.key))
                results[u.key] = u.fn(*u.arguments(results))
                if on_done is not None:
                    on_done(u, results[u.key])
                bar.update()
            return results
        _run_pool(units, jobs, results, bar, on_done)
        return results
    finally:
        bar.close()


def _run_pool(units: Sequence[Unit], jobs: int, results: dict[Hashable, Any], bar: Any,
              on_done: Callable[[Unit, Any], None] | None) -> None:
    pending = list(units)
    position = {u.key: i for i, u in enumerate(units)}
    running: dict[Future, Unit] = {}
    before = set(multiprocessing.active_children())  # ours to end on a stop: only the pool's workers
    saved = {v: os.environ.get(v) for v in THREAD_VARS}
    os.environ.update({v: "1" for v in THREAD_VARS})  # inherited by the spawned workers
    # Workers ended on a stop leave the pool's queue semaphores to multiprocessing's resource tracker, which
    # unlinks them and warns at exit; the warning would be a second, misleading line after the stop line.
    saved.setdefault("PYTHONWARNINGS", os.environ.get("PYTHONWARNINGS"))
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                          "ignore:resource_tracker:UserWarning"]))
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(units)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker)
    try:
        while pending or running:
            free = min(jobs, len(units)) - len(running)
            for u in [u for u in pending if all(k in results for k in u.after)][:max(0, free)]:
                pending.remove(u)
                running[pool.submit(u.fn, *u.arguments(results))] = u
            if not running:
                raise ValueError(f"units {[u.key for u in pending]} wait for each other")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: position[running[f].key]):
                u = running.pop(fut)
                results[u.key] = fut.result()  # a unit's exception is raised here
                if on_done is not None:
                    on_done(u, results[u.key])
                bar.set_postfix_str(u.label or str(u.key))
                bar.update()
    except BaseException:
        # Stop now: nothing new starts, the running units' processes are ended (they ignore SIGINT).
        pool.shutdown(wait=False, cancel_futures=True)
        workers = [p for p in multiprocessing.active_children() if p not in before]
        for p in workers:
            p.terminate()
        for p in workers:
            p.join(timeout=5)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old

