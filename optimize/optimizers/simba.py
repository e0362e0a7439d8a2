"""``simba``: SIMBA (stochastic introspective mini-batch ascent: rules written by the prompt LM and
demonstrations appended, kept when they raise the mini-batch score).

SIMBA scores on the one set it is given, ``S = T + V`` situations (it has no validation set of its own).
Cost (mini-batch ``b``, ``C`` candidates, ``K`` steps), following ``dspy.teleprompt.SIMBA`` in DSPy 3.4.1:
each step runs ``b x C`` trajectories, builds at most ``C + 1`` candidates (one prompt-LM call each for a
rule) and scores them on the mini-batch; at the end at most ``C + 1`` winners are scored on all ``S``:
``e * (K (bC + (C + 1) b) + (C + 1) S) + K (C + 1)``.
"""

from __future__ import annotations

from typing import Any, TextIO

from optimize.optimizers import Optimizer, register_optimizer


@register_optimizer
class SIMBA(Optimizer):
    name = "simba"
    instruction_lm = "prompt"
    bound = "e*(K(bC + (C+1)b) + (C+1)(T+V)) + K(C+1)"

    def cost(self, knobs: dict[str, Any], T: int, V: int, e: int) -> int:
        b, C, K = knobs["bsize"], knobs["num_candidates"], knobs["max_steps"]
        return e * (K * (b * C + (C + 1) * b) + (C + 1) * (T + V)) + K * (C + 1)

    @staticmethod
    def _bsize(T: int, V: int) -> int:
        return min(T + V, 8)  # SIMBA needs at least one mini-batch in its set

    def minimum(self, T: int, V: int, e: int) -> int:
        return self.cost({"bsize": self._bsize(T, V), "num_candidates": 2, "max_steps": 1}, T, V, e)

    def plan(self, budget: int, T: int, V: int, e: int, max_candidates: int) -> dict[str, Any] | None:
        b = self._bsize(T, V)
        fits = [(K * C, K, C) for K in range(1, 9) for C in range(2, max(2, min(max_candidates, 6)) + 1)
                if self.cost({"bsize": b, "num_candidates": C, "max_steps": K}, T, V, e) <= budget]
        if not fits:
            return None
        _, K, C = max(fits)
        return {"bsize": b, "num_candidates": C, "max_steps": K}

    def build(self, knobs: dict[str, Any], metric: Any, *, demos: Any, prompt_lm: Any, task_lm: Any,
              num_threads: int, seed: int, log: TextIO | None) -> Any:
        import dspy

        return dspy.SIMBA(metric=metric.as_float, bsize=knobs["bsize"], num_candidates=knobs["num_candidates"],
                          max_steps=knobs["max_steps"], max_demos=max(1, demos.max_bootstrapped),
                          prompt_model=prompt_lm, num_threads=num_threads)

    def compile(self, teleprompter: Any, student: Any, trainset: list, valset: list, *, knobs: dict[str, Any],
                num_threads: int, seed: int) -> Any:
        return teleprompter.compile(student, trainset=trainset + valset, seed=seed)
