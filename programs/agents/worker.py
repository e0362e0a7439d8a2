"""The worker: a DSPy program choosing weekly hours from its own history (``docs/design.md`` §4.2).

``WorkerAgent`` is the policy, one ``ChooseLabor`` predictor (Predict or ChainOfThought) shared by every
worker, so an optimizer compiles one program. What differs between workers lives in ``WorkerMemory``:
persona, skill, a bounded prompt history (the last ``history_len`` steps plus the ``best_k`` best steps
by utility) and the last valid hours, which an answer that cannot be used falls back to.

``WorkerAgent.decide_batch`` sends all workers of a step to the LMs as one concurrent batch, agents
spread round-robin over the endpoints, each call with its own rollout id.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import dspy
import numpy as np
from numpy.typing import NDArray

from economy.constants import HOURS_REF, MAX_HOURS
from programs.agents.batch import (
    BatchRunner,
    FallbackCounter,
    classify_error,
    lm_config,
    make_predictor,
    rollout_id,
    round_robin,
    validate_number,
)
from programs.agents.window import best_beyond
from programs.lm.structured import use_structured
from signatures import ChooseLabor, Schedule, WorkerStep

__all__ = ["WorkerAgent", "WorkerMemory", "WorkerDecisions", "DEFAULT_HOURS", "worker_step",
           "validate_hours"]

#: Hours a worker falls back to before it has made any valid choice (full time).
DEFAULT_HOURS = HOURS_REF


class WorkerMemory:
    """One worker's state as its prompts show it.

    Parameters
    ----------
    agent_id : index of the worker in the population.
    persona : the persona text shown to the LM.
    skill : pre-tax income in $/year at 40 hours a week (what ``ChooseLabor.skill`` means).
    history_len : number of most recent steps kept for the prompt (H).
    best_k : number of best steps by utility kept for the prompt (ties keep the earlier step).
    """

    __slots__ = ("agent_id", "persona", "skill", "history", "best", "best_k", "last_hours", "last_vote",
                 "last_satisfied", "year_end")

    def __init__(self, agent_id: int, persona: str, skill: float, history_len: int = 5, best_k: int = 3) -> None:
        if history_len < 0 or best_k < 0:
            raise ValueError(f"history_len={history_len} and best_k={best_k} must be >= 0")
        self.agent_id = int(agent_id)
        self.persona = str(persona)
        self.skill = float(skill)
        self.history: deque[WorkerStep] = deque(maxlen=history_len)
        self.best: list[WorkerStep] = []
        self.best_k = best_k
        self.last_hours: float | None = None
        # Other agents' last valid answers for this worker, restored from the run log on resume.
        self.last_vote: str | None = None
        self.last_satisfied: bool | None = None
        self.year_end: list[WorkerStep] = []  # the worker's outcome at the end of each tax year

    def record(self, step: WorkerStep) -> None:
        """Append one step to the history and update the best-k list."""
        if self.history.maxlen:
            self.history.append(step)
        self.last_hours = step.hours
        if self.best_k:
            best = self.best + [step]
            # Stable sort: equal utilities keep the earlier step first.
            best.sort(key=lambda s: -s.utility)
            self.best = best[: self.best_k]

    def prompt_best(self) -> list[WorkerStep]:
        """The best steps the prompt shows: the best-k by utility, best first, less those in the history."""
        return best_beyond(self.best, self.history, key=lambda s: s.step)

    def clear(self) -> None:
        self.history.clear()
        self.best = []
        self.last_hours = None
        self.last_vote = None
        self.last_satisfied = None
        self.year_end = []


@dataclass
class WorkerDecisions:
    """The hours chosen by a batch of workers.

    Attributes
    ----------
    hours : ndarray, shape (n,) -- validated hours in [0, 100] (fallbacks included).
    fallback : list of str or None, length n -- the fallback kind per worker (None: the answer was used).
    """

    hours: NDArray[np.float64]
    fallback: list[str | None]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for k in self.fallback:
            if k is not None:
                out[k] = out.get(k, 0) + 1
        return dict(sorted(out.items()))


class WorkerAgent(dspy.Module):
    """Choose weekly hours with ``ChooseLabor``; validate, clamp, fall back and count.

    Parameters
    ----------
    module_type : "predict" or "cot" (ChainOfThought adds a reasoning field).
    default_hours : hours used as the fallback before a worker has any valid choice.
    hours_grid : if given (e.g. 10), valid answers are rounded to the nearest multiple of it in [0, 100]
        (the reference offered LABOR in {0, 10, ..., 100}); None keeps any hours in [0, 100].

    Notes
    -----
    ``forward`` never raises for a bad answer: a parse failure, an LM error, a non-number or a number
    outside [0, 100] falls back to ``fallback_hours`` (the worker's last valid hours) and is counted in
    ``self.fallbacks`` by kind (``parse_error``, ``lm_error``, ``invalid``, ``non_finite``,
    ``out_of_range``). An out-of-range number is not clamped: 2,975 hours says the model did not answer
    the question, and 100 h is not what it meant (``docs/design.md`` §4.2).
    """

    def __init__(self, module_type: str = "predict", default_hours: float = DEFAULT_HOURS,
                 hours_grid: float | None = None) -> None:
        super().__init__()
        if hours_grid is not None and not (math.isfinite(hours_grid) and 0 < hours_grid <= MAX_HOURS):
            raise ValueError(f"hours_grid={hours_grid!r} must be in (0, {MAX_HOURS:g}] or None")
        self.hours_grid = hours_grid
        self.module_type = module_type
        self.decide = make_predictor(ChooseLabor, module_type)
        self.default_hours = float(default_hours)
        self.fallbacks = FallbackCounter()

    def forward(
        self,
        persona: str,
        skill: float,
        schedule: Schedule,
        last_rebate: float = 0.0,
        history: Sequence[WorkerStep] = (),
        best: Sequence[WorkerStep] = (),
        fallback_hours: float | None = None,
        lm: dspy.BaseLM | None = None,
        rollout_id: int | None = None,
    ) -> dspy.Prediction:
        """One decision. Returns a Prediction with ``hours`` (float in [0, 100]) and ``fallback`` (kind or
        None)."""
        fallback_hours = self.default_hours if fallback_hours is None else float(fallback_hours)
        extra = {"lm": lm} if lm is not None else {}
        config = lm_config(lm or dspy.settings.lm, rollout_id)
        try:
            with use_structured(lm or dspy.settings.lm):
                # Money to the cent, as in the history rows: more digits are tokens with nothing to say.
                pred = self.decide(persona=persona, skill=round(float(skill), 2), schedule=schedule,
                                   history=list(history), best=list(best), last_rebate=round(float(last_rebate), 2),
                                   config=config, **extra)
        except Exception as exc:
            return self._fallback(classify_error(exc), fallback_hours)
        hours, kind = validate_hours(getattr(pred, "hours", None), grid=self.hours_grid)
        if kind is not None:
            return self._fallback(kind, fallback_hours)
        return dspy.Prediction(hours=hours, fallback=None)

    def _fallback(self, kind: str, hours: float) -> dspy.Prediction:
        self.fallbacks.add(kind)
        return dspy.Prediction(hours=hours, fallback=kind)

    def decide_batch(
        self,
        memories: Sequence[WorkerMemory],
        schedule: Schedule,
        last_rebate: float,
        *,
        lms: Sequence[dspy.BaseLM],
        runner: BatchRunner,
        seed: int = 0,
        step: int = 0,
    ) -> WorkerDecisions:
        """All workers of one step as one concurrent batch (agent ``i`` served by ``lms[i % len(lms)]``).

        Each call's rollout id depends only on (seed, step, agent id): at temperature > 0 it keeps DSPy's
        cache from handing identical prompts of distinct agents one cached answer, and a replayed run asks
        exactly the same questions. It does not reach the engine (DSPy strips it), so the offline engine
        answers identical prompts identically; workers' prompts differ by persona and skill.
        """
        if not lms:
            raise ValueError("lms must hold at least one LM")

        def one(i: int) -> dspy.Prediction:
            m = memories[i]
            return self(persona=m.persona, skill=m.skill, schedule=schedule, last_rebate=last_rebate,
                        history=tuple(m.history), best=tuple(m.prompt_best()),
                        fallback_hours=m.last_hours, lm=round_robin(lms, m.agent_id),
                        rollout_id=rollout_id(seed, "work", step, m.agent_id))

        results = runner.map(one, range(len(memories)))
        n = len(memories)
        hours = np.empty(n)
        fallback: list[str | None] = [None] * n
        for i, r in enumerate(results):
            if isinstance(r, BaseException):  # forward catches its own errors; this is a bug guard
                last = memories[i].last_hours
                hours[i] = self.default_hours if last is None else last
                fallback[i] = "lm_error"
                self.fallbacks.add("lm_error")
                continue
            hours[i] = r.hours
            fallback[i] = r.fallback
        return WorkerDecisions(hours=hours, fallback=fallback)


def validate_hours(value: object, grid: float | None = None) -> tuple[float, str | None]:
    """``(hours, fallback_kind)`` for a raw answer: a number in [0, 100] and None, or NaN and the kind
    (``invalid``, ``non_finite``, ``out_of_range``).

    With ``grid`` (e.g. 10) valid hours are then rounded to the nearest multiple of it (43 -> 40; halves
    round to even, as numpy does), within [0, 100]; rounding onto the grid is not a fallback.
    """
    h, kind = _validate_hours(value)
    if kind is None and grid is not None:
        h = snap_to_grid(h, grid, 0.0, MAX_HOURS)
    return h, kind


def snap_to_grid(x: float, grid: float, lo: float, hi: float) -> float:
    """``x`` rounded to the nearest multiple of ``grid`` (half to even), kept within [lo, hi]."""
    y = float(np.round(x / grid) * grid)
    while y > hi + 1e-9:
        y -= grid
    while y < lo - 1e-9:
        y += grid
    return y


def _validate_hours(value: object) -> tuple[float, str | None]:
    return validate_number(value, 0.0, MAX_HOURS)


def worker_step(
    step: int, hours: float, income: float, tax: float, rebate: float, consumption: float, utility: float
) -> WorkerStep:
    """A history row from one agent's outcome (money in $/year).

    Values are rounded as a person would read them (cents, hundredths of an hour, 1e-4 utility) so
    prompts stay short; tiny negatives from floating-point round-off are clipped so the row validates.
    A negative ``tax`` is kept (a net credit, under a schedule with negative marginal rates); one that
    rounds to zero cents shows as 0.0.
    """
    return WorkerStep(step=int(step), hours=round(min(max(float(hours), 0.0), MAX_HOURS), 2),
                      pretax_income=round(max(float(income), 0.0), 2), tax=round(float(tax), 2) + 0.0,
                      rebate=round(max(float(rebate), 0.0), 2), consumption=round(float(consumption), 2),
                      utility=round(float(utility), 4))


