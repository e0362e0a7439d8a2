"""Planner decision points to compile on: situations drawn from simulations (``docs/design.md`` §7).

A *situation* is what the planner sees at the start of a tax year ``t >= 1``: the bracket cut-offs, the
rates in force and the years behind it (a window of recent years and the best years by welfare). Each
comes from a short simulation on one population (``Population.sample(agents, seed=s)``): the uncompiled
planner, answered by the offline engine, sets the schedules and the workers respond (rationally by
default), so the histories look like the ones a planner meets in a run. Training and held-out
situations come from disjoint population seeds.

Situations are always drawn with the offline engine, whatever LM is being compiled: they are inputs,
not answers, and this keeps them free, reproducible and identical across LMs, so before/after scores of
different LMs are comparable.

Each situation is a ``dspy.Example`` whose inputs are ``PlannerAgent.forward``'s (``cutoffs``,
``current_rates_percent``, ``history``, ``best``) and whose label ``rates_percent`` (if ``labels``) is
the oracle's schedule for that population: the best schedule known for that economy, which DSPy's
labeled demonstrations show as a worked answer. ``seed`` and ``year`` say where it came from; the metric
looks the population and its normalisers up by ``seed`` (``economy_for``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import dspy

from economy.constants import MIN_WAGE_SKILL, resolve_kappa, resolve_skill_floor
from economy.labor import best_response
from economy.oracle import OracleResult, oracle_schedule
from economy.population import Population
from economy.tax import TaxSchedule, parse_brackets, resolve_cutoffs
from economy.welfare import check_swf
from economy.world import outcome

__all__ = [
    "INPUTS",
    "EconomySpec",
    "Economy",
    "SituationSpec",
    "economy_for",
    "draw_situations",
    "situation_id",
]

#: Input fields of a situation (the planner program's forward arguments).
INPUTS: tuple[str, ...] = ("cutoffs", "history", "best", "current_rates_percent")


@dataclass(frozen=True)
class EconomySpec:
    """The economies situations live in: one population per seed, plus how welfare is judged.

    Attributes
    ----------
    agents : workers per population.
    brackets : a bracket preset (``economy.tax.PRESETS``) or custom cut-offs (``economy.parse_brackets``).
    swf, kappa : social welfare function and labor cost (preset name or number).
    skill_floor : floor on the skill in the ``inverse_skill``/``paper`` welfare weights (number >= 0 or preset
        name; default the full-time federal minimum wage, ``economy.constants.MIN_WAGE_SKILL``; 0 = raw weights).
    stratified : one income draw per quantile stratum (small populations stay representative).
    oracle_trials, oracle_refine : search budget of ``economy.oracle_schedule`` (its defaults when None).
    """

    agents: int = 50
    brackets: str | tuple[float, ...] = "us_federal_2024"
    swf: str = "inverse_skill"
    kappa: float | str = "calibrated"
    skill_floor: float | str = MIN_WAGE_SKILL
    stratified: bool = True
    oracle_trials: int | None = None
    oracle_refine: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.agents, bool) or not isinstance(self.agents, int) or not 1 <= self.agents <= 100_000:
            raise ValueError(f"agents={self.agents!r} must be an integer in [1, 100000]")
        parsed = parse_brackets(self.brackets)
        object.__setattr__(self, "brackets", parsed if isinstance(parsed, str) else tuple(parsed))
        check_swf(self.swf)
        resolve_kappa(self.kappa)
        resolve_skill_floor(self.skill_floor)
        for name in ("oracle_trials", "oracle_refine"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError(f"{name}={v!r} must be an integer >= 0")

    @property
    def cutoffs(self) -> list[float]:
        return [float(c) for c in resolve_cutoffs(self.brackets)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Economy:
    """One population with the two welfare levels that normalise a score.

    Attributes
    ----------
    seed : population seed.
    population : Population (n agents).
    kappa : labor cost used for best responses.
    w_none : welfare with no tax (rational workers).
    oracle : OracleResult -- the best schedule found for this population and its welfare.
    """

    seed: int
    population: Population
    kappa: float
    w_none: float
    oracle: OracleResult
    skill_floor: float = MIN_WAGE_SKILL

    @property
    def w_oracle(self) -> float:
        return float(self.oracle.welfare)

    @property
    def gain(self) -> float:
        """The oracle's welfare gain over no tax (the score's denominator, floored to stay positive)."""
        return max(self.w_oracle - self.w_none, 1e-9 * max(abs(self.w_none), 1.0))

    def oracle_rates_percent(self) -> list[float]:
        return [round(100.0 * float(r), 1) for r in self.oracle.schedule.rates]

    def rational_welfare(self, schedule: TaxSchedule, swf: str) -> float:
        """Welfare of ``schedule`` once every worker best-responds to it."""
        hours = best_response(self.population.skill, schedule, kappa=self.kappa)
        return float(outcome(self.population, schedule, hours, swf, kappa=self.kappa,
                             skill_floor=self.skill_floor).welfare)

    def score(self, welfare: float) -> float:
        """``(W - W_none) / (W_oracle - W_none)`` clipped to [0, 1]."""
        if not math.isfinite(welfare):
            return 0.0
        return float(min(max((welfare - self.w_none) / self.gain, 0.0), 1.0))


_ECONOMIES: dict[tuple, Economy] = {}
_ECON_LOCK = threading.Lock()
_KEY_LOCKS: dict[tuple, threading.Lock] = {}


def economy_for(seed: int, spec: EconomySpec) -> Economy:
    """The economy of population ``seed`` under ``spec`` (built once per process, thread-safe).

    Building one runs the oracle search (about a second at 50-100 agents with the default budget).
    """
    key = (int(seed), spec)
    hit = _ECONOMIES.get(key)
    if hit is not None:
        return hit
    with _ECON_LOCK:
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:  # one oracle search per economy, even when evaluation threads ask at once
        hit = _ECONOMIES.get(key)
        if hit is not None:
            return hit
        pop = Population.sample(spec.agents, seed=int(seed), stratified=spec.stratified)
        kappa = resolve_kappa(spec.kappa)
        none = TaxSchedule.none(spec.cutoffs)
        floor = resolve_skill_floor(spec.skill_floor)
        w_none = float(outcome(pop, none, best_response(pop.skill, none, kappa=kappa), spec.swf, kappa=kappa,
                               skill_floor=floor).welfare)
        kw: dict[str, Any] = {}
        if spec.oracle_trials is not None:
            kw["n_trials"] = spec.oracle_trials
        if spec.oracle_refine is not None:
            kw["n_refine"] = spec.oracle_refine
        orc = oracle_schedule(pop, spec.cutoffs, swf=spec.swf, seed=int(seed), kappa=kappa, skill_floor=floor, **kw)
        econ = Economy(int(seed), pop, kappa, w_none, orc, floor)
        _ECONOMIES[key] = econ
        return econ


@dataclass(frozen=True)
class SituationSpec:
    """How the simulations that yield situations run.

    Attributes
    ----------
    years : decision points per population are the starts of tax years 1 .. years-1 (so years >= 2).
    steps_per_year : worker steps per tax year (matters only with LLM workers).
    workers : "rational" (exact best response) or "llm" (offline-engine workers).
    history_len, best_k : the planner's prompt window (recent years, best years).
    labels : attach the population's oracle schedule as the label ``rates_percent``.
    temperature : offline engine temperature in those simulations.
    """

    years: int = 4
    steps_per_year: int = 1
    workers: str = "rational"
    history_len: int = 5
    best_k: int = 3
    labels: bool = True
    temperature: float = 0.7

    def __post_init__(self) -> None:
        if isinstance(self.years, bool) or not isinstance(self.years, int) or not 2 <= self.years <= 200:
            raise ValueError(f"years={self.years!r} must be an integer in [2, 200] (situations are years 1..years-1)")
        if isinstance(self.steps_per_year, bool) or not isinstance(self.steps_per_year, int) \
                or not 1 <= self.steps_per_year <= 1000:
            raise ValueError(f"steps_per_year={self.steps_per_year!r} must be an integer in [1, 1000]")
        if self.workers not in ("rational", "llm"):
            raise ValueError(f"workers={self.workers!r} must be 'rational' or 'llm'")
        if not 0 <= self.history_len <= 1000 or not 0 <= self.best_k <= 100:
            raise ValueError(f"history_len={self.history_len} must be in [0, 1000] and "
                             f"best_k={self.best_k} in [0, 100]")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature={self.temperature} is outside [0, 2]")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def situation_id(seed: int, year: int) -> str:
    return f"seed{seed}/year{year}"


def draw_situations(seeds: Iterable[int], econ: EconomySpec, spec: SituationSpec) -> list[dspy.Example]:
    """Planner decision points from one short simulation per population seed.

    Returns
    -------
    list of dspy.Example, ``len(seeds) * (spec.years - 1)`` long, ordered by seed then year; inputs
    ``INPUTS``; also ``rates_percent`` (the oracle's, when ``spec.labels``), ``seed``, ``year``, ``situation``.
    """
    from programs.lm.offline import offline_lm
    from programs.agents.tax_planner import PlannerAgent, prompt_windows
    from programs.simulation import Simulation, load_config

    out: list[dspy.Example] = []
    for seed in seeds:
        e = economy_for(seed, econ)
        cfg = load_config(agents=econ.agents, years=spec.years - 1, steps_per_year=spec.steps_per_year,
                          workers=spec.workers, brackets=econ.brackets if isinstance(econ.brackets, str) else list(econ.brackets),
                          swf=econ.swf, kappa=econ.kappa, skill_floor=econ.skill_floor,
                          history_len=spec.history_len, best_k=spec.best_k, seed=int(seed),
                          temperature=spec.temperature, stratified=econ.stratified)
        planner = PlannerAgent(econ.brackets, history_len=spec.history_len, best_k=spec.best_k)
        lm = offline_lm(seed=int(seed), temperature=spec.temperature)
        sim = Simulation(cfg, lms=[lm], planner=planner, population=e.population)
        try:
            sim.run(progress=False)
        finally:
            sim.close()
        years = list(planner.years)
        label = e.oracle_rates_percent()
        for t in range(1, spec.years):
            past = years[:t]
            # The same windows PlannerAgent.prompt_history / prompt_best would show at that point.
            history, best = prompt_windows(past, spec.history_len, spec.best_k)
            fields: dict[str, Any] = dict(cutoffs=econ.cutoffs, current_rates_percent=list(past[-1].rates_percent),
                                          history=history, best=best, seed=int(seed), year=t,
                                          situation=situation_id(int(seed), t))
            if spec.labels:
                fields["rates_percent"] = list(label)
            out.append(dspy.Example(**fields).with_inputs(*INPUTS))
    return out


