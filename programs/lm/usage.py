"""Token usage per role, read from the LM responses (issue 10).

``UsageMeter`` is both a DSPy callback and a DSPy usage tracker. Installed for a block of calls
(``with meter.installed():``), it counts the answers asked for (each ``dspy.Predict`` call, also inside a
``ChainOfThought``) and the prompt and completion tokens each LM response reported (DSPy hands every
response's usage to ``settings.usage_tracker``), both by the role of the signature being answered:

- ``worker`` (hours: ``ChooseLabor``), ``planner`` (rates: ``ProposeTaxSchedule``; also an election
  candidate's persona, ``WritePersona``, written by a would-be planner), ``voter`` (``Vote``),
  ``satisfaction`` (``RateSatisfaction``), ``other`` (any other signature, e.g. an example's).

The role is read from the signature's output fields, so a compiled or ChainOfThought predictor keeps it.
A DSPy cache hit reports no usage (nothing was spent). The offline engine reports an *estimate*
(characters / 4, ``programs.lm.offline``); ``usage_source`` says which.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback
from dspy.utils.usage_tracker import UsageTracker

__all__ = ["ROLES", "UsageMeter", "role_of", "usage_sum", "usage_total", "usage_source", "KEYS"]

#: Roles in report order.
ROLES = ("worker", "planner", "voter", "satisfaction", "other")
#: What is counted per role.
KEYS = ("calls", "prompt_tokens", "completion_tokens")
#: Output field -> role.
_ROLE_OF_FIELD = {"hours": "worker", "rates_percent": "planner", "persona": "planner", "candidate": "voter",
                  "satisfied": "satisfaction"}


def role_of(signature: Any) -> str:
    """The role answering ``signature`` (by its output fields), ``other`` when none is known."""
    fields = getattr(signature, "output_fields", None) or {}
    for name in fields:
        if name in _ROLE_OF_FIELD:
            return _ROLE_OF_FIELD[name]
    return "other"


def _int(v: Any) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


class UsageMeter(BaseCallback, UsageTracker):
    """Answers and tokens by role over the calls made while installed (thread-safe); ``take()`` reads
    and resets. Usage passed on by an inner tracker (``StructuredAdapter``'s) arrives here too."""

    def __init__(self) -> None:
        UsageTracker.__init__(self)
        self._lock = threading.Lock()
        self._local = threading.local()
        self.counts: dict[str, dict[str, int]] = {}

    # -- the role of the current thread's answer ----------------------------------------------------
    def _stack(self) -> list[tuple[str, str]]:
        s = getattr(self._local, "stack", None)
        if s is None:
            s = self._local.stack = []
        return s

    def _add(self, role: str, key: str, n: int) -> None:
        with self._lock:
            row = self.counts.setdefault(role, dict.fromkeys(KEYS, 0))
            row[key] += n

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if isinstance(instance, dspy.Predict):
            role = role_of(instance.signature)
            self._stack().append((call_id, role))
            self._add(role, "calls", 1)

    def on_module_end(self, call_id: str, outputs: Any, exception: BaseException | None = None) -> None:
        s = self._stack()
        if s and s[-1][0] == call_id:
            s.pop()

    # -- DSPy's usage tracker interface ------------------------------------------------------------
    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        s = self._stack()
        role = s[-1][1] if s else "other"
        entry = usage_entry or {}
        self._add(role, "prompt_tokens", _int(entry.get("prompt_tokens")))
        self._add(role, "completion_tokens", _int(entry.get("completion_tokens")))

    def __deepcopy__(self, memo: dict) -> "UsageMeter":
        # dspy.Parallel (so dspy.Evaluate and every optimizer) deep-copies the usage tracker into each
        # worker thread; a meter is one thread-safe count shared by the threads it meters (and its lock
        # cannot be copied: every task would fail before its first call).
        return self

    @contextmanager
    def installed(self) -> Iterator["UsageMeter"]:
        """Count the calls of this block (and of the batch threads it starts, via ``carry_context``)."""
        callbacks = list(dspy.settings.get("callbacks", None) or []) + [self]
        with dspy.context(callbacks=callbacks, usage_tracker=self):
            yield self

    def take(self) -> dict[str, dict[str, int]]:
        """The counts by role (roles with no call and no token left out, ``ROLES`` order), then reset."""
        with self._lock:
            counts, self.counts = self.counts, {}
        return {r: counts[r] for r in ROLES if r in counts and any(counts[r].values())}


def usage_sum(items: Any) -> dict[str, dict[str, int]]:
    """Sum of by-role usage dicts (steps' ``usage``), ``ROLES`` order."""
    out: dict[str, dict[str, int]] = {}
    for d in items:
        for role, row in (d or {}).items():
            acc = out.setdefault(role, dict.fromkeys(KEYS, 0))
            for k in KEYS:
                acc[k] += _int(row.get(k) if isinstance(row, Mapping) else getattr(row, k, 0))
    return {r: out[r] for r in ROLES if r in out}


def usage_total(by_role: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """All roles together."""
    return {k: sum(_int(row.get(k)) for row in by_role.values()) for k in KEYS}


def usage_source(lms: Any) -> str:
    """How the token counts were obtained: ``estimated`` (the offline engine: characters / 4) or ``reported``
    (by the LM's responses)."""
    from programs.lm.offline import OFFLINE_LABEL

    def offline(lm: Any) -> bool:
        engine = getattr(lm, "engine", None)
        return getattr(engine, "label", None) == OFFLINE_LABEL

    return "estimated" if lms and all(offline(lm) for lm in lms) else "reported"
