"""Issue 19: the call cap refuses calls before they are sent, counting retries, against a failing endpoint."""

from __future__ import annotations

import dspy
import pytest

from optimize.budget import BudgetExhausted, CallCap, CallCounter
from programs.lm.endpoint import EndpointLM
from programs.lm.offline import offline_lm
from programs.lm.server import serve_in_thread


class Echo(dspy.Signature):
    """Say something."""

    text: str = dspy.InputField()
    reply: str = dspy.OutputField()


def test_cap_refuses_past_the_ceiling_and_copies_keep_it():
    counter = CallCounter()
    cap = CallCap(counter, 3)
    lm = cap.wrap(offline_lm(seed=0))
    assert isinstance(lm, dspy.LM) and cap.wrap(lm) is lm
    refused = 0
    with dspy.context(lm=lm, callbacks=[counter]):
        for i in range(5):
            try:
                dspy.Predict(Echo)(text=f"hi {i}")
            except BudgetExhausted:
                refused += 1
        copy = lm.copy(rollout_id=1, temperature=1.0)  # what optimizers do: the copy is capped too
        with pytest.raises(BudgetExhausted):
            copy("again")
    assert counter.total == 3 and refused == 2 and cap.refused == 3


def _ask_capped(ceiling: int, calls: int, **server: object) -> dict[str, int]:
    """``calls`` calls of an ``EndpointLM`` (3 retries, no back-off) capped at ``ceiling``, against
    ``programs.serve`` with ``server``'s faults; how they ended, the requests sent and what the cap saw."""
    url, stop = serve_in_thread(**server)
    try:
        counter = CallCounter()
        cap = CallCap(counter, ceiling)
        lm = cap.wrap(EndpointLM("openai/offline-engine", api_base=url, api_key="x", cache=False, num_retries=3,
                                 retry_backoff=0.0, temperature=0.7))
        ended = {"ok": 0, "failed": 0, "refused": 0}
        with dspy.context(lm=lm, callbacks=[counter]):
            for i in range(calls):
                try:
                    lm(f"question {i}")
                    ended["ok"] += 1
                except BudgetExhausted:
                    ended["refused"] += 1
                except Exception:
                    ended["failed"] += 1
        return {**ended, "sent": lm.stats.snapshot()["attempts"], "counted": counter.total,
                "cap_refused": cap.refused}
    finally:
        stop()


def test_cap_counts_retries_against_a_half_failing_endpoint():
    r = _ask_capped(12, 20, fail_rate=0.5, faults=["http500"], seed=3)
    # Every request is counted, retries included, and none passes the cap: each is admitted on its own, so
    # the budget is spent to the last request and a retry that does not fit fails its call.
    assert r["sent"] == r["counted"] == 12
    assert r["sent"] > r["ok"]  # the endpoint failed some requests, which were retried
    assert r["refused"] > 0 and r["ok"] + r["failed"] + r["refused"] == 20


def test_a_healthy_endpoint_spends_the_whole_share_on_answers():
    """Retries are admitted when they happen, not reserved: with nothing failing, a ceiling of 6 is 6 answers
    (reserving 1 + 3 retries per call refused the last 3 of them)."""
    r = _ask_capped(6, 8)
    assert (r["ok"], r["failed"], r["refused"], r["counted"], r["cap_refused"]) == (6, 0, 2, 6, 2)
