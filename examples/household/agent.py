"""The household agent: a DSPy module around ``SplitIncome``, run as one batch with counted fallbacks.

Built from the same parts as ``programs.agents.WorkerAgent``: ``make_predictor`` (Predict or
ChainOfThought), a ``FallbackCounter`` with ``classify_error``, per-call rollout ids, LMs spread
round-robin, and a ``BatchRunner`` for the batch. An answer that does not parse, is not a number, is not
finite or lies outside [0, 100] percent falls back to the household's last share (100% before it has
one: spend the year's cash) and is counted by kind; nothing is clamped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dspy
import numpy as np
from numpy.typing import NDArray

from examples.household.signature import HouseholdYear, SplitIncome
from programs.agents.batch import (
    BatchRunner, FallbackCounter, classify_error, lm_config, make_predictor, rollout_id, round_robin, validate_number,
)

__all__ = ["HouseholdAgent", "HouseholdInput", "validate_percent", "DEFAULT_PERCENT"]

#: The share a household falls back to before it has any valid answer: spend this year's cash.
DEFAULT_PERCENT = 100.0


@dataclass(frozen=True)
class HouseholdInput:
    """What one household's prompt shows (the ``SplitIncome`` inputs) and its fallback share."""

    agent_id: int
    persona: str
    years_left: int
    interest_rate_percent: float
    discount_factor: float
    income: float
    cash_on_hand: float
    history: tuple[HouseholdYear, ...] = ()
    fallback_percent: float | None = None


def validate_percent(value: object) -> tuple[float, str | None]:
    """``(percent, None)`` for a usable answer in [0, 100], else ``(nan, kind)`` (the agents' own check)."""
    return validate_number(value, 0.0, 100.0)


class HouseholdAgent(dspy.Module):
    """Split cash on hand between consumption and saving with ``SplitIncome``; validate, fall back, count."""

    def __init__(self, module_type: str = "predict", default_percent: float = DEFAULT_PERCENT) -> None:
        super().__init__()
        self.decide = make_predictor(SplitIncome, module_type)
        self.default_percent = float(default_percent)
        self.fallbacks = FallbackCounter()

    def forward(self, h: HouseholdInput, lm: dspy.BaseLM | None = None, rollout_id: int | None = None
                ) -> dspy.Prediction:
        """One decision: a Prediction with ``consume_percent`` (in [0, 100]) and ``fallback`` (kind or None)."""
        fallback = self.default_percent if h.fallback_percent is None else float(h.fallback_percent)
        extra = {"lm": lm} if lm is not None else {}
        try:
            pred = self.decide(persona=h.persona, years_left=int(h.years_left),
                               interest_rate_percent=float(h.interest_rate_percent),
                               discount_factor=float(h.discount_factor), income=round(float(h.income), 2),
                               cash_on_hand=round(float(h.cash_on_hand), 2), history=list(h.history),
                               config=lm_config(lm or dspy.settings.lm, rollout_id), **extra)
        except Exception as exc:
            return self._fallback(classify_error(exc), fallback)
        x, kind = validate_percent(getattr(pred, "consume_percent", None))
        if kind is not None:
            return self._fallback(kind, fallback)
        return dspy.Prediction(consume_percent=x, fallback=None)

    def _fallback(self, kind: str, percent: float) -> dspy.Prediction:
        self.fallbacks.add(kind)
        return dspy.Prediction(consume_percent=percent, fallback=kind)

    def decide_batch(self, households: Sequence[HouseholdInput], *, lms: Sequence[dspy.BaseLM],
                     runner: BatchRunner, seed: int = 0, year: int = 0
                     ) -> tuple[NDArray[np.float64], list[str | None]]:
        """All households of a year as one concurrent batch: the percents consumed and the fallback kinds."""
        if not lms:
            raise ValueError("lms must hold at least one LM")

        def one(i: int) -> dspy.Prediction:
            h = households[i]
            return self(h, lm=round_robin(lms, h.agent_id), rollout_id=rollout_id(seed, "save", year, h.agent_id))

        results = runner.map(one, range(len(households)))
        percent = np.empty(len(households))
        kinds: list[str | None] = [None] * len(households)
        for i, r in enumerate(results):
            if isinstance(r, BaseException):  # forward catches its own errors; this is a bug guard
                h = households[i]
                percent[i] = self.default_percent if h.fallback_percent is None else h.fallback_percent
                kinds[i] = "lm_error"
                self.fallbacks.add("lm_error")
                continue
            percent[i], kinds[i] = r.consume_percent, r.fallback
        return percent, kinds
