"""The planner: a DSPy program proposing next year's marginal tax rates (``docs/design.md`` §4.2).

``PlannerAgent`` wraps ``ProposeTaxSchedule`` (Predict or ChainOfThought). Its prompt shows a bounded
history: the last ``history_len`` tax years and the ``best_k`` best years by welfare. Answers are
validated (one finite rate per bracket, each in [0, 100] percent) and converted to fractions for
``economy.TaxSchedule``; an unusable answer (including a rate out of range: it is not clamped) falls back
to the rates in force and is counted by kind.

The program saves and loads as DSPy JSON. ``PlannerAgent.load(path)`` works on the class (it builds the
agent from the settings stored beside the predictor state) and on an instance (DSPy's usual in-place
load), so a program compiled by ``optimize.planner`` loads in one line.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import dspy
import numpy as np

from economy.tax import TaxSchedule, resolve_cutoffs, to_fraction, to_percent
from programs.agents.batch import FallbackCounter, classify_error, lm_config, make_predictor
from programs.agents.window import best_beyond
from programs.lm.structured import use_structured
from signatures import PlannerYear, ProposeTaxSchedule
from signatures.types import validate_number

__all__ = ["PlannerAgent", "FixedPlanner", "Planner", "Proposal", "validate_rates", "limit_moves", "planner_year",
           "recent_years", "best_years", "prompt_windows"]

#: Key under which a saved PlannerAgent stores its own settings (DSPy ignores unknown keys on load).
STATE_KEY = "planner_agent"


@dataclass(frozen=True)
class Proposal:
    """A planner's answer for next year, validated.

    ``rates_percent`` has one rate per bracket in [0, 100]; ``fallback`` is the kind of failure when the
    answer was unusable (the rates are then the ones in force); ``clamped`` counts rates a non-LM planner
    (an RL policy) gave outside [0, 100] and that were clamped into it — kept, and counted apart from
    fallbacks. An LM's out-of-range rate is a fallback, never clamped. ``move_limited`` counts rates the
    world's move limit cut (``limited``): a rule of the world every planner meets, not a planner's error.
    """

    rates_percent: list[float]
    fallback: str | None = None
    clamped: int = 0
    move_limited: int = 0

    def schedule(self, current: TaxSchedule) -> TaxSchedule:
        """The proposal on ``current``'s brackets."""
        return current.with_rates(to_fraction(self.rates_percent))

    def limited(self, current_percent: Sequence[float], max_move: float | None = None,
                grid: float | None = None) -> "Proposal":
        """This proposal under a move limit and a rate grid (``limit_moves``); cut moves count as
        ``move_limited``."""
        if max_move is None and grid is None:
            return self
        rates, n = limit_moves(self.rates_percent, current_percent, max_move=max_move, grid=grid)
        return Proposal(rates, self.fallback, self.clamped, self.move_limited + n)

    def counts(self) -> dict[str, int]:
        """Fallbacks of this proposal by kind, as the run log counts them (clamps and move limits are
        counted apart)."""
        return {self.fallback: 1} if self.fallback else {}


class Planner(Protocol):
    """What the simulation needs from a planner (``PlannerAgent``, a fixed baseline, an RL policy)."""

    years: list[PlannerYear]

    def plan(self, current: TaxSchedule, *, lm: dspy.BaseLM | None = None,
                rollout_id: int | None = None, persona: str | None = None) -> Proposal: ...

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
        ``parse_error``, ``lm_error``, ``out_of_range`` (a rate outside [0, 100]).
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
        #: A sentence added to the instructions stating the world's limits on moves (set by the
        #: simulation when ``max_rate_move``/``rate_grid`` are configured; the world enforces them anyway).
        self.move_rule: str | None = None

    # -- memory ---------------------------------------------------------------------------------
    def record_year(self, year: PlannerYear) -> None:
        """Remember one finished tax year (its rates and the welfare they produced)."""
        self.years.append(year)

    def reset_memory(self) -> None:
        self.years = []

    def prompt_history(self) -> list[PlannerYear]:
        """The last ``history_len`` years, oldest first."""
        return recent_years(self.years, self.history_len)

    def prompt_best(self) -> list[PlannerYear]:
        """The ``best_k`` years with the highest welfare, best first (ties: the earlier year), less those the
        history shows."""
        return prompt_windows(self.years, self.history_len, self.best_k)[1]

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
        [0, 100]) and ``fallback`` (kind or None).

        ``persona`` (democratic scenario) makes the planner a candidate: the instructions add who is
        proposing, so candidates' platforms differ as their prompts do.
        """
        current = [float(r) for r in current_rates_percent]
        kwargs: dict[str, Any] = {}
        if lm is not None:
            kwargs["lm"] = lm
        extra_instructions = []
        if self.move_rule:
            extra_instructions.append(self.move_rule)
        if persona:
            extra_instructions.append(f"You are a candidate for tax planner, campaigning as this person: "
                                      f"{persona.strip()} Propose the rates you would campaign on.")
        if extra_instructions:
            sig = self._predictor().signature
            kwargs["signature"] = sig.with_instructions("\n\n".join([sig.instructions, *extra_instructions]))
        try:
            with use_structured(lm or dspy.settings.lm):
                pred = self.propose(cutoffs=[float(c) for c in cutoffs], history=list(history), best=list(best),
                                    current_rates_percent=current,
                                    config=lm_config(lm or dspy.settings.lm, rollout_id), **kwargs)
        except Exception as exc:
            return self._fallback(classify_error(exc), current)
        rates, kind = validate_rates(getattr(pred, "rates_percent", None), len(cutoffs))
        if kind is not None:
            return self._fallback(kind, current)
        return dspy.Prediction(rates_percent=rates, fallback=None,
                               reasoning=getattr(pred, "reasoning", None))

    def _fallback(self, kind: str, current: list[float]) -> dspy.Prediction:
        self.fallbacks.add(kind)
        return dspy.Prediction(rates_percent=list(current), fallback=kind, reasoning=None)

    def plan(self, current: TaxSchedule, *, lm: dspy.BaseLM | None = None,
                rollout_id: int | None = None, persona: str | None = None) -> Proposal:
        """Next year's rates from the recorded years; the rates in force on a fallback."""
        pred = self(cutoffs=current.cutoffs.tolist(), current_rates_percent=to_percent(current.rates),
                    history=self.prompt_history(), best=self.prompt_best(), lm=lm, rollout_id=rollout_id,
                    persona=persona)
        return Proposal(list(pred.rates_percent), pred.fallback)

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
        name = "propose" if self.module_type == "predict" else "propose.predict"
        pred = self.propose if self.module_type == "predict" else self.propose.predict
        if isinstance(state[name].get("signature"), dict):
            state = {**state, name: {**state[name], "signature": _align_saved_fields(state[name]["signature"],
                                                                                     pred.signature)}}
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


def _align_saved_fields(saved: dict[str, Any], signature: type[dspy.Signature]) -> dict[str, Any]:
    """A saved signature state with its fields in ``signature``'s order.

    DSPy restores a predictor's field prefixes and descriptions by position, so a program saved before the
    signature's inputs were reordered (docs/design.md §6.6) would load each description onto another field.
    Saved fields are matched to the signature's by prefix (the field name's, unless an optimizer such as
    COPRO rewrote it); the unmatched ones pair up in their order, as DSPy would pair them.
    """
    fields = list(saved.get("fields") or [])
    names = list(signature.fields)
    if len(fields) != len(names):
        raise ValueError(f"the saved program has {len(fields)} signature fields, {signature.__name__} has "
                         f"{len(names)} ({', '.join(names)}): it was compiled for another signature; compile again")
    current = [f.json_schema_extra.get("prefix") for f in signature.fields.values()]
    by_prefix = {f.get("prefix"): f for f in fields}
    if len(by_prefix) != len(fields):  # duplicate prefixes: nothing to match by
        return saved
    rest = iter([f for f in fields if f.get("prefix") not in current])
    return {**saved, "fields": [by_prefix[p] if p in by_prefix else next(rest) for p in current]}


class FixedPlanner:
    """A planner that always keeps one schedule (baselines such as Saez or US federal under LLM workers)."""

    def __init__(self, schedule: TaxSchedule) -> None:
        self.schedule = schedule
        self.years: list[PlannerYear] = []
        self.fallbacks = FallbackCounter()

    def plan(self, current: TaxSchedule, *, lm: dspy.BaseLM | None = None,
                rollout_id: int | None = None, persona: str | None = None) -> Proposal:
        return Proposal(to_percent(self.schedule.rates))

    def record_year(self, year: PlannerYear) -> None:
        self.years.append(year)

    def reset_memory(self) -> None:
        self.years = []


def validate_rates(value: object, n_brackets: int) -> tuple[list[float], str | None]:
    """``(rates_percent, fallback_kind)`` for a raw answer.

    A list of ``n_brackets`` finite numbers in [0, 100] is accepted; anything else gives a fallback kind:
    ``invalid`` (not a list of numbers or the wrong count), ``non_finite`` or ``out_of_range``.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [], "invalid"
    out: list[float] = []
    out_of_range = False
    for r in value:
        x, kind = validate_number(r, 0.0, 100.0)
        if kind == "out_of_range":  # reported only for a list of the right length
            out_of_range = True
        elif kind is not None:
            return [], kind
        out.append(x)
    if len(out) != n_brackets:
        return [], "invalid"
    if out_of_range:
        return [], "out_of_range"
    return out, None


def limit_moves(proposed: Sequence[float], current: Sequence[float], *, max_move: float | None = None,
                grid: float | None = None) -> tuple[list[float], int]:
    """``(rates_percent, n_limited)``: each rate's move from ``current`` cut to ``max_move`` points, rounded
    to a multiple of ``grid`` points, and the result kept in [0, 100].

    This is the reference's rule (``LLMAgent.parse_tax``: the change is clipped to +-20, rounded to a
    multiple of 10, and the new rate clamped to [0, 100]); e.g. +35 from 50 becomes +20 (70), +14 becomes
    +10. ``n_limited`` counts the rates the move limit or the [0, 100] range changed (rounding onto the
    grid alone is not counted). ``None`` disables each part.
    """
    if len(proposed) != len(current):
        raise ValueError(f"{len(proposed)} proposed rates for {len(current)} current rates")
    out: list[float] = []
    n = 0
    for p, c in zip(proposed, current):
        d = float(p) - float(c)
        cut = False
        if max_move is not None and abs(d) > max_move:
            d, cut = math.copysign(max_move, d), True
        if grid is not None:
            d = float(np.round(d / grid) * grid)
        r = float(c) + d
        if r < 0.0 or r > 100.0:
            r, cut = min(max(r, 0.0), 100.0), True
        out.append(r)
        n += cut
    return out, n


def recent_years(years: Sequence[PlannerYear], n: int) -> list[PlannerYear]:
    """The last ``n`` years, oldest first: the history a planner's prompt shows."""
    return list(years[-n:]) if n > 0 else []


def best_years(years: Sequence[PlannerYear], k: int) -> list[PlannerYear]:
    """The ``k`` years with the highest welfare, best first (ties: the earlier year)."""
    return sorted(years, key=lambda y: -y.welfare)[:k] if k > 0 else []


def prompt_windows(years: Sequence[PlannerYear], history_len: int, best_k: int
                   ) -> tuple[list[PlannerYear], list[PlannerYear]]:
    """``(history, best)`` as a planner's prompt shows them after ``years``: the last ``history_len`` years,
    and the ``best_k`` best years less those already in that history (``programs.agents.window``)."""
    history = recent_years(years, history_len)
    return history, best_beyond(best_years(years, best_k), history, key=lambda y: y.year)


def planner_year(year: int, schedule: TaxSchedule, welfare: float, revenue: float, mean_hours: float,
                 income: np.ndarray) -> PlannerYear:
    """The record of one finished tax year (``income`` shape (n,): the agents' pre-tax incomes)."""
    counts = np.bincount(schedule.bracket_index(income), minlength=schedule.n_brackets)
    return PlannerYear(year=int(year), rates_percent=to_percent(schedule.rates), welfare=round(float(welfare), 4),
                       revenue=round(float(revenue), 2), mean_hours=round(min(max(float(mean_hours), 0.0), 100.0), 2),
                       agents_per_bracket=[int(c) for c in counts])
