"""The earlier implementation's "Saez" schedule, reproduced quirk for quirk as a named baseline.

Why: the paper's headline ("the LM planner beats Saez") was measured against this schedule, not
against Saez (2001) done right (:mod:`economy.saez`). To say whether the headline survives, the project
must be able to rebuild that exact baseline on its own populations. Nothing here is meant as good
economics; every departure from :mod:`economy.saez` is deliberate and listed below.

Source: llm-economist-v1 (MIT), ``FixedTaxPlanner.__init__`` in ``llm_economist/agents/planner.py``
and ``saez_optimal_tax_rates`` in ``llm_economist/utils/common.py``. Quirks reproduced:

1. planner.py:330-333 (``SAEZ``): ``--elasticity`` is used only when it has one value per bracket;
   the default ``[0.4]`` (main.py:318) matches only the one-bracket ``flat`` setting, so on ``three``
   and ``US_FED`` every bracket gets e = 3.0 ("flat Saez value in AI Economist paper"). On ``flat``,
   ``SAEZ`` therefore uses 0.4, not 3.0.
2. planner.py:338-341 (``SAEZ_FLAT``): the fallback is the *list* ``[0.4]``, which
   ``saez_optimal_tax_rates`` rejects for more than one bracket (common.py:204-205, ``ValueError``):
   the reference crashes on ``three``/``US_FED`` unless ``--elasticity`` gives k values. Here 0.4 goes
   to every bracket, which is exactly the reference's result for ``--elasticity 0.4 ... 0.4`` (k times).
3. planner.py:346-349 (``SAEZ_THREE``): the fallback ``[0.18, 0.11, 0.57]`` fits three brackets only;
   on seven brackets the reference raises ``ValueError`` (common.py:204-205) and so do we.
4. bracket.py:31-40: the brackets end at an arbitrary $10M upper bound (``V1_TOP``), which enters the
   evaluation points (quirk 8); a cut-off at or above it is rejected.
5. main.py:53 with common.py:180,196: skills are potential income / 40 (``Population.skill`` has the
   same units) but the function reads them as income / 100, so it works on incomes x2.5 against
   dollar brackets. Skills at 40 h are used once, at construction (planner.py:334): never the incomes
   agents earn, no fixed point.
6. common.py:209-211: welfare weights ``1 / max(z, 1e-10)`` on those scaled incomes, normalised to sum 1.
7. common.py:214, 225-226: the density ``f`` is a ``scipy.stats.gaussian_kde`` (Scott's bandwidth, one
   global bandwidth over the whole skewed sample) while the CDF ``F = mean(z <= z*)`` is empirical.
8. common.py:220-223: one evaluation point per bracket, its midpoint; the top bracket is evaluated
   at ``b + 0.1 (10M - b)``.
9. common.py:229-232: ``a = z f / (1 - F)``, or ``a = 10`` when nobody is above the point (F = 1),
   which with G = 0 gives ``1 / (1 + 10 e)``: 3.23% at e = 3.
10. common.py:235-238: in the top bracket, if anyone earns at least the evaluation point ``z*``,
    ``a = m / (m - b_top)`` with ``m`` the mean of the incomes >= ``z*`` (not of those above ``b_top``).
11. common.py:241-244: ``G = sum(weights of z >= z*) / (1 - F)``, G = 0 when nobody is above ``z*``.
12. common.py:250-251: ``tau = (1 - G) / (1 - G + a e)`` clipped to [0, 1] (so a negative
    denominator gives 1, not 0, and NaN gives 1 through Python's ``min``/``max``).
13. common.py:253: rates are percentages rounded to 2 decimals; returned here as those percentages / 100.

The returned :class:`~economy.tax.TaxSchedule` keeps our convention of an open top bracket; the $10M
cap on taxed income is a property of the simulation, not of these rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import gaussian_kde

from economy.saez import _skill_of
from economy.tax import CutoffsLike, TaxSchedule, resolve_cutoffs, to_fraction

#: The reference's upper bound of the top bracket (bracket.py:32, "10 million as arbitrary upper bound").
V1_TOP: float = 10_000_000.0

#: The reference's ``--elasticity`` default (main.py:318).
V1_ELASTICITY_ARG: tuple[float, ...] = (0.4,)

#: Each variant's fallback elasticities when ``--elasticity`` does not have one value per bracket
#: (planner.py:333, 341, 349); None means e = 3.0 for every bracket.
V1_VARIANTS: dict[str, tuple[float, ...] | None] = {
    "saez": None,
    "saez_flat": (0.4,),
    "saez_three": (0.18, 0.11, 0.57),
}


def saez_v1_schedule(
    population: Any,
    cutoffs: CutoffsLike,
    variant: str = "saez",
    *,
    elasticity: Sequence[float] = V1_ELASTICITY_ARG,
) -> TaxSchedule:
    """The earlier implementation's Saez schedule for this population (quirks in the module docstring).

    Parameters
    ----------
    population : Population or array_like (n,)
        Agents, or their skills (dollars per year per weekly hour; potential income / 40).
    cutoffs : preset name, sequence (k,) or TaxSchedule
        Bracket lower bounds, all below ``V1_TOP``; ``"three"`` and ``"us_federal_2024"`` are the
        reference's ``three`` and ``US_FED`` settings.
    variant : ``"saez"``, ``"saez_flat"`` or ``"saez_three"`` (the reference's ``SAEZ``,
        ``SAEZ_FLAT``, ``SAEZ_THREE`` planner types).
    elasticity : the reference's ``--elasticity`` argument; used only if it has k values.

    Returns
    -------
    TaxSchedule on ``cutoffs`` with the reference's rates (percent rounded to 2 decimals, / 100).

    Raises
    ------
    ValueError
        For an unknown variant, a cut-off >= ``V1_TOP``, or ``saez_three`` on k != 3 brackets without
        k elasticities (the reference raises there too).
    """
    if variant not in V1_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(V1_VARIANTS)}")
    c = resolve_cutoffs(cutoffs)
    if c[-1] >= V1_TOP:
        raise ValueError(f"cut-off {c[-1]:g} is not below the reference's top bound {V1_TOP:g}")
    k = c.size
    e = np.asarray(elasticity, dtype=np.float64).ravel()
    if e.size != k:  # quirks 1-3
        fallback = V1_VARIANTS[variant]
        if fallback is None:
            e = np.full(k, 3.0)
        elif len(fallback) == 1:
            e = np.full(k, fallback[0])
        elif len(fallback) == k:
            e = np.asarray(fallback)
        else:
            raise ValueError(
                f"variant {variant!r} has {len(fallback)} elasticities {list(fallback)} but there are {k} brackets; "
                f"the reference raises here too (pass elasticity with {k} values)"
            )
    return TaxSchedule(c, to_fraction(_v1_rates_percent(_skill_of(population), np.append(c, V1_TOP), e)))


def _v1_rates_percent(skill: NDArray[np.float64], edges: NDArray[np.float64], e: NDArray[np.float64]) -> NDArray[np.float64]:
    """``saez_optimal_tax_rates(skill, edges, e)`` of common.py:173-255, vectorised over brackets."""
    z = np.sort(skill * 100.0)  # quirk 5: "skills" read as income / 100
    n = z.size
    w = 1.0 / np.maximum(z, 1e-10)  # quirk 6
    w /= w.sum()
    point = 0.5 * (edges[:-1] + edges[1:])  # quirk 8
    point[-1] = edges[-2] + 0.1 * (edges[-1] - edges[-2])
    F = np.searchsorted(z, point, side="right") / n  # share <= point
    first_ge = np.searchsorted(z, point, side="left")  # z[first_ge:] are the incomes >= point
    f = gaussian_kde(z)(point)  # quirk 7
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(F < 1.0, point * f / (1.0 - F), 10.0)  # quirk 9
        if first_ge[-1] < n:  # quirk 10
            m = z[first_ge[-1]:].mean()
            a[-1] = m / (m - edges[-2])
        w_ge = np.append(np.cumsum(w[::-1])[::-1], 0.0)[first_ge]
        G = np.where((first_ge < n) & (F < 1.0), w_ge / (1.0 - F), 0.0)  # quirk 11
        tau = (1.0 - G) / (1.0 - G + a * e)
    tau = np.where(np.isnan(tau), 1.0, np.clip(tau, 0.0, 1.0))  # quirk 12
    return np.round(tau * 100.0, 2)  # quirk 13
