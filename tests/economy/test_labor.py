"""Rational labor supply: closed forms by hand, bunching, brute force, grid variant, validation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betaincinv

from economy.constants import DELTA, GB2_MEDIAN, GB2_MU, GB2_NU, GB2_SIGMA, GB2_TAU, KAPPA, KAPPA_PAPER, MAX_HOURS
from economy.labor import _all_candidates, best_response, labor_utility
from economy.tax import TaxSchedule

US_2024 = TaxSchedule.preset("us_federal_2024")


def gb2_skill(p: np.ndarray) -> np.ndarray:
    """Skill at GB2 quantiles p (independent of economy.population, on purpose)."""
    q = betaincinv(GB2_NU, GB2_TAU, p)
    return GB2_MU * (q / (1 - q)) ** (1 / GB2_SIGMA) / 40.0


def random_schedule(rng: np.random.Generator, kind: int) -> TaxSchedule:
    k = int(rng.integers(1, 8))
    cutoffs = np.concatenate(([0.0], np.sort(rng.choice(np.arange(1_000, 400_000, 500), k - 1, replace=False))))
    if kind == 0:
        rates = rng.uniform(0, 1, k)  # arbitrary: non-convex taxes, jumps over brackets
    elif kind == 1:
        rates = np.sort(rng.uniform(0, 1, k))  # convex (US-like): bunching at kinks
    elif kind == 2:
        rates = np.sort(rng.uniform(0, 1, k))[::-1]  # Saez-like, falling rates
    else:
        rates = rng.choice([0.0, 0.3, 0.9, 0.99, 0.999, 1.0], k)  # rates near and at 1
    return TaxSchedule(cutoffs, rates)


# -- closed forms by hand -----------------------------------------------------------------------


def test_flat_tax_interior_optimum_is_the_closed_form() -> None:
    # ((1 - 0.3) * 1000 / (0.02 * 3.5)) ** (1/2.5) = 10_000 ** 0.4 = 10 ** 1.6
    h = best_response([1000.0], TaxSchedule.flat(0.3), kappa=0.02, delta=3.5)
    assert h[0] == pytest.approx(10**1.6, rel=1e-12)
    assert h[0] == pytest.approx(39.81071705534973, rel=1e-12)


def test_interior_optimum_inside_the_12_percent_bracket() -> None:
    # (0.88 * 1000 / 0.07) ** 0.4 = 43.6268... h, i.e. $43,627 a year: inside [11,600, 47,150).
    h = best_response([1000.0], US_2024, kappa=0.02, delta=3.5)
    assert h[0] == pytest.approx(43.62684961877883, rel=1e-12)


def test_median_skill_works_exactly_40_hours_at_zero_tax() -> None:
    h = best_response([GB2_MEDIAN / 40.0], TaxSchedule.none())
    assert h[0] == pytest.approx(40.0, rel=1e-12)
    # the same through the preset name
    assert best_response([GB2_MEDIAN / 40.0], TaxSchedule.none(), kappa="calibrated")[0] == pytest.approx(40.0, rel=1e-12)


def test_bunching_at_a_kink() -> None:
    # 0% up to $50k, 90% above; v = 2000, kappa = 0.02: below the kink the worker would earn
    # 2000*(2000/0.07)**0.4 = $121,172 (> 50k), above it 2000*(200/0.07)**0.4 = $48,239 (< 50k):
    # both sides push towards the kink, so the worker earns exactly $50,000 = 25 h.
    s = TaxSchedule([0, 50_000], [0.0, 0.9])
    h = best_response([2000.0], s, kappa=0.02)
    assert h[0] == pytest.approx(25.0, rel=1e-12)


def test_bunching_below_or_jumping_over_a_confiscatory_bracket() -> None:
    # 100% on [11,600, 47,150), 0% elsewhere, kappa = 0.02.
    # v = 1000 would earn 1000*(1000/0.07)**0.4 = $45,896 untaxed: inside the 100% band, so stop at the
    # first kink, 11.6 h (u = 11,600 - 0.02*11.6**3.5 = 11,494), rather than climb to $47,150 (u < 0).
    # v = 3000 earns 3000*(3000/0.07)**0.4 = $213,667 in the top band, well worth the $35,550 wall.
    s = TaxSchedule([0, 11_600, 47_150], [0.0, 1.0, 0.0])
    h = best_response([1000.0, 3000.0], s, kappa=0.02)
    assert h[0] == pytest.approx(11.6, rel=1e-12)
    assert h[1] == pytest.approx((3000 / 0.07) ** 0.4, rel=1e-12)


def test_cap_and_corner_cases() -> None:
    none = TaxSchedule.none()
    # KAPPA_PAPER: the median worker wants ((952.4)/(0.0005*3.5))**0.4 ~ 196 h -> capped at 100.
    assert best_response([GB2_MEDIAN / 40.0], none, kappa="paper")[0] == 100.0
    assert best_response([GB2_MEDIAN / 40.0], none, kappa=KAPPA_PAPER, max_hours=60)[0] == 60.0
    assert best_response([0.0, 0.0], US_2024).tolist() == [0.0, 0.0]
    assert best_response([5000.0], TaxSchedule.flat(1.0))[0] == 0.0
    assert best_response(np.zeros(0), US_2024).shape == (0,)
    assert best_response(np.float64(1000.0), US_2024).shape == (1,)


def test_kappa_paper_puts_most_median_agents_at_the_cap() -> None:
    v = gb2_skill(np.linspace(0.25, 0.75, 101))  # the middle half of the distribution
    h = best_response(v, US_2024, kappa="paper")
    assert np.mean(h == 100.0) >= 0.9
    h_cal = best_response(v, US_2024)
    assert np.all(h_cal < 60) and np.median(h_cal) == pytest.approx(38.0, abs=1.0)


# -- exactness against brute force ----------------------------------------------------------------


def test_never_worse_than_a_fine_grid_on_random_schedules() -> None:
    rng = np.random.default_rng(7)
    g = np.arange(0, 100.0005, 0.001)  # 100,001 hours
    for trial in range(24):
        s = random_schedule(rng, trial % 4)
        kappa = [KAPPA, KAPPA_PAPER, 0.005][trial % 3]
        v = np.concatenate([
            gb2_skill(rng.uniform(0.001, 0.999, 24)),
            s.cutoffs[1:] / rng.uniform(15, 95, s.n_brackets - 1),  # agents whose optimum sits near a kink
            [1e-3, 1e5],
        ])
        u = labor_utility(v, best_response(v, s, kappa=kappa), s, kappa=kappa)
        u_grid = np.max(labor_utility(v[:, None], g[None, :], s, kappa=kappa), axis=1)
        assert np.all(u >= u_grid - 1e-9 * np.maximum(np.abs(u_grid), 1.0)), (s, kappa)


def test_agrees_with_the_plain_all_candidates_argmax() -> None:
    rng = np.random.default_rng(11)
    for trial in range(400):
        s = random_schedule(rng, trial % 4)
        kappa, delta = [(KAPPA, DELTA), (KAPPA_PAPER, DELTA), (0.01, 2.0), (0.003, 5.0)][trial % 4]
        v = np.concatenate([gb2_skill(rng.uniform(0.0005, 0.9995, 200)), s.cutoffs[1:] / 40.0, [0.0]])
        h = best_response(v, s, kappa=kappa, delta=delta)
        assert np.all((h >= 0) & (h <= MAX_HOURS))
        ref = _all_candidates(v, s, kappa, delta, MAX_HOURS)
        u = labor_utility(v, h, s, kappa=kappa, delta=delta)
        u_ref = labor_utility(v, ref, s, kappa=kappa, delta=delta)
        np.testing.assert_allclose(u, u_ref, rtol=1e-9, atol=1e-9)


def test_income_is_non_decreasing_in_skill_for_any_schedule() -> None:
    # Single crossing: with u = z - T(z) - kappa*(z/v)**delta a higher skill never earns less.
    rng = np.random.default_rng(3)
    v = np.sort(gb2_skill(rng.uniform(0.001, 0.999, 2000)))
    for trial in range(40):
        s = random_schedule(rng, trial % 4)
        z = v * best_response(v, s)
        assert np.all(np.diff(z) >= -1e-9 * z[1:])


def test_hours_do_not_increase_with_a_flat_rate() -> None:
    v = gb2_skill(np.array([0.01, 0.1, 0.5, 0.9, 0.99, 0.9999]))
    hours = np.array([best_response(v, TaxSchedule.flat(r)) for r in np.linspace(0, 1, 41)])
    assert np.all(np.diff(hours, axis=0) <= 0)
    assert np.all(hours[-1] == 0)


def test_large_population_matches_a_small_one() -> None:
    rng = np.random.default_rng(5)
    v = gb2_skill(rng.uniform(0.0001, 0.9999, 200_000))
    s = US_2024.with_rates([0.956, 0.80, 0.63, 0.546, 0.533, 0.518, 0.502])
    h = best_response(v, s)
    np.testing.assert_array_equal(h[:100], best_response(v[:100], s))


# -- grid variant ------------------------------------------------------------------------------


def test_grid_variant_returns_the_grid_argmax() -> None:
    rng = np.random.default_rng(2)
    grid = np.arange(0, 101, 10)
    v = gb2_skill(rng.uniform(0.001, 0.999, 300))
    for s in (US_2024, TaxSchedule([0, 50_000, 150_000], [0.1, 0.9, 0.2])):
        h = best_response(v, s, grid=grid)
        assert np.all(np.isin(h, grid))
        u_grid = labor_utility(v[:, None], grid[None, :], s)
        np.testing.assert_array_equal(h, grid[np.argmax(u_grid, axis=1)])
        # the exact optimum is at least as good as the best grid point
        assert np.all(labor_utility(v, best_response(v, s), s) >= u_grid.max(axis=1) - 1e-9)


def test_grid_variant_chunks_fine_grids_and_breaks_ties_low() -> None:
    g = np.arange(0, 100.0001, 0.01)
    v = gb2_skill(np.linspace(0.01, 0.99, 1000))
    h = best_response(v, US_2024, grid=g)
    u = labor_utility(v[:, None], g[None, :], US_2024)
    np.testing.assert_array_equal(h, g[np.argmax(u, axis=1)])
    # rate 100% everywhere: every grid point but 0 is strictly worse; zero skill: all tie at 0
    assert best_response([1000.0], TaxSchedule.flat(1.0), grid=[50, 0, 100])[0] == 0.0
    assert best_response([0.0], US_2024, grid=[30, 20])[0] == 20.0


# -- utility and validation ----------------------------------------------------------------------


def test_labor_utility_by_hand() -> None:
    # v = 1000, 40 h: z = 40,000, T = 4,568 (2024), cost = 0.01 * 40**3 = 640 (delta = 3), rebate 100.
    u = labor_utility([1000.0], [40.0], US_2024, 100.0, kappa=0.01, delta=3.0)
    assert u[0] == pytest.approx(40_000 - 4_568 + 100 - 640, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"skill": [100.0, -1.0]}, r"skill\[1\]=-1 is outside \[0, inf\)"),
        ({"skill": [np.nan]}, r"skill\[0\]=nan is outside \[0, inf\)"),
        ({"skill": [np.inf]}, r"skill\[0\]=inf is outside"),
        ({"skill": [[1.0]]}, r"skill must be one-dimensional"),
        ({"max_hours": 0}, r"max_hours=0 is outside \(0, inf\)"),
        ({"delta": 1.0}, r"delta=1.0 is outside \(1, inf\)"),
        ({"kappa": "lazy"}, r"kappa='lazy' is not a preset"),
        ({"kappa": -1.0}, r"kappa=-1.0 must be > 0"),
        ({"grid": [0, 50, 101]}, r"grid\[2\]=101 is outside \[0, 100\]"),
        ({"grid": []}, r"grid must be a non-empty"),
        ({"schedule": "us_federal_2024"}, r"schedule must be a TaxSchedule"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs: dict, message: str) -> None:
    args = {"skill": [1000.0], "schedule": US_2024, **kwargs}
    skill, schedule = args.pop("skill"), args.pop("schedule")
    with pytest.raises(ValueError, match=message):
        best_response(skill, schedule, **args)


def test_labor_utility_rejects_negative_hours() -> None:
    with pytest.raises(ValueError, match=r"hours\[1\]=-2 is outside \[0, inf\)"):
        labor_utility([1.0, 2.0], [1.0, -2.0], US_2024)


# -- negative marginal rates (a wage subsidy) ----------------------------------------------------


def test_best_response_under_a_negative_rate_by_hand() -> None:
    # u = (1 - tau) v l - kappa l**3 with tau = -0.2, kappa = 0.01, v = 40: l* = sqrt(1.2*40/0.03) = 40 h,
    # more than the sqrt(40/0.03) = 36.51 h the same worker chooses untaxed.
    sub = TaxSchedule([0], [-0.2], min_rate=-1.0)
    assert best_response([40.0], sub, kappa=0.01, delta=3.0)[0] == pytest.approx(40.0, rel=1e-12)
    assert best_response([40.0], TaxSchedule.none(), kappa=0.01, delta=3.0)[0] == pytest.approx((40 / 0.03) ** 0.5)


def test_best_response_bunches_at_the_end_of_a_subsidised_range() -> None:
    # Subsidy of 20% up to $1,500, no tax above: the subsidised optimum (40 h, $1,600) lies above the
    # cut-off and the unsubsidised one (36.51 h, $1,460.6) below it, so the worker bunches at 1500/40 h.
    s = TaxSchedule([0, 1_500], [-0.2, 0.0], min_rate=-1.0)
    assert best_response([40.0], s, kappa=0.01, delta=3.0)[0] == pytest.approx(37.5, rel=1e-12)


def test_best_response_matches_brute_force_under_an_earned_income_credit() -> None:
    # Phase-in (negative rate), plateau, phase-out, then a lower rate: the kink at the end of the
    # phase-out is non-convex, so some workers have two local optima.
    s = TaxSchedule([0, 12_390, 22_720, 49_084], [-0.14, 0.20, 0.3598, 0.20], min_rate=-1.0)
    skill = np.geomspace(20.0, 5_000.0, 400)
    h = best_response(skill, s)
    np.testing.assert_allclose(h, _all_candidates(skill, s, KAPPA, DELTA, MAX_HOURS), atol=1e-9)
    grid = np.linspace(0.0, MAX_HOURS, 200_001)
    for v, hv in zip(skill[::7], h[::7]):
        u_grid = labor_utility(np.full(grid.size, v), grid, s)
        u_best = labor_utility([v], [hv], s)[0]
        assert u_best >= u_grid.max() - 1e-6 * max(1.0, abs(u_grid.max()))
