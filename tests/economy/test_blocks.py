"""The block machinery of the hot paths (economy._blocks) and what it must not change: taxes, outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from economy._blocks import BLOCK, Scratch, blocks, count_at_least, dot
from economy.constants import KAPPA, MIN_WAGE_SKILL
from economy.labor import best_response
from economy.population import Population
from economy.tax import TaxSchedule
from economy.welfare import social_welfare, welfare_weights
from economy.world import outcome

US_2024 = TaxSchedule.preset("us_federal_2024")


def test_blocks_cover_the_range_once_in_order() -> None:
    for n, size in ((0, 4), (1, 4), (8, 4), (9, 4), (BLOCK + 1, BLOCK)):
        covered = np.concatenate([np.arange(n)[b] for b in blocks(n, size)] or [np.zeros(0, int)])
        np.testing.assert_array_equal(covered, np.arange(n))
        assert all(b.stop - b.start <= size for b in blocks(n, size))
    assert len(list(blocks(2 * BLOCK + 1))) == 3


@pytest.mark.parametrize("n", [0, 1, 1023, 1024, 5000, BLOCK])
def test_count_at_least_is_searchsorted_right(n: int) -> None:
    rng = np.random.default_rng(n)
    th = np.sort(rng.choice(np.arange(1, 1000.0), 13, replace=False))
    x = rng.uniform(0, 1100, n)
    x[: min(n, th.size)] = th[: min(n, 13)]  # values exactly on a threshold count it
    expected = np.searchsorted(th, x, side="right")
    np.testing.assert_array_equal(count_at_least(x, th), expected)
    if n <= BLOCK:
        np.testing.assert_array_equal(count_at_least(x, th, Scratch(n)), expected)
    many = np.arange(300.0)  # more thresholds than a byte counts: the binary search
    np.testing.assert_array_equal(count_at_least(x, many), np.searchsorted(many, x, side="right"))


def test_scratch_reuses_one_buffer_per_name() -> None:
    s = Scratch(10 * BLOCK)
    a, b = s("a", 5), s("a", BLOCK)
    assert np.shares_memory(a, b) and b.size == BLOCK and a.dtype == np.float64
    assert s("c", 3, np.uint8).dtype == np.uint8 and not np.shares_memory(s("c", 3, np.uint8), b)
    assert Scratch(0)("x", 0).size == 0


def test_dot_is_the_sum_of_products() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=100_001), rng.normal(size=100_001)
    assert dot(a, b) == pytest.approx(float(np.sum(a * b)), rel=1e-12, abs=1e-9)
    assert dot(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 11.0


def plain_tax(s: TaxSchedule, z: np.ndarray) -> np.ndarray:
    """The tax by its definition, with searchsorted (no blocks)."""
    z = np.maximum(z, 0.0)
    if s.top_income_cap is not None:
        z = np.minimum(z, s.top_income_cap)
    j = np.searchsorted(s.cutoffs, z, side="right") - 1
    base = np.concatenate(([0.0], np.cumsum(s.rates[:-1] * np.diff(s.cutoffs))))
    return base[j] + s.rates[j] * (z - s.cutoffs[j])


def test_tax_by_blocks_is_the_plain_tax_bit_for_bit_in_any_shape() -> None:
    rng = np.random.default_rng(2)
    for s in (US_2024, US_2024.with_top_income_cap(1e6), TaxSchedule([0, 5e3, 4e4], [-0.2, 0.9, 0.1], min_rate=-0.5)):
        z = rng.uniform(-1e3, 2e6, 3 * BLOCK + 5)
        z[:7] = US_2024.cutoffs  # incomes on the cut-offs
        np.testing.assert_array_equal(s.tax(z), plain_tax(s, z))
        np.testing.assert_array_equal(s.tax(z[: 6 * 1000].reshape(6, 1000)), plain_tax(s, z[:6000]).reshape(6, 1000))
        np.testing.assert_array_equal(s.tax(z[::3]), plain_tax(s, z[::3]))  # a strided view
        out = np.full(z.size, np.nan)
        assert s.tax(z, out=out) is out
        np.testing.assert_array_equal(out, plain_tax(s, z))
    assert isinstance(US_2024.tax(30_000.0), np.float64)


def test_tax_out_must_fit() -> None:
    z = np.ones(10)
    for bad in (np.empty(9), np.empty(10, dtype=np.float32), np.empty(20)[::2]):
        with pytest.raises(ValueError, match=r"out must be a contiguous float64 array of shape \(10,\)"):
            US_2024.tax(z, out=bad)


@pytest.mark.parametrize("swf", ["inverse_skill", "paper", "utilitarian", "rawlsian", "atkinson"])
@pytest.mark.parametrize("floor", [MIN_WAGE_SKILL, 0.0])
def test_outcome_over_several_blocks_is_the_plain_formula(swf: str, floor: float) -> None:
    # The world step by its definition on 2.5 blocks of agents (zero skills, zero and capped hours included).
    rng = np.random.default_rng(3)
    n = 2 * BLOCK + BLOCK // 2
    v = rng.lognormal(6.5, 1.2, n)
    v[[0, BLOCK, n - 1]] = 0.0
    s = US_2024.with_rates([0.5, 0.1, 0.6, 0.2, 0.7, 0.3, 0.8])
    for hours in (best_response(v, s), np.where(rng.uniform(size=n) < 0.1, 100.0, rng.uniform(0, 100, n))):
        hours[3] = 0.0
        o = outcome(v, s, hours, swf, skill_floor=floor)
        z = v * hours
        t = plain_tax(s, z)
        c = z - t + t.sum() / n
        u = c - KAPPA * hours**3.5
        for got, want in ((o.income, z), (o.tax, t), (o.consumption, c), (o.utility, u), (o.hours, hours)):
            np.testing.assert_array_equal(got, want)
        if swf == "inverse_skill":
            g = welfare_weights(v, swf, skill_floor=floor)
            assert o.welfare == pytest.approx(float(np.dot(g, u)) / n, rel=1e-12)
        assert o.welfare == pytest.approx(social_welfare(u, skill=v, income=z, swf=swf, skill_floor=floor), rel=1e-12)
        xs = np.sort(np.maximum(c, 0.0))
        gini = 2.0 * float(np.dot(np.arange(1, n + 1), xs)) / (n * xs.sum()) - (n + 1.0) / n
        assert o.gini == pytest.approx(gini, rel=1e-12)
        assert o.revenue == float(t.sum()) and o.productivity == float(z.sum())
        assert o.objective is o.utility and not o.utility.flags.writeable


def test_a_population_with_all_its_caches_gives_the_same_outcome() -> None:
    pop = Population.sample(BLOCK + 100, seed=1)
    h = best_response(pop.skill, US_2024)
    a, b = outcome(pop, US_2024, h), outcome(np.array(pop.skill), US_2024, h)  # cached skill order vs a plain sort
    np.testing.assert_array_equal(a.consumption, b.consumption)
    assert a.metrics() == pytest.approx(b.metrics(), rel=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_outcome_hours_are_a_private_copy_whatever_their_type(threads: int) -> None:
    # float64 arrays are copied block by block, anything else converted once; the caller's array stays
    # writable and apart from the outcome, and the outcome's arrays share one (5, n) allocation.
    import economy._blocks as B

    B.set_threads(threads)
    try:
        n = 2 * BLOCK + 3
        v = np.random.default_rng(5).lognormal(6.5, 1.0, n)
        h = best_response(v, US_2024)
        o = outcome(v, US_2024, h)
        assert not np.shares_memory(o.hours, h) and h.flags.writeable and not o.hours.flags.writeable
        assert o.hours.base is o.income.base is o.utility.base and o.hours.base.shape == (5, n)
        for given in (h.tolist(), h.astype(np.float32).astype(np.float64) * 0 + h, np.round(h).astype(int)):
            expected = np.asarray(given, dtype=np.float64)
            got = outcome(v, US_2024, given)
            np.testing.assert_array_equal(got.hours, expected)
            np.testing.assert_array_equal(got.utility, outcome(v, US_2024, expected.copy()).utility)
        strided = np.repeat(h, 2)[::2]  # a view of a larger array: copied, not kept
        assert not np.shares_memory(outcome(v, US_2024, strided).hours, strided)
        bad = h.copy()
        bad[[BLOCK + 9, 2 * BLOCK + 1]] = [101.0, np.nan]  # in two blocks: the first one is named
        with pytest.raises(ValueError, match=rf"hours\[{BLOCK + 9}\]=101 is outside \[0, 100\]"):
            outcome(v, US_2024, bad)
    finally:
        B.set_threads(None)


def test_outcome_welfare_errors_are_those_of_social_welfare() -> None:
    n = 2 * BLOCK + 3
    v = np.random.default_rng(6).lognormal(6.5, 1.0, n)
    h = best_response(v, US_2024)
    with pytest.raises(ValueError, match=r"atkinson_epsilon=-1 is outside \[0, inf\)"):
        outcome(v, US_2024, h, "inverse_skill", atkinson_epsilon=-1)  # checked for every SWF, as before
    huge = v.copy()
    huge[BLOCK + 1] = 1e307  # its income overflows, and so does the rebate: social_welfare names the first utility
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(ValueError, match=r"utility\[0\]=(inf|nan)"):
        outcome(huge, US_2024, h)
