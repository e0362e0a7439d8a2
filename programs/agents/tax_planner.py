"""The planner: a DSPy program proposing next year's marginal tax rates (DESIGN.md §4).

``PlannerAgent`` wraps ``ProposeTaxSchedule`` (Predict or ChainOfThought). Its prompt shows a bounded
history: the last ``history_len`` tax years and the ``best_k`` best years by welfare. Answers are
validated (one rate per bracket, finite), clamped to [0, 100] percent and converted to fractions for
``economy.TaxSchedule``; an unusable answer falls back to the rates in force and is counted.

The program saves and loads as DSPy JSON. ``PlannerAgent.load(path)`` works on the class (it builds the
agent from the settings stored beside the predictor state) and on an instance (DSPy's usual in-place
load), so a program compiled by ``optimize.planner`` loads in one line.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import dspy
import numpy as np

from economy.tax import TaxSchedule, resolve_cutoffs
from programs.agents.batch import FallbackCounter, classify_error, lm_config, make_predictor
from programs.agents.worker import percent
from programs.lm.structured import use_structured
from signatures import PlannerYear, ProposeTaxSchedule

__all__ = ["PlannerAgent", "FixedPlanner", "Planner", "validate_rates", "planner_year"]

#: Key under which a saved PlannerAgent stores its own settings (DSPy ignores unknown keys on load).
STATE_KEY = "planner_agent"


class Planner(Protocol):
    """What the simulation needs from a planner (``PlannerAgent`` or a fixed baseline)."""

    years: list[PlannerYear]

    def propose_schedule(self, current: TaxSchedule, *, lm: dspy.BaseLM | None = None,
                         rollout_id: int | None = None, persona: str | None = None
                         ) -> tuple[TaxSchedule, str | None]: ...

    def record_year(self, year: PlannerYear) -> None: ...

    def reset_memory(self) -> None: ...


class _class_or_instance:
    """A method that binds to the instance when there is one, else to the class (``load``)."""

    def __init__(self, f: Any) -> None:
        self.f = f
        functools.update_wrapper(self, f)

    def __get__(self, obj: Any, cls: type | None = None) -> Any:
        return functools.partial(self.f, cls if cls is not None else type(obj), obj)


class PlannerAgent(dspy.Module):
    """Propose a tax schedule with ``ProposeTaxSchedule``; validate, clamp, fall back and count.

    Parameters
    ----------
    cutoffs : preset name, bracket lower bounds ($/year) or a TaxSchedule.
    module_type : "predict" or "cot".
    history_len : tax years shown as recent history (H).
    best_k : best past years shown by welfare.

    Attributes
    ----------
    years : list of PlannerYear -- every tax year recorded with ``record_year`` (the prompt shows a window).
    fallbacks : FallbackCounter -- ``invalid`` (wrong number of rates / not numbers), ``non_finite``,
        ``parse_error``, ``lm_error``; ``clamped`` counts rates clamped into [0, 100].
    """

    def __init__(self, cutoffs: Any = "us_federal_2024", module_type: str = "predict",
                 history_len: int = 5, best_k: int = 3) -> None:
        super().__init__()
        if history_len < 0 or best_k < 0:
            raise ValueError(f"history_len={history_len} and best_k={best_k} must be >= 0")
        self.cutoffs: list[float] = resolve_cutoffs(cutoffs).tolist()
        self.module_type = module_type
        self.history_len = int(history_len)
        self.best_k = int(best_k)
        self.propose = make_predictor(ProposeTaxSchedule, module_type)
        self.years: list[PlannerYear] = []
        self.fallbacks = FallbackCounter()

    # -- memory ---------------------------------------------------------------------------------
    def record_year(self, year: PlannerYear) -> None:
        """Remember one finished tax year (its rates and the welfare they produced)."""
        self.years.append(year)

    def reset_memory(self) -> None:
        self.years = []

    def prompt_history(self) -> list[PlannerYear]:
        """The last ``history_len`` years, oldest first."""
        return list(self.years[-self.history_len:]) if self.history_len else []

    def prompt_best(self) -> list[PlannerYear]:
        """The ``best_k`` years with the highest welfare, best first (ties: the earlier year)."""
        if not self.best_k:
            return []
        return sorted(self.years, key=lambda y: -y.welfare)[: self.best_k]

    # -- the program ----------------------------------------------------------------------------
    def _predictor(self) -> dspy.Predict:
        return self.propose if isinstance(self.propose, dspy.Predict) else self.propose.predict

    def forward(
        self,
        cutoffs: Sequence[float],
        current_rates_percent: Sequence[float],
        history: Sequence[PlannerYear] = (),
        best: Sequence[PlannerYear] = (),
        lm: dspy.BaseLM | None = None,
        rollout_id: int | None = None,
        persona: str | None = None,
    ) -> dspy.Prediction:
        """One proposal. Returns a Prediction with ``rates_percent`` (list, one per bracket, in
        [0, 100]), ``fallback`` (kind or None) and ``clamped`` (number of rates clamped).

        ``persona`` (democratic scenario) makes the planner a candidate: the instructions add who is
        proposing, so candidates' platforms differ as their prompts do.
        """
        current = [float(r) for r in current_rates_percent]
        kwargs: dict[str, Any] = {}
        if lm is not None:
            kwargs["lm"] = lm
        if persona:
            sig = self._predictor().signature
            kwargs["signature"] = sig.with_instructions(
                f"{sig.instructions}\n\nYou are a candidate for tax planner, campaigning as this person: "
                f"{persona.strip()} Propose the rates you would campaign on.")
        try:
            with use_structured(lm or dspy.settings.lm):
                pred = self.propose(cutoffs=[float(c) for c in cutoffs], current_rates_percent=current,
                                    history=list(history), best=list(best),
                                    config=lm_config(lm or dspy.settings.lm, rollout_id), **kwargs)
        except Exception as exc:
            return self._fallback(classify_error(exc), current)
        rates, kind, n_clamped = validate_rates(getattr(pred, "rates_percent", None), len(cutoffs))
        if kind is not None:
            return self._fallback(kind, current)
        if n_clamped:
            self.fallbacks.add("clamped", n_clamped)
        return dspy.Prediction(rates_percent=rates, fallback=None, clamped=n_clamped,
                               reasoning=getattr(pred, "reasoning", None))

    def _fallback(self, kind: str, current: list[float]) -> dspy.Prediction:
        self.fallbacks.add(kind)
        return dspy.Prediction(rates_percent=list(current), fallback=kind, clamped=0, reasoning=None)

    def propose_schedule(self, current: TaxSchedule, *, lm: dspy.BaseLM | None = None,
                         rollout_id: int | None = None, persona: str | None = None
                         ) -> tuple[TaxSchedule, str | None]:
        """Next year's schedule from the recorded years; the current one on a fallback."""
        pred = self(cutoffs=current.cutoffs.tolist(), current_rates_percent=percent(current.rates),
                    history=self.prompt_history(), best=self.prompt_best(), lm=lm, rollout_id=rollout_id,
                    persona=persona)
        return current.with_rates(np.asarray(pred.rates_percent) / 100.0), pred.fallback

    # -- persistence ----------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {"cutoffs": list(self.cutoffs), "module_type": self.module_type,
                "history_len": self.history_len, "best_k": self.best_k}

    def dump_state(self, json_mode: bool = True) -> dict[str, Any]:
        state = super().dump_state(json_mode=json_mode)
        state[STATE_KEY] = self.settings()
        return state

    def load_state(self, state: dict[str, Any], *, allow_unsafe_lm_state: bool = False) -> "PlannerAgent":
        state = _as_agent_state(state, self.module_type)
        super().load_state(state, allow_unsafe_lm_state=allow_unsafe_lm_state)
        return self

    @_class_or_instance
    def load(cls, self: "PlannerAgent | None", path: str | Path, allow_pickle: bool = False,
             allow_unsafe_lm_state: bool = False, **overrides: Any) -> "PlannerAgent":
        """Load a saved program: ``PlannerAgent.load(path)`` builds a new agent, ``agent.load(path)``
        loads in place. Also accepts the JSON of a bare ``dspy.Predict``/``ChainOfThought`` of
        ``ProposeTaxSchedule``. ``overrides`` (class form) replace stored settings, e.g. ``history_len``.
        """
        path = Path(path)
        if self is None:
            if path.suffix != ".json":
                raise ValueError(f"path={str(path)!r}: PlannerAgent.load(path) reads DSPy JSON (.json)")
            state = json.loads(path.read_text())
            settings = dict(state.get(STATE_KEY) or {})
            settings.setdefault("module_type", "cot" if _looks_cot(state) else "predict")
            settings.update(overrides)
            self = cls(**settings)
        dspy.Module.load(self, path, allow_pickle=allow_pickle, allow_unsafe_lm_state=allow_unsafe_lm_state)
        return self


def _looks_cot(state: dict[str, Any]) -> bool:
    keys = [k for k in state if k not in ("metadata", STATE_KEY)]
    return any(k.endswith(".predict") or k == "predict" for k in keys)


def _as_agent_state(state: dict[str, Any], module_type: str) -> dict[str, Any]:
    """Map the state of a bare predictor (as an optimizer may save it) onto this agent's names."""
    name = "propose" if module_type == "predict" else "propose.predict"
    if name in state:
        return state
    if "signature" in state and "demos" in state:  # a bare dspy.Predict
        return {**state, name: state}
    if "predict" in state:  # a bare ChainOfThought
        return {**state, name: state["predict"]}
    if "propose" in state and module_type != "predict":
        return {**state, name: state["propose"]}
    if "propose.predict" in state and module_type == "predict":
        return {**state, name: state["propose.predict"]}
    raise ValueError(f"this state holds no planner predictor (expected key {name!r}; "
                     f"found {sorted(k for k in state if k != 'metadata')})")


class FixedPlanner:
    """A planner that always keeps one schedule (baselines such as Saez or US federal under LLM workers)."""

    def __init__(self, schedule: TaxSchedule) -> None:
        self.schedule = schedule
        self.years: list[PlannerYear] = []
        self.fallbacks = FallbackCounter()

    def propose_schedule(self, current: TaxSchedule, *, lm: dspy.BaseLM | None = None,
                         rollout_id: int | None = None, persona: str | None = None
                         ) -> tuple[TaxSchedule, str | None]:
        return self.schedule, None

    def record_year(self, year: PlannerYear) -> None:
        self.years.append(year)

    def reset_memory(self) -> None:
        self.years = []


def validate_rates(value: object, n_brackets: int) -> tuple[list[float], str | None, int]:
    """``(rates_percent, fallback_kind, n_clamped)`` for a raw answer.

    A list of ``n_brackets`` finite numbers is accepted, each clamped to [0, 100]; anything else gives a
    fallback kind: ``invalid`` (not a list of numbers or the wrong count) or ``non_finite``.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [], "invalid", 0
    out: list[float] = []
    for r in value:
        if isinstance(r, bool):
            return [], "invalid", 0
        try:
            x = float(r)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return [], "invalid", 0
        if not math.isfinite(x):
            return [], "non_finite", 0
        out.append(x)
    if len(out) != n_brackets:
        return [], "invalid", 0
    clamped = [min(max(x, 0.0), 100.0) for x in out]
    return clamped, None, sum(a != b for a, b in zip(out, clamped))


def planner_year(year: int, schedule: TaxSchedule, welfare: float, revenue: float, mean_hours: float,
                 income: np.ndarray) -> PlannerYear:
    """The record of one finished tax year (``income`` shape (n,): the agents' pre-tax incomes)."""
    counts = np.bincount(schedule.bracket_index(income), minlength=schedule.n_brackets)
    return PlannerYear(year=int(year), rates_percent=percent(schedule.rates), welfare=round(float(welfare), 4),
                       revenue=round(float(revenue), 2), mean_hours=round(min(max(float(mean_hours), 0.0), 100.0), 2),
                       agents_per_bracket=[int(c) for c in counts])
