"""``copro``: COPRO (instruction search by the prompt LM, breadth ``B`` x depth ``D``).

COPRO has no validation set of its own: it scores candidates on ``S = T + V`` situations. Cost:
``e * D * B * S`` evaluations plus ``(B - 1) + (D - 1) B`` instruction completions.
"""

from __future__ import annotations

from typing import Any, TextIO

from optimize.optimizers import Optimizer, register_optimizer


@register_optimizer
class COPRO(Optimizer):
    name = "copro"
    instruction_lm = "prompt"
    bound = "e*D*B*(T+V) + (B-1) + (D-1)B"

    def cost(self, knobs: dict[str, Any], T: int, V: int, e: int) -> int:
        B, D = knobs["breadth"], knobs["depth"]
        return e * D * B * (T + V) + (B - 1) + (D - 1) * B

    def minimum(self, T: int, V: int, e: int) -> int:
        return self.cost({"breadth": 2, "depth": 1}, T, V, e)

    def plan(self, budget: int, T: int, V: int, e: int, max_candidates: int) -> dict[str, Any] | None:
        fits = [(B * D, D, B) for D in range(1, 4) for B in range(2, 9)
                if self.cost({"breadth": B, "depth": D}, T, V, e) <= budget]
        if not fits:
            return None
        _, D, B = max(fits)
        return {"breadth": B, "depth": D}

    def build(self, knobs: dict[str, Any], metric: Any, *, demos: Any, prompt_lm: Any, task_lm: Any,
              num_threads: int, seed: int, log: TextIO | None) -> Any:
        from dspy.teleprompt import COPRO as DSPyCOPRO

        return DSPyCOPRO(prompt_model=prompt_lm, metric=metric.as_float, breadth=knobs["breadth"],
                         depth=knobs["depth"])

    def compile(self, teleprompter: Any, student: Any, trainset: list, valset: list, *, knobs: dict[str, Any],
                num_threads: int, seed: int) -> Any:
        return teleprompter.compile(student, trainset=trainset + valset,
                                    eval_kwargs={"num_threads": num_threads, "display_progress": False})
