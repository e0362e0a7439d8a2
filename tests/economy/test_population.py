"""Tests of economy.population: GB2 income, demographic tables, linked sampling, personas."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from economy.constants import GB2_MEDIAN, HOURS_REF
from economy.population import (
    COLUMNS,
    DATA_DIR,
    UTILITY_TYPES,
    Population,
    demographic_tables,
    gb2_cdf,
    gb2_mean,
    gb2_quantile,
    gb2_sample,
)

# ---------------------------------------------------------------------------------------------
# GB2
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p, expected", [(0.5, 38_100), (0.9, 124_500), (0.99, 361_300)])
def test_gb2_quantile_matches_design_checks(p: float, expected: float) -> None:
    assert gb2_quantile(p) == pytest.approx(expected, rel=2e-3)


def test_gb2_median_agrees_with_constants() -> None:
    assert gb2_quantile(0.5) == pytest.approx(GB2_MEDIAN, rel=1e-12)
    assert gb2_cdf(GB2_MEDIAN) == pytest.approx(0.5, abs=1e-12)


def test_gb2_cdf_inverts_quantile_including_tails() -> None:
    p = np.array([1e-9, 1e-6, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1 - 1e-6, 1 - 1e-9])
    np.testing.assert_allclose(gb2_cdf(gb2_quantile(p)), p, rtol=1e-9, atol=1e-13)
    # The quantile is strictly increasing, also deep in the upper tail.
    assert np.all(np.diff(gb2_quantile(p)) > 0)


def test_gb2_edges_shapes_and_scalars() -> None:
    assert gb2_quantile(0.0) == 0.0
    assert gb2_quantile(1.0) == np.inf
    assert gb2_cdf(0.0) == 0.0 and gb2_cdf(-5.0) == 0.0 and gb2_cdf(np.inf) == 1.0
    assert isinstance(gb2_quantile(0.3), float) and isinstance(gb2_cdf(30_000.0), float)
    grid = np.full((2, 3), 0.5)
    assert gb2_quantile(grid).shape == (2, 3) and gb2_cdf(grid * 1e5).shape == (2, 3)


@pytest.mark.parametrize("p", [-0.1, 1.5, np.nan])
def test_gb2_quantile_rejects_p_outside_unit_interval(p: float) -> None:
    with pytest.raises(ValueError, match=r"p=.* is outside \[0, 1\]"):
        gb2_quantile([0.5, p])


def test_gb2_analytic_mean() -> None:
    # mu * B(nu + 1/sigma, tau - 1/sigma) / B(nu, tau)
    assert gb2_mean() == pytest.approx(59_250, rel=1e-3)
    # Independent check: the mean is the integral of the quantile function; midpoint rule on 1e6
    # strata (the Pareto tail, index 2.36, beyond the last stratum adds < 0.1%).
    n = 1_000_000
    assert gb2_quantile((np.arange(n) + 0.5) / n).mean() == pytest.approx(gb2_mean(), rel=2e-3)


def test_gb2_gini_is_about_053() -> None:
    n = 200_000
    y = gb2_quantile((np.arange(n) + 0.5) / n)  # sorted
    gini = 2 * np.sum(np.arange(1, n + 1) * y) / (n * y.sum()) - (n + 1) / n
    assert gini == pytest.approx(0.53, abs=0.01)


def test_gb2_sample_quantiles_match_analytic() -> None:
    y = gb2_sample(200_000, np.random.default_rng(7))
    assert y.shape == (200_000,) and y.dtype == np.float64 and np.all(y > 0)
    for p, tol in [(0.1, 0.02), (0.25, 0.02), (0.5, 0.02), (0.75, 0.02), (0.9, 0.02), (0.99, 0.05)]:
        assert np.quantile(y, p) == pytest.approx(gb2_quantile(p), rel=tol), p
    assert stats.kstest(y, gb2_cdf).statistic < 0.005
    np.testing.assert_array_equal(gb2_sample(10, 3), gb2_sample(10, np.random.default_rng(3)))


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def test_every_table_names_its_source_and_reads_with_comment() -> None:
    files = sorted(DATA_DIR.glob("*.csv"))
    assert {f.stem for f in files} == {
        "age_shares", "median_weekly_earnings", "sex_shares", "occupation_by_sex", "education",
    }
    for f in files:
        assert f.read_text().startswith("# source: "), f.name
    t = demographic_tables()
    assert t["age_shares"]["share_percent"].sum() == pytest.approx(100.2)
    assert t["education"]["share_percent"].sum() == pytest.approx(99.0)
    assert t["occupation_by_sex"][["male_percent", "female_percent"]].sum().tolist() == pytest.approx([100.1, 100.1])
    earn = t["median_weekly_earnings"].set_index("group")["median_weekly_usd"]
    assert (earn["all"], earn["16-19"], earn["45-54"], earn["male"], earn["female"]) == (1100, 603, 1233, 1181, 993)


# ---------------------------------------------------------------------------------------------
# Population.sample
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big() -> Population:
    return Population.sample(100_000, seed=11)


def test_frame_columns_properties_and_read_only_skill() -> None:
    pop = Population.sample(50, seed=2)
    assert tuple(pop.frame.columns) == COLUMNS
    assert pop.n == len(pop) == 50
    assert pop.frame["id"].tolist() == list(range(50))
    assert pop.skill.dtype == np.float64 and pop.skill.shape == (50,)
    np.testing.assert_allclose(pop.skill, pop.frame["potential_income"].to_numpy() / HOURS_REF, rtol=0)
    with pytest.raises(ValueError):
        pop.skill[0] = 1.0
    assert isinstance(pop.persona, list) and len(pop.persona) == 50 and all(isinstance(s, str) for s in pop.persona)
    assert pop.utility_type.dtype.kind == "U" and set(pop.utility_type) == {"egotistical"}
    with pytest.raises(AttributeError):
        pop.frame = pd.DataFrame()  # frozen


@pytest.mark.parametrize("n", [1, 5, 20, 100])
def test_stratified_sample_has_one_agent_per_quantile_stratum(n: int) -> None:
    pop = Population.sample(n, seed=5)
    strata = np.floor(gb2_cdf(pop.frame["potential_income"].to_numpy()) * n).astype(int)
    np.testing.assert_array_equal(np.sort(strata), np.arange(n))


def test_same_seed_same_population_different_seed_different() -> None:
    a, b, c = Population.sample(200, seed=4), Population.sample(200, seed=4), Population.sample(200, seed=5)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert not np.array_equal(a.skill, c.skill)
    assert not a.frame["age"].equals(c.frame["age"])


def test_demographic_shares_match_tables(big: Population) -> None:
    f = big.frame
    share = lambda col: f[col].value_counts(normalize=True)  # noqa: E731
    age = share("age_group")
    for group, pct in {"16-19": 3.4, "20-24": 8.8, "25-34": 22.2, "35-44": 22.7, "45-54": 19.8,
                       "55-64": 16.3, "65+": 7.0}.items():
        assert age[group] == pytest.approx(pct / 100.2, abs=0.01), group  # renormalised from 100.2
    assert share("sex")["male"] == pytest.approx(0.532, abs=0.01)
    edu = f.loc[f["age"] >= 25, "education"].value_counts(normalize=True)  # the Census table is for 25+
    for level, pct in {"less than high school": 9, "high school graduate": 28, "some college, no degree": 15,
                       "associate degree": 10, "bachelor's degree": 23, "advanced degree": 14}.items():
        assert edu[level] == pytest.approx(pct / 99, abs=0.01), level  # renormalised from 99
    occ = f.groupby("sex", observed=True)["occupation"].value_counts(normalize=True)
    men = {"management, professional, and related": 39.2, "service": 13.0, "sales and office": 14.0,
           "natural resources, construction, and maintenance": 16.0,
           "production, transportation, and material moving": 17.9}
    women = {"management, professional, and related": 47.4, "service": 19.6, "sales and office": 25.2,
             "natural resources, construction, and maintenance": 1.1,
             "production, transportation, and material moving": 6.8}
    for o in men:
        assert occ["male", o] == pytest.approx(men[o] / 100.1, abs=0.01), o
        assert occ["female", o] == pytest.approx(women[o] / 100.1, abs=0.01), o
    bounds = f.groupby("age_group", observed=True)["age"].agg(["min", "max"])
    assert bounds.loc["16-19"].tolist() == [16, 19] and bounds.loc["65+"].tolist() == [65, 74]
    assert f["age"].between(16, 74).all()


def test_education_is_capped_by_age(big: Population) -> None:
    f = big.frame
    level = f["education"].cat.codes
    assert (level[f["age"] < 18] == 0).all()  # less than high school
    assert (level[f["age"] < 20] <= 1).all()
    assert not (f.loc[f["age"] < 25, "education"] == "advanced degree").any()
    assert (f.loc[f["age"] >= 25, "education"] == "advanced degree").any()


def test_income_is_linked_to_demographics(big: Population) -> None:
    med = big.frame.groupby("age_group", observed=True)["potential_income"].median()
    by_sex = big.frame.groupby("sex", observed=True)["potential_income"].median()
    by_occ = big.frame.groupby("occupation", observed=True)["potential_income"].median()
    # BLS full-time medians: 45-54 / 16-19 = 1233/603 = 2.04; men / women = 1181/993 = 1.19.
    assert 1.6 < med["45-54"] / med["16-19"] < 2.4
    assert 1.08 < by_sex["male"] / by_sex["female"] < 1.25
    assert by_occ["management, professional, and related"] > 1.5 * by_occ["service"]


def test_rho_zero_unlinks_income() -> None:
    f = Population.sample(100_000, seed=11, rho=0.0).frame
    med = f.groupby("age_group", observed=True)["potential_income"].median()
    by_sex = f.groupby("sex", observed=True)["potential_income"].median()
    assert med["45-54"] / med["16-19"] == pytest.approx(1.0, abs=0.1)
    assert by_sex["male"] / by_sex["female"] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("stratified", [True, False])
def test_linking_keeps_the_gb2_marginal_exact(stratified: bool) -> None:
    pops = [Population.sample(5_000, seed=9, stratified=stratified, rho=r) for r in (0.0, 0.3, 0.6)]
    incomes = [np.sort(p.frame["potential_income"].to_numpy()) for p in pops]
    # Same draws, only re-ranked: the multiset of incomes does not depend on rho ...
    np.testing.assert_array_equal(incomes[0], incomes[1])
    np.testing.assert_array_equal(incomes[0], incomes[2])
    # ... and neither do the demographics.
    for col in ("age", "sex", "occupation", "education"):
        assert pops[0].frame[col].equals(pops[2].frame[col])
    # rho does move who earns what.
    assert not np.array_equal(pops[0].skill, pops[1].skill)


def test_linked_non_stratified_sample_is_gb2(big: Population) -> None:
    y = Population.sample(100_000, seed=12, stratified=False).frame["potential_income"].to_numpy()
    assert stats.kstest(y, gb2_cdf).statistic < 0.006
    # Stratified: the largest gap between empirical and GB2 cdf is at most one stratum (1/n).
    assert stats.kstest(big.frame["potential_income"].to_numpy(), gb2_cdf).statistic <= 1 / 100_000


def test_persona_text_is_deterministic_and_matches_fields() -> None:
    pop = Population.sample(30, seed=3)
    assert pop.persona == Population.sample(30, seed=3).persona
    noun = {"male": "man", "female": "woman"}
    for row in pop.frame.itertuples():
        assert row.persona.startswith(f"You are a {row.age}-year-old {noun[row.sex]} working in {row.occupation} occupations ")
        m = re.search(r"earning about \$([\d,]+) a year at 40 hours a week\.$", row.persona)
        assert m, row.persona
        assert abs(int(m.group(1).replace(",", "")) - row.potential_income) <= 500


def test_persona_education_phrases() -> None:
    f = Population.sample(2_000, seed=1).frame
    phrase = {"less than high school": "without a high school diploma",
              "high school graduate": "with a high school diploma",
              "some college, no degree": "with some college but no degree",
              "associate degree": "with an associate degree",
              "bachelor's degree": "with a bachelor's degree",
              "advanced degree": "with an advanced degree"}
    for edu, text in phrase.items():
        sub = f.loc[f["education"] == edu, "persona"]
        assert len(sub) > 0 and sub.str.contains(text + ", earning", regex=False).all(), edu


@pytest.mark.parametrize(
    "n, mix, expected",
    [
        (10, {"egotistical": 0.5, "altruistic": 0.3, "adversarial": 0.2}, (5, 3, 2)),
        (7, {"egotistical": 1, "altruistic": 1, "adversarial": 1}, (3, 2, 2)),  # tie: first type
        (100, {"egotistical": 0.333, "altruistic": 0.333, "adversarial": 0.334}, (33, 33, 34)),
        (3, {"altruistic": 2.0}, (0, 3, 0)),
        (5, None, (5, 0, 0)),
    ],
)
def test_utility_mix_counts_are_exact(n: int, mix: dict | None, expected: tuple[int, int, int]) -> None:
    types = Population.sample(n, seed=0, utility_mix=mix).utility_type
    assert tuple(int((types == t).sum()) for t in UTILITY_TYPES) == expected


def test_utility_types_are_shuffled_with_the_seed() -> None:
    mix = {"egotistical": 0.5, "altruistic": 0.5}
    a = Population.sample(100, seed=1, utility_mix=mix).utility_type
    assert np.array_equal(a, Population.sample(100, seed=1, utility_mix=mix).utility_type)
    assert not np.array_equal(a, np.sort(a))  # not in blocks


@pytest.mark.parametrize("n", [0, -3, 2.5, "10", True, None])
def test_bad_n_raises(n: object) -> None:
    with pytest.raises(ValueError, match=re.escape(f"n={n!r} must be an integer >= 1")):
        Population.sample(n)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(utility_mix={"selfish": 1.0}), "utility_mix['selfish'] is not a utility type"),
        (dict(utility_mix={"egotistical": 1.0, "altruistic": -0.1}), "utility_mix['altruistic']=-0.1"),
        (dict(utility_mix={"egotistical": float("nan")}), "utility_mix['egotistical']=nan"),
        (dict(utility_mix={"egotistical": 0.0}), "sums to 0"),
        (dict(utility_mix=[0.5, 0.5]), "utility_mix="),
        (dict(rho=1.0), r"rho=1.0 is outside [0, 1)"),
        (dict(rho=-0.1), r"rho=-0.1 is outside [0, 1)"),
        (dict(seed=-1), "seed=-1 must be a non-negative integer"),
        (dict(stratified="yes"), "stratified='yes'"),
    ],
)
def test_bad_sample_inputs_raise_naming_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Population.sample(10, **kwargs)


def test_seed_none_gives_fresh_populations() -> None:
    assert not np.array_equal(Population.sample(50, seed=None).skill, Population.sample(50, seed=None).skill)


# ---------------------------------------------------------------------------------------------
# from_skill, subset
# ---------------------------------------------------------------------------------------------


def test_from_skill_round_trip_and_generic_personas() -> None:
    pop = Population.from_skill([1290.0, 86.4, 30_864.175])  # $51,600, $3,456, $1,234,567 a year
    np.testing.assert_array_equal(pop.skill, [1290.0, 86.4, 30_864.175])
    np.testing.assert_allclose(pop.frame["potential_income"], [51_600, 3_456, 1_234_567])
    assert pop.persona == [
        "You are a worker earning about $52,000 a year at 40 hours a week.",
        "You are a worker earning about $3,500 a year at 40 hours a week.",
        "You are a worker earning about $1,235,000 a year at 40 hours a week.",
    ]
    assert tuple(pop.frame.columns) == COLUMNS
    assert (pop.frame["sex"] == "unknown").all() and pop.frame["age"].isna().all()
    assert pop.utility_type.tolist() == ["egotistical"] * 3


def test_from_skill_utility_types() -> None:
    assert Population.from_skill([1.0, 2.0], "altruistic").utility_type.tolist() == ["altruistic"] * 2
    assert Population.from_skill([1.0, 2.0], ["adversarial", "egotistical"]).utility_type.tolist() == [
        "adversarial", "egotistical"]
    mixed = Population.from_skill(np.ones(10), {"egotistical": 0.7, "adversarial": 0.3}).utility_type
    assert (mixed == "egotistical").sum() == 7 and (mixed == "adversarial").sum() == 3


@pytest.mark.parametrize(
    "skill, utility_type, message",
    [
        ([], None, "len(skill)=0 must be an integer >= 1"),
        ([100.0, 0.0], None, "skill[1]=0.0 must be finite and > 0"),
        ([100.0, np.inf], None, "skill[1]=inf must be finite and > 0"),
        ([[1.0, 2.0]], None, "skill must be 1-D"),
        ([1.0, 2.0], "selfish", "utility_type[0]='selfish' is not one of"),
        ([1.0, 2.0], ["egotistical"], "utility_type has shape (1,)"),
        ([1.0, 2.0], {"selfish": 1}, "utility_mix['selfish']"),
    ],
)
def test_from_skill_rejects_bad_inputs(skill: list, utility_type: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Population.from_skill(skill, utility_type)  # type: ignore[arg-type]


def test_subset_keeps_ids_and_fields() -> None:
    pop = Population.sample(20, seed=8, utility_mix={"egotistical": 0.5, "altruistic": 0.5})
    sub = pop.subset([3, 7, 11])
    assert sub.n == 3 and sub.frame["id"].tolist() == [3, 7, 11]
    np.testing.assert_array_equal(sub.skill, pop.skill[[3, 7, 11]])
    assert sub.persona == [pop.persona[i] for i in (3, 7, 11)]
    mask = pop.utility_type == "altruistic"
    assert set(pop.subset(mask).utility_type) == {"altruistic"} and pop.subset(mask).n == 10
    assert pop.subset(slice(0, 5)).n == 5
    with pytest.raises(ValueError, match="selects no agents"):
        pop.subset([])
    with pytest.raises(ValueError, match=r"boolean mask of shape \(3,\)"):
        pop.subset(np.ones(3, dtype=bool))
