"""Budgets: knobs chosen under hand-computed bounds, the minimum per optimizer, and the call counter."""

from __future__ import annotations

import dspy
import pytest

from optimize.budget import BudgetError, CallCounter, minimum_budget, plan_budget
from programs.lm.offline import offline_lm


def test_bootstrap_plan_by_hand():
    # T=18, V=9, e=1: 2V + (n+1)(T+V) = 18 + 27(n+1) <= 300 -> n = 9 (288 calls).
    p = plan_budget("bootstrap", 300, 18, 9)
    assert p.knobs == {"num_candidate_programs": 9} and p.max_calls == 288
    assert minimum_budget("bootstrap", 18, 9) == 45
    # LLM workers in the metric: e = 1 + 16*5 = 81 calls per evaluation.
    p = plan_budget("bootstrap", 81 * 45, 18, 9, calls_per_eval=81)
    assert p.knobs == {"num_candidate_programs": 0} and p.max_calls == 81 * 45


def test_mipro_plan_by_hand():
    # N=10: (N-2)T + ceil(T/10)+1 + 3N = 144 + 3 + 30 = 177; (300-177)//9 - 1 = 12 trials >= N.
    p = plan_budget("mipro", 300, 18, 9)
    assert p.knobs == {"num_candidates": 10, "num_trials": 12}
    assert p.max_calls == 144 + 13 * 9 + 3 + 30 == 294


def test_copro_plan_by_hand():
    # S = 27; B*D*27 + (B-1) + (D-1)B <= 300 -> B*D <= 10: (B, D) = (5, 2): 270 + 4 + 5 = 279.
    p = plan_budget("copro", 300, 18, 9)
    assert p.knobs == {"breadth": 5, "depth": 2} and p.max_calls == 279


def test_gepa_plan_by_hand():
    # (C + 6 + 9) + ceil((C + 15)/3) <= 300 -> C = 210: 225 + 75 = 300.
    p = plan_budget("gepa", 300, 18, 9)
    assert p.knobs == {"max_metric_calls": 210} and p.max_calls == 300


def test_simba_plan_by_hand():
    # b = min(T+V, 8) = 8; K(8C + 8(C+1)) + 27(C+1) + K(C+1) <= 300: (K, C) = (5, 2): 5*40 + 81 + 15 = 296.
    p = plan_budget("simba", 300, 18, 9)
    assert p.knobs == {"bsize": 8, "num_candidates": 2, "max_steps": 5} and p.max_calls == 296
    assert minimum_budget("simba", 18, 9) == 40 + 81 + 3


@pytest.mark.parametrize("name", ["bootstrap", "mipro", "copro", "gepa", "simba"])
def test_plans_stay_within_budget_and_refuse_below_minimum(name):
    low = minimum_budget(name, 6, 4)
    for budget in (low, low + 7, 3 * low, 1000):
        assert plan_budget(name, budget, 6, 4).max_calls <= budget
    with pytest.raises(BudgetError, match=f"--budget {low - 1} is too small for {name} .* needs at least {low}"):
        plan_budget(name, low - 1, 6, 4)


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="optimizer='annealing'"):
        plan_budget("annealing", 100, 5, 5)


def test_counter_counts_completions_by_lm_and_phase():
    class Echo(dspy.Signature):
        """Say something."""

        text: str = dspy.InputField()
        reply: str = dspy.OutputField()

    counter = CallCounter()
    lm = offline_lm(seed=0)
    with dspy.context(lm=lm, callbacks=[counter]):
        counter.phase("a")
        dspy.Predict(Echo)(text="hi")
        counter.phase("b")
        dspy.Predict(Echo, n=3)(text="hi")  # three completions = three requests
    snap = counter.snapshot()
    assert snap["total"] == 4 and counter.in_phase("a") == 1 and counter.in_phase("b") == 3
    assert snap["by_lm"] == {"offline engine (not a language model)": 4}
