"""The one place that touches DSPy internals (tested against DSPy 3.4; see ``docs/design.md`` §6.7).

DSPy's public surface has no way to carry ``dspy.context`` overrides into our own thread pool, to tell
the process-wide trace from an optimizer's, to list LiteLLM's provider prefixes without importing
LiteLLM, or to stop the per-call model-metadata scan. Each of those reaches into a private module, so
each lives here behind a version guard: on a DSPy layout we do not know, every helper degrades to a
documented no-op or plain behaviour instead of failing at import. DSPy 3.5 removes the legacy LM
interfaces; nothing outside this module may import from ``dspy.dsp``, ``dspy._vendor`` or
``dspy.clients.*`` internals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import dspy

__all__ = ["DSPY_VERSION", "SUPPORTED", "carry_context", "quiet_history", "litellm_prefixes",
           "memoize_metadata_misses", "plain_lm_state_class", "LM_CLASS_STATE_KEY", "observe_calls",
           "dspy_reasoning_rule"]

T = TypeVar("T")
R = TypeVar("R")

DSPY_VERSION = tuple(int(p) for p in dspy.__version__.split(".")[:2] if p.isdigit())
#: The DSPy minor versions these shims were verified against.
SUPPORTED = ((3, 4),)

try:
    from dspy.dsp.utils.settings import main_thread_config as _main_config
    from dspy.dsp.utils.settings import thread_local_overrides as _overrides
except ImportError:  # pragma: no cover - another DSPy layout
    _overrides = None
    _main_config = None

try:
    from dspy.clients.base_lm import LM_CLASS_STATE_KEY
except ImportError:  # pragma: no cover
    LM_CLASS_STATE_KEY = "__dspy_lm_class__"


def carry_context(fn: Callable[[T], R]) -> Callable[[T], R]:
    """Wrap ``fn`` so that, run in a pool thread, it sees the caller's ``dspy.context`` overrides.

    The same thing ``dspy.Parallel`` does for its own threads; call this in the submitting thread.
    """
    if _overrides is None:  # pragma: no cover
        return fn
    parent = _overrides.get().copy()

    def run(x: T) -> R:
        token = _overrides.set(parent.copy())
        try:
            return fn(x)
        finally:
            _overrides.reset(token)

    return run


@contextmanager
def quiet_history() -> Iterator[None]:
    """DSPy history off and, outside an optimizer's own trace, trace memory off too.

    A long run would otherwise keep every prompt; an optimizer that collects its own trace keeps it.
    """
    extra: dict[str, Any] = {"disable_history": True}
    if _main_config is not None and dspy.settings.trace is _main_config.get("trace"):
        extra["trace"] = None  # the process-wide default list, not an optimizer's own trace
    with dspy.context(**extra):
        yield


def litellm_prefixes() -> frozenset[str]:
    """Provider prefixes DSPy routes to LiteLLM (empty when this DSPy layout does not expose them)."""
    try:
        from dspy._vendor.lm15.router import LITELLM_PROVIDER_PREFIXES
    except ImportError:  # pragma: no cover
        return frozenset()
    return frozenset(str(p).lower() for p in LITELLM_PROVIDER_PREFIXES)


_METADATA_LOCK = threading.Lock()


def memoize_metadata_misses() -> None:
    """Remember DSPy's model-metadata misses (one patch per process, idempotent).

    DSPy prices every completion from a bundled metadata table. For a model the table does not list (any
    model a user serves: ``openai/<name>`` on vLLM or SGLang) each lookup scans the whole table, twice per
    call: ~3 ms of CPU, measured at 40% of the client's time per request on 2 cores. The table is loaded
    once per process, so a miss stays a miss; only misses are remembered (hits are already a dict lookup),
    and each caller still gets a fresh dict. On another DSPy layout nothing is patched.
    """
    try:
        import dspy.clients.capabilities as capabilities
        import dspy.clients.costs as costs
        import dspy.clients.model_metadata as metadata
    except ImportError:  # pragma: no cover
        return
    with _METADATA_LOCK:
        original = getattr(metadata, "model_info", None)
        if original is None or getattr(original, "_memoized_misses", False):
            return
        misses: set[tuple] = set()

        def model_info(provider: Any, model: Any, *, namespaces: Any = None) -> dict:
            try:
                key = (provider, model, None if namespaces is None else tuple(namespaces))
                hash(key)
            except TypeError:
                return original(provider, model, namespaces=namespaces)
            if key in misses:
                return {}
            info = original(provider, model, namespaces=namespaces)
            if not info and len(misses) < 10_000:
                misses.add(key)
            return info

        model_info._memoized_misses = True  # type: ignore[attr-defined]
        model_info.__wrapped__ = original  # type: ignore[attr-defined]
        for module in (metadata, costs, capabilities):
            if getattr(module, "model_info", None) is original:
                module.model_info = model_info


def plain_lm_state_class(state: dict[str, Any]) -> dict[str, Any]:
    """Mark a saved LM state as a plain ``dspy.LM`` (our subclasses' bounds and counters are runtime-only)."""
    state[LM_CLASS_STATE_KEY] = "dspy.clients.lm.LM"
    return state


def dspy_reasoning_rule(model: str) -> bool:
    """Whether DSPy applies OpenAI's reasoning-model rule to ``model`` (temperature 1.0 or None, max_tokens
    >= 16000 or None, checked when the ``dspy.LM`` is built): DSPy's own private test, so the two never
    disagree. On another DSPy layout, an equivalent of DSPy 3.4's pattern."""
    try:
        from dspy.clients.lm import _is_openai_reasoning_model
    except ImportError:  # pragma: no cover - another DSPy layout
        import re

        family = model.split("/")[-1].lower()
        return re.match(r"^(?:o[1345](?:-(?:mini|nano|pro))?(?:-\d{4}-\d{2}-\d{2})?|gpt-5(?:\.\d+)*(?!-chat)(?:-.*)?)$",
                        family) is not None
    return bool(_is_openai_reasoning_model(model))


#: The list that ``observe_calls`` fills in this context (None: nobody is observing).
_OBSERVED: ContextVar[list[dict[str, Any]] | None] = ContextVar("llm_economist_observed_calls", default=None)
_OBSERVE_LOCK = threading.Lock()


def _call_info(result: Any) -> dict[str, Any]:
    """What one finished LM call reported: cache hit, finish reason and usage (DSPy's usage-dict form).

    A DSPy cache hit carries the stored response, whose finish reason and usage are those of the call
    that first made it; DSPy itself reports a hit's usage as empty (nothing was spent).
    """
    from dspy.clients.call_result import usage_dict
    from dspy.clients.legacy_outputs import plain, value

    responses = getattr(result, "responses", ()) or ()
    if responses:
        r = responses[0]
        usage = dict(getattr(result, "usage", None) or {}) or usage_dict(r)
        reason = getattr(r, "finish_reason", None)
    else:  # the LiteLLM compatibility path keeps the provider's raw response
        raw = getattr(result, "raw", None)
        usage = dict(getattr(result, "usage", None) or {}) or plain(dict(value(raw, "usage", {}) or {}))
        choices = value(raw, "choices", []) or []
        reason = value(choices[0], "finish_reason", None) if choices else None
    return {"cache_hit": bool(getattr(result, "cache_hit", False)), "finish_reason": reason, "usage": usage}


def _install_observer() -> bool:
    """Wrap DSPy's call finaliser once per process, so that ``observe_calls`` sees every call's result."""
    try:
        import dspy.clients.execution as execution
    except ImportError:  # pragma: no cover
        return False
    with _OBSERVE_LOCK:
        original = getattr(execution, "finalize", None)
        if original is None:  # pragma: no cover
            return False
        if getattr(original, "_observed", False):
            return True

        def finalize(lm: Any, call: Any, result: Any) -> Any:
            seen = _OBSERVED.get()
            if seen is not None:
                try:
                    seen.append(_call_info(result))
                except Exception:  # pragma: no cover - never let accounting break a call
                    pass
            return original(lm, call, result)

        finalize._observed = True  # type: ignore[attr-defined]
        finalize.__wrapped__ = original  # type: ignore[attr-defined]
        execution.finalize = finalize
        return True


@contextmanager
def observe_calls() -> Iterator[list[dict[str, Any]] | None]:
    """Collect ``{"cache_hit", "finish_reason", "usage"}`` for every LM call finished in this block (this
    thread or task), cache hits included; yields None on a DSPy layout where calls cannot be observed.

    DSPy hands the response's text to the adapter and its usage to the usage tracker, except on a cache
    hit; truncation and token counts of replayed answers are read here instead (``programs.lm.structured``).
    """
    if not _install_observer():  # pragma: no cover
        yield None
        return
    seen: list[dict[str, Any]] = []
    token = _OBSERVED.set(seen)
    try:
        yield seen
    finally:
        _OBSERVED.reset(token)
