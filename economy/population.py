"""Worker populations: GB2 potential income linked to US demographics (``docs/design.md`` §3.2).

Potential annual income at 40 h/week, ``y``, follows the GB2 fit of ``economy.constants`` (gamlss
parameterisation): ``B ~ Beta(nu, tau)``, ``y = mu * (B / (1 - B)) ** (1 / sigma)``. Skill is
``v = y / HOURS_REF`` (dollars per year per weekly hour).

Demographics (sex, age, occupation given sex, education) are drawn from the small CSV tables in
``economy/data/`` (each names its source on its first line). Income is *linked* to them by a Gaussian
copula that keeps the GB2 marginal exact: every agent gets a latent score
``s = rho * z + sqrt(1 - rho**2) * eps`` where ``z`` is the standardised log of its group's relative
median earnings, and the sorted GB2 draws are handed out by the rank of ``s``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Union

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import beta as beta_fn
from scipy.special import betainc, betaincinv

from economy.constants import GB2_MU, GB2_NU, GB2_SIGMA, GB2_TAU, HOURS_REF

__all__ = [
    "UTILITY_TYPES", "INCOME_RHO", "OCCUPATION_EARNINGS_FACTOR", "COLUMNS",
    "gb2_sample", "gb2_quantile", "gb2_cdf", "gb2_mean", "demographic_tables", "Population",
]

DATA_DIR = Path(__file__).resolve().parent / "data"

#: Utility types of the reference: own utility, social welfare, minus social welfare.
UTILITY_TYPES: tuple[str, ...] = ("egotistical", "altruistic", "adversarial")

#: Columns of ``Population.frame``, in order.
COLUMNS: tuple[str, ...] = (
    "id", "age", "age_group", "sex", "occupation", "education",
    "potential_income", "skill", "utility_type", "persona",
)

#: Default copula correlation between the latent income score and the demographic earnings index.
#: Why 0.3: (1) it reproduces the BLS group median ratios — measured on 400,000 agents, the median
#: potential income of 45-54 year-olds is 1.96x that of 16-19 year-olds (BLS full-time weekly medians:
#: 1233/603 = 2.04) and men's is 1.16x women's (BLS: 1181/993 = 1.19); 0.3 is close to
#: sd(log group median) / robust sd(log GB2 income) = 0.35 / 1.06 = 0.33, the value at which a group's
#: shift in log income equals its shift in log median earnings; (2) it means age, sex and occupation
#: explain rho**2 = 9% of the (normal-scored) earnings variance — a modest share, as in earnings
#: regressions, where most of the variance is within demographic groups.
INCOME_RHO: float = 0.3

#: Relative median earnings of each major occupation group (all workers = 1). OUR ASSUMPTION, rounded:
#: of the order of BLS CPS cpsaat39 full-time weekly medians relative to the total (2023: management,
#: professional and related 1,527 / 1,117 = 1.37; service occupations earn roughly two thirds of the
#: median; the other groups a little below it). Not a fitted table: it only orders the copula score.
OCCUPATION_EARNINGS_FACTOR: Mapping[str, float] = MappingProxyType({
    "management, professional, and related": 1.35,
    "service": 0.65,
    "sales and office": 0.85,
    "natural resources, construction, and maintenance": 0.95,
    "production, transportation, and material moving": 0.80,
})

# Persona phrases (text only, keyed by the CSV labels).
_SEX_NOUN = {"male": "man", "female": "woman"}
_OCCUPATION_PHRASE = {occ: f"working in {occ} occupations" for occ in OCCUPATION_EARNINGS_FACTOR}
_EDUCATION_PHRASE = {
    "less than high school": "without a high school diploma",
    "high school graduate": "with a high school diploma",
    "some college, no degree": "with some college but no degree",
    "associate degree": "with an associate degree",
    "bachelor's degree": "with a bachelor's degree",
    "advanced degree": "with an advanced degree",
}
_UNKNOWN = "unknown"

SeedLike = Union[int, np.integer, None]


# --------------------------------------------------------------------------------------------------
# GB2 income distribution
# --------------------------------------------------------------------------------------------------

#: Youngest age at which each education level beyond the first is reachable (index = level - 1).
_EDU_AGE_FLOORS = np.array([18, 20, 22, 23, 25])


def _check_n(n: Any, name: str = "n") -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or int(n) < 1:
        raise ValueError(f"{name}={n!r} must be an integer >= 1")
    return int(n)


def gb2_sample(
    n: int,
    rng: np.random.Generator | SeedLike = None,
    *,
    mu: float = GB2_MU,
    sigma: float = GB2_SIGMA,
    nu: float = GB2_NU,
    tau: float = GB2_TAU,
) -> NDArray[np.float64]:
    """Draw ``n`` i.i.d. potential annual incomes (dollars at 40 h/week) from the GB2 fit.

    ``B ~ Beta(nu, tau)`` and ``y = mu * (B / (1 - B)) ** (1 / sigma)``; the odds ``B / (1 - B)`` are
    drawn as ``X / Y`` with ``X ~ Gamma(nu)``, ``Y ~ Gamma(tau)`` (the same law, without the loss of
    precision of ``1 - B`` in the upper tail).

    Parameters
    ----------
    n : int >= 1
    rng : numpy Generator, int seed or None

    Returns
    -------
    y : ndarray, shape (n,), float64, > 0
    """
    n = _check_n(n)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    odds = rng.standard_gamma(nu, n) / rng.standard_gamma(tau, n)
    return mu * odds ** (1.0 / sigma)


def gb2_quantile(
    p: ArrayLike, *, mu: float = GB2_MU, sigma: float = GB2_SIGMA, nu: float = GB2_NU, tau: float = GB2_TAU
) -> NDArray[np.float64] | float:
    """Quantile function of the GB2 income distribution, via the inverse regularised incomplete beta.

    Parameters
    ----------
    p : array_like, any shape, values in [0, 1]

    Returns
    -------
    y : ndarray of the shape of ``p`` (a float for a scalar): 0 at p = 0, inf at p = 1.
    """
    p_arr = np.asarray(p, dtype=np.float64)
    if not np.all((p_arr >= 0.0) & (p_arr <= 1.0)):  # also rejects NaN
        bad = p_arr[~((p_arr >= 0.0) & (p_arr <= 1.0))].flat[0]
        raise ValueError(f"p={bad} is outside [0, 1]")
    odds = np.empty_like(p_arr)
    lower = p_arr <= 0.5
    q = betaincinv(nu, tau, p_arr[lower])
    with np.errstate(divide="ignore"):
        odds[lower] = q / (1.0 - q)
        # Upper half through the mirrored inverse, 1 - I^-1(nu, tau, p) = I^-1(tau, nu, 1 - p),
        # so the tail keeps its relative precision.
        r = betaincinv(tau, nu, 1.0 - p_arr[~lower])
        odds[~lower] = (1.0 - r) / r
    y = mu * odds ** (1.0 / sigma)
    return float(y) if y.ndim == 0 else y


def gb2_cdf(
    y: ArrayLike, *, mu: float = GB2_MU, sigma: float = GB2_SIGMA, nu: float = GB2_NU, tau: float = GB2_TAU
) -> NDArray[np.float64] | float:
    """Distribution function of the GB2 income distribution, ``I_B(nu, tau)`` at ``B = x / (1 + x)``.

    Parameters
    ----------
    y : array_like, any shape, income in dollars per year (values <= 0 give 0, inf gives 1)

    Returns
    -------
    F : ndarray of the shape of ``y`` (a float for a scalar), in [0, 1]
    """
    y_arr = np.asarray(y, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (np.maximum(y_arr, 0.0) / mu) ** sigma
        b = 1.0 / (1.0 + 1.0 / x)  # x/(1+x), written so that x = inf gives 1 and x = 0 gives 0
    f = betainc(nu, tau, b)
    return float(f) if f.ndim == 0 else f


def gb2_mean(*, mu: float = GB2_MU, sigma: float = GB2_SIGMA, nu: float = GB2_NU, tau: float = GB2_TAU) -> float:
    """Analytic mean ``mu * B(nu + 1/sigma, tau - 1/sigma) / B(nu, tau)`` (finite when ``sigma*tau > 1``)."""
    if not sigma * tau > 1.0:
        raise ValueError(f"sigma*tau={sigma * tau} must be > 1 for a finite mean")
    return float(mu * beta_fn(nu + 1.0 / sigma, tau - 1.0 / sigma) / beta_fn(nu, tau))


# --------------------------------------------------------------------------------------------------
# Demographic tables
# --------------------------------------------------------------------------------------------------

def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA_DIR / name, comment="#")


def _normalised(percent: pd.Series) -> NDArray[np.float64]:
    # The published percentages are rounded and do not sum to exactly 100 (e.g. 100.2 for the age
    # shares, 99 for education): renormalise so the sampling probabilities sum to 1.
    w = percent.to_numpy(dtype=np.float64)
    return w / w.sum()


@lru_cache(maxsize=1)
def _tables() -> dict[str, Any]:
    age = _read("age_shares.csv")
    earn = _read("median_weekly_earnings.csv")
    sex = _read("sex_shares.csv")
    occ = _read("occupation_by_sex.csv")
    edu = _read("education.csv")

    by = {d: g.set_index("group")["median_weekly_usd"].astype(float) for d, g in earn.groupby("dimension")}
    overall = float(by["all"]["all"])
    sexes = tuple(sex["sex"])
    occupations = tuple(occ["occupation"])
    if set(occupations) != set(OCCUPATION_EARNINGS_FACTOR):
        raise ValueError("occupation_by_sex.csv and OCCUPATION_EARNINGS_FACTOR name different occupations")
    t: dict[str, Any] = {
        "age_groups": tuple(age["age_group"]),
        "age_p": _normalised(age["share_percent"]),
        "age_min": age["age_min"].to_numpy(np.int64),
        "age_max": age["age_max"].to_numpy(np.int64),
        "sexes": sexes,
        "sex_p": _normalised(sex["share_percent"]),
        "occupations": occupations,
        # (n_sex, n_occ) conditional shares; each sex's column renormalised (they sum to 100.1).
        "occ_p": np.stack([_normalised(occ[f"{s}_percent"]) for s in sexes]),
        "educations": tuple(edu["education"]),
        "edu_p": _normalised(edu["share_percent"]),
    }
    # Log relative median earnings of each cell of the copula index.
    t["log_age"] = np.log(by["age"].reindex(t["age_groups"]).to_numpy() / overall)
    t["log_sex"] = np.log(by["sex"].reindex(sexes).to_numpy() / overall)
    t["log_occ"] = np.log(np.array([OCCUPATION_EARNINGS_FACTOR[o] for o in occupations]))
    if not (np.all(np.isfinite(t["log_age"])) and np.all(np.isfinite(t["log_sex"]))):
        raise ValueError("median_weekly_earnings.csv lacks an age group or sex of the share tables")
    # Population mean and sd of the index log g = log_age + log_sex + log_occ, exact from the tables
    # (age is drawn independently of sex and occupation), so z never depends on the sample drawn.
    m_age = float(t["age_p"] @ t["log_age"])
    v_age = float(t["age_p"] @ (t["log_age"] - m_age) ** 2)
    so = t["log_sex"][:, None] + t["log_occ"][None, :]
    w_so = t["sex_p"][:, None] * t["occ_p"]
    m_so = float((w_so * so).sum())
    v_so = float((w_so * (so - m_so) ** 2).sum())
    t["index_mean"] = m_age + m_so
    t["index_sd"] = math.sqrt(v_age + v_so)
    return t


def demographic_tables() -> dict[str, pd.DataFrame]:
    """The shipped tables as published (percent, before renormalisation), keyed by file stem."""
    return {p.stem: _read(p.name) for p in sorted(DATA_DIR.glob("*.csv"))}


# --------------------------------------------------------------------------------------------------
# Population
# --------------------------------------------------------------------------------------------------

def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer or None")
    return int(seed)


def _mix_counts(n: int, utility_mix: Mapping[str, float] | None) -> NDArray[np.int64]:
    """Largest-remainder counts of each utility type (order of UTILITY_TYPES) for ``n`` agents."""
    if utility_mix is None:
        utility_mix = {"egotistical": 1.0}
    if not isinstance(utility_mix, Mapping):
        raise ValueError(f"utility_mix={utility_mix!r} must be a dict like {{'egotistical': 1.0}}")
    w = np.zeros(len(UTILITY_TYPES))
    for name, share in utility_mix.items():
        if name not in UTILITY_TYPES:
            raise ValueError(f"utility_mix[{name!r}] is not a utility type; choose from {list(UTILITY_TYPES)}")
        try:
            share = float(share)
        except (TypeError, ValueError):
            raise ValueError(f"utility_mix[{name!r}]={share!r} must be a number >= 0") from None
        if not (math.isfinite(share) and share >= 0.0):
            raise ValueError(f"utility_mix[{name!r}]={share} must be a finite number >= 0")
        w[UTILITY_TYPES.index(name)] = share
    if not w.sum() > 0.0:
        raise ValueError(f"utility_mix={dict(utility_mix)!r} sums to 0; at least one share must be > 0")
    quota = n * w / w.sum()
    counts = np.floor(quota).astype(np.int64)
    # Hand the remaining agents to the largest fractional parts (ties: order of UTILITY_TYPES).
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def _utility_types(n: int, utility_mix: Mapping[str, float] | None, rng: np.random.Generator) -> NDArray[np.str_]:
    counts = _mix_counts(n, utility_mix)
    return rng.permutation(np.repeat(np.array(UTILITY_TYPES), counts))


def _income_text(income: NDArray[np.float64]) -> list[str]:
    # "about $52,000": nearest $1,000 from $10,000 up, nearest $100 below.
    step = np.where(income >= 10_000, 1000.0, 100.0)
    rounded = (np.round(income / step) * step).astype(np.int64)
    return [f"{v:,}" for v in rounded.tolist()]


def _personas(age: NDArray[np.integer], combo: Sequence[str], income: NDArray[np.float64]) -> list[str]:
    # Text assembly, not maths: one f-string per agent over pre-built phrases (fast: ~0.5 s per 1e6).
    return [
        f"You are a {a}-year-old {c}, earning about ${y} a year at {HOURS_REF:g} hours a week."
        for a, c, y in zip(age.tolist(), combo, _income_text(income))
    ]


def _generic_personas(income: NDArray[np.float64]) -> list[str]:
    return [f"You are a worker earning about ${y} a year at {HOURS_REF:g} hours a week." for y in _income_text(income)]


def _categorical(codes: NDArray[np.integer], categories: Sequence[str], ordered: bool = False) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=list(categories), ordered=ordered)


@dataclass(frozen=True, eq=False, repr=False)
class Population:
    """An immutable population of workers.

    Build one with :meth:`sample` (census-calibrated) or :meth:`from_skill` (given skills). Treat
    ``frame`` as read-only: ``skill`` and ``utility_type`` are read-only copies taken at construction.

    Attributes
    ----------
    frame : pandas.DataFrame, n rows, columns ``COLUMNS``
    info : mapping of how the population was built (seed, stratified, rho, utility_mix, ...)
    """

    frame: pd.DataFrame
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.frame, pd.DataFrame):
            raise ValueError(f"frame must be a pandas DataFrame, got {type(self.frame).__name__}")
        missing = [c for c in COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(f"frame lacks columns {missing}; required: {list(COLUMNS)}")
        if len(self.frame) < 1:
            raise ValueError("frame has 0 rows; a population needs n >= 1 agents")
        skill = np.array(self.frame["skill"], dtype=np.float64)
        bad = ~(np.isfinite(skill) & (skill > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"skill[{i}]={skill[i]} must be finite and > 0")
        col = self.frame["utility_type"]
        if isinstance(col.dtype, pd.CategoricalDtype):  # fast path: map codes, not 1e6 objects
            cats = np.asarray(col.cat.categories, dtype=str)
            codes = col.cat.codes.to_numpy()
            types = np.append(cats, "nan")[codes]  # code -1 (missing) -> "nan", rejected below
        else:
            types = np.asarray(col, dtype=str)
        unknown = ~np.isin(types, UTILITY_TYPES)
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            raise ValueError(f"utility_type[{i}]={str(types[i])!r} is not one of {list(UTILITY_TYPES)}")
        skill.setflags(write=False)
        types.setflags(write=False)
        object.__setattr__(self, "_skill", skill)
        object.__setattr__(self, "_types", types)
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))

    # ---- construction ------------------------------------------------------------------------

    @classmethod
    def sample(
        cls,
        n: int,
        seed: int | None = 0,
        stratified: bool = True,
        utility_mix: Mapping[str, float] | None = None,
        *,
        rho: float = INCOME_RHO,
    ) -> "Population":
        """Sample ``n`` census-calibrated workers with income linked to their demographics.

        Parameters
        ----------
        n : int >= 1
        seed : non-negative int or None (fresh entropy). Independent streams are spawned for the
            demographics, the income draws, the copula noise and the utility types, so changing
            ``rho`` re-ranks incomes without changing who the agents are or which incomes are drawn.
        stratified : one GB2 draw per quantile stratum, ``y_i = Q((i + U_i) / n)``, so that even 5-100
            agents represent the distribution; False draws i.i.d. from the GB2.
        utility_mix : dict of shares by utility type (default all egotistical); counts are exact by
            largest remainder, then shuffled.
        rho : copula correlation in [0, 1) between the income score and the demographic earnings index
            (0: income independent of demographics). Default ``INCOME_RHO``.

        Returns
        -------
        Population with ``n`` agents; the multiset of incomes is exactly the GB2 draw.
        """
        n = _check_n(n)
        seed = _check_seed(seed)
        if not isinstance(stratified, (bool, np.bool_)):
            raise ValueError(f"stratified={stratified!r} must be True or False")
        try:
            rho = float(rho)
        except (TypeError, ValueError):
            raise ValueError(f"rho={rho!r} must be a number in [0, 1)") from None
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho={rho} is outside [0, 1)")
        counts = _mix_counts(n, utility_mix)  # validate before drawing anything
        t = _tables()
        r_demo, r_income, r_copula, r_types = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
        )

        # Demographics: sex, age group (then an integer age within it), occupation given sex,
        # education (independent of the rest but capped by age).
        sex = (r_demo.random(n) >= t["sex_p"][0]).astype(np.int8)  # 0 = first row of sex_shares.csv
        age_g = r_demo.choice(len(t["age_groups"]), size=n, p=t["age_p"]).astype(np.int8)
        age = r_demo.integers(t["age_min"][age_g], t["age_max"][age_g] + 1)
        occ_cdf = np.cumsum(t["occ_p"], axis=1)
        occ_cdf[:, -1] = 1.0
        occ = (r_demo.random(n)[:, None] >= occ_cdf[sex]).sum(axis=1).astype(np.int8)
        edu = r_demo.choice(len(t["educations"]), size=n, p=t["edu_p"]).astype(np.int8)
        # The Census table is for ages 25+; below that, cap the level at what the age allows (no
        # 17-year-old with an advanced degree): <18 less than high school, 18-19 high school,
        # 20-21 some college, 22 associate, 23-24 bachelor's. Assumption, ours.
        edu = np.minimum(edu, np.searchsorted(_EDU_AGE_FLOORS, age, side="right")).astype(np.int8)

        # Income draws: the exact GB2 marginal, sorted ascending.
        if stratified:
            u = (np.arange(n) + r_income.random(n)) / n
            y = np.sort(gb2_quantile(u))
        else:
            y = np.sort(gb2_sample(n, r_income))

        # Gaussian copula: rank agents by s = rho*z + sqrt(1-rho^2)*eps and give rank k the k-th income.
        log_g = t["log_age"][age_g] + t["log_sex"][sex] + t["log_occ"][occ]
        z = (log_g - t["index_mean"]) / t["index_sd"]
        s = rho * z + math.sqrt(1.0 - rho * rho) * r_copula.standard_normal(n)
        income = np.empty(n)
        income[np.argsort(s, kind="stable")] = y

        # Persona text: one phrase per (sex, occupation, education) cell, picked by the cell code.
        cells = np.array([
            f"{_SEX_NOUN[x]} {_OCCUPATION_PHRASE[o]} {_EDUCATION_PHRASE[e]}"
            for x in t["sexes"] for o in t["occupations"] for e in t["educations"]
        ], dtype=object)
        cell = (sex.astype(np.int64) * len(t["occupations"]) + occ) * len(t["educations"]) + edu
        persona = _personas(age, cells[cell].tolist(), income)
        type_codes = r_types.permutation(np.repeat(np.arange(len(UTILITY_TYPES)), counts))

        frame = pd.DataFrame({
            "id": np.arange(n, dtype=np.int64),
            "age": age.astype(np.int64),
            "age_group": _categorical(age_g, t["age_groups"], ordered=True),
            "sex": _categorical(sex, t["sexes"]),
            "occupation": _categorical(occ, t["occupations"]),
            "education": _categorical(edu, t["educations"], ordered=True),
            "potential_income": income,
            "skill": income / HOURS_REF,
            "utility_type": _categorical(type_codes, UTILITY_TYPES),
            "persona": persona,
        })
        info = {
            "source": "sample", "n": n, "seed": seed, "stratified": bool(stratified), "rho": rho,
            "utility_mix": dict(zip(UTILITY_TYPES, counts.tolist())),
        }
        return cls(frame, info)

    @classmethod
    def from_skill(
        cls,
        skill: ArrayLike,
        utility_type: str | Sequence[str] | Mapping[str, float] | None = None,
        *,
        seed: int | None = 0,
    ) -> "Population":
        """A population with the given skills and generic personas (demographics ``unknown``).

        Parameters
        ----------
        skill : array_like, shape (n,), finite and > 0 (dollars per year per weekly hour)
        utility_type : None (all egotistical), one type name for all, a sequence of n names, or a
            mix dict as in :meth:`sample` (exact counts, shuffled with ``seed``)
        """
        try:
            v = np.array(skill, dtype=np.float64, ndmin=1)
        except (TypeError, ValueError):
            raise ValueError("skill must be a 1-D array of numbers") from None
        if v.ndim != 1:
            raise ValueError(f"skill must be 1-D, got shape {v.shape}")
        n = _check_n(v.size, "len(skill)")
        bad = ~(np.isfinite(v) & (v > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"skill[{i}]={v[i]} must be finite and > 0")
        if utility_type is None or isinstance(utility_type, Mapping):
            seed = _check_seed(seed)
            types = _utility_types(n, utility_type, np.random.default_rng(seed))
        else:
            types = np.full(n, utility_type) if isinstance(utility_type, str) else np.asarray(utility_type, dtype=str)
            if types.shape != (n,):
                raise ValueError(f"utility_type has shape {types.shape}; expected ({n},) to match skill")
            unknown = ~np.isin(types, UTILITY_TYPES)
            if unknown.any():
                i = int(np.flatnonzero(unknown)[0])
                raise ValueError(f"utility_type[{i}]={str(types[i])!r} is not one of {list(UTILITY_TYPES)}")
        income = v * HOURS_REF
        unknown_cat = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[_UNKNOWN])
        frame = pd.DataFrame({
            "id": np.arange(n, dtype=np.int64),
            "age": pd.array(np.full(n, pd.NA), dtype="Int64"),
            "age_group": unknown_cat, "sex": unknown_cat, "occupation": unknown_cat, "education": unknown_cat,
            "potential_income": income,
            "skill": v,
            "utility_type": pd.Categorical(types, categories=list(UTILITY_TYPES)),
            "persona": _generic_personas(income),
        })
        return cls(frame, {"source": "from_skill", "n": n})

    def subset(self, idx: ArrayLike | slice) -> "Population":
        """The agents selected by ``idx`` (integer positions, boolean mask of length n, or a slice).

        Rows keep their ``id``; the index is reset to 0..m-1.
        """
        if not isinstance(idx, slice):
            idx = np.asarray(idx)
            if idx.dtype == bool and idx.shape != (self.n,):
                raise ValueError(f"idx is a boolean mask of shape {idx.shape}; expected ({self.n},)")
        sub = self.frame.iloc[idx].reset_index(drop=True)
        if len(sub) < 1:
            raise ValueError("idx selects no agents; a population needs n >= 1 agents")
        return Population(sub, {**self.info, "n": len(sub), "subset_of": self.n})

    # ---- views -------------------------------------------------------------------------------

    @property
    def n(self) -> int:
        """Number of agents."""
        return len(self.frame)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def skill(self) -> NDArray[np.float64]:
        """Skill ``v`` = potential income / HOURS_REF, shape (n,), float64, read-only."""
        return self._skill  # type: ignore[attr-defined]

    @property
    def potential_income(self) -> NDArray[np.float64]:
        """Potential annual income at HOURS_REF hours per week, shape (n,), float64 (a copy)."""
        return self._skill * HOURS_REF  # type: ignore[attr-defined]

    @property
    def utility_type(self) -> NDArray[np.str_]:
        """Utility type of each agent, shape (n,), str, read-only."""
        return self._types  # type: ignore[attr-defined]

    @property
    def persona(self) -> list[str]:
        """Persona text of each agent, length n."""
        return self.frame["persona"].tolist()

    def __repr__(self) -> str:
        keys = ("source", "seed", "stratified", "rho")
        extra = "".join(f", {k}={self.info[k]!r}" for k in keys if k in self.info)
        types, counts = np.unique(self._types, return_counts=True)  # type: ignore[attr-defined]
        return f"Population(n={self.n}{extra}, utility_types={dict(zip(types.tolist(), counts.tolist()))})"
