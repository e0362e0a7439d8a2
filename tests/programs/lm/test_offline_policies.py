"""Extension points of the offline engine: registered policies and schedules with negative rates."""

import json

import pytest

from programs.lm import offline
from programs.lm.offline import POLICIES, answer, register_policy
from tests.programs.lm.test_offline import (
    DELTA, KAPPA, WORKER_SYSTEM, ego_row, rational_hours, user, worker_hours,
)

SPLIT_SYSTEM = """Your input fields are:
1. `cash` (float): money available
Your output fields are:
1. `reasoning` (str): 
2. `spend_percent` (float): share to spend
All interactions will be structured in the following way, with the appropriate values filled in.

[[ ## cash ## ]]
{cash}

[[ ## reasoning ## ]]
{reasoning}

[[ ## spend_percent ## ]]
{spend_percent}        # note: the value you produce must be a single float value

[[ ## completed ## ]]
In adhering to this structure, your objective is:
        Split your cash."""


@pytest.fixture
def restore_policies():
    saved = dict(POLICIES)
    yield
    POLICIES.clear()
    POLICIES.update(saved)


def test_builtin_policies_are_the_public_registry_in_their_order():
    assert offline._POLICIES is POLICIES
    assert list(POLICIES)[:5] == ["hours", "rates_percent", "candidate", "satisfied", "persona"]


def test_a_registered_policy_answers_a_new_signature(restore_policies):
    def spend(inp, demos, rng, temperature):
        return {"spend_percent": 25.0 if float(inp["cash"]) > 100 else 100.0}, "I keep a reserve when rich."

    assert register_policy("spend_percent", spend) is spend
    out = answer(SPLIT_SYSTEM, [("user", user(cash="500.0"))])
    assert "[[ ## spend_percent ## ]]\n25.0" in out and "I keep a reserve when rich." in out
    assert "100.0" in answer(SPLIT_SYSTEM, [("user", user(cash="50.0"))])
    register_policy("spend_percent", spend)  # the same function again: a no-op


def test_register_policy_refuses_clashes_and_bad_arguments(restore_policies):
    with pytest.raises(ValueError, match="'hours' already has the offline policy .*replace=True"):
        register_policy("hours", lambda *a: ({}, ""))
    with pytest.raises(ValueError, match="must be a signature's output field name"):
        register_policy("not a field", lambda *a: ({}, ""))
    with pytest.raises(ValueError, match="'reasoning' is filled by the engine"):
        register_policy("reasoning", lambda *a: ({}, ""))
    with pytest.raises(ValueError, match="must be callable"):
        register_policy("x", 3)
    mine = lambda *a: ({"hours": 1.0}, "")  # noqa: E731
    register_policy("hours", mine, replace=True)
    assert POLICIES["hours"] is mine


def test_worker_best_responds_under_a_negative_marginal_rate():
    # A -20% flat rate (a wage subsidy): once the cost is learned, the offline worker heads for the exact
    # optimum ((1.2) v / (kappa delta))^(1/(delta-1)), more than the untaxed worker's.
    skill, rate = 38100.0, -0.2
    target = rational_hours(skill, rate)
    assert target > rational_hours(skill, 0.0)
    h = worker_hours([ego_row(0, 40.0, skill, rate), ego_row(1, 48.0, skill, rate)],
                     skill=skill, rate_percent=-20.0)
    assert h == pytest.approx(target, abs=0.15)
