"""The offline engine answers every signature through DSPy's real Chat, JSON and XML adapters, and its
policies behave as documented (``docs/design.md`` §6.3)."""

import dspy
import pytest

from programs.lm.offline import offline_lm
from signatures import (
    ChooseLabor,
    Platform,
    PlannerYear,
    ProposeTaxSchedule,
    RateSatisfaction,
    Schedule,
    Vote,
    WorkerStep,
    WritePersona,
)

US2024 = [0.0, 11600.0, 47150.0, 100525.0, 191950.0, 243725.0, 609350.0]
US_RATES = [10.0, 12.0, 22.0, 24.0, 32.0, 35.0, 37.0]
ADAPTERS = [dspy.ChatAdapter, dspy.JSONAdapter, dspy.XMLAdapter]


@pytest.fixture(scope="module")
def lm():
    return offline_lm(seed=0)


def ws(i, hours, skill=38000.0, rate=0.2, rebate=1000.0, kappa=0.0269):
    z = skill * hours / 40
    t = rate * z
    c = z - t + rebate
    return WorkerStep(step=i, hours=hours, pretax_income=z, tax=t, rebate=rebate, consumption=c,
                      utility=c - kappa * hours**3.5)


def labor_inputs(history=()):
    history = list(history)
    return dict(persona="You are a 41-year-old nurse.", skill=38000.0,
                schedule=Schedule(cutoffs=[0.0], rates_percent=[20.0]), last_rebate=1000.0,
                history=history, best=sorted(history, key=lambda r: -r.utility)[:2])


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("module", [dspy.Predict, dspy.ChainOfThought])
def test_choose_labor(lm, adapter, module):
    with dspy.context(lm=lm, adapter=adapter()):
        p = module(ChooseLabor)(**labor_inputs([ws(0, 40.0), ws(1, 48.0)]))
    assert isinstance(p.hours, float) and 0.0 <= p.hours <= 100.0
    # Flat 20% tax: the rational optimum ((1-t) v / (kappa delta))^(1/(delta-1)) is 38.1 h; from 40 and 48 h
    # the learner heads there.
    assert abs(p.hours - 38.1) < 4.0
    if module is dspy.ChainOfThought:
        assert isinstance(p.reasoning, str) and "h" in p.reasoning


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("module", [dspy.Predict, dspy.ChainOfThought])
def test_propose_tax_schedule(lm, adapter, module):
    hist = [PlannerYear(year=0, rates_percent=US_RATES, welfare=10.0, revenue=5e6, mean_hours=39.0,
                        agents_per_bracket=[1, 2, 3, 2, 1, 0, 1])]
    with dspy.context(lm=lm, adapter=adapter()):
        p = module(ProposeTaxSchedule)(cutoffs=US2024, current_rates_percent=US_RATES, history=hist, best=hist)
    assert isinstance(p.rates_percent, list) and len(p.rates_percent) == 7
    assert all(isinstance(r, float) and 0.0 <= r <= 100.0 for r in p.rates_percent)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_vote_returns_a_candidate(lm, adapter):
    cands = [Platform(candidate="Alice", rates_percent=[45.0] * 7, pitch="Fund everything."),
             Platform(candidate="Bob", rates_percent=[15.0] * 7, pitch="Keep what you earn.")]
    with dspy.context(lm=lm, adapter=adapter()):
        p = dspy.ChainOfThought(Vote)(persona="You are a welder.", history=[ws(0, 40.0), ws(1, 41.0)],
                                      cutoffs=US2024, candidates=cands)
    assert p.candidate in {"Alice", "Bob"}
    assert p.candidate == "Bob"  # Bob's lower rates leave this voter more after tax


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_rate_satisfaction_is_bool(lm, adapter):
    with dspy.context(lm=lm, adapter=adapter()):
        up = dspy.Predict(RateSatisfaction)(persona="p", this_year=ws(1, 38.0), last_year=ws(0, 60.0))
        down = dspy.Predict(RateSatisfaction)(persona="p", this_year=ws(1, 60.0), last_year=ws(0, 38.0))
        first = dspy.Predict(RateSatisfaction)(persona="p", this_year=ws(0, 38.0), last_year=None)
    assert up.satisfied is True and down.satisfied is False and first.satisfied is True


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_write_persona(lm, adapter):
    with dspy.context(lm=lm, adapter=adapter()):
        p = dspy.Predict(WritePersona)(demographics="age: 34; sex: female; occupation: Service; "
                                                    "education: bachelor's degree")
    assert p.persona == "You are a 34-year-old woman working in service, with a bachelor's degree."
