"""Rational labor supply: the exact best response to a piecewise-linear tax schedule (``docs/design.md`` §3.4).

A worker of skill ``v`` (dollars per year per weekly hour) who works ``l`` hours a week earns ``z = v*l``
and, with quasi-linear utility, values the choice at ``u(l) = v*l - T(v*l) + R - kappa*l**delta``. The
lump-sum rebate ``R`` does not move the argmax, so :func:`best_response` ignores it.

Within bracket ``j`` the tax is linear, ``T(z) = B_j + tau_j*(z - b_j)`` (``B_j`` = tax owed at ``b_j``),
so ``u`` is strictly concave there with the unconstrained optimum

    l_j = ((1 - tau_j)*v / (kappa*delta)) ** (1/(delta-1)) = c_j * v**p,     p = 1/(delta-1).

The global maximiser on ``[0, max_hours]`` is one of these candidates: an interior optimum ``l_j`` whose
income ``v*l_j`` lies in bracket ``j`` (and ``l_j <= max_hours``), a kink ``l = b_j/v`` (``b_j <= v*max_hours``),
``0`` or ``max_hours``. Every candidate's utility is a per-bracket constant plus a per-bracket coefficient
times one per-agent power of ``v``: ``v**(1+p)`` for interior optima (``p*delta = 1+p``), ``v**-delta`` for
kinks, ``v`` for the cap.

Speed: the global maximiser is a *local* maximiser, and whether a candidate is a local maximiser
(interior optimum inside its bracket; kink with ``u'(l-) >= 0 >= u'(l+)``; cap with ``u'(m-) >= 0``) holds
on an interval of skill with closed-form end points. Splitting the skill axis at all those end points
gives a few segments, each with a fixed short list of local-maximum candidates: one agent x segment
look-up, then agents x (at most a few) candidates. With non-decreasing rates (a convex tax, e.g. the
US schedules) every segment holds exactly one candidate, the unique optimum, and no utility is evaluated.
``_all_candidates`` is the plain agents x all-candidates argmax, kept as the reference and the fallback.
Agents go through in cache-sized blocks with preallocated buffers (``economy._blocks``, ``docs/design.md``
§3.8): one power ``v**p`` per agent, one byte-counted segment index, one gather per non-zero hours column.

Convex taxes in closed form (what the single-candidate segments compute; ``docs/design.md`` §3.4). Let
``tau_0 <= ... <= tau_{k-1} <= 1`` and ``z_j = c_j*v**(1+p)`` the income of bracket ``j``'s interior
optimum (``c_j = 0`` when ``tau_j = 1``). Then the best income and hours are

    z* = sum_j (clip(z_j, b_j, b_{j+1}) - b_j),     l* = min(z*/v, max_hours).

Proof. In income, ``U(z) = z - T(z) - kappa*(z/v)**delta``: ``T`` is convex (rates rise), ``(z/v)**delta``
strictly convex, so ``U`` is strictly concave with one maximiser ``z*`` on ``[0, inf)``, where the left
derivative is ``>= 0`` and the right one ``<= 0``. In bracket ``j``, ``U'(z) = (1 - tau_j) -
kappa*delta*z**(delta-1)/v**delta``, which is ``>= 0`` iff ``z <= z_j``; and ``z_j`` falls with ``j``. Either
some ``z_j`` lies in ``[b_j, b_{j+1}]`` (then ``z* = z_j``) or ``z* = b_j`` with ``z_j < b_j <= z_{j-1}`` (a
kink). In both cases each term below ``j`` is a full bracket (``z_i >= z_{j-1} >= b_j >= b_{i+1}``, telescoping
to ``b_j``), the term ``j`` adds ``z* - b_j`` (``clip(z_j, b_j, b_{j+1})``), and each term above ``j`` is 0
(``z_i <= z_j <= b_{j+1} <= b_i``, and in the kink case ``z_i <= z_j < b_j``). Concavity also makes the capped
problem's maximiser ``min(z*, v*max_hours)``. ``tests/economy/test_labor.py`` checks this formula, written
independently, against :func:`best_response` on 300 random convex schedules.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from economy._blocks import Scratch, count_at_least, map_blocks
from economy.constants import DELTA, KAPPA, MAX_HOURS, resolve_kappa
from economy.tax import TaxSchedule

__all__ = ["best_response", "labor_utility"]

# Agents x grid points evaluated at once by the grid variant (bounds its temporaries to ~32 MB each).
_GRID_CHUNK_ELEMENTS = 4_000_000


def best_response(
    skill: ArrayLike,
    schedule: TaxSchedule,
    *,
    kappa: float | str = KAPPA,
    delta: float = DELTA,
    max_hours: float = MAX_HOURS,
    grid: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Utility-maximising weekly hours of each agent under ``schedule``.

    Parameters
    ----------
    skill : array_like, shape (n,)
        Skill ``v >= 0`` of each agent: annual pre-tax income per weekly hour (potential income / 40).
    schedule : TaxSchedule
        The marginal tax schedule (rates in [min_rate, 1]; negative rates, a wage subsidy, are exact too).
    kappa : float or {"calibrated", "paper"}
        Labor-cost coefficient of ``u = c - kappa*l**delta`` or a preset name (see ``economy.constants``).
    delta : float
        Disutility curvature, ``> 1``.
    max_hours : float
        Cap on weekly hours, ``> 0``.
    grid : array_like, shape (m,), optional
        If given, choose the best of these hours (each within ``[0, max_hours]``) instead of the exact
        continuous optimum, e.g. ``np.arange(0, 101, 10)`` as in the reference.

    Returns
    -------
    hours : ndarray, shape (n,)
        The exact maximiser of ``v*l - T(v*l) - kappa*l**delta`` on ``[0, max_hours]``; a skill of 0 gives
        0 hours. When two choices tie exactly the grid variant takes the fewer hours.
    """
    v = _check_skill(skill)
    if not isinstance(schedule, TaxSchedule):
        raise ValueError(f"schedule must be a TaxSchedule, got {type(schedule).__name__}")
    schedule = schedule.as_brackets()  # a top-income cap is one more bracket with rate 0
    kappa_f = resolve_kappa(kappa)
    delta_f = _check_delta(delta)
    m = float(max_hours)
    if not (np.isfinite(m) and m > 0):
        raise ValueError(f"max_hours={max_hours!r} is outside (0, inf)")
    if grid is not None:
        return _grid_response(v, schedule, kappa_f, delta_f, m, grid)
    if v.size == 0:
        return np.zeros(0)
    table = _segment_table(schedule, kappa_f, delta_f, m)
    if table is None:  # never expected; the plain method is always correct
        return _all_candidates(v, schedule, kappa_f, delta_f, m)
    return _segmented_response(v, table, delta_f, m)


def labor_utility(
    skill: ArrayLike,
    hours: ArrayLike,
    schedule: TaxSchedule,
    rebate: float | ArrayLike = 0.0,
    *,
    kappa: float | str = KAPPA,
    delta: float = DELTA,
) -> NDArray[np.float64]:
    """Quasi-linear utility ``u = v*l - T(v*l) + rebate - kappa*l**delta``.

    Parameters
    ----------
    skill, hours : array_like, broadcastable, e.g. shape (n,)
        Skill ``v >= 0`` and weekly hours ``l >= 0`` (no cap is imposed here).
    schedule : TaxSchedule
    rebate : float or array_like
        Lump-sum transfer added to consumption.

    Returns
    -------
    u : ndarray, the broadcast shape of ``skill`` and ``hours``
    """
    v = np.asarray(skill, dtype=np.float64)
    l = np.asarray(hours, dtype=np.float64)
    _check_nonneg(v, "skill")
    _check_nonneg(l, "hours")
    kappa_f = resolve_kappa(kappa)
    delta_f = _check_delta(delta)
    z = v * l
    return z - schedule.tax(z) + np.asarray(rebate, dtype=np.float64) - kappa_f * l**delta_f


# -- the segmented exact best response ----------------------------------------------------------

# Columns of the candidate table: utility = ALPHA + B_INT*v**(1+p) + B_KINK*v**-delta + B_CAP*v,
# hours = G_INT*v**p + G_KINK/v + G_CAP.
_ALPHA, _B_INT, _B_KINK, _B_CAP, _G_INT, _G_KINK, _G_CAP = range(7)


@lru_cache(maxsize=256)
def _segment_table(
    schedule: TaxSchedule, kappa: float, delta: float, m: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]] | None:
    """Skill break points, candidate coefficients and the candidates of each skill segment.

    Returns ``(edges (S,), coef (7, C+1), seg (W, S))``: segment ``s`` is ``[edges[s], edges[s+1])``
    (the last is open), ``seg[:, s]`` lists the candidates that are local maxima there, padded with the
    dummy candidate ``C`` whose utility is ``-inf``. ``None`` if some segment has no candidate. Stored
    column-major so that each per-agent gather is a contiguous ``take``.
    """
    b, tau = schedule.cutoffs, schedule.rates
    base = schedule.tax(b)  # tax owed at each cut-off
    k = b.size
    p = 1.0 / (delta - 1.0)
    a = 1.0 - tau
    c = (a / (kappa * delta)) ** p  # l_j = c_j * v**p
    d = tau * b - base  # bracket-j utility = a_j*z + d_j - kappa*l**delta
    inf = np.inf

    def income_threshold(bj: float, cj: float) -> float:
        """Skill at which c_j * v**(1+p) = b_j (same arguments -> bit-identical result)."""
        return inf if cj == 0 else float((bj / cj) ** (1.0 / (1.0 + p)))

    def cap_threshold(cj: float) -> float:
        """Skill at which c_j * v**p = m."""
        return inf if cj == 0 else float((m / cj) ** (delta - 1.0))

    rows: list[list[float]] = []
    spans: list[tuple[float, float]] = []

    def add(lo: float, hi: float, row: list[float]) -> None:
        if lo < hi:  # a single point is covered by the candidate it turns into there
            spans.append((lo, hi))
            rows.append(row)

    for j in range(k):
        upper = b[j + 1] if j + 1 < k else inf
        if c[j] > 0:
            # Interior optimum of bracket j: b_j <= c_j v**(1+p) <= b_{j+1} and c_j v**p <= m.
            lo = income_threshold(b[j], c[j])
            hi = min(income_threshold(upper, c[j]) if j + 1 < k else inf, cap_threshold(c[j]))
            add(lo, hi, [d[j], a[j] * c[j] * (1.0 - 1.0 / delta), 0, 0, c[j], 0, 0])
            # The cap with v*m in bracket j and u'(m-) >= 0 there, i.e. c_j v**p >= m.
            lo = max(b[j] / m, cap_threshold(c[j]))
            add(lo, upper / m, [d[j] - kappa * m**delta, 0, 0, a[j] * m, 0, 0, m])
        if j > 0 and tau[j] > tau[j - 1] and c[j - 1] > 0:
            # Kink b_j: feasible (b_j <= v m), u'(l-) >= 0 (c_{j-1} v**(1+p) >= b_j), u'(l+) <= 0.
            lo = max(b[j] / m, income_threshold(b[j], c[j - 1]))
            add(lo, income_threshold(b[j], c[j]), [b[j] - base[j], 0, -kappa * b[j] ** delta, 0, 0, b[j], 0])
    if tau[0] == 1.0:
        add(0.0, inf, [0.0] * 7)  # u'(0+) <= 0: zero hours is a local maximum for every skill
    if not rows:
        return None

    lo_all = np.array([s[0] for s in spans])
    hi_all = np.array([s[1] for s in spans])
    edges = np.unique(np.concatenate(([0.0], lo_all, hi_all)))
    edges = edges[np.isfinite(edges)]
    right = np.append(edges[1:], inf)
    # Candidate i covers segment s iff its closed interval contains [edges[s], edges[s+1]].
    covers = (lo_all[None, :] <= edges[:, None]) & (hi_all[None, :] >= right[:, None])
    counts = covers.sum(axis=1)
    if counts.min() == 0:
        return None
    n_rows = len(rows)
    seg = np.full((int(counts.max()), edges.size), n_rows, dtype=np.intp)
    for s in range(edges.size):  # a loop over the handful of segments
        ids = np.flatnonzero(covers[s])
        seg[: ids.size, s] = ids
    coef = np.ascontiguousarray(np.array(rows + [[-inf, 0, 0, 0, 0, 0, 0]], dtype=np.float64).T)
    for arr in (edges, coef, seg):
        arr.setflags(write=False)
    return edges, coef, seg


def _segmented_response(
    v: NDArray[np.float64],
    table: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]],
    delta: float,
    m: float,
) -> NDArray[np.float64]:
    """Hours of each agent (shape (n,)) from the segment table, block by block, blocks on threads (``economy._blocks``)."""
    edges, coef, seg = table
    hours = np.empty(v.size)
    if seg.shape[0] == 1:
        # One candidate per segment (e.g. any convex tax): hours = g_int[s]*v**p + g_cap[s] + g_kink[s]/v,
        # with only the non-zero columns gathered (each candidate has one non-zero hours column).
        cols = [coef[col].take(seg[0]) for col in (_G_INT, _G_CAP, _G_KINK)]
        terms = tuple(c if np.any(c) else None for c in cols)
        map_blocks(lambda blk, scratch: _single_block(v[blk], edges, terms, delta, m, hours[blk], scratch), v.size)
    else:
        map_blocks(lambda blk, scratch: _multi_block(v[blk], edges, coef, seg, delta, m, hours[blk]), v.size)
    return hours


def _positive(v: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_] | None]:
    """``v`` with zero skills replaced by 1 (their hours are set to 0 at the end) and the mask of zeros."""
    if v.size == 0 or v.min() > 0:  # (skills are >= 0; min is a SIMD reduction, all() casts every float)
        return v, None
    zero = v == 0
    return np.where(zero, 1.0, v), zero


def _single_block(
    v: NDArray[np.float64],
    edges: NDArray[np.float64],
    terms: tuple[NDArray[np.float64] | None, NDArray[np.float64] | None, NDArray[np.float64] | None],
    delta: float,
    m: float,
    out: NDArray[np.float64],
    scratch: Scratch,
) -> None:
    """``out[:] =`` hours of a block of agents when every skill segment holds exactly one candidate.

    Into ``out`` and ``scratch`` buffers only (no temporary per block); ``take(..., mode="clip")`` is
    numpy's unbuffered gather (the segment index is always in range).
    """
    g_int, g_cap, g_kink = terms
    vs, zero = _positive(v)
    s = count_at_least(vs, edges[1:], scratch)  # segment of each agent
    per_agent = scratch("labor.table", v.size)
    if g_int is not None:
        np.power(vs, 1.0 / (delta - 1.0), out=out)
        out *= g_int.take(s, out=per_agent, mode="clip")
    else:
        out.fill(0.0)
    if g_cap is not None:
        out += g_cap.take(s, out=per_agent, mode="clip")
    if g_kink is not None:
        np.divide(g_kink.take(s, out=per_agent, mode="clip"), vs, out=per_agent)
        out += per_agent
    np.clip(out, 0.0, m, out=out)  # rounding in b_j/v or c_j*v**p must not leave [0, m]
    if zero is not None:
        out[zero] = 0.0


def _multi_block(
    v: NDArray[np.float64],
    edges: NDArray[np.float64],
    coef: NDArray[np.float64],
    seg: NDArray[np.intp],
    delta: float,
    m: float,
    out: NDArray[np.float64],
) -> None:
    """``out[:] =`` hours of a block of agents: the best of each segment's few local-maximum candidates."""
    p = 1.0 / (delta - 1.0)
    vs, zero = _positive(v)
    s = count_at_least(vs, edges[1:])
    vp = vs**p
    # Capped at the largest float so that a zero coefficient never meets inf (0*inf = nan) at
    # extreme skills; the capped terms only ever belong to infeasible or hopeless candidates.
    big = np.finfo(np.float64).max
    with np.errstate(over="ignore"):
        v1p = np.minimum(vp * vs, big)
        w = np.minimum(vs ** (-delta), big) if np.any(coef[_B_KINK]) else None
    best = np.full(v.size, -np.inf)
    choice = seg[0].take(s)
    for col in seg:  # a loop over the few candidates of a segment
        cand = col.take(s)
        u = coef[_ALPHA].take(cand)
        with np.errstate(over="ignore"):  # +-inf for hopeless candidates at extreme skills
            u += coef[_B_INT].take(cand) * v1p
            u += coef[_B_CAP].take(cand) * vs
            if w is not None:
                u += coef[_B_KINK].take(cand) * w
        better = u > best
        np.copyto(best, u, where=better)
        np.copyto(choice, cand, where=better)
    np.multiply(coef[_G_INT].take(choice), vp, out=out)
    out += coef[_G_CAP].take(choice)
    if np.any(coef[_G_KINK]):
        out += coef[_G_KINK].take(choice) / vs
    np.clip(out, 0.0, m, out=out)
    if zero is not None:
        out[zero] = 0.0


def _all_candidates(
    v: NDArray[np.float64], schedule: TaxSchedule, kappa: float, delta: float, m: float
) -> NDArray[np.float64]:
    """Reference method: argmax over the agents x (0, k interior optima, k-1 kinks, cap) utility matrix."""
    b, tau = schedule.cutoffs, schedule.rates
    base = schedule.tax(b)
    k = b.size
    p = 1.0 / (delta - 1.0)
    a = 1.0 - tau
    c = (a / (kappa * delta)) ** p
    e = a * c * (1.0 - 1.0 / delta)
    d = tau * b - base
    pos = v > 0
    vs = np.where(pos, v, 1.0)
    vp = vs**p
    v1p = vp * vs
    l_int = c * vp[:, None]  # (n, k) interior optima
    z_int = l_int * vs[:, None]
    upper = np.append(b[1:], np.inf)
    u_int = np.where((z_int >= b) & (z_int <= upper) & (l_int <= m), e * v1p[:, None] + d, -np.inf)
    l_kink = b[1:] / vs[:, None]  # (n, k-1)
    with np.errstate(over="ignore"):
        u_kink = np.where(l_kink <= m, b[1:] - base[1:] - kappa * l_kink**delta, -np.inf)
    z_cap = vs * m
    u_cap = z_cap - schedule.tax(z_cap) - kappa * m**delta
    u = np.column_stack([np.zeros(v.size), u_int, u_kink, u_cap])
    hours_all = np.column_stack([np.zeros(v.size), l_int, l_kink, np.full(v.size, m)])
    idx = np.argmax(u, axis=1)
    hours = np.clip(hours_all[np.arange(v.size), idx], 0.0, m)
    hours[~pos] = 0.0
    return hours


# -- the grid variant ---------------------------------------------------------------------------


def _grid_response(
    v: NDArray[np.float64], schedule: TaxSchedule, kappa: float, delta: float, m: float, grid: ArrayLike
) -> NDArray[np.float64]:
    g = np.array(grid, dtype=np.float64)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"grid must be a non-empty one-dimensional sequence of hours, got shape {g.shape}")
    bad = np.flatnonzero(~((g >= 0) & (g <= m)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"grid[{i}]={g[i]:g} is outside [0, {m:g}] (max_hours)")
    g = np.sort(g)  # argmax keeps the first maximum: ties go to fewer hours
    cost = kappa * g**delta
    best_u = np.full(v.size, -np.inf)
    best_h = np.zeros(v.size)
    # Chunks of grid points, each broadcast over all agents, bound memory for fine grids.
    step = max(1, _GRID_CHUNK_ELEMENTS // max(v.size, 1))
    rows = np.arange(v.size)
    for s in range(0, g.size, step):
        gs = g[s : s + step]
        z = v[:, None] * gs
        u = z - schedule.tax(z)
        u -= cost[s : s + step]
        j = np.argmax(u, axis=1)
        uj = u[rows, j]
        better = uj > best_u
        best_u[better] = uj[better]
        best_h[better] = gs[j[better]]
    return best_h


# -- validation ---------------------------------------------------------------------------------


def _check_skill(skill: ArrayLike) -> NDArray[np.float64]:
    v = np.asarray(skill, dtype=np.float64)
    if v.ndim == 0:
        v = v.reshape(1)
    if v.ndim != 1:
        raise ValueError(f"skill must be one-dimensional (one value per agent), got shape {v.shape}")
    _check_nonneg(v, "skill")
    return v


def _check_nonneg(x: NDArray[np.float64], name: str) -> None:
    if x.size and x.min() >= 0 and x.max() < np.inf:
        return  # two reductions instead of three passes and a mask; NaN fails both comparisons
    ok = np.isfinite(x) & (x >= 0)
    if not ok.all():
        if x.ndim == 0:
            raise ValueError(f"{name}={float(x):g} is outside [0, inf) (finite, non-negative)")
        i = np.unravel_index(int(np.flatnonzero(~ok.ravel())[0]), x.shape)
        where = ", ".join(str(int(t)) for t in i)
        raise ValueError(f"{name}[{where}]={float(x[i]):g} is outside [0, inf) (finite, non-negative)")


def _check_delta(delta: float) -> float:
    d = float(delta)
    if not (np.isfinite(d) and d > 1):
        raise ValueError(f"delta={delta!r} is outside (1, inf) (the labor disutility must be convex)")
    return d
