"""The one place that touches DSPy internals (tested against DSPy 3.4; see ``docs/design.md`` §6.7).

DSPy's public surface has no way to carry ``dspy.context`` overrides into our own thread pool, to tell
the process-wide trace from an optimizer's, to list LiteLLM's provider prefixes without importing
LiteLLM, to stop the per-call model-metadata scan, to send our own ``response_format`` through
``JSONAdapter``, to render and parse field values without building pydantic adapters on every call, to
skip DSPy's dispatch of adapter and LM events to callbacks that only watch modules, to count the tokens
of a block of calls by who asked, or to silence the progress bars an optimizer draws. Each of those
reaches into a private module or hook, so each lives here behind a version guard: on a DSPy layout we
do not know, every helper degrades to a documented no-op or plain behaviour instead of failing at
import. DSPy 3.5 removes the legacy LM interfaces; nothing outside this module may import from
``dspy.dsp``, ``dspy._vendor`` or ``dspy.clients.*`` internals, override an adapter's private method or
read ``dspy.settings.usage_tracker``. ``tests/programs/lm/test_compat.py`` fails when DSPy changes any of
the surface relied on here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import dspy

__all__ = ["DSPY_VERSION", "SUPPORTED", "carry_context", "quiet_history", "litellm_prefixes",
           "memoize_metadata_misses", "plain_lm_state_class", "LM_CLASS_STATE_KEY", "CallerFormatJSONAdapter",
           "UsageLog", "active_usage_tracker", "tracking_usage", "quiet_progress",
           "observe_calls", "dspy_reasoning_rule", "format_field_value", "parse_value",
           "module_callbacks_paused"]

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


# ───────────────────────────── field values ─────────────────────────────

_MISSING = object()
#: One pydantic ``TypeAdapter`` per Python type or annotation (None: pydantic cannot build one). Building
#: one costs 40-70 us; DSPy builds a fresh one for every value it renders and every answer it parses,
#: ~10 per worker answer. An adapter depends only on its type, so it is built once; bounded because
#: optimizers and examples may bring many types.
_TYPE_ADAPTERS: dict[Any, Any] = {}
_TYPE_ADAPTERS_MAX = 4096


def _type_adapter(annotation: Any) -> Any:
    """The cached ``TypeAdapter`` of ``annotation``; None when pydantic refuses it; ``_MISSING`` when
    ``annotation`` cannot be a cache key (the caller then does what DSPy does)."""
    from pydantic import TypeAdapter

    try:
        ta = _TYPE_ADAPTERS.get(annotation, _MISSING)
    except TypeError:  # an unhashable annotation (Annotated metadata, say)
        return _MISSING
    if ta is _MISSING:
        try:
            ta = TypeAdapter(annotation)
        except Exception:
            ta = None
        if len(_TYPE_ADAPTERS) < _TYPE_ADAPTERS_MAX:
            _TYPE_ADAPTERS[annotation] = ta
    return ta


def _serialize_for_json(value: Any) -> Any:
    """``dspy.adapters.utils.serialize_for_json`` with the value type's adapter built once."""
    ta = _type_adapter(type(value))
    if ta is _MISSING:  # pragma: no cover - a type is always hashable; kept for a metaclass that is not
        from dspy.adapters.utils import serialize_for_json

        return serialize_for_json(value)
    if ta is None:
        return str(value)
    try:
        return ta.dump_python(value, mode="json", fallback=str)
    except Exception:
        return str(value)


def format_field_value(field_info: Any, value: Any) -> str:
    """DSPy's text for an input value (``dspy.adapters.utils.format_field_value``), character for character.

    The prompt text is what a real model reads and what the offline engine seeds from, and the prompt
    prefix a server reuses must not move, so this only changes how the text is made: a value's pydantic
    adapter is built once per type instead of once per value (``tests/programs/lm/test_compat.py``
    compares the two for every signature's inputs).
    """
    if isinstance(value, list) and field_info.annotation is str:  # DSPy's numbered list, rare: DSPy's code
        from dspy.adapters.utils import format_field_value as dspy_format_field_value

        return dspy_format_field_value(field_info, value)
    jsonable = _serialize_for_json(value)
    if isinstance(jsonable, (dict, list)):
        return json.dumps(jsonable, ensure_ascii=False)
    return str(jsonable)


def parse_value(value: Any, annotation: Any) -> Any:
    """``dspy.adapters.utils.parse_value``, with the annotation's adapter built once when the answer's value
    is already JSON (the usual case for a schema-constrained answer); every other case is DSPy's code."""
    import enum
    from typing import Literal, get_origin

    from dspy.adapters.utils import parse_value as dspy_parse_value

    if (isinstance(value, str) or annotation is str or isinstance(annotation, enum.EnumMeta)
            or get_origin(annotation) is Literal):
        return dspy_parse_value(value, annotation)
    ta = _type_adapter(annotation)
    if ta is _MISSING or ta is None:
        return dspy_parse_value(value, annotation)
    return ta.validate_python(value)


# ───────────────────────────── adapters ─────────────────────────────


def _wrapper_code() -> Any:
    """The code of DSPy's synchronous ``with_callbacks`` wrapper: every wrapper it makes shares it, while
    ``functools.wraps`` gives each one the wrapped method's name."""
    from dspy.utils.callback import with_callbacks

    return with_callbacks(lambda self: None).__code__


_WRAPPER_CODE = _wrapper_code()


def _is_callback_wrapper(f: Any) -> bool:
    """Whether ``f`` is DSPy's ``with_callbacks`` wrapper of a synchronous method."""
    return getattr(f, "__code__", None) is _WRAPPER_CODE and hasattr(f, "__wrapped__")


def _innermost(f: Any) -> Any:
    """``f`` without DSPy's callback wrappers."""
    while _is_callback_wrapper(f):
        f = f.__wrapped__
    return f


def _one_callback_layer(cls: type) -> None:
    """Leave ``cls.format`` / ``cls.parse`` wrapped in DSPy's callback dispatch once.

    ``dspy.Adapter.__init_subclass__`` wraps the inherited ``format`` and ``parse`` again for every
    subclass, so an adapter four classes below ``dspy.Adapter`` dispatches each ``on_adapter_format_*``
    callback four times per call: a callback counting formats counts four, and the dispatch (argument
    binding, handler lookup) is paid four times over. The innermost wrapper is DSPy's own, kept.
    """
    for name in ("format", "parse"):
        f = cls.__dict__.get(name)
        if f is None or not _is_callback_wrapper(f):
            continue
        inner = f
        while _is_callback_wrapper(inner.__wrapped__):
            inner = inner.__wrapped__
        if inner is not f:
            setattr(cls, name, inner)


class CallerFormatJSONAdapter(dspy.JSONAdapter):
    """``dspy.JSONAdapter`` that sends the ``response_format`` its caller put in ``lm_kwargs``, renders and
    parses field values as DSPy does without rebuilding pydantic adapters per value, and dispatches DSPy's
    adapter callbacks once per call.

    ``JSONAdapter.__call__`` replaces ``lm_kwargs["response_format"]`` with its own schema in the private
    hook ``_prepare_response_format(lm, lm_kwargs, signature)``; a subclass that builds a per-call schema
    (enums of running candidates, a fixed number of rates) keeps its own by overriding the hook here.
    The user message is DSPy's ``ChatAdapter.format_user_message_content`` layout with ``format_field_value``
    (the same text, ``tests/programs/lm/test_compat.py``); ``parse`` is ``JSONAdapter.parse`` with
    ``parse_value`` for an answer that is a JSON object, and DSPy's own ``parse`` for anything else (its
    repairs, its errors).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # DSPy wraps format/parse again here
        _one_callback_layer(cls)

    def _prepare_response_format(self, lm: Any, lm_kwargs: dict[str, Any], signature: Any) -> None:
        """Keep the caller's ``response_format`` (none set: the request goes without one)."""

    def format_user_message_content(self, signature: Any, inputs: dict[str, Any], prefix: str = "",
                                    suffix: str = "", main_request: bool = False) -> str:
        """DSPy's user message (fields in signature order, ``[[ ## name ## ]]`` headers), values rendered by
        ``format_field_value``."""
        messages = [prefix]
        for k, v in signature.input_fields.items():
            if k in inputs:
                messages.append(f"[[ ## {k} ## ]]\n{format_field_value(v, inputs.get(k))}")
        if main_request:
            output_requirements = self.user_message_output_requirements(signature)
            if output_requirements is not None:
                messages.append(output_requirements)
        messages.append(suffix)
        return "\n\n".join(messages).strip()

    def parse(self, signature: Any, completion: str) -> dict[str, Any]:
        """``JSONAdapter.parse`` of an answer that is one JSON object whose values validate as they stand;
        DSPy's own ``parse`` for anything else, so a repair or an error is exactly DSPy's."""
        from dspy.adapters.utils import apply_output_field_defaults

        try:
            fields = json.loads(completion)
        except (TypeError, ValueError):
            fields = None
        if isinstance(fields, dict):
            outputs = signature.output_fields
            try:
                parsed = {k: parse_value(v, outputs[k].annotation) for k, v in fields.items() if k in outputs}
            except Exception:
                parsed = None
            if parsed is not None:
                parsed = apply_output_field_defaults(signature, parsed)
                if parsed.keys() == outputs.keys():
                    return parsed
        return _innermost(dspy.JSONAdapter.parse)(self, signature, completion)  # this call's dispatch is done


_one_callback_layer(CallerFormatJSONAdapter)


# ───────────────────────────── callbacks ─────────────────────────────

_MODULE_ONLY: dict[type, bool] = {}


def _module_events_only(callback: Any) -> bool:
    """Whether ``callback`` handles module events only: a ``BaseCallback`` overriding none of the others
    (LM, adapter, tool, evaluate, compile, interpreter), so DSPy's dispatch of those to it does nothing."""
    from dspy.utils.callback import BaseCallback

    t = type(callback)
    known = _MODULE_ONLY.get(t)
    if known is None:
        hooks = [n for n in dir(BaseCallback) if n.startswith("on_") and not n.startswith("on_module_")]
        known = issubclass(t, BaseCallback) and all(getattr(t, n) is getattr(BaseCallback, n) for n in hooks)
        _MODULE_ONLY[t] = known
    return known


@contextmanager
def module_callbacks_paused() -> Iterator[None]:
    """Inside an adapter's call: no global DSPy callbacks when every one of them handles module events only.

    DSPy dispatches each adapter ``format``/``parse`` and each LM call to every global callback: argument
    binding, a handler lookup and a uuid per event, ~0.07 ms each. ``UsageMeter`` watches ``dspy.Predict``
    modules only, so for it these events cost ~0.5 ms per answer and do nothing. Any callback with
    another hook (an LM-call counter, a tracer) keeps every event; per-instance callbacks are untouched.
    """
    callbacks = dspy.settings.get("callbacks", None)
    if callbacks and all(_module_events_only(cb) for cb in callbacks):
        with dspy.context(callbacks=[]):
            yield
    else:
        yield


# ───────────────────────────── usage tracking ─────────────────────────────


class UsageLog:
    """A minimal DSPy usage tracker: every ``(model, usage entry)`` DSPy reports, in order (thread-safe).

    DSPy hands each uncached response's usage to ``settings.usage_tracker.add_usage(model, entry)``; that
    one method is the whole interface a tracker needs (``tracking_usage`` installs one).
    """

    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        with self._lock:
            self.entries.append((str(lm), dict(usage_entry or {})))

    def total(self, key: str) -> int | None:
        """Sum of ``key`` (e.g. ``completion_tokens``) over the entries; None when no entry reports it."""
        n = None
        for _, e in self.entries:
            v = e.get(key)
            if isinstance(v, int) and not isinstance(v, bool):
                n = (n or 0) + v
        return n


def active_usage_tracker() -> Any | None:
    """The usage tracker DSPy reports to in this context (``dspy.track_usage``'s or ``tracking_usage``'s)."""
    return dspy.settings.get("usage_tracker", None)


@contextmanager
def tracking_usage(tracker: Any) -> Iterator[Any]:
    """Within this block DSPy reports every uncached response's usage to ``tracker.add_usage(model, entry)``.

    The tracker replaces any enclosing one for the block: pass usage on yourself if an outer one should
    see it (``active_usage_tracker()`` before entering).
    """
    with dspy.context(usage_tracker=tracker):
        yield tracker


# ───────────────────────────── progress bars ─────────────────────────────

#: The ``dspy.context`` key ``quiet_progress`` sets: DSPy carries its overrides into its own worker threads
#: (``dspy.Parallel``, ``dspy.Evaluate``) and ``carry_context`` into ours, so the block's threads are quiet too.
_QUIET_KEY = "llm_economist_quiet_progress"
_TQDM_LOCK = threading.Lock()


def _install_quiet_tqdm() -> None:
    """Once per process: a tqdm bar created inside a ``quiet_progress`` block is disabled.

    DSPy (bootstrap, ``dspy.Parallel``), optuna and GEPA each create bars with no one setting that reaches
    them all, and tqdm reads ``TQDM_DISABLE`` only at import. Outside a block (another thread's
    ``eval.compare`` bar, a user's notebook) a bar is created exactly as tqdm would.
    """
    import tqdm.std

    with _TQDM_LOCK:
        original = tqdm.std.tqdm.__init__
        if getattr(original, "_quiet_gate", False):
            return

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            if dspy.settings.get(_QUIET_KEY, False):
                kwargs["disable"] = True
            original(self, *args, **kwargs)

        init._quiet_gate = True  # type: ignore[attr-defined]
        init.__wrapped__ = original  # type: ignore[attr-defined]
        tqdm.std.tqdm.__init__ = init  # every tqdm flavour DSPy uses (std, auto, notebook) derives from it


@contextmanager
def quiet_progress() -> Iterator[None]:
    """No tqdm progress bars inside this block, in this thread and the DSPy threads it starts."""
    _install_quiet_tqdm()
    with dspy.context(**{_QUIET_KEY: True}):
        yield

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
