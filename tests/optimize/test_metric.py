"""WelfareMetric: oracle-normalised welfare after workers respond, GEPA's five-argument form, feedback."""

from __future__ import annotations

import inspect

import dspy
import numpy as np
import pytest

from economy import TaxSchedule
from optimize.budget import CallCounter
from optimize.metric import WelfareMetric
from optimize.situations import economy_for
from programs.lm.offline import offline_lm
from tests.optimize.conftest import SMALL


@pytest.fixture(scope="module")
def gold(small_sets):
    return small_sets[0][0]  # seed 0, year 1


def test_oracle_rates_score_one_and_no_tax_scores_zero(gold):
    m = WelfareMetric(SMALL)
    e = economy_for(0, SMALL)
    exact = [100.0 * r for r in e.oracle.schedule.rates]
    out = m(gold, dspy.Prediction(rates_percent=exact))
    assert out.score == pytest.approx(1.0)
    assert m(gold, dspy.Prediction(rates_percent=[0.0] * 7)).score == pytest.approx(0.0, abs=1e-12)
    assert m.calls == 2


def test_score_is_the_share_of_the_oracle_gain(gold):
    m = WelfareMetric(SMALL)
    e = economy_for(0, SMALL)
    rates = [10.0, 12.0, 22.0, 24.0, 32.0, 35.0, 37.0]
    w = e.rational_welfare(TaxSchedule(SMALL.cutoffs, np.asarray(rates) / 100), SMALL.swf)
    share = (w - e.w_none) / (e.w_oracle - e.w_none)
    assert m(gold, dspy.Prediction(rates_percent=rates)).score == pytest.approx(share)
    assert m.as_float(gold, dspy.Prediction(rates_percent=rates)) == pytest.approx(share)


def test_unusable_answer_scores_the_rates_in_force(gold):
    m = WelfareMetric(SMALL)
    kept = m(gold, dspy.Prediction(rates_percent=gold.current_rates_percent)).score
    bad = m(gold, dspy.Prediction(rates_percent=[1.0, 2.0]))
    assert bad.score == pytest.approx(kept)
    assert "not 7 numbers" in bad.feedback and "rates in force were kept" in bad.feedback
    assert m(gold, None).score == pytest.approx(kept)


def test_feedback_names_the_largest_gaps(gold):
    m = WelfareMetric(SMALL)
    e = economy_for(0, SMALL)
    best = e.oracle_rates_percent()
    rates = list(best)
    rates[0] = max(best[0] - 40.0, 0.0)  # bracket 1 far too low
    fb = m(gold, dspy.Prediction(rates_percent=rates)).feedback
    assert f"Best-known rates for this economy (percent per bracket): [{', '.join(f'{x:.1f}' for x in best)}]" in fb
    assert f"raise bracket 1 (from $0) by about {best[0] - rates[0]:.0f} points" in fb
    assert "Every rate is within 5 points" in m(gold, dspy.Prediction(rates_percent=best)).feedback


def test_gepa_five_argument_form(gold):
    m = WelfareMetric(SMALL)
    inspect.signature(m).bind(None, None, None, None, None)  # what dspy.GEPA checks
    out = m(gold, dspy.Prediction(rates_percent=[30.0] * 7), None, "propose", [])
    assert isinstance(out, dspy.Prediction) and 0.0 <= out.score <= 1.0 and out.feedback


def test_llm_workers_cost_agents_times_steps_calls(gold):
    m = WelfareMetric(SMALL, workers="llm", lms=[offline_lm(seed=0)], steps_per_year=2)
    assert m.lm_calls_per_call == SMALL.agents * 2
    counter = CallCounter()
    with dspy.context(callbacks=[counter]):
        out = m(gold, dspy.Prediction(rates_percent=[30.0] * 7))
    assert counter.total == SMALL.agents * 2
    assert 0.0 <= out.score <= 1.0
    assert "LLM workers" in m.describe()


def test_bad_metric_settings():
    with pytest.raises(ValueError, match="workers='robots'"):
        WelfareMetric(SMALL, workers="robots")
    with pytest.raises(ValueError, match="steps_per_year=0"):
        WelfareMetric(SMALL, steps_per_year=0)
