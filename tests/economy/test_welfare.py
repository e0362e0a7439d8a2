"""Social welfare functions, weights and the Gini coefficient, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from economy.constants import HOURS_REF, MIN_WAGE_SKILL, resolve_skill_floor
from economy.population import Population
from economy.welfare import SWFS, WeightDiagnostics, check_swf, gini, social_welfare, weight_diagnostics, welfare_weights


def test_check_swf() -> None:
    assert tuple(SWFS) == ("inverse_skill", "paper", "utilitarian", "rawlsian", "atkinson")
    assert check_swf("paper") == "paper"
    assert check_swf(" Utilitarian ") == "utilitarian"
    with pytest.raises(ValueError, match=r"swf='nash' is not a social welfare function; choose one of \['inverse_skill'"):
        check_swf("nash")
    with pytest.raises(ValueError, match="atkinson"):
        social_welfare([1.0], skill=[1.0], swf="bentham")
    with pytest.raises(ValueError, match="rawlsian"):
        welfare_weights([1.0], "maximin")


# -- weights ------------------------------------------------------------------------------------


def test_inverse_skill_weights_by_hand() -> None:
    # raw (floor 0): 1/v = (0.1, 0.05, 0.025), mean 0.175/3 -> (12/7, 6/7, 3/7)
    g = welfare_weights([10.0, 20.0, 40.0], "inverse_skill", skill_floor=0)
    np.testing.assert_allclose(g, [12 / 7, 6 / 7, 3 / 7], rtol=1e-14)
    assert g.mean() == pytest.approx(1.0, rel=1e-14)


def test_inverse_skill_weights_are_mean_one_and_proportional_to_one_over_skill() -> None:
    v = np.random.default_rng(0).lognormal(6.5, 1.0, 10_000)
    g = welfare_weights(v, "inverse_skill", skill_floor=0)
    assert g.mean() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(g * v, np.full(v.size, (g * v)[0]), rtol=1e-12)
    # ignore income: the weights cannot be gamed through the incomes a schedule induces
    np.testing.assert_array_equal(welfare_weights(v, "inverse_skill", income=v * 7, skill_floor=0), g)
    np.testing.assert_array_equal(welfare_weights(v, "inverse_skill", income=v * 7), welfare_weights(v, "inverse_skill"))


def test_zero_skill_gets_the_largest_finite_weight() -> None:
    # floor 0: 1/v for v > 0 = (0.1, 0.05); the zero-skill agent gets 0.1 -> (0.1, 0.1, 0.05) / (0.25/3)
    np.testing.assert_allclose(welfare_weights([0.0, 10.0, 20.0], "inverse_skill", skill_floor=0), [1.2, 1.2, 0.6], rtol=1e-14)
    np.testing.assert_array_equal(welfare_weights([0.0, 0.0], "inverse_skill", skill_floor=0), [1.0, 1.0])
    # with a floor, skill 0 is simply at the floor: 1/max(v, 15) = (1/15, 1/15, 1/20) -> (8, 8, 6)/(22/3)
    np.testing.assert_allclose(welfare_weights([0.0, 10.0, 20.0], "inverse_skill", skill_floor=15), [12 / 11, 12 / 11, 9 / 11], rtol=1e-14)
    np.testing.assert_array_equal(welfare_weights([0.0, 0.0], "inverse_skill"), [1.0, 1.0])


def test_other_weights_by_hand() -> None:
    v = [3.0, 1.0, 1.0, 2.0]
    np.testing.assert_array_equal(welfare_weights(v, "utilitarian"), np.ones(4))
    np.testing.assert_array_equal(welfare_weights(v, "rawlsian"), [0.0, 2.0, 2.0, 0.0])
    # paper, floor 0: 1/max(z, 1) = (1, 1, 0.01, 0.5); mean 2.51/4
    np.testing.assert_allclose(
        welfare_weights(v, "paper", income=[0.0, 0.5, 100.0, 2.0], skill_floor=0), np.array([1, 1, 0.01, 0.5]) * 4 / 2.51, rtol=1e-14
    )
    # floored: the skill floor 0.05 is an income floor 0.05*40 = 2 -> 1/max(z, 2) = (0.5, 0.5, 0.01, 0.5); mean 1.51/4
    np.testing.assert_allclose(
        welfare_weights(v, "paper", income=[0.0, 0.5, 100.0, 2.0], skill_floor=0.05),
        np.array([0.5, 0.5, 0.01, 0.5]) * 4 / 1.51, rtol=1e-14,
    )
    # atkinson, eps = 1: x**-1 of utility (1, 4) -> (1, 0.25), mean 0.625 -> (1.6, 0.4); u below $1 clipped
    np.testing.assert_allclose(welfare_weights([1, 1], "atkinson", utility=[0.2, 4.0]), [1.6, 0.4], rtol=1e-14)
    # eps = 2 on consumption (1, 2): (1, 0.25) -> same; falls back to consumption, then income
    np.testing.assert_allclose(
        welfare_weights([1, 1], "atkinson", consumption=[1.0, 2.0], atkinson_epsilon=2.0), [1.6, 0.4], rtol=1e-14
    )
    np.testing.assert_allclose(welfare_weights([1, 1], "atkinson", income=[1.0, 4.0]), [1.6, 0.4], rtol=1e-14)
    # utility takes precedence over consumption
    np.testing.assert_allclose(
        welfare_weights([1, 1], "atkinson", utility=[1.0, 4.0], consumption=[5.0, 5.0]), [1.6, 0.4], rtol=1e-14
    )
    # large eps does not underflow to 0/0
    g = welfare_weights([1, 1, 1], "atkinson", utility=[1e3, 1e6, 1e9], atkinson_epsilon=200.0)
    np.testing.assert_allclose(g, [3.0, 0.0, 0.0], atol=1e-12)


def test_weights_need_their_inputs() -> None:
    with pytest.raises(ValueError, match=r"swf='paper' weights by pre-tax income: pass income"):
        welfare_weights([1.0, 2.0], "paper")
    with pytest.raises(ValueError, match=r"swf='atkinson' weights need utility, consumption or income"):
        welfare_weights([1.0, 2.0], "atkinson")
    with pytest.raises(ValueError, match=r"income has 1 entries but there are 2 agents"):
        welfare_weights([1.0, 2.0], "paper", income=[1.0])
    with pytest.raises(ValueError, match=r"skill\[1\]=-2 is outside \[0, inf\)"):
        welfare_weights([1.0, -2.0], "inverse_skill")
    with pytest.raises(ValueError, match=r"atkinson_epsilon=-1 is outside \[0, inf\)"):
        welfare_weights([1.0], "atkinson", utility=[1.0], atkinson_epsilon=-1)


# -- social welfare -----------------------------------------------------------------------------


def test_social_welfare_by_hand() -> None:
    u = [1.0, 2.0, 3.0]
    v = [10.0, 20.0, 40.0]
    # inverse_skill, floor 0: mean((12/7)*1 + (6/7)*2 + (3/7)*3) = (33/7)/3 = 11/7
    assert social_welfare(u, skill=v, skill_floor=0) == pytest.approx(11 / 7, rel=1e-14)
    # every skill under the default floor (377): equal weights, the plain mean
    assert social_welfare(u, skill=v) == pytest.approx(2.0, rel=1e-14)
    assert social_welfare(u, swf="utilitarian") == pytest.approx(2.0)
    assert social_welfare([5.0, -3.0, 7.0], swf="rawlsian") == -3.0


def test_paper_welfare_by_hand_on_three_agents() -> None:
    # floor 0, the reference: sum(u / max(z, 1)) = 10/1 + 20/2 + 30/100 = 20.3 (the zero earner has weight 1)
    assert social_welfare([10.0, 20.0, 30.0], income=[0.0, 2.0, 100.0], swf="paper", skill_floor=0) == pytest.approx(20.3, rel=1e-14)
    # default floor: income floor 377*40 = 15,080 -> (10 + 20 + 30)/15,080
    assert social_welfare([10.0, 20.0, 30.0], income=[0.0, 2.0, 100.0], swf="paper") == pytest.approx(60 / 15_080, rel=1e-14)


def test_atkinson_by_hand() -> None:
    u = [1.0, 4.0, 16.0]
    assert social_welfare(u, swf="atkinson") == pytest.approx(4.0, rel=1e-14)  # geometric mean
    # eps = 2: harmonic mean 3 / (1 + 1/4 + 1/16) = 3 / 1.3125
    assert social_welfare(u, swf="atkinson", atkinson_epsilon=2.0) == pytest.approx(3 / 1.3125, rel=1e-14)
    # eps = 0: mean of utility clipped at $1: (1, 3) -> 2
    assert social_welfare([0.5, 3.0], swf="atkinson", atkinson_epsilon=0.0) == pytest.approx(2.0, rel=1e-14)
    # equal utilities: every epsilon gives that utility; huge spreads neither overflow nor underflow
    for eps in (0.0, 0.5, 1.0, 3.0, 50.0):
        assert social_welfare([7.0, 7.0], swf="atkinson", atkinson_epsilon=eps) == pytest.approx(7.0, rel=1e-12)
        assert np.isfinite(social_welfare([1.0, 1e300], swf="atkinson", atkinson_epsilon=eps))
    # inequality aversion: the index falls as eps rises and stays between min and mean
    w = [social_welfare(u, swf="atkinson", atkinson_epsilon=e) for e in (0.0, 0.5, 1.0, 2.0, 10.0)]
    assert w[0] == pytest.approx(7.0) and all(a > b for a, b in zip(w, w[1:])) and w[-1] > 1.0


def test_social_welfare_needs_its_inputs() -> None:
    with pytest.raises(ValueError, match=r"swf='inverse_skill' weights by skill: pass skill"):
        social_welfare([1.0, 2.0])
    with pytest.raises(ValueError, match=r"swf='paper' weights by pre-tax income: pass income"):
        social_welfare([1.0, 2.0], skill=[1.0, 1.0], swf="paper")
    with pytest.raises(ValueError, match=r"skill has 3 entries but there are 2 agents"):
        social_welfare([1.0, 2.0], skill=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"utility\[1\]=nan is outside"):
        social_welfare([1.0, np.nan], swf="utilitarian")
    with pytest.raises(ValueError, match="utility is empty"):
        social_welfare([], swf="utilitarian")


# -- Gini ---------------------------------------------------------------------------------------


def test_gini_by_hand() -> None:
    assert gini([5.0, 5.0, 5.0, 5.0]) == 0.0
    for n in (2, 3, 10, 1000):
        x = np.zeros(n)
        x[-1] = 1.0
        assert gini(x) == pytest.approx((n - 1) / n, rel=1e-12)
    # 2*(1*1 + 2*2 + 3*3 + 4*4)/(4*10) - 5/4 = 0.25, in any order
    assert gini([4.0, 1.0, 3.0, 2.0]) == pytest.approx(0.25, rel=1e-14)
    assert gini([0.0, 0.0]) == 0.0
    assert gini([3.0]) == 0.0


def test_gini_matches_the_mean_absolute_difference() -> None:
    x = np.random.default_rng(1).lognormal(10, 1, 500)
    mad = np.abs(x[:, None] - x[None, :]).mean()
    assert gini(x) == pytest.approx(mad / (2 * x.mean()), rel=1e-10)


def test_gini_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"x\[1\]=-1 is outside \[0, inf\)"):
        gini([1.0, -1.0])
    with pytest.raises(ValueError, match="x is empty"):
        gini([])


# -- the skill floor and weight diagnostics -------------------------------------------------------


def test_min_wage_skill_floor_is_the_full_time_federal_minimum_wage() -> None:
    # $7.25/h x 2,080 h = $15,080 a year full-time; skill is income per weekly hour: 15,080 / 40 = 377.
    assert MIN_WAGE_SKILL == 377.0
    assert MIN_WAGE_SKILL * HOURS_REF == pytest.approx(7.25 * 2080, rel=1e-15)
    assert resolve_skill_floor("min_wage") == MIN_WAGE_SKILL and resolve_skill_floor(" None ") == 0.0
    assert resolve_skill_floor(250) == 250.0 and resolve_skill_floor("250") == 250.0
    for bad in (-1.0, float("nan"), float("inf"), "minimum", None):
        with pytest.raises(ValueError, match="skill_floor"):
            resolve_skill_floor(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"skill_floor=-5"):
        welfare_weights([1.0, 2.0], "utilitarian", skill_floor=-5)
    with pytest.raises(ValueError, match=r"skill_floor='low'"):
        social_welfare([1.0, 2.0], swf="rawlsian", skill_floor="low")


def test_floored_weights_by_hand_three_agents() -> None:
    # Skill 100 is under the floor 377: 1/max(v, 377) = (1/377, 1/754, 1/1508) ∝ (4, 2, 1) -> (12/7, 6/7, 3/7)
    v = [100.0, 754.0, 1508.0]
    np.testing.assert_allclose(welfare_weights(v), [12 / 7, 6 / 7, 3 / 7], rtol=1e-14)
    # raw: 1/v ∝ (15.08, 2, 1) -> mean 18.08/3
    np.testing.assert_allclose(welfare_weights(v, skill_floor=0), np.array([15.08, 2, 1]) * 3 / 18.08, rtol=1e-14)
    # welfare: W = mean(g u) = (12/7 * 1 + 6/7 * 2 + 3/7 * 3) / 3 = 11/7
    assert social_welfare([1.0, 2.0, 3.0], skill=v) == pytest.approx(11 / 7, rel=1e-14)
    # the floor ignores rawlsian, utilitarian and atkinson weights
    for swf, kw in (("rawlsian", {}), ("utilitarian", {}), ("atkinson", {"utility": [1.0, 5.0, 9.0]})):
        np.testing.assert_array_equal(welfare_weights(v, swf, **kw), welfare_weights(v, swf, skill_floor=0, **kw))


def test_floor_zero_is_the_old_behaviour_bit_for_bit() -> None:
    pop = Population.sample(1000, seed=0)
    v = pop.skill
    rng = np.random.default_rng(0)
    z = v * rng.uniform(0.0, 60.0, v.size)
    z[:5] = 0.0
    u = rng.normal(30_000.0, 10_000.0, v.size)
    g = 1.0 / v
    g *= 1.0 / g.mean()  # the old code: 1/v scaled to mean 1
    np.testing.assert_array_equal(welfare_weights(v, skill_floor=0), g)
    p = 1.0 / np.maximum(z, 1.0)
    np.testing.assert_array_equal(welfare_weights(v, "paper", income=z, skill_floor=0), p / p.mean())
    # summed by blocks as sum(u/v) / sum(1/v): the same value up to float rounding
    assert social_welfare(u, skill=v, skill_floor=0) == pytest.approx(float(np.dot(g, u) / v.size), rel=1e-13)
    assert social_welfare(u, income=z, swf="paper", skill_floor=0) == float(np.sum(u / np.maximum(z, 1.0)))
    # a floor that binds nobody changes nothing either
    above = v[v >= MIN_WAGE_SKILL]
    np.testing.assert_array_equal(welfare_weights(above), welfare_weights(above, skill_floor=0))


def test_weight_diagnostics_by_hand() -> None:
    d = weight_diagnostics([1.0, 1.0, 2.0])
    assert isinstance(d, WeightDiagnostics) and d.n == 3
    assert d.ess == pytest.approx(16 / 6, rel=1e-15)  # (1+1+2)**2 / (1+1+4)
    assert d.ess_share == pytest.approx(8 / 9, rel=1e-15)
    assert d.top_share == 0.5
    assert d.bottom_1pct_share == 0.5  # 1% of 3 agents is one agent: by default the largest weight
    # ranked by skill instead: the lowest-skill agent holds weight 1 of 4
    assert weight_diagnostics([1.0, 1.0, 2.0], skill=[3.0, 1.0, 2.0]).bottom_1pct_share == 0.25
    # equal weights: ESS = n, whatever the scale; one agent with all the weight: ESS = 1
    e = weight_diagnostics(np.full(250, 7.0))
    assert e.ess == pytest.approx(250.0, rel=1e-12) and e.ess_share == pytest.approx(1.0, rel=1e-12)
    assert e.top_share == pytest.approx(1 / 250) and e.bottom_1pct_share == pytest.approx(3 / 250)  # ceil(2.5) = 3
    one = weight_diagnostics([0.0, 5.0, 0.0, 0.0])
    assert (one.ess, one.top_share, one.bottom_1pct_share) == (1.0, 1.0, 1.0)
    # rawlsian weights: ESS = number of agents tied at the lowest skill
    assert weight_diagnostics(welfare_weights([3.0, 1.0, 1.0, 2.0], "rawlsian")).ess == pytest.approx(2.0)
    for bad, msg in (([], "empty"), ([0.0, 0.0], "all 0"), ([1.0, -1.0], r"weights\[1\]=-1")):
        with pytest.raises(ValueError, match=msg):
            weight_diagnostics(bad)


def test_key_default_weights_rest_on_half_the_agents_at_1000() -> None:
    # Issue 12: raw 1/skill weights rest on a few dozen agents out of 1,000; the minimum-wage floor
    # must bring the effective sample size to >= 50% of the agents.
    pop = Population.sample(1000, seed=0)
    raw = weight_diagnostics(welfare_weights(pop.skill, skill_floor=0), skill=pop.skill)
    floored = weight_diagnostics(welfare_weights(pop.skill), skill=pop.skill)
    assert raw.ess < 50 and raw.top_share > 0.1
    assert floored.ess >= 500, floored
    assert floored.top_share < 0.005 and floored.bottom_1pct_share < 0.05


def test_a_registered_swf_is_used_by_every_caller_with_its_own_welfare():
    # docs/design.md §8.3: a new SWF is a small class. Defined by its weights alone, its welfare is the
    # linear aggregate of those weights (it used to fall through to Atkinson in social_welfare).
    from economy.welfare import SWF, register_swf

    @register_swf
    class TopHeavy(SWF):
        name = "top_heavy_test"

        def weights(self, skill, *, income, utility, consumption, floor, eps):
            g = 1.0 + (skill == skill.max())  # the highest-skill agent counts twice
            return g / g.mean()

    try:
        u, v = np.array([10.0, 20.0, 40.0]), np.array([1.0, 2.0, 3.0])
        g = np.array([1.0, 1.0, 2.0]) / (4.0 / 3.0)
        assert welfare_weights(v, "top_heavy_test") == pytest.approx(g)
        assert social_welfare(u, skill=v, swf="top_heavy_test") == pytest.approx((10 + 20 + 80) / 4.0)
        assert social_welfare(u, skill=v, swf="top_heavy_test") != pytest.approx(social_welfare(u, swf="atkinson"))
        from programs.simulation import load_config

        assert load_config(swf="top_heavy_test").swf == "top_heavy_test"  # the CLIs' configuration knows it
    finally:
        SWFS.pop("top_heavy_test")
    for call in (lambda: welfare_weights(v, "top_heavy_test"), lambda: social_welfare(u, skill=v, swf="top_heavy_test")):
        with pytest.raises(ValueError, match="is not a social welfare function"):
            call()
