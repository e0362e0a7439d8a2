"""TaxSchedule: taxes by hand at every bracket edge, validation and round trips."""

import json

import numpy as np
import pytest

from economy.tax import PRESETS, TaxSchedule, resolve_cutoffs

US2024 = TaxSchedule.preset("us_federal_2024")


def test_two_bracket_tax_by_hand():
    s = TaxSchedule([0, 10_000], [0.1, 0.5])
    assert s.tax(0) == 0
    assert s.tax(5_000) == pytest.approx(500)
    assert s.tax(10_000) == pytest.approx(1_000)
    assert s.tax(30_000) == pytest.approx(1_000 + 0.5 * 20_000)


@pytest.mark.parametrize(
    "z, expected",
    [
        # Hand sums of the 2024 single-filer schedule at and around every edge.
        (11_600, 1_160.0),
        (11_601, 1_160.12),
        (47_150, 1_160 + 0.12 * 35_550),  # 5,426
        (100_525, 5_426 + 0.22 * 53_375),  # 17,168.5
        (191_950, 17_168.5 + 0.24 * 91_425),  # 39,110.5
        (243_725, 39_110.5 + 0.32 * 51_775),  # 55,678.5
        (609_350, 55_678.5 + 0.35 * 365_625),  # 183,647.25
        (1_000_000, 183_647.25 + 0.37 * 390_650),  # open top bracket: no $10M cap
        (50_000_000, 183_647.25 + 0.37 * (50_000_000 - 609_350)),
    ],
)
def test_us_2024_tax_at_every_edge(z, expected):
    assert float(US2024.tax(z)) == pytest.approx(expected, rel=1e-12)


def test_marginal_rate_on_a_cutoff_is_the_upper_bracket():
    z = np.array([0, 11_599.99, 11_600, 609_349, 609_350, 1e9])
    assert US2024.marginal_rate(z).tolist() == [0.10, 0.10, 0.12, 0.35, 0.37, 0.37]


def test_vectorised_shapes_and_after_tax():
    z = np.linspace(0, 1e6, 12).reshape(3, 4)
    t = US2024.tax(z)
    assert t.shape == (3, 4)
    np.testing.assert_allclose(US2024.after_tax(z), z - t)
    np.testing.assert_allclose(t.ravel(), [float(US2024.tax(x)) for x in z.ravel()])


def test_tax_is_continuous_and_non_decreasing():
    z = np.linspace(0, 2e6, 200_001)
    t = US2024.tax(z)
    assert np.all(np.diff(t) >= 0)
    # Piecewise linear: no jump bigger than the top rate times the step.
    assert np.max(np.diff(t)) <= 0.37 * (z[1] - z[0]) + 1e-9


def test_negative_income_is_taxed_as_zero():
    assert float(US2024.tax(-5_000)) == 0.0


def test_json_round_trip_and_equality():
    s = TaxSchedule.preset("three", rates=[0.2, 0.3, 0.45])
    back = TaxSchedule.from_json(s.to_json())
    assert back == s and hash(back) == hash(s)
    assert json.loads(s.to_json()) == {"cutoffs": [0.0, 90000.0, 159100.0], "rates": [0.2, 0.3, 0.45]}


def test_table_is_readable():
    text = US2024.table()
    assert "$609,350 – and up" in text and "37.0%" in text
    assert len(text.splitlines()) == 8


def test_presets():
    assert TaxSchedule.preset("us_federal_2023").cutoffs[-1] == 578_125
    assert TaxSchedule.preset("us_federal_2025").cutoffs[1] == 11_925
    assert TaxSchedule.preset("flat").n_brackets == 1
    assert np.all(TaxSchedule.preset("three").rates == 0)
    assert set(PRESETS) == {"us_federal_2023", "us_federal_2024", "us_federal_2025", "three", "flat"}
    assert TaxSchedule.flat(0.25, "us_federal_2024").rates.tolist() == [0.25] * 7
    assert float(TaxSchedule.none("three").tax(1e6)) == 0.0


def test_arrays_are_read_only():
    with pytest.raises(ValueError):
        US2024.rates[0] = 0.9


@pytest.mark.parametrize(
    "cutoffs, rates, message",
    [
        ([0, 50_000, 20_000], [0.1, 0.2, 0.3], "strictly increasing"),
        ([100, 200], [0.1, 0.2], r"cutoffs\[0\]=100 must be 0"),
        ([0, -5], [0.1, 0.2], "strictly increasing"),
        ([0, 10], [0.1, 1.5], r"rates\[1\]=1.5 is outside \[0, 1\]"),
        ([0, 10], [-0.1, 0.5], r"rates\[0\]=-0.1 is outside \[0, 1\]"),
        ([0, 10], [0.1, float("nan")], r"rates\[1\]=nan"),
        ([0, 10], [0.1], "one rate per bracket"),
        ([], [], "at least one bracket"),
        ([0, float("inf")], [0.1, 0.2], "finite"),
        ([[0, 1]], [[0.1, 0.2]], "one-dimensional"),
        (["a"], [0.1], "sequence of numbers"),
    ],
)
def test_bad_schedules_are_rejected_with_the_field_named(cutoffs, rates, message):
    with pytest.raises(ValueError, match=message):
        TaxSchedule(cutoffs, rates)


def test_unknown_preset_and_brackets():
    with pytest.raises(ValueError, match="unknown tax preset 'us_2024'"):
        TaxSchedule.preset("us_2024")
    with pytest.raises(ValueError, match="unknown brackets"):
        resolve_cutoffs("nope")
    with pytest.raises(ValueError, match="missing"):
        TaxSchedule.from_dict({"rates": [0.1]})


def test_large_arrays_take_the_byte_count_path_bit_for_bit():
    # Above 1,024 incomes the bracket index is counted, not binary-searched: same answers exactly.
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.lognormal(10.5, 1.2, 50_000), US2024.cutoffs, [0.0, 1e12]])
    for s in (US2024, TaxSchedule.preset("three", [0.1, 0.5, 0.9]), TaxSchedule.flat(0.3)):
        by_search = np.array([float(s.tax(x)) for x in z[:2000]])
        np.testing.assert_array_equal(s.tax(z)[:2000], by_search)
        np.testing.assert_array_equal(s.bracket_index(z), np.searchsorted(s.cutoffs, z, side="right") - 1)


# -- the top-income cap (the reference's $10M upper bound; --preset paper-v1) -------------------------
def test_top_income_cap_by_hand():
    # three brackets at 10/20/50%, cap 1M: income above 1M is untaxed.
    s = TaxSchedule([0, 100_000, 200_000], [0.1, 0.2, 0.5], top_income_cap=1_000_000)
    at_cap = 0.1 * 100_000 + 0.2 * 100_000 + 0.5 * 800_000  # 430,000
    assert float(s.tax(1_000_000)) == pytest.approx(at_cap)
    assert float(s.tax(5_000_000)) == pytest.approx(at_cap)  # nothing more above the cap
    assert float(s.tax(500_000)) == pytest.approx(0.1 * 100_000 + 0.2 * 100_000 + 0.5 * 300_000)
    assert float(s.marginal_rate(2_000_000)) == 0.0 and float(s.marginal_rate(500_000)) == 0.5
    # without the cap the same income pays 50% on the excess
    assert float(s.with_top_income_cap(None).tax(5_000_000)) == pytest.approx(at_cap + 0.5 * 4_000_000)


def test_top_income_cap_is_kept_compared_and_serialised():
    s = TaxSchedule.preset("three", rates=[0.5, 0.5, 0.5]).with_top_income_cap(10_000_000)
    assert s.with_rates([0.1, 0.2, 0.3]).top_income_cap == 10_000_000
    assert s != s.with_top_income_cap(None) and hash(s) != hash(s.with_top_income_cap(None))
    assert TaxSchedule.from_json(s.to_json()) == s
    b = s.as_brackets()
    assert b.top_income_cap is None and b.cutoffs.tolist() == [0, 90000, 159100, 10_000_000]
    z = np.array([0, 50_000, 1e6, 9.9e6, 1e7, 3e7])
    np.testing.assert_allclose(b.tax(z), s.tax(z))


@pytest.mark.parametrize("cap", [0, 159100, -1, float("inf"), float("nan"), "x"])
def test_top_income_cap_validated(cap):
    with pytest.raises(ValueError, match="top_income_cap"):
        TaxSchedule.preset("three").with_top_income_cap(cap)


def test_best_response_respects_the_cap():
    from economy.labor import best_response

    # A very high skill: income at 100 h is 20M. With a 90% top rate and no cap, hours fall; with the
    # cap at 10M the last 10M are untaxed, so hours are at least as high.
    skill = np.array([200_000.0])
    s = TaxSchedule([0, 100_000], [0.0, 0.9])
    h_open = best_response(skill, s, kappa="paper")
    h_cap = best_response(skill, s.with_top_income_cap(10_000_000), kappa="paper")
    assert h_cap[0] >= h_open[0]
    grid = np.linspace(0, 100, 100_001)
    u = skill[0] * grid - s.with_top_income_cap(10_000_000).tax(skill[0] * grid) - 0.0005 * grid**3.5
    assert abs(h_cap[0] - grid[np.argmax(u)]) < 1e-2


# -- negative marginal rates (a wage subsidy, e.g. an earned-income credit) ----------------------


def test_negative_rates_need_min_rate_and_name_the_range():
    with pytest.raises(ValueError, match=r"rates\[0\]=-0.2 is outside \[0, 1\] .*pass min_rate < 0"):
        TaxSchedule([0, 10_000], [-0.2, 0.3])
    with pytest.raises(ValueError, match=r"rates\[0\]=-0.3 is outside \[-0.25, 1\]"):
        TaxSchedule([0, 10_000], [-0.3, 0.3], min_rate=-0.25)
    for bad in (-1.5, 0.1, float("nan"), "x"):
        with pytest.raises(ValueError, match=r"min_rate=.* (is outside \[-1, 0\]|is not a number)"):
            TaxSchedule([0], [0.1], min_rate=bad)


def test_earned_income_credit_tax_by_hand():
    # 20% flat tax; a 34% credit phased in to $12,390, flat to $22,720, phased out at 15.98% to $49,084.
    s = TaxSchedule([0, 12_390, 22_720, 49_084], [0.20 - 0.34, 0.20, 0.20 + 0.1598, 0.20], min_rate=-1.0)
    assert s.min_rate == -1.0
    assert float(s.tax(10_000)) == pytest.approx(-1_400.0)  # a net credit
    assert float(s.tax(12_390)) == pytest.approx(-0.14 * 12_390)
    assert float(s.tax(20_000)) == pytest.approx(-0.14 * 12_390 + 0.20 * 7_610)
    assert float(s.tax(30_000)) == pytest.approx(-0.14 * 12_390 + 0.20 * 10_330 + 0.3598 * 7_280)
    assert float(s.marginal_rate(5_000)) == pytest.approx(-0.14)
    assert float(s.after_tax(10_000)) == pytest.approx(11_400.0)


def test_min_rate_survives_with_rates_and_round_trips():
    s = TaxSchedule([0, 10_000], [-0.2, 0.3], min_rate=-0.5)
    assert s.with_rates([-0.4, 0.1]).min_rate == -0.5
    d = s.to_dict()
    assert d == {"cutoffs": [0.0, 10_000.0], "rates": [-0.2, 0.3], "min_rate": -0.5}
    back = TaxSchedule.from_json(json.dumps(d))
    assert back == s and back.min_rate == -0.5
    # Without negative rates allowed the dict is exactly as before (no new key).
    assert TaxSchedule([0], [0.1]).to_dict() == {"cutoffs": [0.0], "rates": [0.1]}
    assert TaxSchedule([0], [0.1], min_rate=-0.0).min_rate == 0.0
