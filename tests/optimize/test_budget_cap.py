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


def test_cap_counts_retries_against_a_half_failing_endpoint():
    url, stop = serve_in_thread(fail_rate=0.5, faults=["http500"], seed=3)
    try:
        counter = CallCounter()
        cap = CallCap(counter, 12)
        lm = cap.wrap(EndpointLM("openai/offline-engine", api_base=url, api_key="x", cache=False, num_retries=3,
                                 retry_backoff=0.0, temperature=0.7))
        ok = failed = refused = 0
        with dspy.context(lm=lm, callbacks=[counter]):
            for i in range(20):
                try:
                    lm(f"question {i}")
                    ok += 1
                except BudgetExhausted:
                    refused += 1
                except Exception:
                    failed += 1
        sent = lm.stats.snapshot()["attempts"]
    finally:
        stop()
    # Every request is counted, retries included, and none passes the cap: each is admitted on its own, so
    # the budget is spent to the last request and a retry that does not fit fails its call.
    assert sent == counter.total == 12
    assert sent > ok  # the endpoint failed some requests, which were retried
    assert refused > 0 and ok + failed + refused == 20


def test_a_healthy_endpoint_spends_the_whole_share_on_answers():
    """Retries are admitted when they happen, not reserved: with nothing failing, a ceiling of 6 is 6 answers
    (reserving 1 + 3 retries per call refused the last 3 of them)."""
    url, stop = serve_in_thread()
    try:
        counter = CallCounter()
        cap = CallCap(counter, 6)
        lm = cap.wrap(EndpointLM("openai/offline-engine", api_base=url, api_key="x", cache=False, num_retries=3,
                                 retry_backoff=0.0))
        ok = refused = 0
        with dspy.context(lm=lm, callbacks=[counter]):
            for i in range(8):
                try:
                    lm(f"question {i}")
                    ok += 1
                except BudgetExhausted:
                    refused += 1
    finally:
        stop()
    assert (ok, refused, counter.total, cap.refused) == (6, 2, 6, 2)
