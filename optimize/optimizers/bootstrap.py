"""``bootstrap``: BootstrapFewShotWithRandomSearch (demonstrations; candidate programs scored on validation).

Cost (``n`` candidate programs): zero-shot and labeled-only candidates cost ``V`` evaluations each, every
bootstrapped one at most ``T`` bootstrap runs + ``V``: ``e * (2V + (n + 1)(T + V))``.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, TextIO

from optimize.optimizers import Optimizer, register_optimizer


@register_optimizer
class Bootstrap(Optimizer):
    name = "bootstrap"
    bound = "e*(2V + (n+1)(T+V))"

    def cost(self, knobs: dict[str, Any], T: int, V: int, e: int) -> int:
        return e * (2 * V + (knobs["num_candidate_programs"] + 1) * (T + V))

    def minimum(self, T: int, V: int, e: int) -> int:
        return self.cost({"num_candidate_programs": 0}, T, V, e)

    def plan(self, budget: int, T: int, V: int, e: int, max_candidates: int) -> dict[str, Any] | None:
        n = min(max_candidates, max(0, (budget // e - 2 * V) // (T + V) - 1))
        return {"num_candidate_programs": n}

    def build(self, knobs: dict[str, Any], metric: Any, *, demos: Any, prompt_lm: Any, task_lm: Any,
              num_threads: int, seed: int, log: TextIO | None) -> Any:
        from dspy.teleprompt import BootstrapFewShotWithRandomSearch

        with contextlib.redirect_stdout(log or sys.stderr):  # it prints its settings
            return BootstrapFewShotWithRandomSearch(
                metric=metric.as_float, max_bootstrapped_demos=demos.max_bootstrapped,
                max_labeled_demos=demos.max_labeled, num_candidate_programs=knobs["num_candidate_programs"],
                num_threads=num_threads, metric_threshold=demos.threshold)
