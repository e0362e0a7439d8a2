"""``--budget``: a bound on LM calls, mapped onto each optimizer's knobs, and the counter that checks it.

A *call* is one completion request an LM serves: a DSPy LM call asking for ``n`` completions counts ``n``
(DSPy sends them as ``n`` requests). Every LM counts: the planner's LM, LLM workers inside the metric,
and the LM that writes instructions (MIPROv2, COPRO, GEPA).

Each optimizer's knobs are chosen so that an upper bound of its calls stays within the budget; the
bounds below follow each optimizer's code in DSPy 3.4.1 (``e`` = LM calls per evaluation of one
situation = 1 planner call + the metric's own calls; ``T``/``V`` = training/validation situations):

- bootstrap (BootstrapFewShotWithRandomSearch, ``n`` candidate programs): zero-shot and labeled-only
  candidates cost ``V`` evaluations each, every bootstrapped one at most ``T`` bootstrap runs + ``V``:
  ``e * (2V + (n + 1)(T + V))``.
- mipro (MIPROv2, ``N`` candidates, ``M`` trials, no minibatches): ``N - 2`` bootstrapped demo sets
  (at most ``T`` runs each), the default program and ``M`` trials on ``V``, plus the proposer's calls
  (data summary ``ceil(T/10) + 1``, three per instruction candidate):
  ``e * ((N - 2) T + (M + 1) V) + ceil(T / 10) + 1 + 3N``.
- copro (COPRO, breadth ``B``, depth ``D``, scored on ``S = T + V``): ``e * D * B * S`` evaluations
  plus ``(B - 1) + (D - 1) B`` instruction completions.
- gepa (GEPA, ``max_metric_calls = C``): ``e * C`` evaluations, at most one reflection call per three
  metric calls, and one iteration's overshoot past ``C`` (two minibatches of 3 and a full ``V``):
  ``e * (C + 6 + V) + ceil((C + 6 + V) / 3)``.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from dspy.utils.callback import BaseCallback

__all__ = ["BudgetError", "BudgetPlan", "CallCounter", "plan_budget", "minimum_budget"]


class BudgetError(ValueError):
    """The budget cannot pay for even the smallest run of the chosen optimizer (one line)."""


@dataclass(frozen=True)
class BudgetPlan:
    """Knobs chosen for an optimizer and the most LM calls they can make."""

    optimizer: str
    budget: int
    knobs: dict[str, Any]
    max_calls: int
    formula: str

    def to_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer, "budget": self.budget, "knobs": dict(self.knobs),
                "max_calls": self.max_calls, "bound": self.formula}


def _bootstrap_cost(n: int, T: int, V: int, e: int) -> int:
    return e * (2 * V + (n + 1) * (T + V))


def _mipro_prompt_calls(N: int, T: int) -> int:
    return math.ceil(T / 10) + 1 + 3 * N


def _mipro_cost(N: int, M: int, T: int, V: int, e: int) -> int:
    return e * ((N - 2) * T + (M + 1) * V) + _mipro_prompt_calls(N, T)


def _copro_cost(B: int, D: int, S: int, e: int) -> int:
    return e * D * B * S + (B - 1) + (D - 1) * B


def _gepa_cost(C: int, V: int, e: int) -> int:
    over = C + 6 + V
    return e * over + math.ceil(over / 3)


def minimum_budget(optimizer: str, n_train: int, n_val: int, calls_per_eval: int = 1) -> int:
    """The smallest budget the optimizer can run on (see the module docstring for each bound)."""
    T, V, e = n_train, n_val, calls_per_eval
    if optimizer == "bootstrap":
        return _bootstrap_cost(0, T, V, e)
    if optimizer == "mipro":
        return _mipro_cost(3, 1, T, V, e)
    if optimizer == "copro":
        return _copro_cost(2, 1, T + V, e)
    if optimizer == "gepa":
        return _gepa_cost(V + 6, V, e)
    raise ValueError(f"optimizer={optimizer!r} must be one of bootstrap, mipro, gepa, copro")


def plan_budget(optimizer: str, budget: int, n_train: int, n_val: int, calls_per_eval: int = 1,
                max_candidates: int = 16) -> BudgetPlan:
    """Choose the optimizer's knobs so that its calls stay within ``budget``.

    Parameters
    ----------
    optimizer : bootstrap | mipro | copro | gepa.
    budget : LM calls allowed (>= 1).
    n_train, n_val : training and validation situations (T, V >= 1).
    calls_per_eval : LM calls per evaluation of one situation (e >= 1).
    max_candidates : cap on bootstrap's candidate programs / MIPRO's candidates.

    Raises
    ------
    BudgetError : the budget is below ``minimum_budget``.
    """
    T, V, e = int(n_train), int(n_val), int(calls_per_eval)
    if T < 1 or V < 1 or e < 1:
        raise ValueError(f"n_train={T}, n_val={V} and calls_per_eval={e} must all be >= 1")
    low = minimum_budget(optimizer, T, V, e)
    if budget < low:
        raise BudgetError(f"--budget {budget} is too small for {optimizer} on {T} training and {V} validation "
                          f"situations ({e} LM call{'s' if e > 1 else ''} per evaluation): it needs at least {low}")
    if optimizer == "bootstrap":
        n = min(max_candidates, max(0, (budget // e - 2 * V) // (T + V) - 1))
        return BudgetPlan(optimizer, budget, {"num_candidate_programs": n}, _bootstrap_cost(n, T, V, e),
                          "e*(2V + (n+1)(T+V))")
    if optimizer == "mipro":
        best: tuple[int, int] | None = None
        for N in range(max(3, min(max_candidates, 12)), 2, -1):
            M = (budget - _mipro_prompt_calls(N, T) - e * (N - 2) * T) // (e * V) - 1
            # MIPRO's own rule of thumb is ~1.5 N trials; take the most candidates that leave at least N.
            if M >= N:
                best = (N, min(M, 3 * N))
                break
        if best is None:
            N = 3
            M = max(1, (budget - _mipro_prompt_calls(N, T) - e * (N - 2) * T) // (e * V) - 1)
            best = (N, M)
        N, M = best
        return BudgetPlan(optimizer, budget, {"num_candidates": N, "num_trials": M}, _mipro_cost(N, M, T, V, e),
                          "e*((N-2)T + (M+1)V) + ceil(T/10) + 1 + 3N")
    if optimizer == "copro":
        S = T + V
        fits = [(B * D, D, B) for D in range(1, 4) for B in range(2, 9) if _copro_cost(B, D, S, e) <= budget]
        _, D, B = max(fits)
        return BudgetPlan(optimizer, budget, {"breadth": B, "depth": D}, _copro_cost(B, D, S, e),
                          "e*D*B*(T+V) + (B-1) + (D-1)B")
    if optimizer == "gepa":
        C = V + 6
        while _gepa_cost(C + 1, V, e) <= budget:
            C += 1
        return BudgetPlan(optimizer, budget, {"max_metric_calls": C}, _gepa_cost(C, V, e),
                          "e*(C + 6 + V) + ceil((C + 6 + V)/3)")
    raise ValueError(f"optimizer={optimizer!r} must be one of bootstrap, mipro, gepa, copro")


class CallCounter(BaseCallback):
    """Counts LM completion requests by LM label (a DSPy callback; thread-safe).

    Install it with ``dspy.context(callbacks=[counter])``; ``counter.total`` is the sum, ``counter.by_lm``
    the split. ``phase(name)`` attributes the calls that follow to a phase (``compile``, ``evaluate``...).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_lm: Counter[str] = Counter()
        self.by_phase: Counter[str] = Counter()
        self.failed_by_phase: Counter[str] = Counter()  # calls that ended in an exception (after retries)
        self.first_error: str | None = None
        self._phase_of: dict[str, tuple[str, int]] = {}
        self.current_phase = "other"

    def phase(self, name: str) -> None:
        with self._lock:
            self.current_phase = name

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        from programs.lm import lm_label

        kwargs = dict(getattr(instance, "kwargs", None) or {})
        kwargs.update(inputs.get("kwargs") or {})
        n = kwargs.get("n") or kwargs.get("num_generations") or 1
        label = getattr(instance, "budget_label", None) or lm_label(instance)
        with self._lock:
            self.by_lm[label] += int(n)
            self.by_phase[self.current_phase] += int(n)
            self._phase_of[call_id] = (self.current_phase, int(n))

    def on_lm_end(self, call_id: str, outputs: Any, exception: BaseException | None = None) -> None:
        with self._lock:
            phase, n = self._phase_of.pop(call_id, (self.current_phase, 1))
            if exception is not None:
                self.failed_by_phase[phase] += n
                if self.first_error is None:
                    self.first_error = f"{type(exception).__name__}: {' '.join(str(exception).split())[:160]}"

    def failed_in_phase(self, name: str) -> int:
        """Calls of phase ``name`` that raised (the LM answered nothing usable after its retries)."""
        with self._lock:
            return int(self.failed_by_phase.get(name, 0))

    @property
    def total(self) -> int:
        with self._lock:
            return int(sum(self.by_lm.values()))

    def in_phase(self, name: str) -> int:
        with self._lock:
            return int(self.by_phase.get(name, 0))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"total": int(sum(self.by_lm.values())), "by_lm": dict(sorted(self.by_lm.items())),
                    "by_phase": dict(sorted(self.by_phase.items())),
                    "failed": int(sum(self.failed_by_phase.values()))}
