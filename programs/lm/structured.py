"""Structured outputs and token budgets for real language models (``docs/design.md`` §6.6).

A small base model asked in prose for a JSON answer echoes the template or rambles to the end of its
context. Two things fix that for every signature, without touching the signatures themselves:

- **The output fields' JSON schema** is sent as ``response_format``, which llama.cpp, vLLM, SGLang,
  Ollama and OpenAI turn into constrained decoding. Two wire forms exist: OpenAI's
  ``{"type": "json_schema", "json_schema": {"schema": ...}}`` (tried first) and llama-cpp-python's
  ``{"type": "json_object", "schema": ...}`` (its server rejects the first with a 500). Decisions are taken
  on evidence, per endpoint: a call whose schema is rejected is retried in the other form; the endpoint
  switches form for the rest of the run only when the same request is accepted in the other form while
  its current form has never been accepted; and ``auto`` backs off to plain prompts only when the same
  request is rejected in every form by an endpoint that has never accepted a schema, or at once on the
  client's documented "unsupported" error. A rejection by an endpoint that has taken schemas before is
  that call's schema (votes build one per call): the call alone is answered in plain prompts, counted
  (``schema_rejected``). The summary lists the calls that led to each decision (``decisions``). The schema carries every
  range that a grammar can enforce: llama.cpp enforces an ``enum`` (also of integers) but not
  ``minimum``/``maximum``, so weekly hours are an enum of the integers 0..``MAX_HOURS``, each tax rate an
  enum of the integer percents 0..100 with exactly one rate per bracket (``minItems``/``maxItems``), a
  vote an enum of the names of the candidates running *in this call* (so a schema is built per call,
  from the inputs), satisfaction a boolean, a persona and a ChainOfThought reasoning bounded strings.
  The agents' own range checks stay: a schema's bounds are a hint to the server, never trusted.
- **A token budget** (``max_tokens``) per signature sized to its answer, the sum of per-field budgets
  in ``FIELD_TOKENS`` (so ``--module cot`` gets the reasoning's budget on top; a reasoning model gets
  ``programs.lm.reasoning.REASONING_ROOM`` more). An answer cut off at its budget (``finish_reason`` is
  ``length``, read from the response, also when DSPy's cache replays it) raises ``TruncatedAnswer``, which
  the agents count as a ``truncated`` fallback, instead of a run that waits for 7,000 rambling tokens.

``build_lms`` marks each LM it builds for a real model with its ``StructuredOptions`` (the
``--structured auto|on|off`` knob and an optional ``--max-tokens`` override); the agents call their
predictors inside ``use_structured(lm)``, which installs ``StructuredAdapter`` for a marked LM and changes
nothing for any other (a ``dspy.LM`` you build yourself, test fakes). ``auto`` backs off, once per
endpoint, counted and logged, to DSPy's plain chat format when a server rejects every form of the
schema (the evidence above); ``on`` never backs off (a rejection is an LM error); ``off`` never sends a
schema.

The offline engine is not marked: it is a numeric stand-in whose answers are seeded by the prompt text,
so a JSON prompt would change its answers, and it has no tokens to budget. Offline runs therefore stay
byte-identical to the chat-format runs before this module existed.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

from economy.constants import MAX_HOURS
from programs.lm.compat import (
    CallerFormatJSONAdapter,
    UsageLog,
    active_usage_tracker,
    module_callbacks_paused,
    tracking_usage,
)
from programs.lm.reasoning import plan_of

__all__ = ["MODES", "WIRE_FORMS", "FIELD_TOKENS", "REASONING_MAX_CHARS", "PERSONA_MAX_CHARS", "StructuredOptions",
           "StructuredAdapter", "TruncatedAnswer", "output_schema", "response_format", "token_budget",
           "mark", "options_of", "use_structured", "rejects_schema", "structured_summary", "INSTRUCTION_TOKENS",
           "INSTRUCTION_MAX_CHARS", "with_writing_budget", "WritingAdapter", "writing_adapter"]

logger = logging.getLogger(__name__)

#: Values of the ``--structured`` knob.
MODES = ("auto", "on", "off")
#: How a schema travels, in the order tried: OpenAI's (also vLLM, SGLang, Ollama, llama.cpp's server,
#: and DSPy's custom engines such as ``--lm local``), then llama-cpp-python's server's.
WIRE_FORMS = ("json_schema", "json_object")

#: Longest persona the schema allows (the signature asks for one or two sentences).
PERSONA_MAX_CHARS = 400
#: Longest ChainOfThought reasoning the schema allows (a few sentences).
REASONING_MAX_CHARS = 800

#: Rates are whole percents of a marginal rate in [0, 1].
_PERCENTS = list(range(0, 101))
#: Weekly hours are whole hours in [0, MAX_HOURS].
_HOURS = list(range(0, int(MAX_HOURS) + 1))

#: Completion tokens per output field: room for the value in JSON or in DSPy's chat format (whose
#: ``[[ ## name ## ]]`` header costs about ten tokens), measured on Gemma 3's tokenizer with margin.
#: A callable takes the call's inputs (the planner's budget grows with the number of brackets).
FIELD_TOKENS: dict[str, int | Callable[[Mapping[str, Any]], int]] = {
    "hours": 24,
    "satisfied": 24,
    "candidate": 32,
    "rates_percent": lambda inputs: 24 + 5 * _n_brackets(inputs),
    "persona": 160,
    "reasoning": 320,
}
#: Tokens of the answer's frame (braces, the chat format's completion marker) and of an unknown field.
_FRAME_TOKENS = 16
_OTHER_FIELD_TOKENS = 128
#: Completion tokens of one answer of an LM that writes instructions (MIPROv2's proposer, COPRO, SIMBA,
#: GEPA's reflection): DSPy's prompts, not this project's signatures, so no per-signature budget reaches
#: them, and without one a model writes to the end of its window (llama.cpp: the window minus the prompt,
#: ~7,300 tokens and 11 minutes for one Gemma 3 270M proposal on a shared 2-core machine). Room for several
#: times the planner's own instruction (165 tokens); ``--max-tokens`` overrides it.
INSTRUCTION_TOKENS = 1024
#: Longest text ``WritingAdapter`` lets that LM put in one field (the schema's ``maxLength``): a little more
#: than the planner's own instruction (726 characters), within ``INSTRUCTION_TOKENS`` (a token is at least
#: one character), and within what llama.cpp's grammar parser takes: 1,000 is accepted, 1,200 refused
#: ("number of rules ... exceeds sane defaults"), and llama-cpp-python then crashes the process.
INSTRUCTION_MAX_CHARS = 1000


# ───────────────────────────── schemas and budgets ─────────────────────────────


def _n_brackets(inputs: Mapping[str, Any]) -> int:
    for key in ("cutoffs", "current_rates_percent"):
        v = inputs.get(key)
        if isinstance(v, (list, tuple)) and v:
            return len(v)
    return 7  # the US federal preset, when a caller shows neither


def _candidate_names(inputs: Mapping[str, Any]) -> list[str]:
    names = []
    for c in inputs.get("candidates") or ():
        name = c.get("candidate") if isinstance(c, Mapping) else getattr(c, "candidate", c)
        if isinstance(name, str) and name.strip() and name.strip() not in names:
            names.append(name.strip())
    return names


def _rates_schema(inputs: Mapping[str, Any]) -> dict[str, Any]:
    k = _n_brackets(inputs)
    return {"type": "array", "items": {"type": "integer", "enum": _PERCENTS}, "minItems": k, "maxItems": k}


def _candidate_schema(inputs: Mapping[str, Any]) -> dict[str, Any]:
    names = _candidate_names(inputs)
    return {"type": "string", "enum": names} if names else {"type": "string", "minLength": 1, "maxLength": 64}


#: What a grammar can enforce about each of our output fields, built from the call's inputs.
FIELD_SCHEMAS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "hours": lambda inputs: {"type": "integer", "enum": _HOURS},
    "rates_percent": _rates_schema,
    "candidate": _candidate_schema,
    "satisfied": lambda inputs: {"type": "boolean"},
    "persona": lambda inputs: {"type": "string", "minLength": 1, "maxLength": PERSONA_MAX_CHARS},
    "reasoning": lambda inputs: {"type": "string", "minLength": 1, "maxLength": REASONING_MAX_CHARS},
}


def _generic_schema(annotation: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """Pydantic's schema of an annotation, its ``$defs`` hoisted to the top level."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(annotation).json_schema(ref_template="#/$defs/{model}")
    defs.update(schema.pop("$defs", {}))
    return schema


def output_schema(signature: type[dspy.Signature], inputs: Mapping[str, Any] | None = None,
                  text_max_chars: int | None = None) -> dict[str, Any]:
    """The JSON schema of ``signature``'s output fields, with the bounds and enums of ``FIELD_SCHEMAS``.

    Fields this project knows (``hours``, ``rates_percent``, ``candidate``, ``satisfied``, ``persona``,
    ``reasoning``) get their grammar-enforceable ranges, built from this call's ``inputs``; any other
    field gets pydantic's schema of its type, a ``str`` field at most ``text_max_chars`` characters when
    given (``WritingAdapter``). Every field is required and nothing else is allowed.
    """
    inputs = inputs or {}
    props: dict[str, Any] = {}
    defs: dict[str, Any] = {}
    for name, f in signature.output_fields.items():
        rule = FIELD_SCHEMAS.get(name)
        if rule is not None:
            props[name] = rule(inputs)
        elif text_max_chars is not None and f.annotation is str:
            props[name] = {"type": "string", "minLength": 1, "maxLength": int(text_max_chars)}
        else:
            props[name] = _generic_schema(f.annotation, defs)
    schema: dict[str, Any] = {"type": "object", "properties": props, "required": list(props),
                              "additionalProperties": False}
    if defs:
        schema["$defs"] = defs
    return schema


def response_format(signature: type[dspy.Signature], inputs: Mapping[str, Any] | None = None,
                    form: str = "json_schema", text_max_chars: int | None = None) -> dict[str, Any]:
    """``output_schema`` as a ``response_format`` in one of ``WIRE_FORMS``: OpenAI's ``json_schema`` (not
    ``strict``, whose keyword whitelist would reject the bounds) or llama-cpp-python's ``json_object``."""
    schema = output_schema(signature, inputs, text_max_chars)
    if form == "json_object":
        return {"type": "json_object", "schema": schema}
    if form != "json_schema":
        raise ValueError(f"form={form!r} must be one of {WIRE_FORMS}")
    return {"type": "json_schema", "json_schema": {"name": signature.__name__ or "answer", "schema": schema}}


def token_budget(signature: type[dspy.Signature], inputs: Mapping[str, Any] | None = None,
                 text_tokens: int | None = None) -> int:
    """``max_tokens`` for one answer of ``signature``: the frame plus each output field's ``FIELD_TOKENS``
    (a ``str`` field it does not list: ``text_tokens`` when given)."""
    inputs = inputs or {}
    total = _FRAME_TOKENS
    for name, f in signature.output_fields.items():
        other = text_tokens if text_tokens is not None and f.annotation is str else _OTHER_FIELD_TOKENS
        b = FIELD_TOKENS.get(name, other)
        total += b(inputs) if callable(b) else b
    return total


def with_writing_budget(lm: dspy.BaseLM, max_tokens: int | None = None) -> dspy.BaseLM:
    """A copy of ``lm`` whose every answer has a token budget: ``max_tokens``, else ``INSTRUCTION_TOKENS``
    (plus a reasoning model's room to reason, ``programs.lm.reasoning``). For the LM that writes
    instructions, whose calls come from DSPy's optimizers rather than through ``StructuredAdapter``."""
    budget = int(max_tokens) if max_tokens is not None else plan_of(lm).budget(INSTRUCTION_TOKENS)
    # DSPy builds an OpenAI reasoning model with ``max_completion_tokens`` in place of ``max_tokens``.
    key = "max_completion_tokens" if "max_completion_tokens" in (getattr(lm, "kwargs", None) or {}) else "max_tokens"
    return lm.copy(**{key: budget})


# ───────────────────────────── per-LM options ─────────────────────────────

#: Attribute under which ``mark`` stores an LM's options (shared by the LM's copies, as its endpoint is).
_ATTR = "structured_output"


@dataclass
class StructuredOptions:
    """How one LM gets structured outputs, and what happened (thread-safe counters).

    ``mode``: ``auto`` (schema, backing off to plain prompts when the server rejects it), ``on`` or
    ``off``. ``max_tokens``: one budget for every signature instead of ``token_budget``'s.
    Counters (this process): ``calls`` answers asked for, ``structured`` / ``plain`` answers parsed each
    way, ``backoffs`` rejections that switched this LM to plain prompts, ``truncated`` answers cut off at
    their budget, ``cached`` LM calls replayed from DSPy's cache. Tokens are not counted here: the run's
    one token total is its usage by role (``programs.lm.usage``, summed over the run log).
    """

    mode: str = "auto"
    max_tokens: int | None = None
    form: int = 0
    backed_off: bool = False
    reason: str | None = None
    counts: Counter = field(default_factory=Counter)
    #: Wire forms this endpoint has accepted at least once (the evidence a rejection is weighed against).
    accepted: set = field(default_factory=set)
    #: The endpoint-wide decisions and the calls that led to them (``{"decision", "call", "reason"}``).
    decisions: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"structured={self.mode!r} must be one of {', '.join(MODES)}")
        if self.max_tokens is not None and (isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int)
                                            or self.max_tokens < 1):
            raise ValueError(f"max_tokens={self.max_tokens!r} must be an integer >= 1")

    @property
    def sends_schema(self) -> bool:
        return self.mode == "on" or (self.mode == "auto" and not self.backed_off)

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def took(self, form: int, call: str, where: str) -> None:
        """Form ``form`` was accepted for ``call``; if the endpoint's form never was, switch to this one (the
        same request was rejected in that form and accepted in this)."""
        with self._lock:
            self.accepted.add(form)
            moved = form != self.form and self.form not in self.accepted
            if moved:
                old, self.form = self.form, form
                self.counts["form_switches"] += 1
                self.decisions.append({"decision": f"form {WIRE_FORMS[form]}", "call": call,
                                       "reason": f"{WIRE_FORMS[old]} rejected, {WIRE_FORMS[form]} accepted"})
        if moved:
            logger.info("%s rejected response_format %r for %s and took %r; sending the schema as %r", where,
                        WIRE_FORMS[old], call, WIRE_FORMS[form], WIRE_FORMS[form])

    def ever_accepted(self) -> bool:
        with self._lock:
            return bool(self.accepted)

    def call_rejected(self, exc: BaseException, call: str) -> None:
        """This call's schema was rejected in every form by an endpoint that accepts schemas: this call only
        goes plain (counted), the endpoint keeps structured outputs."""
        with self._lock:
            self.counts["schema_rejected"] += 1
            if self.counts["schema_rejected"] <= 5:  # the first few, as examples; the count says how many
                self.decisions.append({"decision": "this call plain", "call": call, "reason": _reason(exc)})

    def back_off(self, exc: BaseException, where: str, call: str = "?") -> None:
        with self._lock:
            first = not self.backed_off
            self.backed_off = True
            self.counts["backoffs"] += 1
            if first:
                self.reason = _reason(exc)
                self.decisions.append({"decision": "plain prompts", "call": call, "reason": self.reason})
        if first:
            logger.warning("%s rejected the structured-output schema of %s in every form (%s); --structured auto "
                           "continues with plain prompts for this endpoint", where, call, self.reason)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"mode": self.mode, "form": WIRE_FORMS[self.form], "backed_off": self.backed_off,
                    **dict(sorted(self.counts.items())), "decisions": [dict(d) for d in self.decisions]}


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def mark(lm: dspy.BaseLM, mode: str = "auto", max_tokens: int | None = None) -> dspy.BaseLM:
    """Give ``lm`` structured outputs and token budgets (what ``build_lms`` does for real models)."""
    setattr(lm, _ATTR, StructuredOptions(mode=mode, max_tokens=max_tokens))
    return lm


def options_of(lm: Any) -> StructuredOptions | None:
    opts = getattr(lm, _ATTR, None)
    return opts if isinstance(opts, StructuredOptions) else None


def structured_summary(lms: Any) -> dict[str, Any] | None:
    """Summed counters of the marked LMs (None when none is marked, e.g. the offline engine)."""
    opts = [o for o in (options_of(lm) for lm in lms) if o is not None]
    if not opts:
        return None
    total: Counter = Counter()
    for o in opts:
        total.update({k: v for k, v in o.snapshot().items() if isinstance(v, int) and not isinstance(v, bool)})
    return {"mode": opts[0].mode, "forms": sorted({WIRE_FORMS[o.form] for o in opts}),
            "backed_off": sum(o.backed_off for o in opts), **dict(sorted(total.items())),
            "reasons": sorted({o.reason for o in opts if o.reason}),
            "decisions": [d for o in opts for d in o.snapshot()["decisions"]]}


# ───────────────────────────── the adapter ─────────────────────────────


class TruncatedAnswer(AdapterParseError):
    """The answer used its whole token budget, so it was cut off (``finish_reason == "length"``)."""


_SCHEMA_WORDS = ("response_format", "json_schema", "schema", "grammar", "structured")


def documented_unsupported(exc: BaseException) -> bool:
    """The client's documented error for a model without structured outputs (no need to try every form)."""
    from dspy.utils.exceptions import LMUnsupportedFeatureError

    return isinstance(exc, LMUnsupportedFeatureError) and "structured_outputs" in getattr(exc, "features", ())


def rejects_schema(exc: BaseException) -> bool:
    """Whether an LM error says the server cannot take our ``response_format`` (a 400/422 or an
    unsupported feature naming it), as opposed to a time-out, a rate limit or a broken connection."""
    from dspy.utils.exceptions import (
        ContextWindowExceededError,
        LMInvalidRequestError,
        LMRateLimitError,
        LMTimeoutError,
        LMTransportError,
        LMUnsupportedFeatureError,
    )

    if isinstance(exc, LMUnsupportedFeatureError) and "structured_outputs" in getattr(exc, "features", ()):
        return True
    if isinstance(exc, (LMTimeoutError, LMRateLimitError, LMTransportError, ContextWindowExceededError)):
        return False
    status = getattr(exc, "status", None)
    text = str(exc).lower()
    mentions = any(w in text for w in _SCHEMA_WORDS)
    # llama-cpp-python's server answers an unknown response_format type with a 500 naming it.
    return mentions and (status in (400, 415, 422, 500, 501) or isinstance(exc, (LMUnsupportedFeatureError,
                                                                                   LMInvalidRequestError)))


def _entries(seen: list[dict[str, Any]] | None, tracker: Any) -> list[dict[str, Any]]:
    """One ``{"cache_hit", "finish_reason", "usage"}`` per LM call of an answer: observed (cache hits
    included, ``compat.observe_calls``), or, where DSPy's calls cannot be observed, the usage DSPy
    reported to ``tracker`` (no cache hits, no finish reason)."""
    if seen is not None:
        return list(seen)
    return [{"cache_hit": False, "finish_reason": None, "usage": dict(e)}
            for _, e in tracker.entries]


def _completion_tokens(entries: list[dict[str, Any]]) -> int | None:
    """Completion tokens of an answer's calls (None when no call reported any)."""
    n = None
    for e in entries:
        v = (e.get("usage") or {}).get("completion_tokens")
        if isinstance(v, int) and not isinstance(v, bool):
            n = (n or 0) + v
    return n


def _cut_off(entries: list[dict[str, Any]], budget: int) -> bool:
    """Whether an answer was cut off: the server said so (``finish_reason == "length"``, also replayed from
    DSPy's cache), or the answer used its whole budget (a server that does not say)."""
    if any(e.get("finish_reason") == "length" for e in entries):
        return True
    used = _completion_tokens(entries)
    return used is not None and used >= budget


class StructuredAdapter(CallerFormatJSONAdapter):
    """``JSONAdapter`` that sends our per-call schema and budget, and backs off or counts as configured.

    One instance serves every marked LM: the mode, the back-off state and the counters live on each LM's
    ``StructuredOptions``. For plain prompts it delegates to a ``ChatAdapter`` without DSPy's JSON
    retry, so one answer is one request.
    """

    #: A ``str`` output field no ``FIELD_SCHEMAS`` rule covers: its ``maxLength`` (None: unbounded) and its
    #: token budget (None: ``_OTHER_FIELD_TOKENS``). Set by ``WritingAdapter``.
    text_max_chars: int | None = None
    text_tokens: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self.plain = dspy.ChatAdapter(use_json_adapter_fallback=False)
        self._system: dict[type, str] = {}

    def format_system_message(self, signature: type[dspy.Signature]) -> str:
        """The system message, rendered once per signature class: it depends on nothing else, and rendering
        it (field descriptions, the JSON structure) cost ~0.3 ms of the client's ~3 ms per answer at scale
        (``bench/bench_scale.py``). A changed signature (new instructions) is a new class, hence a new key."""
        msg = self._system.get(signature)
        if msg is None:
            msg = super().format_system_message(signature)
            if len(self._system) < 1024:  # optimizers make many signature variants; keep the cache bounded
                self._system[signature] = msg
        return msg

    def user_message_output_requirements(self, signature: type[dspy.Signature]) -> None:
        """No format reminder after the inputs: the schema goes with the request and the system message states
        the format, while a reminder placed after the inputs that change every call would be re-read (its
        ~25 tokens evaluated again) on every answer of a model that reuses its prompt prefix (§6.6). Plain
        prompts (``self.plain``) keep DSPy's reminder."""
        return None

    def __call__(self, lm: dspy.BaseLM, lm_kwargs: dict[str, Any], signature: type[dspy.Signature],
                 demos: list[dict[str, Any]], inputs: dict[str, Any]) -> list[dict[str, Any]]:
        # A usage meter watches modules only: DSPy need not dispatch this call's adapter and LM events to it.
        with module_callbacks_paused():
            return self._answer(lm, lm_kwargs, signature, demos, inputs)

    def _answer(self, lm: dspy.BaseLM, lm_kwargs: dict[str, Any], signature: type[dspy.Signature],
                demos: list[dict[str, Any]], inputs: dict[str, Any]) -> list[dict[str, Any]]:
        opts = options_of(lm) or StructuredOptions()
        opts.add("calls")
        lm_kwargs = dict(lm_kwargs)
        budget = opts.max_tokens or plan_of(lm).budget(token_budget(signature, inputs, self.text_tokens))
        lm_kwargs["max_tokens"] = budget
        where = getattr(lm, "endpoint", None) or str(getattr(lm, "model", "the server"))
        call = getattr(signature, "__name__", None) or "answer"
        # The endpoint's form first, then the others, for this same request: the evidence for a decision.
        forms = [opts.form] + [f for f in range(len(WIRE_FORMS)) if f != opts.form]
        last: BaseException | None = None
        for form in forms if opts.sends_schema else ():
            lm_kwargs["response_format"] = response_format(signature, inputs, WIRE_FORMS[form], self.text_max_chars)
            try:
                out = self._budgeted(super().__call__, opts, budget, lm, lm_kwargs, signature, demos, inputs)
            except Exception as exc:
                if not rejects_schema(exc):
                    raise
                last = exc
                if documented_unsupported(exc):
                    break
                continue
            opts.took(form, call, where)
            opts.add("structured")
            return out
        if last is not None:  # every form rejected (or the documented error)
            if opts.mode != "auto":
                raise last
            if opts.ever_accepted() and not documented_unsupported(last):
                opts.call_rejected(last, call)  # this call's schema, not the endpoint's support
            else:
                opts.back_off(last, where, call)
        lm_kwargs.pop("response_format", None)
        out = self._budgeted(self.plain.__call__, opts, budget, lm, lm_kwargs, signature, demos, inputs)
        opts.add("plain")
        return out

    async def acall(self, lm: dspy.BaseLM, lm_kwargs: dict[str, Any], signature: type[dspy.Signature],
                    demos: list[dict[str, Any]], inputs: dict[str, Any]) -> list[dict[str, Any]]:
        """Async calls run the sync path in a thread: the agents call synchronously, and one code path
        keeps the back-off and truncation rules in one place."""
        import asyncio

        from programs.lm.compat import carry_context

        run = carry_context(lambda _: self(lm, lm_kwargs, signature, demos, inputs))
        return await asyncio.to_thread(run, None)

    @staticmethod
    def _budgeted(call: Callable[..., list[dict[str, Any]]], opts: StructuredOptions, budget: int,
                  lm: dspy.BaseLM, lm_kwargs: dict[str, Any], signature: type[dspy.Signature],
                  demos: list[dict[str, Any]], inputs: dict[str, Any]) -> list[dict[str, Any]]:
        """Run one call, its LM calls observed; an answer that was cut off is ``TruncatedAnswer``.

        DSPy's adapters see only the completion text, so the finish reason and usage of each LM call are
        read from the call's result (``compat.observe_calls``), also for a DSPy cache hit, which replays the
        stored response (its finish reason and tokens those of the call that made it) while DSPy reports
        no usage for it. A cut-off answer (``finish_reason == "length"``; a reasoning model that spent its
        budget reasoning answers nothing) is truncated whether it parses or not: a grammar-constrained answer
        cut off mid-JSON may still "parse" after JSON repair. The usage goes on to the enclosing tracker:
        a ``UsageMeter`` also gets a cache hit's tokens, marked as replayed; any other tracker gets what
        DSPy would have given it.
        """
        from programs.lm.compat import observe_calls

        outer = active_usage_tracker()
        tracker = UsageLog()  # DSPy's own reports, passed on to ``outer`` below
        entries: list[dict[str, Any]] = []
        try:
            with observe_calls() as seen, tracking_usage(tracker):
                try:
                    out = call(lm, lm_kwargs, signature, demos, inputs)
                finally:
                    entries = _entries(seen, tracker)
        except AdapterParseError as exc:
            if _cut_off(entries, budget):
                opts.add("truncated")
                raise TruncatedAnswer("StructuredAdapter", signature, getattr(exc, "lm_response", ""),
                                      f"the answer was cut off at its budget of {budget} tokens") from exc
            raise
        finally:
            opts.add("cached", sum(bool(e["cache_hit"]) for e in entries))
            if outer is not None:
                for model, entry in tracker.entries:  # what DSPy reported, failed calls' too
                    outer.add_usage(model, entry)
                if hasattr(outer, "add_cached_usage"):  # what DSPy did not: the replayed calls' tokens
                    for e in entries:
                        if e["cache_hit"]:
                            outer.add_cached_usage(lm.model, e["usage"])
        if _cut_off(entries, budget):
            opts.add("truncated")
            raise TruncatedAnswer("StructuredAdapter", signature, str(out)[:500],
                                  f"the answer was cut off at its budget of {budget} tokens")
        return out


_ADAPTER = StructuredAdapter()


class WritingAdapter(StructuredAdapter):
    """``StructuredAdapter`` for the LM that writes instructions: the prompts of DSPy's optimizers (MIPROv2's
    proposer, COPRO, SIMBA's rules, GEPA's reflection), whose fields no ``FIELD_SCHEMAS`` rule knows.

    Asked for DSPy's chat or JSON format in prose, Gemma 3 270M writes neither (a MIPROv2 proposal came back
    as "[[ ## dataset_description ## ]] In summary, this report ...", an ``AdapterParseError`` that stopped
    the compile); with the schema sent, every answer parses, each text field bounded to
    ``INSTRUCTION_MAX_CHARS`` and budgeted ``INSTRUCTION_TOKENS``. What it writes may still be poor: the
    optimizer scores it. An LM that is not marked (the offline engine, the offline writer) is answered by
    ``fallback``, the adapter DSPy uses when none is configured.
    """

    text_max_chars = INSTRUCTION_MAX_CHARS
    text_tokens = INSTRUCTION_TOKENS

    def __init__(self, fallback: Any = None) -> None:
        super().__init__()
        self.fallback = fallback if fallback is not None else dspy.ChatAdapter()

    def __call__(self, lm: dspy.BaseLM, lm_kwargs: dict[str, Any], signature: type[dspy.Signature],
                 demos: list[dict[str, Any]], inputs: dict[str, Any]) -> list[dict[str, Any]]:
        if options_of(lm) is None:
            return self.fallback(lm, lm_kwargs, signature, demos, inputs)
        return super().__call__(lm, lm_kwargs, signature, demos, inputs)


def writing_adapter(lm: Any) -> WritingAdapter | None:
    """A ``WritingAdapter`` for an instruction-writing ``lm`` that is marked for structured outputs (a real
    model), None for any other (the offline writer keeps DSPy's own adapters, so offline runs do not change)."""
    return WritingAdapter() if lm is not None and options_of(lm) is not None else None


@contextmanager
def use_structured(lm: Any) -> Iterator[None]:
    """Within this block, a marked ``lm`` is called through ``StructuredAdapter``; any other LM as before."""
    if options_of(lm) is None:
        yield
        return
    with dspy.context(adapter=_ADAPTER):
        yield
