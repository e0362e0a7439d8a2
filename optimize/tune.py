"""Optuna study over the planner's numeric knobs, against end-to-end welfare of short simulations.

Knobs (one Optuna trial each combination):

- ``history_len``: recent tax years (planner) / steps (workers) shown in prompts, 1-10;
- ``steps_per_year``: the tax-year length, worker steps between two planner moves, 1-10;
- ``temperature``: sampling temperature of the LM, 0-1.5;
- ``n_demos``: demonstrations in the planner's prompt, the first ``n`` of a demo pool (a compiled
  program's demos, or labeled training situations), 0 to the pool's size (capped by ``max_demos``).

A trial runs one simulation per tuning seed (``Population.sample(agents, seed)``, workers LLM by default,
since with rational workers the tax-year length and temperature cannot matter) and scores it with the
*end-to-end score*: the mean over tax years 1.. of ``(W_t - W_none) / (W_oracle - W_none)`` clipped to
[0, 1], where ``W_t`` is the welfare the simulation reached in year ``t`` -- so a planner that gets to a
good schedule sooner scores higher. The objective is the mean over seeds.

``storage`` is an Optuna RDB URL (``sqlite:///file.db``, ``postgresql://user@host/db``); processes that
pass the same ``storage`` and ``study_name`` add their trials to one study (each process runs
``trials`` trials, so two processes with ``--trials N`` leave 2N complete trials). With shared storage the
sampler is unseeded, so parallel processes do not propose the same first trials.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dspy
import numpy as np

from optimize.situations import EconomySpec, economy_for

__all__ = ["KNOBS", "TuneSettings", "Knobs", "end_to_end_score", "run_study", "check_storage", "open_study",
           "planner_with", "study_summary", "knobs_of", "heldout_scores", "max_calls_per_trial"]

#: Ranges searched (inclusive).
KNOBS: dict[str, tuple[float, float]] = {
    "history_len": (1, 10),
    "steps_per_year": (1, 10),
    "temperature": (0.0, 1.5),
    "n_demos": (0, 8),
}


@dataclass(frozen=True)
class Knobs:
    history_len: int
    steps_per_year: int
    temperature: float
    n_demos: int

    def to_dict(self) -> dict[str, Any]:
        return {"history_len": self.history_len, "steps_per_year": self.steps_per_year,
                "temperature": self.temperature, "n_demos": self.n_demos}


@dataclass
class TuneSettings:
    """Everything a tuning run needs besides the knobs.

    Attributes
    ----------
    econ : the economies (one population per seed).
    seeds : tuning seeds (training populations).
    years : tax years per simulation (>= 2; years 1.. are scored).
    workers : "llm" (default) or "rational".
    best_k, module_type : fixed planner settings.
    lm, api_base : the LM answering planner and workers ("offline" = the offline engine).
    structured, max_tokens : structured outputs and the token budget of a real LM (``programs.lm.structured``).
    backend_settings : the LM backend's own settings by backend name (``--lm local``'s ``LoadSettings``).
    demo_pool : demonstrations the ``n_demos`` knob takes a prefix of.
    base_program : a saved program whose instructions the tuned planner keeps (or None).
    max_demos : cap of ``n_demos``.
    """

    econ: EconomySpec
    seeds: list[int]
    years: int = 4
    workers: str = "llm"
    best_k: int = 3
    module_type: str = "predict"
    lm: str = "offline"
    api_base: list[str] | None = None
    structured: str = "auto"
    max_tokens: int | None = None
    backend_settings: dict[str, Any] = field(default_factory=dict)
    reasoning_effort: str | None = None
    demo_pool: list[dspy.Example] = field(default_factory=list)
    base_program: str | None = None
    max_demos: int = 4


def check_storage(url: str) -> str:
    """Validate an Optuna RDB URL without connecting; returns it. Raises ValueError (one line)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except ArgumentError:
        raise ValueError(f"storage={url!r} is not a database URL; use sqlite:///file.db or "
                         "postgresql://user@host/db") from None
    backend = u.get_backend_name()
    if backend not in ("sqlite", "postgresql", "mysql"):
        raise ValueError(f"storage={url!r}: backend {backend!r} is not supported; use sqlite:///file.db or "
                         "postgresql://user@host/db")
    if backend == "sqlite" and not u.database:
        raise ValueError(f"storage={url!r} names no file; use sqlite:///study.db (a file, so processes share it)")
    return url


def open_study(storage: str | None, study_name: str, seed: int | None) -> Any:
    """Create or load the study (maximising the end-to-end score)."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=seed if storage is None else None, n_startup_trials=5)
    if storage is None:
        return optuna.create_study(study_name=study_name, direction="maximize", sampler=sampler)
    kwargs: dict[str, Any] = {}
    if storage.startswith("sqlite"):
        # Several processes write one file: wait for SQLite's lock rather than fail.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    # Two processes opening a *new* database race to create Optuna's schema (a table or the alembic
    # version row "already exists"): serialise that on one machine with a lock file next to a SQLite
    # database, and retry elsewhere (the loser finds the schema in place on its next attempt).
    with _init_lock(storage):
        for attempt in range(6):
            try:
                store = optuna.storages.RDBStorage(storage, **kwargs)
                return optuna.create_study(study_name=study_name, storage=store, direction="maximize",
                                           sampler=sampler, load_if_exists=True)
            except Exception as exc:  # sqlalchemy OperationalError / IntegrityError from the race
                if attempt == 5 or type(exc).__name__ not in ("OperationalError", "IntegrityError"):
                    raise
                time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _init_lock(storage: str) -> Iterator[None]:
    """An exclusive lock on ``<database>.lock`` for a SQLite file (no-op for servers or without fcntl)."""
    try:
        import fcntl
        from sqlalchemy.engine import make_url

        u = make_url(storage)
        path = u.database if u.get_backend_name() == "sqlite" else None
    except Exception:
        path = None
    if not path or path == ":memory:":
        yield
        return
    lock = Path(path).with_name(Path(path).name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def planner_with(settings: TuneSettings, history_len: int, n_demos: int) -> Any:
    """A PlannerAgent with these knobs: the base program's instructions (if any) and the pool's first demos."""
    from programs.agents.tax_planner import PlannerAgent

    if settings.base_program:
        agent = PlannerAgent.load(settings.base_program, history_len=history_len, best_k=settings.best_k)
    else:
        agent = PlannerAgent(settings.econ.brackets, module_type=settings.module_type, history_len=history_len,
                             best_k=settings.best_k)
    for _, pred in agent.named_predictors():
        pred.demos = list(settings.demo_pool[:n_demos])
    return agent


def end_to_end_score(settings: TuneSettings, knobs: Knobs, seed: int) -> tuple[float, list[float]]:
    """Simulate ``settings.years`` tax years on population ``seed`` with ``knobs``.

    Returns
    -------
    (score, per-year scores) : the mean over years 1.. of the normalised welfare, and each year's.
    """
    from programs.lm import build_lms
    from programs.simulation import Simulation, load_config

    e = economy_for(seed, settings.econ)
    c = settings.econ
    cfg = load_config(agents=c.agents, years=settings.years, steps_per_year=knobs.steps_per_year,
                      workers=settings.workers, brackets=c.brackets, swf=c.swf, kappa=c.kappa,
                      skill_floor=c.skill_floor, history_len=knobs.history_len, best_k=settings.best_k, seed=int(seed),
                      temperature=knobs.temperature, module_type=settings.module_type, stratified=c.stratified)
    lms = build_lms(settings.lm, settings.api_base or None, temperature=knobs.temperature, seed=int(seed),
                    structured=settings.structured, max_tokens=settings.max_tokens,
                    settings=settings.backend_settings or None,
                    reasoning_effort=settings.reasoning_effort)
    planner = planner_with(settings, knobs.history_len, knobs.n_demos)
    sim = Simulation(cfg, lms=lms, planner=planner, population=e.population)
    try:
        summary = sim.run(progress=False)
    finally:
        sim.close()
    per_year = [e.score(w) for w in summary.welfare_by_year[1:]]
    return (float(np.mean(per_year)) if per_year else 0.0), per_year


def max_calls_per_trial(settings: TuneSettings) -> int:
    """LM calls one trial can make at most (the longest tax year, every seed)."""
    hi = int(KNOBS["steps_per_year"][1])
    workers = settings.econ.agents * hi * settings.years if settings.workers == "llm" else 0
    return len(settings.seeds) * (workers + settings.years)


def run_study(settings: TuneSettings, *, trials: int, storage: str | None, study_name: str,
              seed: int = 0, counter: Any = None, budget: int | None = None,
              progress: bool = False, on_trial: Any = None) -> Any:
    """Add ``trials`` trials to the study (fewer if ``budget`` LM calls would be exceeded); returns it.

    ``on_trial(study, frozen_trial)`` is called for every trial this process ends, and also for the one
    that failed and stopped the study (Optuna's own callbacks never see it): ``optimize.tracking.TrialRuns``.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(storage, study_name, seed)
    pool_max = min(settings.max_demos, len(settings.demo_pool))
    per_trial = max_calls_per_trial(settings)
    lock = threading.Lock()

    started: list[int] = []

    def objective(trial: "optuna.Trial") -> float:
        started.append(trial.number)
        knobs = Knobs(
            history_len=trial.suggest_int("history_len", *map(int, KNOBS["history_len"])),
            steps_per_year=trial.suggest_int("steps_per_year", *map(int, KNOBS["steps_per_year"])),
            temperature=round(trial.suggest_float("temperature", *KNOBS["temperature"], step=0.05), 2),
            n_demos=trial.suggest_int("n_demos", 0, pool_max),
        )
        scores = []
        for s in settings.seeds:
            score, per_year = end_to_end_score(settings, knobs, s)
            scores.append(score)
            trial.set_user_attr(f"seed{s}_per_year", [round(x, 4) for x in per_year])
        trial.set_user_attr("per_seed", {str(s): round(x, 4) for s, x in zip(settings.seeds, scores)})
        return float(np.mean(scores))

    def after_trial(study: Any, trial: Any) -> None:
        with lock:
            if budget is not None and counter is not None and counter.total + per_trial > budget:
                study.stop()
        if on_trial is not None:
            on_trial(study, trial)

    if budget is not None and per_trial > budget:
        return study  # the caller checked this; nothing fits
    try:
        study.optimize(objective, n_trials=trials, callbacks=[after_trial], show_progress_bar=progress,
                       catch=())
    except BaseException:
        if on_trial is not None and started:
            last = [t for t in study.get_trials(deepcopy=False) if t.number == started[-1]]
            if last and last[0].state == optuna.trial.TrialState.FAIL:
                on_trial(study, last[0])
        raise
    return study


def study_summary(study: Any) -> dict[str, Any]:
    """The study's state: trials by state, the best trial's knobs and score."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    out: dict[str, Any] = {"study_name": study.study_name, "trials": len(trials), "by_state": states}
    if complete:
        best = study.best_trial
        out["best"] = {"number": best.number, "score": round(float(best.value), 6), "knobs": dict(best.params),
                       "per_seed": best.user_attrs.get("per_seed")}
    return out


def knobs_of(params: dict[str, Any]) -> Knobs:
    return Knobs(history_len=int(params["history_len"]), steps_per_year=int(params["steps_per_year"]),
                 temperature=float(params["temperature"]), n_demos=int(params["n_demos"]))


def heldout_scores(settings: TuneSettings, knobs: Knobs, seeds: Sequence[int]) -> list[float]:
    """End-to-end score on each held-out seed."""
    return [end_to_end_score(settings, knobs, s)[0] for s in seeds]
