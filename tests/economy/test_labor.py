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


# -- analytic cases of the fast path, and the convex closed form ------------------------------------


def test_a_convex_kink_holds_every_skill_between_its_two_thresholds() -> None:
    # delta = 3, so z_k(v) = v * sqrt((1 - tau_k) v / (3 kappa)) = v**1.5 * sqrt(a_k / (3 kappa)). A worker
    # bunches at the kink b iff z_1(v) <= b <= z_0(v), i.e. v in [v_lo, v_hi] with z_0(v_lo) = z_1(v_hi) = b.
    kappa, b, a0, a1 = 0.01, 30_000.0, 0.8, 0.4
    s = TaxSchedule([0, b], [1 - a0, 1 - a1])
    v_lo, v_hi = (b / np.sqrt(a0 / (3 * kappa))) ** (2 / 3), (b / np.sqrt(a1 / (3 * kappa))) ** (2 / 3)
    assert (v_lo, v_hi) == (pytest.approx(323.17, abs=0.01), pytest.approx(407.16, abs=0.01))  # (30,000/sqrt(a/0.03))**(2/3)
    inside = np.geomspace(v_lo * (1 + 1e-9), v_hi * (1 - 1e-9), 101)
    np.testing.assert_allclose(best_response(inside, s, kappa=kappa, delta=3.0), b / inside, rtol=1e-12)
    below, above = np.array([0.5 * v_lo, v_lo * (1 - 1e-6)]), np.array([v_hi * (1 + 1e-6), 1.5 * v_hi])  # 90 h at 1.5 v_hi: under the cap
    np.testing.assert_allclose(best_response(below, s, kappa=kappa, delta=3.0), np.sqrt(a0 * below / (3 * kappa)), rtol=1e-12)
    np.testing.assert_allclose(best_response(above, s, kappa=kappa, delta=3.0), np.sqrt(a1 * above / (3 * kappa)), rtol=1e-12)


def test_a_falling_rate_makes_two_local_optima_compete() -> None:
    # 50% below $10,000, 10% above (non-convex), kappa = 0.01, delta = 3. With l_k = sqrt(a_k v / (3 kappa))
    # the interior value is (2/3) a_k v l_k + d_k: U_0 = sqrt(50/3)/3 * v**1.5 and
    # U_1 = 0.6 sqrt(30) * v**1.5 - 0.4 * 10,000 (the tax 0.5 b = 5,000 at the cut-off, 0.1 b credited back).
    # The worker switches from the lower to the upper optimum at U_0 = U_1, jumping over the cut-off.
    kappa, b = 0.01, 10_000.0
    s = TaxSchedule([0, b], [0.5, 0.1])
    v_star = (0.4 * b / (0.6 * np.sqrt(30) - np.sqrt(50 / 3) / 3)) ** (2 / 3)
    assert v_star == pytest.approx(162.8, abs=0.1)
    l0, l1 = np.sqrt(0.5 * v_star / (3 * kappa)), np.sqrt(0.9 * v_star / (3 * kappa))
    assert v_star * l0 < b < v_star * l1  # both local optima are feasible at the switch
    u0, u1 = labor_utility([v_star, v_star], [l0, l1], s, kappa=kappa, delta=3.0)
    assert u0 == pytest.approx(u1, rel=1e-12)  # indifferent exactly at v*
    below, above = v_star * (1 - 1e-7), v_star * (1 + 1e-7)
    h = best_response([below, above], s, kappa=kappa, delta=3.0)
    assert h[0] == pytest.approx(np.sqrt(0.5 * below / (3 * kappa)), rel=1e-12)
    assert h[1] == pytest.approx(np.sqrt(0.9 * above / (3 * kappa)), rel=1e-12)
    assert below * h[0] < b < above * h[1]  # nobody earns anything near the cut-off


def convex_closed_form(v: np.ndarray, s: TaxSchedule, kappa: float, delta: float, m: float) -> np.ndarray:
    """Best hours under non-decreasing rates: ``min(sum_k (clip(z_k, b_k, b_{k+1}) - b_k), v m) / v``.

    Written here from ``economy.labor``'s docstring lemma, independently of its segment table.
    """
    b, tau = s.cutoffs, s.rates
    upper = np.append(b[1:], np.inf)
    c = ((1 - tau) / (kappa * delta)) ** (1 / (delta - 1))  # l_k = c_k v**p, so z_k = c_k v**(1+p)
    x = v ** (delta / (delta - 1))
    z = sum(np.clip(ck * x, bk, uk) - bk for ck, bk, uk in zip(c, b, upper))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > 0, np.minimum(z / v, m), 0.0)


def random_convex_schedule(rng: np.random.Generator) -> TaxSchedule:
    k = int(rng.integers(1, 9))
    cutoffs = np.concatenate(([0.0], np.sort(rng.choice(np.arange(1_000, 700_000, 250), k - 1, replace=False))))
    rates = np.sort(np.where(rng.uniform(size=k) < 0.2, rng.choice([-0.3, 0.0, 1.0], k), rng.uniform(-0.3, 1, k)))
    return TaxSchedule(cutoffs, rates, min_rate=-0.3)


def test_convex_schedules_follow_the_closed_form_on_many_seeds() -> None:
    # Non-decreasing rates (zero, negative and 100% brackets included): the segment table gives exactly one
    # candidate per skill segment, and its hours are the closed form's, agents at the kinks, at 0 and at the cap included.
    for seed in range(300):
        rng = np.random.default_rng(seed)
        s = random_convex_schedule(rng)
        kappa, delta = [(KAPPA, DELTA), (KAPPA_PAPER, DELTA), (0.01, 3.0), (0.003, 5.0), (0.02, 1.5)][seed % 5]
        m = [MAX_HOURS, 60.0][seed % 2]
        v = np.concatenate([
            gb2_skill(rng.uniform(0.0005, 0.9995, 300)),
            s.cutoffs[1:] / rng.uniform(5, 120, s.n_brackets - 1),  # optima near each kink, some beyond the cap
            [0.0, 1e-3, 1e6],
        ])
        h = best_response(v, s, kappa=kappa, delta=delta, max_hours=m)
        assert np.all((h >= 0) & (h <= m))
        np.testing.assert_allclose(h, convex_closed_form(v, s, kappa, delta, m), rtol=1e-10, atol=1e-9, err_msg=str((seed, s)))


def test_convex_fast_path_agrees_with_the_general_argmax_on_many_seeds() -> None:
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        s = random_convex_schedule(rng)
        kappa = [KAPPA, KAPPA_PAPER, 0.005][seed % 3]
        v = np.concatenate([gb2_skill(rng.uniform(0.0005, 0.9995, 300)), s.cutoffs[1:] / 40.0, [0.0]])
        h = best_response(v, s, kappa=kappa)
        ref = _all_candidates(v, s, kappa, DELTA, MAX_HOURS)
        np.testing.assert_allclose(h, ref, rtol=1e-9, atol=1e-9)


def test_utility_at_the_choice_beats_a_grid_of_alternatives_and_hours_stay_in_bounds() -> None:
    # Every kind of schedule (non-monotone, convex, falling, rates at 0 and 1), agents at both hour bounds.
    rng = np.random.default_rng(17)
    g = np.linspace(0.0, MAX_HOURS, 2001)
    for trial in range(60):
        s = random_schedule(rng, trial % 4)
        kappa = [KAPPA, KAPPA_PAPER][trial % 2]
        v = np.concatenate([gb2_skill(rng.uniform(0.001, 0.999, 40)), [0.0, 1e5]])
        h = best_response(v, s, kappa=kappa)
        assert np.all((h >= 0) & (h <= MAX_HOURS))
        u = labor_utility(v, h, s, kappa=kappa)
        u_grid = labor_utility(v[:, None], g[None, :], s, kappa=kappa)
        assert np.all(u[:, None] >= u_grid - 1e-9 * np.maximum(np.abs(u_grid), 1.0)), (trial, s)
    assert best_response([1e5], US_2024, kappa="paper")[0] == MAX_HOURS
    assert best_response([0.0, 50.0], TaxSchedule.flat(1.0)).tolist() == [0.0, 0.0]


def test_blocks_of_agents_change_no_bit() -> None:
    # Populations of several blocks (economy._blocks.BLOCK), zero skills in different blocks, convex and
    # non-convex schedules: every slice gives the same hours alone as inside the whole population.
    from economy._blocks import BLOCK

    rng = np.random.default_rng(23)
    v = gb2_skill(rng.uniform(0.0005, 0.9995, 2 * BLOCK + 777))
    v[[5, BLOCK + 3, 2 * BLOCK + 1]] = 0.0
    for s in (US_2024, TaxSchedule([0, 20_000, 80_000], [0.6, 0.1, 0.45]), TaxSchedule([0, 11_600, 47_150], [0.0, 1.0, 0.0])):
        h = best_response(v, s)
        assert h[[5, BLOCK + 3, 2 * BLOCK + 1]].tolist() == [0.0, 0.0, 0.0]
        for lo, hi in ((0, 1), (BLOCK - 10, BLOCK + 10), (BLOCK + 1, 2 * BLOCK + 700), (2 * BLOCK, v.size)):
            np.testing.assert_array_equal(h[lo:hi], best_response(v[lo:hi], s))
        u, u_ref = (labor_utility(v, x, s) for x in (h, _all_candidates(v, s, KAPPA, DELTA, MAX_HOURS)))
        np.testing.assert_allclose(u, u_ref, rtol=1e-12, atol=1e-9)
