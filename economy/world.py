"""The world step: hours and a schedule in, incomes, taxes, rebate, utilities and welfare out (``docs/design.md`` §3.5).

One pure function of arrays, :func:`outcome`. Budget balance: all revenue is returned as an equal
lump-sum rebate ``R = sum(T)/N``, so ``sum(c) = sum(z)``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from economy._blocks import Scratch, blocks, map_blocks, run
from economy._blocks import workers as blocks_workers
from economy.constants import DELTA, KAPPA, MAX_HOURS, MIN_WAGE_SKILL, resolve_kappa, resolve_skill_floor
from economy.labor import _check_delta, _check_skill
from economy.population import UTILITY_TYPES  # whose welfare each agent's objective counts
from economy.tax import TaxSchedule
from economy.welfare import _check_epsilon, check_swf, gini, gini_of_sorted, inverse_skill_terms, inverse_skill_welfare, social_welfare

__all__ = ["UTILITY_TYPES", "Outcome", "outcome"]


_SCALARS = ("rebate", "welfare", "revenue", "mean_hours", "productivity", "gini", "equality_x_productivity")


@dataclass(frozen=True, eq=False)
class Outcome:
    """Everything one world step produces. Arrays have shape (n,) and are read-only.

    ``hours`` (unless the step was given a private float64 copy), ``income``, ``tax``, ``consumption``
    and ``utility`` are rows of one (5, n) allocation: at a million agents one 40 MB block costs far fewer
    page faults than five 8 MB arrays (``docs/design.md`` §3.8). Any one of them keeps the block alive;
    ``np.array(outcome.income)`` keeps a row alone.

    Attributes
    ----------
    hours, income, tax, consumption, utility : ndarray, shape (n,)
        Weekly hours ``l``, pre-tax income ``z = v*l``, tax ``T(z)``, consumption ``c = z - T + R``,
        utility ``u = c - kappa*l**delta``.
    rebate : float
        Lump-sum rebate per agent, ``R = revenue / n``.
    welfare : float
        Social welfare under ``swf``.
    revenue : float
        Total tax, ``sum(T)``.
    mean_hours : float
    productivity : float
        Total pre-tax income, ``sum(z)``.
    gini : float
        Gini coefficient of consumption.
    equality_x_productivity : float
        ``(1 - gini) * productivity`` (the AI Economist's headline metric).
    objective : ndarray, shape (n,)
        What each agent maximises: its own ``u`` (egotistical), ``welfare`` (altruistic) or
        ``-welfare`` (adversarial).
    swf : str
        The social welfare function used.
    skill_floor : float
        The floor on the skill in its welfare weights (``economy.welfare``; 0 = raw weights).
    """

    hours: NDArray[np.float64]
    income: NDArray[np.float64]
    tax: NDArray[np.float64]
    consumption: NDArray[np.float64]
    utility: NDArray[np.float64]
    rebate: float
    welfare: float
    revenue: float
    mean_hours: float
    productivity: float
    gini: float
    equality_x_productivity: float
    objective: NDArray[np.float64]
    swf: str = field(default="inverse_skill")
    skill_floor: float = field(default=MIN_WAGE_SKILL)

    @property
    def n(self) -> int:
        return int(self.hours.size)

    def metrics(self) -> dict[str, float]:
        """The scalar results as a plain dict (JSON-ready)."""
        return {name: float(getattr(self, name)) for name in _SCALARS}

    def income_share_by_bracket(self, schedule: TaxSchedule) -> NDArray[np.float64]:
        """Share of agents whose pre-tax income falls in each bracket of ``schedule``, shape (k,), sums to 1.

        An income exactly on a cut-off counts in the bracket above (as ``TaxSchedule.bracket_index``).
        """
        counts = np.bincount(schedule.bracket_index(self.income), minlength=schedule.n_brackets)
        return counts / max(self.n, 1)


def outcome(
    population: Any,
    schedule: TaxSchedule,
    hours: ArrayLike,
    swf: str = "inverse_skill",
    *,
    kappa: float | str = KAPPA,
    delta: float = DELTA,
    max_hours: float = MAX_HOURS,
    atkinson_epsilon: float = 1.0,
    skill_floor: float | str = MIN_WAGE_SKILL,
) -> Outcome:
    """Evaluate one world step.

    Parameters
    ----------
    population : Population or array_like, shape (n,)
        Anything with a ``.skill`` array (and optionally ``.utility_type``), or the skill array itself
        (then every agent is egotistical).
    schedule : TaxSchedule
    hours : array_like, shape (n,)
        Weekly hours of each agent, within ``[0, max_hours]``.
    swf : str
        Social welfare function, one of ``economy.welfare.SWFS``.
    kappa, delta : labor cost and curvature of ``u = c - kappa*l**delta`` (kappa may be a preset name).
    max_hours : float
        Upper bound that ``hours`` must respect.
    atkinson_epsilon : float
        Inequality aversion when ``swf="atkinson"``.
    skill_floor : float >= 0 or preset name
        Floor on the skill in the ``inverse_skill`` and ``paper`` welfare weights (``economy.welfare``).

    Returns
    -------
    Outcome
    """
    name = check_swf(swf)
    if not isinstance(schedule, TaxSchedule):
        raise ValueError(f"schedule must be a TaxSchedule, got {type(schedule).__name__}")
    skill_arr = getattr(population, "skill", population)
    v = _check_skill(skill_arr)
    n = v.size
    if n == 0:
        raise ValueError("the population is empty: a world step needs at least one agent")
    kappa_f = resolve_kappa(kappa)
    delta_f = _check_delta(delta)
    m = float(max_hours)
    given = _hours_array(hours, n)
    # A private copy of the hours (the Outcome freezes it; the caller's array must stay writable), unless
    # the conversion to float64 already made one. Copied, checked, multiplied and taxed block by block.
    own = given is not hours and given.base is None
    rows = np.empty((4 if own else 5, n))  # one allocation for the outputs (the class docstring says why)
    z, t, c, u = rows[:4]
    l = given if own else rows[4]
    workers = blocks_workers(n)

    def incomes_and_taxes(blk: slice, scratch: Scratch) -> bool:  # z = v*l, T(z); False: hours out of range
        lb = l[blk]
        if l is not given:
            np.copyto(lb, given[blk])
        if not (lb.min() >= 0 and lb.max() <= m):  # two reductions; NaN fails both comparisons
            return False
        schedule._tax_block(np.multiply(v[blk], lb, out=z[blk]), t[blk], scratch)
        return True

    if not all(map_blocks(incomes_and_taxes, n, threads=workers)):
        raise _hours_error(given, m)
    floor = resolve_skill_floor(skill_floor)
    _check_epsilon(atkinson_epsilon)  # checked for every SWF, as social_welfare does

    revenue = float(t.sum())  # one pass over the whole array, as before the blocks: the same bits
    rebate = revenue / n

    def consumption(blk: slice, scratch: Scratch) -> None:  # c = z - T + R
        np.add(np.subtract(z[blk], t[blk], out=c[blk]), rebate, out=c[blk])

    # The inverse_skill welfare (the default) is summed by blocks as the utilities are made; it needs every
    # weight finite (a floor, or no zero skill) and every utility finite (else social_welfare names the bad one).
    summed = name == "inverse_skill" and (floor > 0 or v.min() > 0)

    def utility(blk: slice, scratch: Scratch) -> tuple[float, float] | None:  # u = c - kappa*l**delta
        cost = np.power(l[blk], delta_f, out=scratch("cost", blk.stop - blk.start))
        cost *= kappa_f
        ub = np.subtract(c[blk], cost, out=u[blk])
        if summed and ub.min() > -np.inf and ub.max() < np.inf:  # NaN fails both comparisons
            return inverse_skill_terms(v[blk], ub, floor, scratch)
        return None

    map_blocks(consumption, n, threads=workers)
    # The sort of consumption (the Gini) is the step's longest single task: it goes first, on one thread,
    # while the others make the utilities block by block (cache-sized blocks, economy._blocks).
    tasks: list[Callable[[Scratch], Any]] = [lambda scratch: _sorted_consumption(c, skill_arr),
                                             lambda scratch: float(z.sum()), lambda scratch: float(l.mean())]
    tasks += [lambda scratch, blk=blk: utility(blk, scratch) for blk in blocks(n)]
    xs, productivity, mean_hours, *terms = run(tasks, workers=workers, size=n)
    if summed and all(part is not None for part in terms):
        w = inverse_skill_welfare(terms)
    else:
        w = social_welfare(u, skill=v, income=z, swf=name, atkinson_epsilon=atkinson_epsilon, skill_floor=floor)
    g = _gini_of_sorted_consumption(xs, c)
    objective = _objective(getattr(population, "utility_type", None), u, w, n)
    for arr in (l, z, t, c, u, objective):
        arr.setflags(write=False)
    return Outcome(
        hours=l,
        income=z,
        tax=t,
        consumption=c,
        utility=u,
        rebate=rebate,
        welfare=w,
        revenue=revenue,
        mean_hours=mean_hours,
        productivity=productivity,
        gini=g,
        equality_x_productivity=(1.0 - g) * productivity,
        objective=objective,
        swf=name,
        skill_floor=floor,
    )


def _hours_array(hours: ArrayLike, n: int) -> NDArray[np.float64]:
    """``hours`` as a float64 array of shape (n,), without a copy when it already is one (values not checked)."""
    l = np.asarray(hours, dtype=np.float64)
    if l.ndim == 0:
        l = l.reshape(1)
    if l.ndim != 1 or l.size != n:
        raise ValueError(f"hours has shape {l.shape} but the population has {n} agents (shape ({n},) expected)")
    return l


def _hours_error(l: NDArray[np.float64], max_hours: float) -> ValueError:
    """The error for hours (shape (n,)) with an entry outside ``[0, max_hours]`` (or NaN), naming the first."""
    i = int(np.flatnonzero(~((l >= 0) & (l <= max_hours)))[0])  # False for NaN
    return ValueError(f"hours[{i}]={l[i]:g} is outside [0, {max_hours:g}]")


# Results derived from a read-only per-agent array, kept for the last such array of each kind. A
# Population's arrays are read-only and live as long as it does, and an oracle or a simulation evaluates
# the same population again and again: comparing a million type strings costs ~20 ms per type and
# sorting a million skills ~60 ms, which would otherwise dominate every step.
_cache: dict[str, tuple[weakref.ref, Any]] = {}


def _derived(kind: str, arr: Any, compute: Callable[[NDArray[Any]], Any]) -> Any:
    a = np.asarray(arr)
    hit = _cache.get(kind)
    if hit is not None and hit[0]() is a:
        return hit[1]
    value = compute(a)
    if a is arr and _immutable(a):  # only arrays that nobody can change behind our back
        try:
            _cache[kind] = (weakref.ref(a), value)
        except TypeError:  # not weak-referenceable: don't cache
            pass
    return value


def _immutable(a: NDArray[Any]) -> bool:
    """True if neither ``a`` nor any array it views is writable."""
    x: Any = a
    while isinstance(x, np.ndarray):
        if x.flags.writeable:
            return False
        x = x.base
    return x is None or isinstance(x, bytes)


def _type_masks(types: NDArray[Any]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Boolean masks (egotistical, altruistic) of a utility-type array; the rest are adversarial."""
    ego = types == "egotistical"
    if ego.all():
        return ego, np.zeros(types.size, dtype=bool)
    alt = types == "altruistic"
    bad = np.flatnonzero(~(ego | alt | (types == "adversarial")))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"utility_type[{i}]={str(types[i])!r} is not one of {list(UTILITY_TYPES)}")
    return ego, alt


def _sorted_consumption(c: NDArray[np.float64], skill: Any) -> NDArray[np.float64]:
    """Consumption sorted ascending (a new array), by the (cached) skill order first when the skill array is immutable.

    Rational incomes are non-decreasing in skill (single crossing) and consumption in income (rates
    <= 1), so in skill order consumption is usually already sorted (an O(n) check) or nearly sorted
    (a stable sort, i.e. timsort, is then fast on its runs). Either way the values are exactly ``np.sort(c)``'s.
    """
    if isinstance(skill, np.ndarray) and _immutable(skill):
        xs = c[_derived("skill_order", skill, lambda a: np.argsort(a, kind="stable"))]
        if not bool(np.all(xs[1:] >= xs[:-1])):
            xs.sort(kind="stable")
        return xs
    return np.sort(c)


def _gini_of_sorted_consumption(xs: NDArray[np.float64], c: NDArray[np.float64]) -> float:
    """Gini of consumption ``c`` from its sorted copy ``xs`` (changed in place); exactly ``gini(c)``."""
    if not np.isfinite(xs[-1]):  # NaN sorts last
        return gini(np.maximum(c, 0.0))  # raises, naming the non-finite entry (not a rounding residue below 0)
    if xs[0] < 0:  # c = z - T + R >= 0 in exact arithmetic; drop rounding residue (keeps the order)
        np.maximum(xs, 0.0, out=xs)
    return gini_of_sorted(xs)


def _objective(types: Any, u: NDArray[np.float64], welfare: float, n: int) -> NDArray[np.float64]:
    # Everyone egotistical: the objective is the utility array itself (both are read-only in the Outcome).
    if types is None:
        return u
    t = np.asarray(types)
    if t.shape != (n,):
        raise ValueError(f"utility_type has shape {t.shape} but the population has {n} agents")
    ego, alt = _derived("type_masks", types, _type_masks)
    if ego.all():
        return u
    return np.where(ego, u, np.where(alt, welfare, -welfare))
