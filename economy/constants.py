"""Calibration constants of the economy (``docs/design.md`` §3.1), each derived or sourced here once.

Units: labor in hours per week; income in dollars per year; skill ``v`` in dollars per year per
weekly hour, so pre-tax income is ``z = v * l``.
"""

from __future__ import annotations

import math

from scipy.special import betaincinv

#: Disutility curvature of labor: ``u = c - kappa * l**delta``; labor-supply elasticity ``1/(delta-1) = 0.4``.
DELTA: float = 3.5
#: Hours-per-week cap on labor choices.
MAX_HOURS: float = 100.0
#: Weekly hours at which potential income is measured (full-time).
HOURS_REF: float = 40.0

# GB2 fit of US potential income at 40 h/week (the reference's "ACS 2023" fit, gamlss parameterisation).
GB2_MU: float = 72402.78177917618
GB2_SIGMA: float = 2.0721070746154746
GB2_NU: float = 0.48651871959386955
GB2_TAU: float = 1.1410398548220329


def _gb2_median() -> float:
    q = float(betaincinv(GB2_NU, GB2_TAU, 0.5))
    return GB2_MU * (q / (1.0 - q)) ** (1.0 / GB2_SIGMA)


#: Analytic median of potential income at 40 h/week (about $38,100).
GB2_MEDIAN: float = _gb2_median()

#: Calibrated labor cost: the median-skill worker chooses exactly 40 h/week at zero tax
#: (first-order condition ``v = kappa * delta * l**(delta-1)`` at ``l = 40``). About 0.0269.
KAPPA: float = (GB2_MEDIAN / HOURS_REF) / (DELTA * HOURS_REF ** (DELTA - 1.0))
#: The reference implementation's labor cost, kept for replication: labor is nearly free at census
#: income scales, so most agents sit at the 100-hour cap.
KAPPA_PAPER: float = 0.0005

KAPPA_PRESETS: dict[str, float] = {"calibrated": KAPPA, "paper": KAPPA_PAPER}

#: Federal minimum wage, dollars per hour: Fair Labor Standards Act, 29 U.S.C. §206(a)(1)(C), $7.25 an
#: hour since 24 July 2009 (unchanged since).
FEDERAL_MIN_WAGE: float = 7.25
#: Weeks in a work year: a full-time year is 40 h x 52 weeks = 2,080 h.
WEEKS_PER_YEAR: float = 52.0
#: Default floor on the skill used in welfare weights: the federal minimum wage in skill units (dollars per
#: year per weekly hour), 7.25 x 52 = 377, i.e. a full-time potential income of 377 x 40 = $15,080 a year.
#: Why: the GB2 fit's lower tail gives potential incomes of a few dollars a year, and raw 1/skill weights
#: then put 13-59% of all welfare weight on one agent in 1,000 (effective sample size 3-32); nobody's
#: earning capacity is counted below what a full-time minimum-wage job pays (effective sample size ~690).
MIN_WAGE_SKILL: float = FEDERAL_MIN_WAGE * WEEKS_PER_YEAR

#: Named skill floors: ``min_wage`` (the default) and ``none`` (raw weights, the behaviour before the floor).
SKILL_FLOOR_PRESETS: dict[str, float] = {"min_wage": MIN_WAGE_SKILL, "none": 0.0}


def parse_kappa(text: str) -> float | str:
    """Command-line text to a labor cost: a number, or a preset name kept as its name (checked by ``resolve_kappa``)."""
    try:
        return float(text)
    except ValueError:
        return text


def resolve_kappa(kappa: float | str) -> float:
    """Return a labor-cost value from a number or a preset name (``calibrated`` or ``paper``)."""
    if isinstance(kappa, str):
        try:
            return KAPPA_PRESETS[kappa]
        except KeyError:
            raise ValueError(f"kappa={kappa!r} is not a preset; choose one of {sorted(KAPPA_PRESETS)} or a number > 0") from None
    kappa = float(kappa)
    if not kappa > 0:
        raise ValueError(f"kappa={kappa} must be > 0")
    return kappa


def resolve_skill_floor(skill_floor: float | str) -> float:
    """Return a welfare-weight skill floor (>= 0, dollars per year per weekly hour) from a number or a preset name."""
    if isinstance(skill_floor, str):
        try:
            return SKILL_FLOOR_PRESETS[skill_floor.strip().lower()]
        except KeyError:
            try:
                skill_floor = float(skill_floor)
            except ValueError:
                raise ValueError(
                    f"skill_floor={skill_floor!r} is not a preset; choose one of {sorted(SKILL_FLOOR_PRESETS)} or a number >= 0"
                ) from None
    try:
        f = float(skill_floor)
    except (TypeError, ValueError):
        raise ValueError(f"skill_floor={skill_floor!r} must be a number >= 0 or one of {sorted(SKILL_FLOOR_PRESETS)}") from None
    if not (math.isfinite(f) and f >= 0):
        raise ValueError(f"skill_floor={skill_floor!r} is outside [0, inf)")
    return f
