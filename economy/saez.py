"""The Saez (2001) optimal-tax baseline, made consistent with our economy (``docs/design.md`` §3.6).

For a non-linear schedule the optimal marginal rate at income ``z`` is

    tau(z) = (1 - G(z)) / (1 - G(z) + a(z) * e),     a(z) = z * h(z) / (1 - H(z)),

with ``h``/``H`` the density/CDF of incomes, ``e`` the labor-supply elasticity and ``G(z)`` the average
(mean-1 normalised) social welfare weight of the agents earning more than ``z``, taken from the *same*
SWF the welfare is measured with. The rates are estimated on the incomes the population actually
earns; since incomes respond to the schedule, :func:`saez_schedule` iterates schedule -> rational
incomes -> schedule to a fixed point.

Differences from the reference implementation, on purpose: incomes are used in dollars (no x2.5
scaling), the elasticity is the model's own ``1/(delta-1) = 0.4`` (not 3.0), and the top bracket's
``a`` never falls back to 10 when no sample lies above the top cut-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from economy.constants import DELTA, GB2_SIGMA, GB2_TAU, KAPPA, MIN_WAGE_SKILL, resolve_kappa, resolve_skill_floor
from economy.tax import CutoffsLike, TaxSchedule, _as_vector, resolve_cutoffs

#: Pareto tail index of the GB2 income fit (``sigma * tau`` ≈ 2.36): the top bracket's ``a`` when no
#: income lies above the top cut-off, so there is nothing to estimate ``m/(m - b_top)`` from.
PARETO_TAIL_A: float = GB2_SIGMA * GB2_TAU

#: Smallest damped step of the fixed-point iteration.
MIN_STEP: float = 1.0 / 64

#: Default number of equal-width fine bins on [0, b_top) (about $600 wide on the 2024 brackets).
N_BINS: int = 1000


def saez_rates(
    incomes: ArrayLike,
    weights: ArrayLike,
    cutoffs: CutoffsLike,
    elasticity: float,
    *,
    n_bins: int = N_BINS,
) -> NDArray[np.float64]:
    """Saez bracket rates for the given incomes and welfare weights.

    Parameters
    ----------
    incomes : array_like, shape (n,)
        Pre-tax annual incomes (negative values are treated as 0).
    weights : array_like, shape (n,)
        Social welfare weights, >= 0; normalised here to mean 1.
    cutoffs : preset name, sequence of float (k,) or TaxSchedule
        Bracket lower bounds.
    elasticity : float
        Elasticity of income with respect to the net-of-tax rate, > 0.
    n_bins : int
        Number of equal-width fine bins on ``[0, b_top)``.

    Returns
    -------
    rates : ndarray, shape (k,)
        Marginal rate of each bracket as a fraction in [0, 1].

    Notes
    -----
    Below the top cut-off ``b_top``: fine equal-width bins; at each bin's midpoint ``1 - H`` is the share
    above the bin plus half the bin's share, ``h`` the bin's share over its width and ``G`` the mean
    weight of the same agents (those above, and half of the bin). Empty bins get their density from ``H``
    interpolated linearly between the occupied bins' midpoints (mass-preserving, see the code). Each bracket's rate is the width-weighted mean of the fine rates it
    overlaps. The top bracket uses ``a = m / (m - b_top)``, ``m`` the mean income above ``b_top``.
    """
    z = _as_vector(incomes, "incomes")
    g = _as_vector(weights, "weights")
    if z.size == 0:
        raise ValueError("incomes is empty; Saez rates need at least one income")
    if g.shape != z.shape:
        raise ValueError(f"weights has shape {g.shape} but incomes has shape {z.shape}; give one weight per income")
    if not np.all(np.isfinite(z)):
        raise ValueError("incomes must be finite numbers")
    if not np.all(np.isfinite(g)) or np.any(g < 0):
        raise ValueError("weights must be finite and >= 0")
    g_mean = float(g.mean())
    if not g_mean > 0:
        raise ValueError("weights must not all be 0 (they are normalised to mean 1)")
    e = _check_elasticity(elasticity)
    c = resolve_cutoffs(cutoffs)

    z = np.maximum(z, 0.0)
    g = g / g_mean
    n = z.size
    b_top = float(c[-1])
    k = c.size

    rates = np.empty(k)
    above = z > b_top
    n_above = int(np.count_nonzero(above))
    g_fine_top: float | None = None  # G at the top of the fine grid, the tail's G when nobody is above b_top

    if k > 1:
        nb = int(n_bins)
        if nb < 1:
            raise ValueError(f"n_bins={n_bins} must be >= 1")
        width = b_top / nb
        # Bin index of every income; incomes above b_top go to the extra slot nb (agents exactly at b_top,
        # e.g. bunching at the kink, belong to the last fine bin: they do not pay the top rate at the margin).
        idx = np.minimum((z * (1.0 / width)).astype(np.intp), nb - 1)
        idx[above] = nb
        counts = np.bincount(idx, minlength=nb + 1).astype(np.float64)
        wsums = np.bincount(idx, weights=g, minlength=nb + 1)
        # Agents / weight strictly above each bin (suffix sums), then half of the bin itself.
        cnt_above = np.cumsum(counts[::-1])[::-1][1:]  # cnt_above[i] = sum(counts[i+1:]) for i < nb
        w_above = np.cumsum(wsums[::-1])[::-1][1:]
        cnt_bin, w_bin = counts[:nb], wsums[:nb]
        surv = cnt_above + 0.5 * cnt_bin  # n * (1 - H(mid)), exact at every midpoint
        mid = (np.arange(nb) + 0.5) * width
        edges = np.arange(nb + 1) * width
        # Density with empty bins interpolated, mass-preserving: H is known exactly at 0, at b_top and at
        # the midpoint of every occupied bin; interpolate it linearly in between and take h in each bin as
        # the rise of that H over the bin. A run of empty bins between two agents then gets the local
        # spacing density 1/(n * gap) instead of zero (which would make the rate 1) or the density of its
        # occupied neighbours (which, on a sparse tail, overstates h by the share of empty bins and drags
        # the rates towards 0). Where every bin is occupied this is the histogram smoothed by (1/4, 1/2, 1/4).
        occupied = cnt_bin > 0
        n_zero = float(np.count_nonzero(z == 0))  # H(0) is the share earning exactly nothing
        knots_x = np.concatenate(([0.0], mid[occupied]))
        knots_h = np.concatenate(([0.0], n - surv[occupied]))  # n * H at the knots
        knots_h[0] = min(n_zero, knots_h[1]) if knots_h.size > 1 else n_zero
        if n_above:
            knots_x = np.append(knots_x, b_top)
            knots_h = np.append(knots_h, n - n_above)  # exact: everybody not above b_top is below it
        n_h = np.interp(edges, knots_x, knots_h)
        dens = np.diff(n_h) / width  # n * h in each bin
        surv_i = n - np.interp(mid, knots_x, knots_h)  # n * (1 - H(mid)); equals surv at occupied bins
        with np.errstate(divide="ignore", invalid="ignore"):
            a_fine = mid * dens / surv_i
            g_fine = (w_above + 0.5 * w_bin) / surv
        a_fine = _interpolate_missing(mid, a_fine, (surv_i > 0) & (dens > 0), fallback=PARETO_TAIL_A)
        if not n_above:
            # Nobody above b_top: beyond the highest income there is no density to estimate; assume the
            # GB2 fit's Pareto tail (a = sigma*tau ≈ 2.36) there, as for the top bracket below.
            a_fine[mid >= knots_x[-1]] = PARETO_TAIL_A
        # G is defined wherever somebody earns more than the midpoint; above the highest income it is not.
        g_fine = _interpolate_missing(mid, g_fine, surv > 0, fallback=1.0)
        g_fine_top = float(g_fine[-1])
        tau_fine = _saez_formula(g_fine, a_fine, e)
        # Width-weighted mean of the fine rates over each bracket [c_j, c_{j+1}): overlap of every bin with it.
        lo = np.arange(nb) * width
        hi = lo + width
        overlap = np.clip(np.minimum(hi[None, :], c[1:, None]) - np.maximum(lo[None, :], c[:-1, None]), 0.0, None)
        rates[:-1] = (overlap @ tau_fine) / np.diff(c)

    # Top bracket: a = m / (m - b_top), the local Pareto coefficient (alpha for a Pareto tail).
    if n_above:
        excess = z[above] - b_top
        m = float(z[above].mean())
        a_top = m / (m - b_top)
        # G of the top bracket: the weights averaged with each agent's income above b_top, which is the
        # exact first-order condition of a rate levied on z - b_top. It is the plain average above b_top
        # whenever the weights are flat in the tail (Saez's assumption), and with b_top = 0 (one flat
        # bracket) it gives the optimal linear tax (1 - g)/(1 - g + e) instead of a degenerate 0.
        g_top = float(np.dot(g[above], excess) / excess.sum())
    else:
        # Nobody above b_top: use the GB2 fit's Pareto tail index sigma*tau ≈ 2.36 (the reference fell back to
        # a = 10, which made the top rate nearly 0), and the mean weight of the highest earners we have.
        a_top = PARETO_TAIL_A
        g_top = g_fine_top if g_fine_top is not None else 1.0
    rates[-1] = _saez_formula(np.array([g_top]), np.array([a_top]), e)[0]
    return np.clip(rates, 0.0, 1.0)


@dataclass(frozen=True)
class SaezInfo:
    """How the fixed point of :func:`saez_schedule` was reached.

    Attributes
    ----------
    n_iterations : Saez updates computed (each one best response of every agent).
    converged : the iteration stopped because the rates moved by less than ``tol`` (after damping).
    residual : ``max |saez(rates) - rates|`` at the last iterate: 0 at an exact fixed point; on small
        populations it stays of the order of 1e-2 because the map jumps as agents switch bunching points.
    elasticity : the elasticity used.
    damping : the final step size (1 = undamped; halved whenever the update reversed direction).
    """

    n_iterations: int
    converged: bool
    residual: float
    elasticity: float
    damping: float


def saez_schedule(
    population: Any,
    cutoffs: CutoffsLike,
    *,
    swf: str = "inverse_skill",
    elasticity: float | None = None,
    kappa: float | str = KAPPA,
    delta: float = DELTA,
    max_iter: int = 50,
    tol: float = 1e-4,
    damping: float = 1.0,
    n_bins: int = N_BINS,
    return_info: bool = False,
    skill_floor: float | str = MIN_WAGE_SKILL,
) -> TaxSchedule | tuple[TaxSchedule, SaezInfo]:
    """The Saez schedule at its fixed point with rational workers.

    Starting from no tax: workers best-respond to the schedule, Saez rates are estimated on the incomes
    they earn (with this SWF's welfare weights), and the schedule moves towards them; repeat until no
    rate moves by ``tol``. The step starts at ``damping`` and is halved whenever the update reverses
    direction (the map can oscillate, as bunching at kinks moves with the rates).

    Parameters
    ----------
    population : Population or array_like (n,)
        Agents, or their skills (dollars per year per weekly hour).
    cutoffs : preset name, sequence (k,) or TaxSchedule
        Bracket lower bounds.
    swf : str
        Social welfare function whose weights define ``G`` (see ``economy.welfare.SWFS``). Weights that
        depend on income are recomputed at every iteration.
    elasticity : float, optional
        Defaults to the model's own ``1 / (delta - 1)``.
    kappa, delta : labor-cost parameters of the workers' utility ``c - kappa * l**delta``.
    max_iter, tol, damping : fixed-point iteration controls.
    n_bins : fine bins for :func:`saez_rates`.
    return_info : if True return ``(schedule, SaezInfo)``.
    skill_floor : float >= 0 or preset name
        Floor on the skill in the ``inverse_skill`` and ``paper`` weights (``economy.welfare``), so that
        ``G`` uses the same weights as the welfare the schedule is judged by; 0 = raw weights.

    Returns
    -------
    TaxSchedule, or (TaxSchedule, SaezInfo) with ``return_info=True``.
    """
    from economy.labor import best_response
    from economy.welfare import check_swf, welfare_weights

    swf = check_swf(swf)
    floor = resolve_skill_floor(skill_floor)
    skill = _skill_of(population)
    c = resolve_cutoffs(cutoffs)
    kappa = resolve_kappa(kappa)
    delta = float(delta)
    if not delta > 1:
        raise ValueError(f"delta={delta} must be > 1")
    e = 1.0 / (delta - 1.0) if elasticity is None else _check_elasticity(elasticity)
    if int(max_iter) < 1:
        raise ValueError(f"max_iter={max_iter} must be >= 1")
    if not tol > 0:
        raise ValueError(f"tol={tol} must be > 0")
    if not 0 < damping <= 1:
        raise ValueError(f"damping={damping} is outside (0, 1]")

    rates = np.zeros_like(c)
    step = float(damping)
    prev_move: NDArray[np.float64] | None = None
    residual = np.inf
    converged = False
    it = 0
    for it in range(1, int(max_iter) + 1):
        schedule = TaxSchedule(c, rates)
        income = skill * best_response(skill, schedule, kappa=kappa, delta=delta)
        tax = schedule.tax(income)
        consumption = income - tax + tax.mean()  # budget-balanced lump-sum rebate
        weights = welfare_weights(skill, swf, income=income, consumption=consumption, skill_floor=floor)
        target = saez_rates(income, weights, c, e, n_bins=n_bins)
        move = target - rates
        residual = float(np.max(np.abs(move)))
        if residual < tol:
            rates = target  # an exact fixed point (to tol)
            converged = True
            break
        if prev_move is not None and float(np.dot(move, prev_move)) < 0:
            # Oscillating: on a finite population the map jumps (agents switch between a kink and an
            # interior optimum, or across a gap), so it may have no exact fixed point; smaller steps
            # settle on the average of the cycle.
            step = max(step * 0.5, MIN_STEP)
        new = np.clip(rates + step * move, 0.0, 1.0)
        settled = float(np.max(np.abs(new - rates))) < tol
        rates, prev_move = new, move
        if settled:
            converged = True
            break
    schedule = TaxSchedule(c, rates)
    if return_info:
        return schedule, SaezInfo(n_iterations=it, converged=converged, residual=residual, elasticity=e, damping=step)
    return schedule


def estimate_elasticity(incomes: ArrayLike, marginal_rates: ArrayLike) -> float:
    """Elasticity of income with respect to the net-of-tax rate: the OLS slope of log z on log(1 - tau).

    Parameters
    ----------
    incomes : array_like, shape (n,)
        Pre-tax incomes; only positive ones enter (log of 0 is undefined).
    marginal_rates : array_like, shape (n,)
        The marginal rate each income faced, fractions in [0, 1]; rates of 1 are dropped.

    Returns
    -------
    float
        The slope. It is causal only when the rates vary independently of ability, e.g. the same agents
        observed under two schedules; in one cross-section under a progressive schedule the rate is
        correlated with ability and the slope is biased.
    """
    z = _as_vector(incomes, "incomes")
    t = _as_vector(marginal_rates, "marginal_rates")
    if t.shape != z.shape:
        raise ValueError(f"marginal_rates has shape {t.shape} but incomes has shape {z.shape}")
    if np.any(~((t >= 0) & (t <= 1))):
        raise ValueError("marginal_rates must be fractions in [0, 1]")
    keep = np.isfinite(z) & (z > 0) & (t < 1)
    if np.count_nonzero(keep) < 2:
        raise ValueError("estimate_elasticity needs at least 2 observations with incomes > 0 and marginal_rates < 1")
    x = np.log1p(-t[keep])
    y = np.log(z[keep])
    xc = x - x.mean()
    sxx = float(np.dot(xc, xc))
    if not sxx > 1e-12 * x.size:
        raise ValueError("marginal_rates has no variation: the elasticity cannot be estimated from a single rate")
    return float(np.dot(xc, y - y.mean()) / sxx)


# -- helpers ----------------------------------------------------------------------------------------
def _saez_formula(G: NDArray[np.float64], a: NDArray[np.float64], e: float) -> NDArray[np.float64]:
    """``(1 - G) / (1 - G + a e)`` written as ``x / (1 + x)`` with ``x = (1 - G) / (a e)``.

    Where the rich are valued above average (``G > 1``) the optimal rate is negative and clips to 0; the
    direct quotient would turn positive again once ``G > 1 + a e``, so it is not used.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (1.0 - G) / (a * e)
        tau = np.where(x > 0, x / (1.0 + x), 0.0)
    return np.where(np.isinf(x) & (x > 0), 1.0, tau)


def _interpolate_missing(x: NDArray[np.float64], y: NDArray[np.float64], ok: NDArray[np.bool_], fallback: float) -> NDArray[np.float64]:
    """``y`` with the entries where ``ok`` is False linearly interpolated from the others (constant at the ends)."""
    ok = ok & np.isfinite(y)
    if ok.all():
        return y
    if not ok.any():
        return np.full_like(y, fallback)
    out = y.copy()
    out[~ok] = np.interp(x[~ok], x[ok], y[ok])
    return out


def _check_elasticity(elasticity: float) -> float:
    try:
        e = float(elasticity)
    except (TypeError, ValueError):
        raise ValueError(f"elasticity must be a number > 0, got {elasticity!r}") from None
    if not (e > 0 and np.isfinite(e)):
        raise ValueError(f"elasticity={elasticity} must be a finite number > 0")
    return e


def _skill_of(population: Any) -> NDArray[np.float64]:
    """Skills (n,) of a Population, or the array itself."""
    skill = getattr(population, "skill", population)
    s = _as_vector(skill, "population skill")
    if s.size == 0:
        raise ValueError("population is empty")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("skills must be finite and >= 0")
    return s
