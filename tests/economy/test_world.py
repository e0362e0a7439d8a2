"""The world step: a 3-agent example by hand, budget balance, objectives by type, validation."""

from __future__ import annotations

import numpy as np
import pytest

from economy.constants import GB2_MEDIAN
from economy.labor import best_response
from economy.population import Population
from economy.tax import TaxSchedule
from economy.welfare import gini
from economy.world import Outcome, _gini_of_sorted_consumption, _sorted_consumption, outcome

US_2024 = TaxSchedule.preset("us_federal_2024")

# Three agents at 40 h under the 2024 schedule, kappa = 0.01, delta = 3 (cost 0.01 * 40**3 = 640 each):
#   z = (10,000, 40,000, 200,000)
#   T = (1,000;  1,160 + 12% of 28,400 = 4,568;
#        1,160 + 4,266 + 11,742.5 + 21,942 + 32% of 8,050 = 41,686.5)
#   revenue 47,254.5, rebate 15,751.5, c = (24,751.5, 51,183.5, 174,065), u = c - 640
SKILL = np.array([250.0, 1000.0, 5000.0])
HOURS = np.array([40.0, 40.0, 40.0])
U = np.array([24_111.5, 50_543.5, 173_425.0])


def three(**kw: object) -> Outcome:
    return outcome(SKILL, US_2024, HOURS, kappa=0.01, delta=3.0, **kw)


def test_three_agents_by_hand() -> None:
    o = three(skill_floor=0)
    np.testing.assert_array_equal(o.income, [10_000.0, 40_000.0, 200_000.0])
    np.testing.assert_allclose(o.tax, [1_000.0, 4_568.0, 41_686.5], rtol=1e-14)
    assert o.revenue == pytest.approx(47_254.5, rel=1e-14)
    assert o.rebate == pytest.approx(15_751.5, rel=1e-14)
    np.testing.assert_allclose(o.consumption, [24_751.5, 51_183.5, 174_065.0], rtol=1e-14)
    np.testing.assert_allclose(o.utility, U, rtol=1e-14)
    assert o.mean_hours == 40.0
    assert o.productivity == 250_000.0
    # Gini of c: 2*(24,751.5 + 2*51,183.5 + 3*174,065)/(3*250,000) - 4/3 = 298,627/750,000
    assert o.gini == pytest.approx(298_627 / 750_000, rel=1e-12)
    assert o.equality_x_productivity == pytest.approx(250_000 - 298_627 / 3, rel=1e-12)
    # inverse_skill, floor 0: g = (30, 7.5, 1.5)/13 -> W = (30*u0 + 7.5*u1 + 1.5*u2)/39
    assert o.welfare == pytest.approx(1_362_558.75 / 39, rel=1e-12)
    assert o.swf == "inverse_skill" and o.skill_floor == 0.0
    np.testing.assert_array_equal(o.objective, o.utility)  # a bare skill array: all egotistical
    np.testing.assert_allclose(o.income_share_by_bracket(US_2024), [1 / 3, 1 / 3, 0, 0, 1 / 3, 0, 0])


def test_three_agents_default_floor_by_hand() -> None:
    # Skill 250 is under the minimum-wage floor 377: g ∝ (1/377, 1/1000, 1/5000), W = sum(u/v') / sum(1/v').
    o = three()
    assert o.skill_floor == 377.0
    w = (U[0] / 377 + U[1] / 1000 + U[2] / 5000) / (1 / 377 + 1 / 1000 + 1 / 5000)
    assert o.welfare == pytest.approx(w, rel=1e-12)
    # paper: z = 10,000 is under the income floor 377*40 = 15,080
    paper = three(swf="paper").welfare
    assert paper == pytest.approx(24_111.5 / 15_080 + 1.2635875 + 0.867125, rel=1e-12)
    # the rest of the outcome does not depend on the floor
    np.testing.assert_array_equal(o.utility, three(skill_floor=0).utility)


def test_three_agents_other_swfs() -> None:
    kw = dict(kappa=0.01, delta=3.0)
    assert outcome(SKILL, US_2024, HOURS, "utilitarian", **kw).welfare == pytest.approx(248_080 / 3, rel=1e-12)
    # paper, floor 0: u/z = 2.41115 + 1.2635875 + 0.867125
    assert outcome(SKILL, US_2024, HOURS, "paper", skill_floor=0, **kw).welfare == pytest.approx(4.5418625, rel=1e-12)
    assert outcome(SKILL, US_2024, HOURS, "rawlsian", **kw).welfare == pytest.approx(24_111.5, rel=1e-14)
    atk = outcome(SKILL, US_2024, HOURS, "atkinson", **kw).welfare
    assert atk == pytest.approx(float(np.prod(U) ** (1 / 3)), rel=1e-12)


def test_metrics() -> None:
    m = three().metrics()
    assert list(m) == ["rebate", "welfare", "revenue", "mean_hours", "productivity", "gini", "equality_x_productivity"]
    assert all(type(x) is float for x in m.values())
    assert m["revenue"] == pytest.approx(47_254.5)


def test_objective_by_utility_type() -> None:
    pop = Population.from_skill(SKILL, utility_type=["egotistical", "altruistic", "adversarial"])
    o = outcome(pop, US_2024, HOURS, kappa=0.01, delta=3.0)
    np.testing.assert_allclose(o.objective, [U[0], o.welfare, -o.welfare], rtol=1e-14)
    # the same population again (cached masks) and an all-egotistical one
    np.testing.assert_array_equal(outcome(pop, US_2024, HOURS, kappa=0.01, delta=3.0).objective, o.objective)
    ego = outcome(Population.from_skill(SKILL), US_2024, HOURS, kappa=0.01, delta=3.0)
    np.testing.assert_array_equal(ego.objective, ego.utility)


def test_duck_typed_population_with_bad_types() -> None:
    class Pop:
        skill = SKILL
        utility_type = np.array(["egotistical", "selfless", "adversarial"])

    with pytest.raises(ValueError, match=r"utility_type\[1\]='selfless' is not one of \['egotistical'"):
        outcome(Pop(), US_2024, HOURS)


def test_budget_balance_on_a_census_population() -> None:
    pop = Population.sample(2_000, seed=3)
    for s in (US_2024, US_2024.with_rates([0.9, 0.7, 0.6, 0.5, 0.5, 0.5, 0.5]), TaxSchedule.flat(0.25)):
        o = outcome(pop, s, best_response(pop.skill, s))
        assert o.rebate * pop.n == pytest.approx(o.revenue, rel=1e-12)
        assert o.consumption.sum() == pytest.approx(o.income.sum(), rel=1e-12)
        assert o.revenue == pytest.approx(s.tax(o.income).sum(), rel=1e-12)
        assert o.gini == pytest.approx(gini(o.consumption), abs=1e-12)
        assert 0 < o.gini < 1
        assert o.income_share_by_bracket(s).sum() == pytest.approx(1.0)


def test_no_tax_utilitarian_welfare_is_mean_utility() -> None:
    v = np.array([GB2_MEDIAN / 40, 500.0, 3000.0])
    none = TaxSchedule.none()
    h = best_response(v, none)
    o = outcome(v, none, h, "utilitarian")
    assert o.revenue == 0.0 and o.rebate == 0.0
    np.testing.assert_array_equal(o.consumption, o.income)
    assert o.welfare == pytest.approx(o.utility.mean(), rel=1e-14)
    assert h[0] == pytest.approx(40.0, rel=1e-12)


def test_arrays_are_frozen_copies() -> None:
    hours = HOURS.copy()
    o = outcome(SKILL, US_2024, hours)
    with pytest.raises(ValueError):
        o.hours[0] = 1.0
    hours[0] = 1.0  # the caller's array stays writable and the outcome does not move
    assert o.hours[0] == 40.0
    with pytest.raises(AttributeError):
        o.welfare = 0.0  # type: ignore[misc]


def test_consumption_gini_with_a_cached_skill_order_is_exact() -> None:
    rng = np.random.default_rng(4)
    v = rng.lognormal(6.5, 1, 5_000)
    v.setflags(write=False)
    s = US_2024.with_rates([0.5, 0.1, 0.6, 0.2, 0.7, 0.3, 0.8])
    for hours in (best_response(v, s), rng.uniform(0, 100, v.size)):  # rational (sorted) and random
        c = outcome(v, s, hours).consumption
        assert np.array_equal(_sorted_consumption(c, v), np.sort(c))  # the skill order's sort is np.sort's
        assert _gini_of_sorted_consumption(_sorted_consumption(c, v), c) == pytest.approx(gini(c), rel=1e-12)


@pytest.mark.parametrize(
    "hours, message",
    [
        ([40.0, 120.0, 40.0], r"hours\[1\]=120 is outside \[0, 100\]"),
        ([40.0, 40.0, -1.0], r"hours\[2\]=-1 is outside \[0, 100\]"),
        ([np.nan, 40.0, 40.0], r"hours\[0\]=nan is outside \[0, 100\]"),
        ([40.0, 40.0], r"hours has shape \(2,\) but the population has 3 agents"),
    ],
)
def test_bad_hours_are_rejected(hours: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        outcome(SKILL, US_2024, hours)


def test_other_errors() -> None:
    with pytest.raises(ValueError, match=r"swf='nash' is not a social welfare function"):
        outcome(SKILL, US_2024, HOURS, "nash")
    with pytest.raises(ValueError, match=r"skill\[1\]=-1000 is outside \[0, inf\)"):
        outcome([250.0, -1000.0, 5000.0], US_2024, HOURS)
    with pytest.raises(ValueError, match=r"hours\[0\]=40 is outside \[0, 30\]"):
        outcome(SKILL, US_2024, HOURS, max_hours=30)
    with pytest.raises(ValueError, match="population is empty"):
        outcome(np.zeros(0), US_2024, np.zeros(0))
