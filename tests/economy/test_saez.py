"""Saez (2001) rates: hand-computed brackets, limiting cases, the fixed point and elasticity estimation."""

from __future__ import annotations

import numpy as np
import pytest

from economy.constants import DELTA, GB2_SIGMA, GB2_TAU, KAPPA, MIN_WAGE_SKILL
from economy.saez import PARETO_TAIL_A, estimate_elasticity, saez_rates, saez_schedule
from economy.tax import TaxSchedule


def _gb2_incomes(n: int, seed: int = 0) -> np.ndarray:
    from economy.population import gb2_sample

    return gb2_sample(n, np.random.default_rng(seed))


# -- saez_rates by hand -------------------------------------------------------------------------------
def test_top_rate_pareto_by_hand_a2_e05() -> None:
    # Incomes above b_top = 100: 150 and 250, so m = 200 and a = m/(m - b_top) = 2; weight 0 on them
    # (G = 0 above b_top), so tau_top = 1/(1 + a*e) = 1/(1 + 2*0.5) = 0.5.
    z = [20.0, 60.0, 150.0, 250.0]
    g = [1.0, 1.0, 0.0, 0.0]
    rates = saez_rates(z, g, [0, 100], 0.5)
    assert rates[-1] == pytest.approx(0.5, abs=1e-12)


def test_top_rate_pareto_sample_recovers_alpha() -> None:
    # A stratified Pareto(alpha = 3) tail above b_top = 1000: a = m/(m - b) -> alpha, so with G = 0 the
    # top rate is 1/(1 + 3*0.4) = 0.4545...
    n = 200_000
    p = (np.arange(n) + 0.5) / n
    tail = 1000.0 * (1.0 - p) ** (-1.0 / 3.0)
    z = np.concatenate([np.linspace(1, 999, 1000), tail])
    g = np.concatenate([np.full(1000, 5.0), np.zeros(n)])
    rates = saez_rates(z, g, [0, 500, 1000], 0.4)
    m = tail.mean()
    a = m / (m - 1000.0)
    assert a == pytest.approx(3.0, rel=2e-3)
    assert rates[-1] == pytest.approx(1.0 / (1.0 + a * 0.4), abs=1e-12)
    assert rates[-1] == pytest.approx(1.0 / 2.2, abs=1e-3)


def test_lower_bracket_by_hand_one_fine_bin() -> None:
    # Brackets [0, 100) and [100, inf), one fine bin [0, 100) with midpoint 50. Incomes 25, 75 | 150, 250,
    # weights 2, 1 | 1, 0 (mean 1).
    #   1 - H(50) = share above the bin + half the bin's share = 2/4 + 1/4 = 3/4
    #   h(50) = (2/4) / 100 = 0.005,  a = 50 * 0.005 / 0.75 = 1/3
    #   G(50) = (1 + 0 + (2 + 1)/2) / (2 + 2/2) = 2.5/3 = 5/6
    #   tau = (1 - 5/6) / (1 - 5/6 + (1/3)*0.5) = (1/6) / (1/3) = 0.5
    # Top: m = 200, a = 2; G = income-above-b_top weighted mean weight = (1*50 + 0*150)/200 = 0.25;
    #   tau = 0.75 / (0.75 + 2*0.5) = 3/7.
    rates = saez_rates([25.0, 75.0, 150.0, 250.0], [2.0, 1.0, 1.0, 0.0], [0, 100], 0.5, n_bins=1)
    np.testing.assert_allclose(rates, [0.5, 3.0 / 7.0], atol=1e-12)


def test_weights_are_normalised_to_mean_one() -> None:
    z, g = [25.0, 75.0, 150.0, 250.0], np.array([2.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(
        saez_rates(z, 7.5 * g, [0, 100], 0.5, n_bins=1), saez_rates(z, g, [0, 100], 0.5, n_bins=1), atol=1e-15
    )


def test_bracket_rate_is_width_weighted_mean_of_fine_rates() -> None:
    # Uniform incomes on [0, 1000) plus a tail; two fine bins [0, 500), [500, 1000) and a bracket edge at 250:
    # bracket [0, 250) lies in fine bin 0 and [250, 1000) is 1/3 bin 0 and 2/3 bin 1.
    z = np.concatenate([np.arange(0.5, 1000.0, 1.0), [1500.0, 2500.0]])
    g = np.where(z < 500, 2.0, 0.1)
    one = saez_rates(z, g, [0, 500, 1000], 0.4, n_bins=2)  # the two fine rates
    two = saez_rates(z, g, [0, 250, 1000], 0.4, n_bins=2)
    assert two[0] == pytest.approx(one[0], abs=1e-12)
    assert two[1] == pytest.approx(one[0] / 3 + 2 * one[1] / 3, abs=1e-12)


def test_utilitarian_weights_give_zero_rates() -> None:
    z = _gb2_incomes(20_000)
    np.testing.assert_array_equal(saez_rates(z, np.ones_like(z), "us_federal_2024", 0.4), np.zeros(7))


def test_inverse_income_weights_on_gb2_sanity_band() -> None:
    # DESIGN §3's sanity band (not an oracle): ~[95.6, 80.0, 63.0, 54.6, 53.3, 51.8, 50.2]% on 200,000 draws.
    z = _gb2_incomes(200_000, seed=1)
    rates = saez_rates(z, 1.0 / z, "us_federal_2024", 0.4)
    assert np.all((rates >= 0) & (rates <= 1))
    np.testing.assert_allclose(100 * rates, [95.6, 80.0, 63.0, 54.6, 53.3, 51.8, 50.2], atol=2.5)


def test_inverse_income_weights_on_gb2_fall_with_income() -> None:
    # On the GB2 itself (a quantile-stratified sample, free of sampling noise in the thin brackets) the
    # 1/z-weighted rates fall all the way up: G falls towards 0 and a rises to the Pareto index.
    from economy.population import gb2_quantile

    n = 200_000
    z = gb2_quantile((np.arange(n) + 0.5) / n)
    rates = saez_rates(z, 1.0 / z, "us_federal_2024", 0.4)
    assert np.all(np.diff(rates) < 0), rates
    assert 0.5 < rates[-1] < 0.53  # a(609k) ≈ 2.4 on the GB2: 1/(1 + 2.4*0.4) ≈ 0.51


def test_nobody_above_top_cutoff_uses_gb2_pareto_tail() -> None:
    # No income above b_top = 1000; the highest earners have weight 0, so tau_top = 1/(1 + 2.36*e).
    z = np.linspace(1.0, 900.0, 500)
    g = np.where(z < 800, 1.0, 0.0)
    rates = saez_rates(z, g, [0, 500, 1000], 0.4)
    assert PARETO_TAIL_A == pytest.approx(GB2_SIGMA * GB2_TAU)
    assert rates[-1] == pytest.approx(1.0 / (1.0 + PARETO_TAIL_A * 0.4), abs=1e-12)
    assert 0.5 < rates[-1] < 0.52  # never the reference's a = 10 fallback (which gives 0.2)


def test_flat_bracket_gives_optimal_linear_tax() -> None:
    # One bracket from 0: a = m/(m - 0) = 1 and G is the income-weighted mean weight g_bar, so
    # tau = (1 - g_bar)/(1 - g_bar + e): the optimal linear tax with a lump-sum rebate.
    z = np.array([10.0, 30.0, 60.0])
    g = np.array([2.0, 0.5, 0.5])
    g_bar = float(np.dot(g, z) / z.sum())  # (20 + 15 + 30)/100 = 0.65
    rates = saez_rates(z, g, "flat", 0.4)
    assert rates == pytest.approx([(1 - g_bar) / (1 - g_bar + 0.4)], abs=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"elasticity": 0.0}, "elasticity"),
        ({"elasticity": -0.4}, "elasticity"),
        ({"cutoffs": "us_federal_1999"}, "us_federal_1999"),
        ({"weights": [1.0, -1.0, 1.0]}, "weights"),
        ({"weights": [1.0, 1.0]}, "weights"),
        ({"weights": [0.0, 0.0, 0.0]}, "weights"),
        ({"incomes": [1.0, np.nan, 3.0]}, "incomes"),
        ({"n_bins": 0}, "n_bins"),
    ],
)
def test_saez_rates_rejects_bad_inputs(kwargs: dict, match: str) -> None:
    args = {"incomes": [1.0, 2.0, 3.0], "weights": [1.0, 1.0, 1.0], "cutoffs": [0, 2], "elasticity": 0.4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        saez_rates(**args)


# -- elasticity ---------------------------------------------------------------------------------------
def test_estimate_elasticity_recovers_model_elasticity() -> None:
    # Rational incomes of the same agents under two flat rates (interior optima): z = v*l with
    # l = ((1 - tau) v / (kappa*delta))**(1/(delta-1)), so d log z / d log(1 - tau) = 1/(delta - 1) = 0.4.
    from economy.labor import best_response

    skill = np.linspace(200.0, 3000.0, 300)
    z, t = [], []
    for tau in (0.1, 0.4):
        hours = best_response(skill, TaxSchedule.flat(tau), kappa=KAPPA, delta=DELTA)
        assert np.all((hours > 0) & (hours < 100))  # interior, so the elasticity is exact
        z.append(skill * hours)
        t.append(np.full(skill.size, tau))
    e = estimate_elasticity(np.concatenate(z), np.concatenate(t))
    assert e == pytest.approx(1.0 / (DELTA - 1.0), abs=1e-9)


def test_estimate_elasticity_needs_rate_variation() -> None:
    with pytest.raises(ValueError, match="no variation"):
        estimate_elasticity([1.0, 2.0, 3.0], [0.2, 0.2, 0.2])
    with pytest.raises(ValueError, match="at least 2"):
        estimate_elasticity([0.0, 2.0], [0.1, 0.3])
    with pytest.raises(ValueError, match="marginal_rates"):
        estimate_elasticity([1.0, 2.0], [0.1, 1.3])


# -- the fixed point ----------------------------------------------------------------------------------
def test_saez_schedule_utilitarian_is_zero() -> None:
    from economy.population import Population

    pop = Population.sample(200, seed=0)
    s = saez_schedule(pop, "us_federal_2024", swf="utilitarian")
    assert isinstance(s, TaxSchedule)
    np.testing.assert_array_equal(s.rates, np.zeros(7))
    np.testing.assert_array_equal(s.cutoffs, TaxSchedule.preset("us_federal_2024").cutoffs)


@pytest.mark.parametrize("skill_floor, bottom", [(0.0, 0.8), (MIN_WAGE_SKILL, 0.7)])
def test_saez_schedule_is_a_near_fixed_point(skill_floor: float, bottom: float) -> None:
    from economy.labor import best_response
    from economy.population import Population
    from economy.welfare import welfare_weights

    pop = Population.sample(1000, seed=0)
    s, info = saez_schedule(pop, TaxSchedule.preset("us_federal_2024"), return_info=True, skill_floor=skill_floor)
    assert 1 <= info.n_iterations <= 50 and info.elasticity == pytest.approx(0.4)
    assert np.all((s.rates >= 0) & (s.rates <= 1))
    # Progressive at the bottom with 1/v weights (G rises steeply from the bottom), falling at the top;
    # less so at the bottom with the minimum-wage floor (raw: ~92%, floored: ~78%), which flattens G there.
    assert s.rates[0] > bottom and s.rates[0] > s.rates[2] > s.rates[-1] > 0.3
    # Re-estimating on the incomes this schedule induces moves the rates little (on 1,000 agents the map
    # is not continuous: agents jump between kinks, so not to 1e-4).
    z = pop.skill * best_response(pop.skill, s)
    g = welfare_weights(pop.skill, "inverse_skill", income=z, skill_floor=skill_floor)
    again = saez_rates(z, g, s.cutoffs, info.elasticity)
    assert np.max(np.abs(again - s.rates)) < 0.05


def test_saez_schedule_accepts_skill_array_and_cutoff_sequence() -> None:
    skill = np.linspace(100.0, 5000.0, 300)
    a = saez_schedule(skill, [0, 50_000, 150_000])
    b = saez_schedule(skill, TaxSchedule([0, 50_000, 150_000], [0.3, 0.3, 0.3]))
    assert a == b


def test_saez_schedule_rejects_bad_inputs() -> None:
    skill = np.linspace(100.0, 5000.0, 50)
    with pytest.raises(ValueError, match="swf|SWF|nonsense"):
        saez_schedule(skill, "three", swf="nonsense")
    with pytest.raises(ValueError, match="elasticity"):
        saez_schedule(skill, "three", elasticity=0.0)
    with pytest.raises(ValueError, match="us_federal_1999"):
        saez_schedule(skill, "us_federal_1999")
    with pytest.raises(ValueError, match="damping"):
        saez_schedule(skill, "three", damping=1.5)


# -- the skill floor --------------------------------------------------------------------------------
#: saez_schedule(Population.sample(200, seed=0), "three", swf=...) before the skill floor existed.
_OLD_SAEZ_200 = {
    "inverse_skill": [0.7586428988551732, 0.7045878434321985, 0.6205317852824407],
    "paper": [0.7697442627234418, 0.738621549647574, 0.6250182215501778],
}


@pytest.mark.parametrize("swf", ["inverse_skill", "paper"])
def test_saez_honours_the_skill_floor(swf: str) -> None:
    from economy.population import Population

    pop = Population.sample(200, seed=0)
    raw = saez_schedule(pop, "three", swf=swf, skill_floor=0)
    np.testing.assert_allclose(raw.rates, _OLD_SAEZ_200[swf], rtol=1e-12, atol=0)  # floor 0: as before
    floored = saez_schedule(pop, "three", swf=swf)
    assert saez_schedule(pop, "three", swf=swf, skill_floor=MIN_WAGE_SKILL) == floored
    # A binding floor lowers the weight of the poorest, so G falls less steeply and the bottom rate drops.
    assert floored.rates[0] < raw.rates[0] - 0.02
    # A floor nobody is under changes nothing (inverse_skill only: paper floors incomes, which taxes lower).
    if swf == "inverse_skill":
        skill = np.linspace(MIN_WAGE_SKILL, 5000.0, 300)
        assert saez_schedule(skill, "three") == saez_schedule(skill, "three", skill_floor=0)
