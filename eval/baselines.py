"""The non-LLM planners of the comparison, each evaluated under rational best responses.

Every planner returns a :class:`economy.TaxSchedule`; :func:`evaluate` turns a schedule into an
:class:`economy.world.Outcome` with the exact rational labor choice of every agent, so all rows of the
comparison are measured with the same worker model on the same population.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

from economy import TaxSchedule
from economy.constants import MAX_HOURS, MIN_WAGE_SKILL
from economy.labor import best_response
from economy.oracle import oracle_schedule
from economy.saez import saez_schedule
from economy.saez_v1 import saez_v1_schedule
from economy.tax import PRESETS
from economy.world import Outcome, outcome

#: Bracket presets whose cut-offs are the US federal ones (their statutory rates are the same 10–37%).
US_PRESETS: tuple[str, ...] = tuple(sorted(k for k in PRESETS if k.startswith("us_federal_")))
#: The statutory schedule the ``us_federal`` planner applies.
US_REFERENCE = "us_federal_2024"


def evaluate(population, schedule: TaxSchedule, swf: str, kappa: float, *,
             skill_floor: float = MIN_WAGE_SKILL, hours_grid: float | None = None) -> Outcome:
    """One world step with every agent at its exact rational best response to ``schedule``.

    Parameters
    ----------
    population : economy.Population
        The agents (``.skill`` shape (n,)).
    schedule : TaxSchedule
        The schedule to evaluate.
    swf : str
        Social welfare function name (see ``economy.welfare.SWFS``).
    kappa : float
        Labor cost of the quasi-linear utility.
    skill_floor : float
        Floor on the skill in the welfare weights (``economy.welfare``; 0 = the reference's raw weights).
    hours_grid : float, optional
        If given, agents best-respond on hours {0, g, 2g, ..., 100} (the reference's 10-hour grid).
    """
    grid = None if hours_grid is None else np.arange(0.0, MAX_HOURS + 1e-9, hours_grid)
    hours = best_response(population.skill, schedule, kappa=kappa, grid=grid)
    return outcome(population, schedule, hours, swf, kappa=kappa, skill_floor=skill_floor)


def welfare_of(population, schedule: TaxSchedule, swf: str, kappa: float, *,
               skill_floor: float = MIN_WAGE_SKILL, hours_grid: float | None = None) -> float:
    """Social welfare of ``schedule`` under rational best responses."""
    return float(evaluate(population, schedule, swf, kappa, skill_floor=skill_floor, hours_grid=hours_grid).welfare)


def none_schedule(cutoffs: np.ndarray) -> TaxSchedule:
    """No tax: zero rates on the chosen brackets."""
    return TaxSchedule.none(cutoffs)


def flat_schedule(population, cutoffs: np.ndarray, swf: str, kappa: float, grid: int = 41, *,
                  skill_floor: float = MIN_WAGE_SKILL, hours_grid: float | None = None) -> TaxSchedule:
    """The best single rate on every bracket, found numerically.

    A coarse grid over [0, 1] first (welfare in the flat rate need not be unimodal, e.g. under the
    gameable ``paper`` SWF), then Brent's bounded search within one grid step of the best point.
    """
    base = TaxSchedule.none(cutoffs)

    def w(rate: float) -> float:
        return welfare_of(population, base.with_rates(np.full(base.n_brackets, rate)), swf, kappa,
                          skill_floor=skill_floor, hours_grid=hours_grid)

    rates = np.linspace(0.0, 1.0, grid)
    values = np.array([w(r) for r in rates])  # a loop over candidate rates, not over agents
    best = int(np.argmax(values))
    step = 1.0 / (grid - 1)
    lo, hi = max(0.0, rates[best] - step), min(1.0, rates[best] + step)
    res = minimize_scalar(lambda r: -w(r), bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    rate = float(res.x) if -float(res.fun) > values[best] else float(rates[best])
    return base.with_rates(np.full(base.n_brackets, rate))


def us_federal_schedule(brackets: str | None, cutoffs: np.ndarray) -> tuple[TaxSchedule, str]:
    """The US federal 2024 statutory rates, on the chosen brackets when that makes sense.

    Returns the schedule and a note for the report (empty when the rates sit on the chosen brackets).

    - ``brackets`` is a US preset: that year's cut-offs with the 10/12/22/24/32/35/37% rates.
    - any other structure with 7 brackets: the 2024 rates on the chosen cut-offs.
    - otherwise: the 2024 schedule on its own brackets (the rates cannot be mapped one to one).
    """
    rates = np.asarray(PRESETS[US_REFERENCE][1])
    if brackets in US_PRESETS:
        return TaxSchedule.preset(brackets), ""
    if cutoffs.size == rates.size:
        return TaxSchedule(cutoffs, rates), (
            f"us_federal applies the {US_REFERENCE} statutory rates to the chosen 7 brackets' cut-offs."
        )
    return TaxSchedule.preset(US_REFERENCE), (
        f"us_federal runs on its own brackets ({US_REFERENCE}: 7 brackets, 10–37%), because the chosen "
        f"structure has {cutoffs.size} bracket(s) and the statutory rates cannot be mapped onto it."
    )


def saez_baseline(population, cutoffs: np.ndarray, swf: str, kappa: float, *,
                  skill_floor: float = MIN_WAGE_SKILL) -> TaxSchedule:
    """The Saez (2001) schedule with weights from ``swf``, iterated to a fixed point with rational incomes."""
    return saez_schedule(population, cutoffs, swf=swf, kappa=kappa, skill_floor=skill_floor)


def saez_v1_baseline(population, cutoffs: np.ndarray, variant: str = "saez") -> TaxSchedule:
    """The earlier implementation's "Saez" schedule, quirks included (``economy.saez_v1``): a fixed schedule
    from skills at 40 h, e = 3.0 for every bracket in the default variant, no welfare function, no fixed point."""
    return saez_v1_schedule(population, cutoffs, variant)


def oracle_baseline(
    population,
    cutoffs: np.ndarray,
    swf: str,
    kappa: float,
    *,
    seed: int,
    n_trials: int | None,
    n_refine: int | None = None,
    candidates: Sequence[TaxSchedule] = (),
    skill_floor: float = MIN_WAGE_SKILL,
    hours_grid: float | None = None,
) -> tuple[TaxSchedule, int]:
    """The welfare-maximising rates on the chosen brackets under rational best responses.

    The numerical search (``economy.oracle_schedule``: Optuna trials, then ``n_refine`` evaluations of local
    refinement; ``None`` keeps its defaults) also starts from the best of ``candidates`` on the same
    brackets (e.g. flat), and the result is never worse than any of them: the oracle is a
    ceiling over the rational baselines by construction, whatever its trial budget.

    ``skill_floor`` goes to the search and the scoring; ``hours_grid`` (workers on an hours grid) only to the
    scoring of the result and the candidates: the search itself assumes continuous hours, so on a grid the
    oracle is a ceiling over the candidates but not an exact optimum.

    Returns the schedule and the number of welfare evaluations the search used.
    """
    def w_of(s: TaxSchedule) -> float:
        return welfare_of(population, s, swf, kappa, skill_floor=skill_floor, hours_grid=hours_grid)

    same = [c for c in candidates if np.array_equal(c.cutoffs, cutoffs)]
    scored = [(w_of(c), c) for c in same]
    init = max(scored, key=lambda t: t[0])[1] if scored else None
    kw = {}
    if n_trials is not None:
        kw["n_trials"] = n_trials
    if n_refine is not None:
        kw["n_refine"] = n_refine
    res = oracle_schedule(population, cutoffs, swf=swf, seed=seed, kappa=kappa, skill_floor=skill_floor,
                          init=None if init is None else init.rates, **kw)
    cap = init.top_income_cap if init is not None else None
    found = res.schedule.with_top_income_cap(cap) if cap is not None else res.schedule
    best, best_w = found, w_of(found)
    for w, c in scored:
        if w > best_w:
            best, best_w = c, w
    return best, int(res.n_evaluations)
