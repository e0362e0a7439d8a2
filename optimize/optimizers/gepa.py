"""``gepa``: GEPA (reflective instruction evolution; the reflection LM reads the metric's feedback).

Cost (``max_metric_calls = C``): ``e * C`` evaluations, at most one reflection call per three metric calls,
and one iteration's overshoot past ``C`` (two minibatches of 3 and a full ``V``):
``e * (C + 6 + V) + ceil((C + 6 + V) / 3)``.
"""

from __future__ import annotations

import math
from typing import Any, TextIO

from optimize.optimizers import Optimizer, register_optimizer


@register_optimizer
class GEPA(Optimizer):
    name = "gepa"
    instruction_lm = "reflection"
    bound = "e*(C + 6 + V) + ceil((C + 6 + V)/3)"

    def cost(self, knobs: dict[str, Any], T: int, V: int, e: int) -> int:
        over = knobs["max_metric_calls"] + 6 + V
        return e * over + math.ceil(over / 3)

    def minimum(self, T: int, V: int, e: int) -> int:
        return self.cost({"max_metric_calls": V + 6}, T, V, e)

    def plan(self, budget: int, T: int, V: int, e: int, max_candidates: int) -> dict[str, Any] | None:
        C = V + 6
        while self.cost({"max_metric_calls": C + 1}, T, V, e) <= budget:
            C += 1
        return {"max_metric_calls": C}

    def build(self, knobs: dict[str, Any], metric: Any, *, demos: Any, prompt_lm: Any, task_lm: Any,
              num_threads: int, seed: int, log: TextIO | None) -> Any:
        from dspy.teleprompt import GEPA as DSPyGEPA
        from dspy.teleprompt.gepa import InstructionProposer

        from programs.lm.structured import writing_adapter

        # GEPA's proposer sets its own adapter (DSPy's JSONAdapter by default, which bounds no text): a real
        # reflection LM gets structured outputs with bounded text instead (``WritingAdapter``); one proposal
        # is still one call (no ``max_chars``, whose compression would be a second).
        writing = writing_adapter(prompt_lm)
        proposer = {"instruction_proposer": InstructionProposer(adapter=writing)} if writing is not None else {}
        # GEPA takes the five-argument metric (score and feedback), not the bare float.
        return DSPyGEPA(metric=metric, max_metric_calls=knobs["max_metric_calls"], reflection_lm=prompt_lm,
                        num_threads=num_threads, seed=seed, track_stats=False, **proposer)
