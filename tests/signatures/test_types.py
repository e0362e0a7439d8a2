"""Pydantic types of the signatures: ranges enforced, errors name the field, taxes by hand."""

import math
import re

import pytest
from pydantic import ValidationError

from signatures import Platform, PlannerYear, Schedule, WorkerStep, check_hours, check_rates_percent

US2024 = [0.0, 11600.0, 47150.0, 100525.0, 191950.0, 243725.0, 609350.0]


def step(**kw):
    row = dict(step=0, hours=40.0, pretax_income=40000.0, tax=4000.0, rebate=1000.0, consumption=37000.0,
               utility=30000.0)
    row.update(kw)
    return WorkerStep(**row)


def year(**kw):
    row = dict(year=0, rates_percent=[10.0, 20.0, 30.0], welfare=1.0, revenue=1e6, mean_hours=40.0,
               agents_per_bracket=[5, 3, 2])
    row.update(kw)
    return PlannerYear(**row)


def test_schedule_tax_by_hand():
    s = Schedule(cutoffs=[0.0, 10000.0], rates_percent=[10.0, 50.0])
    assert s.tax(5000) == pytest.approx(500.0)
    assert s.tax(30000) == pytest.approx(1000.0 + 0.5 * 20000)
    assert s.tax(-5) == 0.0
    us = Schedule(cutoffs=US2024, rates_percent=[10.0, 12.0, 22.0, 24.0, 32.0, 35.0, 37.0])
    assert us.tax(47150) == pytest.approx(1160 + 0.12 * 35550)  # 5,426
    # The top bracket is open-ended: $1M pays 37% above 609,350.
    assert us.tax(1e6) - us.tax(609350) == pytest.approx(0.37 * (1e6 - 609350))


@pytest.mark.parametrize(
    "kw, field, text",
    [
        (dict(rates_percent=[10.0, 140.0]), "rates_percent", "rates_percent[1]=140 is outside [0, 100]"),
        (dict(rates_percent=[-1.0, 10.0]), "rates_percent", "rates_percent[0]=-1 is outside [0, 100]"),
        (dict(cutoffs=[0.0, -5.0]), "cutoffs", "cutoffs[1]=-5"),
        (dict(cutoffs=[0.0, 20000.0, 10000.0], rates_percent=[1.0, 2.0, 3.0]), "cutoffs", "strictly increasing"),
        (dict(rates_percent=[10.0]), "rates_percent", "one rate per bracket"),
    ],
)
def test_schedule_rejects_with_field_name(kw, field, text):
    args = dict(cutoffs=[0.0, 10000.0], rates_percent=[10.0, 20.0])
    args.update(kw)
    with pytest.raises(ValidationError) as e:
        Schedule(**args)
    msg = str(e.value)
    assert text in msg
    assert field in msg


@pytest.mark.parametrize(
    "kw, text",
    [
        (dict(hours=100.5), "hours=100.5 is outside [0, 100]"),
        (dict(hours=-1.0), "hours=-1 is outside [0, 100]"),
        (dict(hours=math.nan), "hours=nan is outside"),
        (dict(tax=math.inf), "tax=inf must be a finite number"),
        (dict(rebate=-1.0), "rebate=-1 must be >= 0"),
        (dict(utility=math.inf), "utility=inf must be a finite number"),
    ],
)
def test_worker_step_rejects_with_field_name(kw, text):
    with pytest.raises(ValidationError, match=re.escape(text)):
        step(**kw)


def test_worker_step_is_frozen_and_strict():
    s = step()
    with pytest.raises(ValidationError):
        s.hours = 3.0
    with pytest.raises(ValidationError, match="extra"):
        step(bogus=1)


def test_planner_year_validation():
    assert year().agents_per_bracket == [5, 3, 2]
    with pytest.raises(ValidationError, match=r"rates_percent\[2\]=101 is outside \[0, 100\]"):
        year(rates_percent=[1.0, 2.0, 101.0])
    with pytest.raises(ValidationError, match=r"mean_hours=120 is outside"):
        year(mean_hours=120.0)
    with pytest.raises(ValidationError, match=r"agents_per_bracket\[1\]=-2 must be >= 0"):
        year(agents_per_bracket=[1, -2, 0])
    with pytest.raises(ValidationError, match="agents_per_bracket has 2 entries but rates_percent has 3"):
        year(agents_per_bracket=[1, 2])


def test_platform_validation():
    p = Platform(candidate=" Alice ", rates_percent=[20.0])
    assert p.candidate == "Alice" and p.pitch == ""
    with pytest.raises(ValidationError, match="candidate"):
        Platform(candidate="  ", rates_percent=[20.0])
    with pytest.raises(ValidationError, match=r"rates_percent\[0\]=300"):
        Platform(candidate="Bob", rates_percent=[300.0])


def test_check_helpers():
    assert check_hours("41.5") == 41.5
    with pytest.raises(ValueError, match=r"hours=250 is outside \[0, 100\]"):
        check_hours(250)
    with pytest.raises(ValueError, match="hours='lots' is not a number"):
        check_hours("lots")
    assert check_rates_percent([0, 50, 100], 3) == [0.0, 50.0, 100.0]
    with pytest.raises(ValueError, match=r"rates_percent\[1\]=140 is outside \[0, 100\]"):
        check_rates_percent([10, 140])
    with pytest.raises(ValueError, match="has 2 entries but there are 3 brackets"):
        check_rates_percent([10, 20], 3)


# -- negative marginal rates (a wage subsidy) ----------------------------------------------------


def test_worker_step_records_a_net_credit_as_negative_tax():
    assert step(tax=-1400.0).tax == -1400.0


def test_schedule_admits_negative_rates_down_to_its_own_bound():
    s = Schedule(cutoffs=[0.0, 12390.0], rates_percent=[-14.0, 20.0], min_rate_percent=-100.0)
    assert s.tax(10000) == pytest.approx(-1400.0)  # a net credit, by hand
    assert s.to_tax_schedule().min_rate == -1.0
    with pytest.raises(ValidationError, match=re.escape("rates_percent[0]=-14 is outside [-10, 100] (percent)")):
        Schedule(cutoffs=[0.0, 12390.0], rates_percent=[-14.0, 20.0], min_rate_percent=-10.0)
    with pytest.raises(ValidationError, match=re.escape("min_rate_percent=-150 is outside [-100, 0] (percent)")):
        Schedule(cutoffs=[0.0], rates_percent=[0.0], min_rate_percent=-150.0)
    with pytest.raises(ValidationError, match=re.escape("min_rate_percent=5 is outside [-100, 0]")):
        Schedule(cutoffs=[0.0], rates_percent=[10.0], min_rate_percent=5.0)


def test_schedule_shows_min_rate_only_when_it_admits_subsidies():
    plain = Schedule(cutoffs=[0.0, 10000.0], rates_percent=[10.0, 20.0])
    assert plain.model_dump() == {"cutoffs": [0.0, 10000.0], "rates_percent": [10.0, 20.0]}  # as before
    sub = Schedule(cutoffs=[0.0, 10000.0], rates_percent=[-10.0, 20.0], min_rate_percent=-50.0)
    assert sub.model_dump()["min_rate_percent"] == -50.0
    assert Schedule.model_validate(sub.model_dump()) == sub
    from economy.tax import TaxSchedule

    ts = TaxSchedule([0, 10000], [-0.1, 0.2], min_rate=-0.5)
    assert Schedule.from_tax_schedule(ts) == sub
    assert Schedule.from_tax_schedule(ts).to_tax_schedule() == ts


def test_check_rates_percent_takes_a_lower_bound():
    assert check_rates_percent([-20.0, 5.0], low=-50.0) == [-20.0, 5.0]
    with pytest.raises(ValueError, match=re.escape("r[0]=-60 is outside [-50, 100] (percent)")):
        check_rates_percent([-60.0], name="r", low=-50.0)


# ── one numeric check (issue 18): the config/pydantic checks and the LM-answer checks agree ──────────

_EDGE_CASES = [40, 40.5, "40", 0, 100, -0.0, True, False, None, "forty", [], float("nan"), float("inf"),
               -1, 100.5, 1e300]


def test_one_numeric_check_is_shared():
    from programs.agents import batch
    from signatures import types

    assert batch.validate_number is types.validate_number


@pytest.mark.parametrize("value", _EDGE_CASES, ids=repr)
def test_hours_and_rates_checks_agree_with_validate_number(value):
    from programs.agents.tax_planner import validate_rates
    from signatures.types import check_hours, check_rates_percent, validate_number

    x, kind = validate_number(value, 0.0, 100.0)
    if kind is None:
        assert check_hours(value) == x
        assert check_rates_percent([value]) == [x]
        assert validate_rates([value], 1) == ([x], None)
    else:
        with pytest.raises(ValueError, match=r"hours="):
            check_hours(value)
        with pytest.raises(ValueError, match=r"rates_percent\[0\]="):
            check_rates_percent([value])
        assert validate_rates([value], 1) == ([], kind)


def test_validate_number_kinds():
    from signatures.types import validate_number

    assert validate_number(True, 0, 100) == (pytest.approx(float("nan"), nan_ok=True), "invalid")
    assert validate_number(float("-inf"), 0, 100)[1] == "non_finite"
    assert validate_number(101, 0, 100)[1] == "out_of_range"
    x, kind = validate_number(-0.0, 0, 100)
    assert kind is None and str(x) == "0.0"


def test_validate_rates_reports_the_count_before_the_range():
    from programs.agents.tax_planner import validate_rates

    assert validate_rates([150, 20], 3) == ([], "invalid")  # wrong count: the range is not the issue
    assert validate_rates([150, 20], 2) == ([], "out_of_range")
    assert validate_rates([20, float("nan"), 200], 3) == ([], "non_finite")
