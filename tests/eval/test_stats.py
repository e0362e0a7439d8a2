"""Confidence intervals by hand."""

import math

import numpy as np
import pytest

from eval.report import pct_gain
from eval.stats import format_ci, mean_ci


def test_ci_half_width_by_hand_for_three_values():
    # values 1, 2, 6: mean 3, sample variance ((-2)^2 + (-1)^2 + 3^2) / 2 = 7, s = sqrt(7);
    # t_{0.975, 2} = 4.302652729749464 (two-sided 95% with 2 degrees of freedom).
    m, h = mean_ci([1.0, 2.0, 6.0])
    assert m == pytest.approx(3.0)
    assert h == pytest.approx(4.302652729749464 * math.sqrt(7.0) / math.sqrt(3.0), rel=1e-12)
    assert h == pytest.approx(6.5724, abs=1e-4)


def test_ci_edge_cases():
    m, h = mean_ci([5.0])
    assert m == 5.0 and math.isnan(h)
    m, h = mean_ci([])
    assert math.isnan(m) and math.isnan(h)
    m, h = mean_ci([2.0, 2.0, np.nan])  # NaN dropped, no spread
    assert (m, h) == (2.0, 0.0)
    with pytest.raises(ValueError, match="level"):
        mean_ci([1.0, 2.0], level=1.5)


def test_format_and_pct_gain():
    assert format_ci(3.0, 0.5, "{:.1f}") == "3.0 ± 0.5"
    assert format_ci(3.0, math.nan, "{:.1f}") == "3.0"
    assert pct_gain(110.0, 100.0, 120.0) == pytest.approx(50.0)
    assert pct_gain(100.0, 100.0, 120.0) == 0.0
    assert pct_gain(120.0, 100.0, 120.0) == 100.0
    assert math.isnan(pct_gain(100.0, 100.0, 100.0))  # oracle gains nothing: undefined


def test_paired_ci_matches_ttest_rel_and_the_difference_interval():
    from scipy import stats as st

    from eval.stats import mean_ci, paired_ci

    a = [10.0, 12.0, 9.5, 11.0, 13.0]
    b = [9.0, 11.5, 9.0, 10.0, 12.0]
    r = paired_ci(a, b)
    d = np.subtract(a, b)
    assert r.n == 5 and r.mean == pytest.approx(d.mean())
    assert r.half_width == pytest.approx(mean_ci(d)[1])
    assert r.p_value == pytest.approx(st.ttest_rel(a, b).pvalue)
    assert paired_ci([1.0, np.nan, 3.0], [0.0, 1.0, 1.0]).n == 2  # NaN pairs dropped
    one = paired_ci([1.0], [0.0])
    assert one.mean == 1.0 and np.isnan(one.half_width) and np.isnan(one.p_value)
    with pytest.raises(ValueError, match="one value per seed"):
        paired_ci([1.0, 2.0], [1.0])
