"""``mipro``: MIPROv2 (Optuna over instruction and demonstration candidates; instructions from the prompt LM).

Cost (``N`` candidates, ``M`` trials, no minibatches): ``N - 2`` bootstrapped demo sets (at most ``T`` runs
each), the default program and ``M`` trials on ``V``, plus the proposer's calls (data summary
``ceil(T/10) + 1``, three per instruction candidate): ``e * ((N - 2) T + (M + 1) V) + ceil(T / 10) + 1 + 3N``.
"""

from __future__ import annotations

import math
from typing import Any, TextIO

from optimize.optimizers import Optimizer, register_optimizer


def _prompt_calls(N: int, T: int) -> int:
    return math.ceil(T / 10) + 1 + 3 * N


@register_optimizer
class MIPRO(Optimizer):
    name = "mipro"
    instruction_lm = "prompt"
    bound = "e*((N-2)T + (M+1)V) + ceil(T/10) + 1 + 3N"

    def cost(self, knobs: dict[str, Any], T: int, V: int, e: int) -> int:
        N, M = knobs["num_candidates"], knobs["num_trials"]
        return e * ((N - 2) * T + (M + 1) * V) + _prompt_calls(N, T)

    def minimum(self, T: int, V: int, e: int) -> int:
        return self.cost({"num_candidates": 3, "num_trials": 1}, T, V, e)

    def plan(self, budget: int, T: int, V: int, e: int, max_candidates: int) -> dict[str, Any] | None:
        for N in range(max(3, min(max_candidates, 12)), 2, -1):
            M = (budget - _prompt_calls(N, T) - e * (N - 2) * T) // (e * V) - 1
            # MIPRO's own rule of thumb is ~1.5 N trials; take the most candidates that leave at least N.
            if M >= N:
                return {"num_candidates": N, "num_trials": min(M, 3 * N)}
        M = max(1, (budget - _prompt_calls(3, T) - e * T) // (e * V) - 1)
        return {"num_candidates": 3, "num_trials": M}

    def build(self, knobs: dict[str, Any], metric: Any, *, demos: Any, prompt_lm: Any, task_lm: Any,
              num_threads: int, seed: int, log: TextIO | None) -> Any:
        from dspy.teleprompt import MIPROv2

        return MIPROv2(metric=metric.as_float, prompt_model=prompt_lm, task_model=task_lm,
                       max_bootstrapped_demos=demos.max_bootstrapped, max_labeled_demos=demos.max_labeled,
                       auto=None, num_candidates=knobs["num_candidates"], num_threads=num_threads, seed=seed,
                       metric_threshold=demos.threshold, verbose=False, track_stats=False)

    def compile(self, teleprompter: Any, student: Any, trainset: list, valset: list, *, knobs: dict[str, Any],
                num_threads: int, seed: int) -> Any:
        return teleprompter.compile(student, trainset=trainset, valset=valset, num_trials=knobs["num_trials"],
                                    minibatch=False, seed=seed)
