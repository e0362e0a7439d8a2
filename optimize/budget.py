"""``--budget``: a bound on LM calls, mapped onto each optimizer's knobs, and the counter that checks it.

A *call* is one completion request an LM serves: a DSPy LM call asking for ``n`` completions counts ``n``
(DSPy sends them as ``n`` requests). Every LM counts: the planner's LM, LLM workers inside the metric,
and the LM that writes instructions (MIPROv2, COPRO, GEPA).

Each optimizer's knobs are chosen so that an upper bound of its calls stays within the budget; each
bound lives with its optimizer (``optimize.optimizers.<name>``, following that optimizer's code in DSPy
3.4.1; ``e`` = LM calls per evaluation of one situation = 1 planner call + the metric's own calls,
``T``/``V`` = training/validation situations). The bounds are what an optimizer *asks for*; ``CallCap``
below makes ``--budget`` a hard cap on what the client sends, failures and retries included.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from dspy.utils.callback import BaseCallback

__all__ = ["BudgetError", "BudgetPlan", "CallCounter", "CallCap", "BudgetExhausted", "capped", "plan_budget",
           "minimum_budget"]


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


def minimum_budget(optimizer: str, n_train: int, n_val: int, calls_per_eval: int = 1) -> int:
    """The smallest budget the optimizer can run on (its ``minimum``)."""
    from optimize.optimizers import optimizer_class

    return optimizer_class(optimizer)().minimum(int(n_train), int(n_val), int(calls_per_eval))


def plan_budget(optimizer: str, budget: int, n_train: int, n_val: int, calls_per_eval: int = 1,
                max_candidates: int = 16) -> BudgetPlan:
    """Choose the optimizer's knobs so that its calls stay within ``budget``.

    Parameters
    ----------
    optimizer : a registered optimizer (``optimize.optimizers``).
    budget : LM calls allowed (>= 1).
    n_train, n_val : training and validation situations (T, V >= 1).
    calls_per_eval : LM calls per evaluation of one situation (e >= 1).
    max_candidates : cap on candidate programs (bootstrap, mipro, simba).

    Raises
    ------
    BudgetError : the budget is below ``minimum_budget``.
    """
    from optimize.optimizers import optimizer_class

    opt = optimizer_class(optimizer)()
    T, V, e = int(n_train), int(n_val), int(calls_per_eval)
    if T < 1 or V < 1 or e < 1:
        raise ValueError(f"n_train={T}, n_val={V} and calls_per_eval={e} must all be >= 1")
    low = opt.minimum(T, V, e)
    knobs = opt.plan(budget, T, V, e, max_candidates) if budget >= low else None
    if knobs is None:
        raise BudgetError(f"--budget {budget} is too small for {optimizer} on {T} training and {V} validation "
                          f"situations ({e} LM call{'s' if e > 1 else ''} per evaluation): it needs at least {low}")
    return BudgetPlan(optimizer, budget, knobs, opt.cost(knobs, T, V, e), opt.bound)


def _cause(exc: BaseException) -> str:
    """Why an LM call failed: a retryable kind (``programs.lm.endpoint.error_kind``) or the exception's class."""
    from programs.lm.endpoint import error_kind

    try:
        kind = error_kind(exc)
    except Exception:  # classifying must never break the count
        kind = None
    return kind or type(exc).__name__


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
        #: Failed calls by (phase, cause): ``programs.lm.endpoint.ERROR_KINDS`` or the exception's class name.
        self.failed_by_cause: Counter[tuple[str, str]] = Counter()
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
                self.failed_by_cause[(phase, _cause(exception))] += n
                if self.first_error is None:
                    self.first_error = f"{type(exception).__name__}: {' '.join(str(exception).split())[:160]}"

    def failures(self) -> dict[str, dict[str, int]]:
        """Failed calls by phase, then by cause."""
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (phase, cause), n in sorted(self.failed_by_cause.items()):
                out.setdefault(phase, {})[cause] = int(n)
            return out

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


class BudgetExhausted(RuntimeError):
    """An LM call refused because it could take the run past ``--budget`` (a failed call, never sent)."""


class CallCap:
    """The hard cap on LM calls: no call starts that could take ``counter.total`` past ``ceiling``.

    The plans above bound what each optimizer *asks for*; they do not bound what a failing endpoint adds
    (``EndpointLM``'s retries are requests too, and ``counter`` counts each one, as DSPy's callbacks fire
    per attempt) nor the adapters' second try on an unparseable answer. A callback cannot refuse a call
    (DSPy logs and swallows a callback's exception), so the cap sits in the call path: a ``capped`` LM asks
    ``admit`` before each request (a served LM's retries one by one), which reserves it and refuses with
    ``BudgetExhausted`` when what was counted plus what is reserved by requests in flight would pass the
    ceiling. A refused call fails like any failed LM call: the planner falls back,
    the optimizer scores it and goes on, nothing computed is lost.
    """

    def __init__(self, counter: CallCounter, ceiling: int) -> None:
        self.counter = counter
        self.ceiling = int(ceiling)
        self.refused = 0
        self._reserved = 0
        self._cond = threading.Condition()

    def set_ceiling(self, ceiling: int) -> None:
        with self._cond:
            self.ceiling = int(ceiling)
            self._cond.notify_all()

    def admit(self, worst: int) -> None:
        """Reserve ``worst`` calls or raise ``BudgetExhausted``; pair with ``release(worst)``.

        While calls are in flight a call that does not fit waits for them (their unused reserve comes
        back); it is refused only when nothing is in flight and it still does not fit.
        """
        with self._cond:
            while self.counter.total + self._reserved + worst > self.ceiling:
                if self._reserved == 0:
                    self.refused += 1
                    raise BudgetExhausted(f"LM call refused: it could make up to {worst} request(s) and "
                                          f"{self.counter.total} of the {self.ceiling} allowed are used")
                self._cond.wait()
            self._reserved += worst

    def release(self, worst: int) -> None:
        with self._cond:
            self._reserved -= worst
            self._cond.notify_all()

    def wrap(self, lm: Any) -> Any:
        """``lm`` with its calls admitted by this cap (``capped``)."""
        return capped(lm, self)


_CAPPED: dict[type, type] = {}


def capped(lm: Any, cap: CallCap) -> Any:
    """A copy of ``lm`` whose calls ask ``cap`` first (same class family, so ``isinstance`` checks hold)."""
    if getattr(lm, "_call_cap", None) is cap:
        return lm
    base = type(lm)
    base = getattr(base, "_uncapped", base)
    cls = _CAPPED.get(base)
    if cls is None:
        cls = _CAPPED[base] = type(f"Capped{base.__name__}", (_CappedMixin, base), {"_uncapped": base})
    new = lm.copy()
    new.__class__ = cls
    new._call_cap = cap
    return new


class _CappedMixin:
    """Requests admitted by ``self._call_cap`` (``CallCap.admit``); ``copy`` keeps the class and the cap.

    A served LM (``EndpointLM``) sends each attempt through ``_send``/``_asend``: each request is admitted
    on its own, so a retry that could pass the ceiling is refused (the call fails with ``BudgetExhausted``)
    and nothing is reserved for retries that never come. Any other LM is admitted per call, for its ``n``
    completions. These methods are not DSPy-decorated: callbacks fire once per request, in ``dspy.LM``'s.
    """

    _call_cap: CallCap

    def _n(self, kwargs: dict[str, Any]) -> int:
        merged = {**(getattr(self, "kwargs", None) or {}), **kwargs}
        return int(merged.get("n") or merged.get("num_generations") or 1)

    def _send(self, prompt: Any, messages: Any, kwargs: dict[str, Any]) -> Any:
        n = self._n(kwargs)
        self._call_cap.admit(n)
        try:
            return super()._send(prompt, messages, kwargs)  # type: ignore[misc]
        finally:
            self._call_cap.release(n)

    async def _asend(self, prompt: Any, messages: Any, kwargs: dict[str, Any]) -> Any:
        n = self._n(kwargs)
        self._call_cap.admit(n)
        try:
            return await super()._asend(prompt, messages, kwargs)  # type: ignore[misc]
        finally:
            self._call_cap.release(n)

    def __call__(self, prompt: Any = None, *, messages: Any = None, **kwargs: Any) -> Any:
        if hasattr(super(), "_send"):  # admitted request by request in _send
            return super().__call__(prompt, messages=messages, **kwargs)
        n = self._n(kwargs)
        self._call_cap.admit(n)
        try:
            return super().__call__(prompt, messages=messages, **kwargs)
        finally:
            self._call_cap.release(n)

    async def acall(self, prompt: Any = None, *, messages: Any = None, **kwargs: Any) -> Any:
        if hasattr(super(), "_asend"):
            return await super().acall(prompt, messages=messages, **kwargs)
        n = self._n(kwargs)
        self._call_cap.admit(n)
        try:
            return await super().acall(prompt, messages=messages, **kwargs)
        finally:
            self._call_cap.release(n)
