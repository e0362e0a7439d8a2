"""Situations: seeds, decision points drawn from simulations, economies and the normalised score."""

from __future__ import annotations

import numpy as np
import pytest

from economy import TaxSchedule, best_response, outcome
from optimize.situations import INPUTS, EconomySpec, SituationSpec, draw_situations, economy_for
from tests.optimize.conftest import SIT, SMALL


@pytest.mark.parametrize("kw, msg", [({"agents": 0}, "agents=0"), ({"brackets": "nope"}, "brackets="),
                                     ({"swf": "x"}, "swf"), ({"oracle_trials": -1}, "oracle_trials")])
def test_economy_spec_validates(kw, msg):
    with pytest.raises(ValueError, match=msg):
        EconomySpec(**kw)


def test_situation_spec_needs_two_years():
    with pytest.raises(ValueError, match=r"years=1 must be an integer in \[2, 200\]"):
        SituationSpec(years=1)


def test_economy_normalisers_by_hand():
    e = economy_for(7, SMALL)
    assert economy_for(7, SMALL) is e  # one oracle search per economy
    none = TaxSchedule.none(SMALL.cutoffs)
    w0 = outcome(e.population, none, best_response(e.population.skill, none, kappa=e.kappa), SMALL.swf,
                 kappa=e.kappa).welfare
    assert e.w_none == pytest.approx(w0)
    assert e.w_oracle > e.w_none  # redistribution pays under inverse-skill weights
    assert e.score(e.w_none) == 0.0 and e.score(e.w_oracle) == 1.0
    assert e.score(e.w_none + 0.25 * (e.w_oracle - e.w_none)) == pytest.approx(0.25)
    assert e.score(e.w_oracle + 1e6) == 1.0 and e.score(e.w_none - 1e6) == 0.0 and e.score(float("nan")) == 0.0
    # The oracle's own schedule reaches the oracle's welfare.
    assert e.rational_welfare(e.oracle.schedule, SMALL.swf) == pytest.approx(e.w_oracle)


def test_draw_situations_are_the_planner_decision_points():
    sits = draw_situations([0, 1], SMALL, SituationSpec(years=4, history_len=2, best_k=2))
    assert [s.situation for s in sits] == ["seed0/year1", "seed0/year2", "seed0/year3",
                                           "seed1/year1", "seed1/year2", "seed1/year3"]
    for s in sits:
        assert set(s.inputs().keys()) == set(INPUTS)
        assert s.cutoffs == SMALL.cutoffs
        t = s.year
        # A window of the last history_len years, oldest first, ending with the year just finished.
        assert [y.year for y in s.history] == list(range(max(0, t - 2), t))
        assert s.current_rates_percent == s.history[-1].rates_percent
        # The best_k years by welfare, best first, less those the history already shows. With history_len 2
        # and best_k 2, years 0..t-1: the window holds t-2 and t-1, so best holds at most year(s) before it.
        assert not {y.year for y in s.best} & {y.year for y in s.history}
        assert all(y.year < t - 2 for y in s.best) and len(s.best) <= 2
        assert [y.welfare for y in s.best] == sorted((y.welfare for y in s.best), reverse=True)
        # The label is the population's oracle schedule in percent.
        assert s.rates_percent == economy_for(s.seed, SMALL).oracle_rates_percent()
    # Year 0 runs the preset's rates (US federal 2024).
    assert sits[0].history[0].rates_percent == [10.0, 12.0, 22.0, 24.0, 32.0, 35.0, 37.0]


def test_draw_situations_is_reproducible_and_labels_optional():
    a = draw_situations([2], SMALL, SIT)
    b = draw_situations([2], SMALL, SituationSpec(years=3, labels=False))
    assert [x.current_rates_percent for x in a] == [x.current_rates_percent for x in b]
    assert "rates_percent" in a[0] and "rates_percent" not in b[0]
    assert np.all(np.asarray(a[0].rates_percent) >= 0)


def test_economy_spec_takes_custom_cutoffs():
    spec = EconomySpec(agents=5, brackets="0,50000,200000")
    assert spec.brackets == (0.0, 50000.0, 200000.0) and spec.cutoffs == [0.0, 50000.0, 200000.0]
    with pytest.raises(ValueError, match="'x' is not a number"):
        EconomySpec(brackets="0,x")
