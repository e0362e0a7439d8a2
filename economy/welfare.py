"""Social welfare functions, their marginal welfare weights, and the Gini coefficient (``docs/design.md`` §3.5).

Each SWF is a small registered class (``SWF``, ``@register_swf``, the registry ``SWFS``; §8.3) holding its
weights and its aggregation together. The built-in ones (``swf`` names), for utilities ``u_i`` (dollars
per year, quasi-linear):

``inverse_skill`` (default)
    ``W = mean(g_i * u_i)`` with ``g_i ∝ 1/max(v_i, f)`` fixed by each agent's skill ``v_i`` and normalised
    to mean 1. This is Saez's 1/z weighting made exogenous: no schedule can move the weights, so none can
    game them. ``f`` is the skill floor (below). With ``f = 0``, agents with skill 0 (no earning capacity)
    get the largest finite weight, that of the lowest positive skill: 1/0 would make everyone else irrelevant.
``paper``
    The reference implementation's ``W = sum(u_i / max(z_i, 1))`` on *pre-tax income* ``z_i``, with the
    floor applied to ``z`` in income units: ``sum(u_i / max(z_i, 1, f*HOURS_REF))``. Its own definition
    (sum, not mean; weights on chosen income) is kept, because 1/z is the same "1/earning capacity" weight
    measured on the choice, and the floor states the same fact in dollars: nobody counts as earning less
    than a full-time job at the floor wage. It is gameable: the weights depend on the choices the schedule
    induces, so a schedule that drives low earners to zero hours raises their weights. Unfloored (``f = 0``,
    the reference exactly) a zero earner gets weight 1 against ~1/40,000 for a median earner and W
    explodes (~5.7M against ~1,500 for sensible schedules on 100 agents); the default floor caps that gain
    at the weight of a full-time minimum-wage earner, ~2.5 times a median earner's.
``utilitarian``
    ``W = mean(u_i)``.
``rawlsian``
    ``W = min(u_i)``.
``atkinson``
    The equally-distributed-equivalent of money-metric utility clipped at $1:
    ``W = (mean(u_i**(1-eps)))**(1/(1-eps))``, the geometric mean when ``eps = 1``; ``eps = 0`` is utilitarian.

The skill floor ``f`` (``skill_floor``, default :data:`economy.constants.MIN_WAGE_SKILL` = 377, the
full-time federal minimum wage; ``0`` = raw weights) bounds the weights of ``inverse_skill`` and ``paper``,
the two SWFs whose weights grow without bound as earning capacity falls: unfloored, the GB2 fit's lower
tail gives one agent in 1,000 up to 59% of all weight (see :func:`weight_diagnostics`). It does not touch
``rawlsian`` (its weights only pick out the lowest skill, and ``min u`` ignores skill) nor ``atkinson``
(its weights are a function of money-metric utility, clipped at $1 by definition). Every function here,
in ``economy.world``, ``economy.saez`` and ``economy.oracle`` that takes ``swf`` takes ``skill_floor`` with
this default, and all apply it through :func:`welfare_weights` / :func:`social_welfare`.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from economy._blocks import BLOCK, Scratch, dot, map_blocks
from economy.constants import HOURS_REF, MIN_WAGE_SKILL, resolve_skill_floor

__all__ = [
    "SWFS", "SWF", "register_swf", "check_swf", "welfare_weights", "social_welfare", "WeightDiagnostics",
    "weight_diagnostics", "gini", "gini_of_sorted",
]


class SWF:
    """A social welfare function: its marginal weights and its aggregation, together, in one small class.

    Subclass, set ``name`` and define ``weights`` (mean 1); ``welfare`` defaults to the linear aggregate
    ``mean(g_i * u_i)`` those weights imply, so an SWF defined by its weights alone is consistent with
    them (override it for a non-linear one). Register with ``@register_swf``: every caller
    (``welfare_weights``, ``social_welfare``, ``economy.world``, Saez, the oracle, ``eval.swf``, the CLIs'
    ``--swf``) then knows it by name, and an unknown name is an error everywhere (``check_swf``).
    """

    name: ClassVar[str] = ""

    def weights(self, skill: NDArray[np.float64], *, income: ArrayLike | None, utility: ArrayLike | None,
                consumption: ArrayLike | None, floor: float, eps: float) -> NDArray[np.float64]:
        """Marginal welfare weights, shape (n,), mean 1; ``skill`` is validated and non-empty."""
        raise NotImplementedError

    def welfare(self, utility: NDArray[np.float64], *, skill: ArrayLike | None, income: ArrayLike | None,
                floor: float, eps: float) -> float:
        """Social welfare of ``utility`` (validated, non-empty)."""
        if skill is None:
            raise ValueError(f"swf={self.name!r} weights by skill: pass skill (shape (n,))")
        n = utility.size
        g = self.weights(_vector(skill, "skill", n=n, nonneg=True), income=income, utility=utility,
                         consumption=None, floor=floor, eps=eps)
        return dot(g, utility) / n


#: Registered social welfare functions by name (``@register_swf``), in registration order.
SWFS: dict[str, SWF] = {}


def register_swf(cls: type[SWF]) -> type[SWF]:
    """Class decorator: make ``cls`` selectable as ``swf=cls.name`` by every caller."""
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name or name != name.strip().lower():
        raise ValueError(f"{cls.__name__} needs a lower-case class attribute `name`")
    if name in SWFS and type(SWFS[name]) is not cls:
        raise ValueError(f"swf {name!r} is already registered by {type(SWFS[name]).__name__}")
    SWFS[name] = cls()
    return cls


@register_swf
class InverseSkill(SWF):
    """``mean(g_i u_i)``, ``g_i ∝ 1/max(v_i, f)`` (the default; module docstring)."""

    name = "inverse_skill"

    def weights(self, skill, *, income, utility, consumption, floor, eps):
        n = skill.size
        if floor > 0 or skill.min() > 0:  # the usual case, without the masked divide
            g = _inverse_floored(skill, floor, np.empty(n))
        else:
            v = skill
            pos = v > 0
            if not pos.any():
                return np.ones(n)
            g = np.empty(n)
            np.divide(1.0, v, out=g, where=pos)
            g[~pos] = 1.0 / v[pos].min()
        g *= 1.0 / g.mean()
        return g

    def welfare(self, utility, *, skill, income, floor, eps):
        """``mean(g_i u_i) = sum(u_i/s_i) / sum(1/s_i)``, ``s_i = max(v_i, f)``: by blocks, no weights array."""
        if skill is None:
            raise ValueError(f"swf={self.name!r} weights by skill: pass skill (shape (n,))")
        n = utility.size
        v = _vector(skill, "skill", n=n, nonneg=True)
        if not (floor > 0 or v.min() > 0):  # a zero skill and no floor: the rule of `weights`
            return super().welfare(utility, skill=v, income=income, floor=floor, eps=eps)

        terms = map_blocks(lambda blk, scratch: inverse_skill_terms(v[blk], utility[blk], floor, scratch), n)
        return inverse_skill_welfare(terms)


def inverse_skill_terms(skill: NDArray[np.float64], utility: NDArray[np.float64], floor: float,
                        scratch: Scratch) -> tuple[float, float]:
    """One block's ``(sum(1/s_i), sum(u_i/s_i))``, ``s_i = max(v_i, f) > 0``; shapes (k,), k <= ``BLOCK``.

    The ``inverse_skill`` welfare is a ratio of two sums over agents, so it can be summed where the
    utilities are made (``economy.world`` does, in its pass over blocks) instead of in a pass of its own.
    """
    inv = _inverse_floored(skill, floor, scratch("inv", skill.size))
    return float(inv.sum()), dot(inv, utility)


def inverse_skill_welfare(terms: Iterable[tuple[float, float]]) -> float:
    """The ``inverse_skill`` welfare from every block's :func:`inverse_skill_terms`, in block order.

    Added in that one order: the same bits whichever thread computed which block.
    """
    inv_sum = weighted = 0.0
    for a, b in terms:
        inv_sum += a
        weighted += b
    return weighted / inv_sum


def _inverse_floored(skill: NDArray[np.float64], floor: float, out: NDArray[np.float64]) -> NDArray[np.float64]:
    """``out[:] = 1/max(v, f)`` (all ``max(v, f) > 0``): the ``inverse_skill`` weights before normalising."""
    np.maximum(skill, floor, out=out)  # exactly v when the floor is 0
    return np.divide(1.0, out, out=out)


@register_swf
class Paper(SWF):
    """The reference's ``sum(u_i / max(z_i, 1, f*HOURS_REF))`` on pre-tax income (module docstring)."""

    name = "paper"

    def weights(self, skill, *, income, utility, consumption, floor, eps):
        g = 1.0 / np.maximum(self._income(income, skill.size), _paper_income_floor(floor))
        return g / g.mean()

    def welfare(self, utility, *, skill, income, floor, eps):
        z = self._income(income, utility.size)
        return float(np.sum(utility / np.maximum(z, _paper_income_floor(floor))))

    @staticmethod
    def _income(income: ArrayLike | None, n: int) -> NDArray[np.float64]:
        if income is None:
            raise ValueError("swf='paper' weights by pre-tax income: pass income (shape (n,))")
        return _vector(income, "income", n=n)


@register_swf
class Utilitarian(SWF):
    """``mean(u_i)``."""

    name = "utilitarian"

    def weights(self, skill, *, income, utility, consumption, floor, eps):
        return np.ones(skill.size)

    def welfare(self, utility, *, skill, income, floor, eps):
        return float(utility.mean())


@register_swf
class Rawlsian(SWF):
    """``min(u_i)``; its weights sit on the lowest-skill agent(s)."""

    name = "rawlsian"

    def weights(self, skill, *, income, utility, consumption, floor, eps):
        low = skill == skill.min()
        return low / low.mean()

    def welfare(self, utility, *, skill, income, floor, eps):
        return float(utility.min())


@register_swf
class Atkinson(SWF):
    """The equally-distributed-equivalent of money-metric utility clipped at $1 (module docstring)."""

    name = "atkinson"

    def weights(self, skill, *, income, utility, consumption, floor, eps):
        n = skill.size
        for x, label in ((utility, "utility"), (consumption, "consumption"), (income, "income")):
            if x is not None:
                xs = np.maximum(_vector(x, label, n=n), 1.0)
                break
        else:
            raise ValueError("swf='atkinson' weights need utility, consumption or income (shape (n,))")
        # Scale by the minimum first so that large eps cannot underflow every weight to 0.
        g = (xs / xs.min()) ** (-eps)
        return g / g.mean()

    def welfare(self, utility, *, skill, income, floor, eps):
        x = np.maximum(utility, 1.0)
        if eps == 1.0:
            return float(np.exp(np.mean(np.log(x))))
        # Factor out the maximum (eps < 1) or the minimum (eps > 1) so that every (x/s)**(1-eps) <= 1:
        # nothing overflows, and the terms that underflow are negligible beside the largest.
        s = x.max() if eps < 1.0 else x.min()
        return float(s * np.mean((x / s) ** (1.0 - eps)) ** (1.0 / (1.0 - eps)))


def check_swf(name: str) -> str:
    """Return the canonical SWF name (case and surrounding blanks ignored) or raise ``ValueError``."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in SWFS:
        raise ValueError(f"swf={name!r} is not a social welfare function; choose one of {list(SWFS)}")
    return key


def welfare_weights(
    skill: ArrayLike,
    swf: str = "inverse_skill",
    income: ArrayLike | None = None,
    *,
    utility: ArrayLike | None = None,
    consumption: ArrayLike | None = None,
    atkinson_epsilon: float = 1.0,
    skill_floor: float | str = MIN_WAGE_SKILL,
) -> NDArray[np.float64]:
    """Marginal social welfare weights of each agent, normalised to mean 1 (for the Saez formula's G).

    Parameters
    ----------
    skill : array_like, shape (n,)
        Skill ``v >= 0`` of each agent.
    swf : str
        A registered SWF (:data:`SWFS`).
    income : array_like, shape (n,), optional
        Pre-tax income ``z``; required by ``paper``.
    utility, consumption : array_like, shape (n,), optional
        Used by ``atkinson`` only (see below).
    atkinson_epsilon : float
        Inequality aversion of ``atkinson``, ``>= 0``.
    skill_floor : float >= 0 or preset name (``min_wage``, ``none``)
        Floor ``f`` on the skill in ``inverse_skill`` and ``paper`` weights (module docstring); 0 = raw.

    Returns
    -------
    g : ndarray, shape (n,), mean 1
        ``inverse_skill``: ``∝ 1/max(v, f)`` (with ``f = 0``, skill 0 gets the weight of the lowest
        positive skill). ``paper``: ``∝ 1/max(z, 1, f*HOURS_REF)``. ``utilitarian``: all ones.
        ``rawlsian``: all weight, shared equally, on the lowest-skill agent(s), the others 0.
        ``atkinson``: ``∝ x**-eps``, the derivative of the Atkinson index with respect to each agent's
        money-metric ``x`` clipped at $1, with ``x`` the utility if given, else the consumption, else the
        pre-tax income (the Saez formula may only know incomes; with quasi-linear utility and a lump-sum
        rebate these rank agents alike).
    """
    swf_ = SWFS[check_swf(swf)]
    floor = resolve_skill_floor(skill_floor)
    v = _vector(skill, "skill", nonneg=True)
    if v.size == 0:
        raise ValueError("skill is empty: welfare weights need at least one agent")
    return swf_.weights(v, income=income, utility=utility, consumption=consumption, floor=floor,
                        eps=_check_epsilon(atkinson_epsilon))


def social_welfare(
    utility: ArrayLike,
    *,
    skill: ArrayLike | None = None,
    income: ArrayLike | None = None,
    swf: str = "inverse_skill",
    atkinson_epsilon: float = 1.0,
    skill_floor: float | str = MIN_WAGE_SKILL,
) -> float:
    """Social welfare of a vector of utilities.

    Parameters
    ----------
    utility : array_like, shape (n,)
        Each agent's utility ``u = c - kappa*l**delta``.
    skill : array_like, shape (n,)
        Skill ``v``; required by ``inverse_skill`` (and by any SWF aggregated by its weights).
    income : array_like, shape (n,)
        Pre-tax income ``z``; required by ``paper``.
    swf : str
        A registered SWF (:data:`SWFS`; see the module docstring for each definition).
    atkinson_epsilon : float
        Inequality aversion of ``atkinson``, ``>= 0`` (1 = geometric mean).
    skill_floor : float >= 0 or preset name
        Floor on the skill in ``inverse_skill`` and ``paper`` weights, as in :func:`welfare_weights`.

    Returns
    -------
    W : float
    """
    swf_ = SWFS[check_swf(swf)]
    floor = resolve_skill_floor(skill_floor)
    u = _vector(utility, "utility")
    if u.size == 0:
        raise ValueError("utility is empty: social welfare needs at least one agent")
    return swf_.welfare(u, skill=skill, income=income, floor=floor, eps=_check_epsilon(atkinson_epsilon))


@dataclass(frozen=True)
class WeightDiagnostics:
    """How many agents a vector of welfare weights really rests on.

    Attributes
    ----------
    n : number of agents.
    ess : Kish effective sample size ``(sum w)**2 / sum w**2``: ``n`` for equal weights, 1 when one agent
        holds all the weight. Welfare averaged with these weights is as noisy as a plain mean of ``ess`` agents.
    ess_share : ``ess / n``, in (0, 1].
    top_share : share of the total weight held by the single largest weight.
    bottom_1pct_share : share of the total weight held by the bottom 1% of agents (``ceil(n/100)``, at
        least one): the lowest-skill ones when skills are given, else those with the largest weights (the
        same agents for ``inverse_skill`` weights, which fall with skill).
    """

    n: int
    ess: float
    ess_share: float
    top_share: float
    bottom_1pct_share: float


def weight_diagnostics(weights: ArrayLike, skill: ArrayLike | None = None) -> WeightDiagnostics:
    """Effective sample size and concentration of welfare weights (any scale; >= 0, not all 0).

    Report these beside any weighted welfare: a welfare figure carried by a handful of agents measures
    those agents, not the population.
    """
    w = _vector(weights, "weights", nonneg=True)
    n = w.size
    if n == 0:
        raise ValueError("weights is empty: diagnostics need at least one agent")
    total = float(w.sum())
    if not total > 0:
        raise ValueError("weights are all 0: nobody carries any welfare weight")
    m = -(-n // 100)  # ceil(n / 100)
    if skill is None:
        bottom = float(np.partition(w, n - m)[n - m:].sum())
    else:
        v = _vector(skill, "skill", n=n, nonneg=True)
        bottom = float(w[np.argpartition(v, m - 1)[:m]].sum())
    ess = total * total / float(np.dot(w, w))
    return WeightDiagnostics(n=n, ess=ess, ess_share=ess / n, top_share=float(w.max()) / total, bottom_1pct_share=bottom / total)


def gini(x: ArrayLike) -> float:
    """Gini coefficient of non-negative values, in [0, 1] (0 = all equal; ``(n-1)/n`` = one holds all).

    Sorted formula, O(n log n): ``G = 2*sum(i*x_(i)) / (n*sum(x)) - (n+1)/n`` with ``x_(1) <= ... <= x_(n)``.
    All-zero input gives 0.
    """
    return gini_of_sorted(np.sort(_vector(x, "x", nonneg=True)))


def gini_of_sorted(xs: NDArray[np.float64]) -> float:
    """:func:`gini` of values already sorted ascending (shape (n,), non-negative; not re-checked)."""
    n = xs.size
    if n == 0:
        raise ValueError("x is empty: the Gini coefficient needs at least one value")
    total = xs.sum()
    if total == 0:
        return 0.0
    # sum(i * x_(i)) block by block: no n-element array of ranks (an 8 MB temporary at a million values)
    ranks = np.arange(1, min(n, BLOCK) + 1, dtype=np.float64)

    def partial(blk: slice, scratch: Scratch) -> float:
        k = blk.stop - blk.start
        return dot(np.add(ranks[:k], blk.start, out=scratch("gini.ranks", k)), xs[blk])

    weighted = 0.0
    for part in map_blocks(partial, n):  # summed in block order: the same bits on any number of threads
        weighted += part
    g = 2.0 * weighted / (n * total) - (n + 1.0) / n
    return float(min(max(g, 0.0), 1.0))  # clip rounding residue


def _vector(x: ArrayLike, name: str, n: int | None = None, nonneg: bool = False) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per agent), got shape {a.shape}")
    if n is not None and a.size != n:
        raise ValueError(f"{name} has {a.size} entries but there are {n} agents")
    if a.size and (a.min() >= 0 if nonneg else a.min() > -np.inf) and a.max() < np.inf:
        return a  # two reductions instead of three passes and a mask; NaN fails both comparisons
    ok = np.isfinite(a) & (a >= 0) if nonneg else np.isfinite(a)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        rng = "[0, inf)" if nonneg else "(-inf, inf)"
        raise ValueError(f"{name}[{i}]={a[i]:g} is outside {rng} (finite{', non-negative' if nonneg else ''})")
    return a


def _paper_income_floor(skill_floor: float) -> float:
    """The ``paper`` SWF's floor on pre-tax income: $1 (the reference's), or the floor skill's full-time income."""
    return max(1.0, skill_floor * HOURS_REF)


def _check_epsilon(eps: float) -> float:
    e = float(eps)
    if not (np.isfinite(e) and e >= 0):
        raise ValueError(f"atkinson_epsilon={eps!r} is outside [0, inf)")
    return e
