"""Token usage per role, read from the LM responses (issue 10).

``UsageMeter`` is both a DSPy callback and a DSPy usage tracker. Installed for a block of calls
(``with meter.installed():``), it counts the answers asked for (each ``dspy.Predict`` call, also inside a
``ChainOfThought``) and the prompt and completion tokens each LM response reported (DSPy hands every
response's usage to ``settings.usage_tracker``), both by the role of the signature being answered:

- ``worker`` (hours: ``ChooseLabor``), ``planner`` (rates: ``ProposeTaxSchedule``), ``voter`` (``Vote``),
  ``satisfaction`` (``RateSatisfaction``), ``persona`` (``WritePersona``: the workers' personas written
  by the LM from their census attributes, ``--personas lm``), ``other`` (any other signature, e.g. an
  example's).

The role is read from the signature's output fields, so a compiled or ChainOfThought predictor keeps it.

- ``reasoning_tokens``: the hidden reasoning of a reasoning model (``completion_tokens_details`` of the
  response, ``programs.lm.reasoning``), counted apart and also inside ``completion_tokens``, as billed.
- ``cached``: LM calls that DSPy's cache replayed (a served model's cache is on by default; a resumed
  run replays the step that was in flight). DSPy reports no usage for them; ``programs.lm.structured``
  reads the stored response's tokens and passes them here (``add_cached_usage``), so their tokens are
  counted as first reported, though not spent again, and a resumed run totals what an uninterrupted
  one does.

The offline engine reports an *estimate* (characters / 4, ``programs.lm.offline``); ``usage_source``
says which.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback

from programs.lm.compat import tracking_usage

__all__ = ["ROLES", "UsageMeter", "role_of", "usage_sum", "usage_total", "usage_source", "KEYS", "reasoning_tokens"]

#: Roles in report order.
ROLES = ("worker", "planner", "voter", "satisfaction", "persona", "other")
#: What is counted per role. ``reused_prompt_tokens``: the part of ``prompt_tokens`` served from a prefix
#: cache instead of evaluated (the response's ``prompt_tokens_details.cached_tokens``: ``--lm local``'s
#: prefix reuse, a server's prefix or prompt cache); evaluated = prompt - reused.
KEYS = ("calls", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached", "reused_prompt_tokens")
#: Output field -> role.
_ROLE_OF_FIELD = {"hours": "worker", "rates_percent": "planner", "persona": "persona", "candidate": "voter",
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


def reasoning_tokens(entry: Mapping[str, Any]) -> int:
    """Reasoning tokens of one DSPy usage entry (OpenAI's ``completion_tokens_details.reasoning_tokens``)."""
    details = entry.get("completion_tokens_details") or {}
    return _int(details.get("reasoning_tokens") if isinstance(details, Mapping)
                else getattr(details, "reasoning_tokens", 0))


class UsageMeter(BaseCallback):
    """Answers and tokens by role over the calls made while installed (thread-safe); ``take()`` reads
    and resets. Usage passed on by an inner tracker (``StructuredAdapter``'s) arrives here too."""

    def __init__(self) -> None:
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

    # -- the usage tracker interface (``programs.lm.compat.tracking_usage``) --------------------------
    def add_usage(self, lm: str, usage_entry: dict[str, Any], *, cached: bool = False) -> None:
        s = self._stack()
        role = s[-1][1] if s else "other"
        entry = usage_entry or {}
        self._add(role, "prompt_tokens", _int(entry.get("prompt_tokens")))
        self._add(role, "completion_tokens", _int(entry.get("completion_tokens")))
        self._add(role, "reasoning_tokens", reasoning_tokens(entry))
        if cached:
            self._add(role, "cached", 1)
        details = entry.get("prompt_tokens_details")
        if isinstance(details, Mapping):
            self._add(role, "reused_prompt_tokens", _int(details.get("cached_tokens")))

    def add_cached_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        """The stored usage of a call DSPy's cache replayed (counted, and counted as ``cached``)."""
        self.add_usage(lm, usage_entry, cached=True)

    def __deepcopy__(self, memo: dict) -> "UsageMeter":
        # dspy.Parallel (so dspy.Evaluate and every optimizer) deep-copies the usage tracker into each
        # worker thread; a meter is one thread-safe count shared by the threads it meters (and its lock
        # cannot be copied: every task would fail before its first call).
        return self

    @contextmanager
    def installed(self) -> Iterator["UsageMeter"]:
        """Count the calls of this block (and of the batch threads it starts, via ``carry_context``)."""
        callbacks = list(dspy.settings.get("callbacks", None) or []) + [self]
        with dspy.context(callbacks=callbacks), tracking_usage(self):
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
