"""Year-end satisfaction (bounded scenario): ``RateSatisfaction`` per worker, one concurrent batch.

As in the paper, a worker's persona-conditioned judgement scales its utility at the end of the tax year:
by ``SATISFIED_SCALE`` (1.0) when satisfied, ``UNSATISFIED_SCALE`` (0.5) when not. An unusable answer
falls back to the worker's last valid judgement (satisfied before it has one) and is counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import dspy
import numpy as np
from numpy.typing import NDArray

from programs.agents.batch import BatchRunner, FallbackCounter, classify_error, lm_config, make_predictor, rollout_id, round_robin
from programs.agents.worker import WorkerMemory
from programs.lm.structured import use_structured
from signatures import RateSatisfaction, WorkerStep

__all__ = ["SatisfactionRater", "SATISFIED_SCALE", "UNSATISFIED_SCALE", "utility_scale"]

SATISFIED_SCALE = 1.0
UNSATISFIED_SCALE = 0.5


def utility_scale(satisfied: Sequence[bool] | NDArray[np.bool_]) -> NDArray[np.float64]:
    """Per-worker utility multiplier, shape (n,): 1.0 if satisfied else 0.5."""
    return np.where(np.asarray(satisfied, dtype=bool), SATISFIED_SCALE, UNSATISFIED_SCALE)


class SatisfactionRater(dspy.Module):
    """Ask each worker whether this year went well, compared with last year."""

    def __init__(self, module_type: str = "predict") -> None:
        super().__init__()
        self.module_type = module_type
        self.rate = make_predictor(RateSatisfaction, module_type)
        self.fallbacks = FallbackCounter()

    def forward(self, persona: str, this_year: WorkerStep, last_year: WorkerStep | None = None,
                fallback: bool | None = None, lm: dspy.BaseLM | None = None,
                rollout_id: int | None = None) -> dspy.Prediction:
        """Returns ``satisfied`` (bool) and ``fallback`` (kind or None)."""
        extra = {"lm": lm} if lm is not None else {}
        try:
            with use_structured(lm or dspy.settings.lm):
                pred = self.rate(persona=persona, this_year=this_year, last_year=last_year,
                                 config=lm_config(lm or dspy.settings.lm, rollout_id), **extra)
            value = getattr(pred, "satisfied", None)
            kind = None if isinstance(value, (bool, np.bool_)) else "invalid"
        except Exception as exc:
            value, kind = None, classify_error(exc)
        if kind is None:
            return dspy.Prediction(satisfied=bool(value), fallback=None)
        self.fallbacks.add(kind)
        return dspy.Prediction(satisfied=True if fallback is None else bool(fallback), fallback=kind)

    def rate_batch(self, memories: Sequence[WorkerMemory], this_year: Sequence[WorkerStep], *,
                   lms: Sequence[dspy.BaseLM], runner: BatchRunner, seed: int = 0, year: int = 0
                   ) -> tuple[list[bool], dict[str, int]]:
        """Every worker's judgement of this year as one batch: (satisfied list, fallback counts)."""
        def one(i: int) -> dspy.Prediction:
            m = memories[i]
            last = m.year_end[-1] if m.year_end else None
            return self(persona=m.persona, this_year=this_year[i], last_year=last, fallback=m.last_satisfied,
                        lm=round_robin(lms, m.agent_id), rollout_id=rollout_id(seed, "satisfaction", year, m.agent_id))

        out: list[bool] = []
        counts: dict[str, int] = {}
        for i, r in enumerate(runner.map(one, range(len(memories)))):
            if isinstance(r, BaseException):  # a bug guard: forward catches its own errors
                out.append(True if memories[i].last_satisfied is None else memories[i].last_satisfied)
                counts["lm_error"] = counts.get("lm_error", 0) + 1
                continue
            out.append(bool(r.satisfied))
            if r.fallback:
                counts[r.fallback] = counts.get(r.fallback, 0) + 1
        return out, dict(sorted(counts.items()))
