"""Answers that cost their new tokens: prompt-prefix reuse and forced answer prefixes for ``--lm local``
(``docs/design.md`` §6.6).

``Llama.create_chat_completion`` keeps only the previous call's prompt in its context, so when the calls
of a simulation step alternate between agents nearly every prompt is evaluated again from its first
token. Two things bring the cost of an answer down to what is new in it:

- **Prefix reuse.** After each answer the context's sequence (its KV cache cells, a few MB per thousand
  tokens, copied with llama.cpp's per-sequence state API ``llama_state_seq_get_data``) is kept in
  ``PrefixCache`` under its tokens. Before the next call, the entry sharing the longest token prefix with
  the new prompt is restored into the context (``llama_state_seq_set_data``) if it shares more than what
  the context already holds, and llama-cpp-python's own prefix match then evaluates only the rest. The
  match needs no agent identity: an agent's previous prompt shares the most, and any worker prompt
  shares the instructions. The cache is bounded in bytes (``LLM_ECONOMIST_LOCAL_PREFIX_MB``, default
  ``DEFAULT_PREFIX_MB``; 0 turns reuse off) and evicts the least recently used entry; an entry that is a
  prefix of a newer one is dropped at once (the newer one serves every prompt it would).
- **Forced answer prefix.** The answer's JSON up to its first value (``{"hours": ``) is fixed by the
  schema, yet under a grammar each of its tokens costs a sampling step over the whole vocabulary. For an
  object schema whose properties are all required and nothing else allowed (what
  ``programs.lm.structured.output_schema`` builds), ``answer_plan`` appends that text to the prompt and
  constrains the rest with a grammar for exactly the remainder: the first value, then each further
  ``, "name": value``, then ``}``. The answer still parses to the schema (enums, item counts and string
  bounds are the same grammar rules). When no value can contain ``}`` the call stops at the closing
  brace instead of decoding the end-of-text token the grammar would force next.
- **A mask instead of the grammar sampler.** llama.cpp's grammar sampler tests the grammar against every
  token of the vocabulary at every step (Gemma 3: 262,144 tokens, ~0.14 s a token on one core, more than
  the forward pass). When what follows the prefix is one value made of finite strings (hours, rates, a
  vote, yes/no: ``value_slots``), ``SlotMask`` finds the same allowed tokens from the few hundred tokens
  made of the language's characters, and a logits processor leaves only those (~0.1 ms a token). The
  sampler chain after it is unchanged, so the draw is the same (tested against the grammar sampler, state
  by state and answer by answer, on the real model).

Everything else is llama-cpp-python's: ``create_chat_completion`` runs unchanged on a thin proxy
(``_Proxy``) whose ``create_completion`` applies the steps above, so the chat template, stop
tokens, sampler chain (grammar, temperature, top-p) and per-call seed are exactly those of a bare
call. Same seed and same prompts give the same answers.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from programs.errors import ConfigError

__all__ = ["PREFIX_ENV", "DEFAULT_PREFIX_MB", "prefix_bytes", "common_prefix", "PrefixCache", "KVState",
           "LlamaKV", "PrefixReuse", "AnswerPlan", "answer_plan", "value_slots", "SlotMask", "slot_pieces",
           "mask_processor", "ChatResult", "PrefixRunner", "runner_for"]

#: Environment variable: megabytes of evaluated prefixes kept per model (0: no reuse).
PREFIX_ENV = "LLM_ECONOMIST_LOCAL_PREFIX_MB"
#: Default bound: at ~18 KB per token (Gemma 3 270M, f16 cache) about 58,000 tokens, i.e. the last
#: ~45 prompts of 1,300 tokens (two steps of 20 agents).
DEFAULT_PREFIX_MB = 1024


def prefix_bytes(environ: dict[str, str] | None = None) -> int:
    """The prefix cache's bound in bytes: ``LLM_ECONOMIST_LOCAL_PREFIX_MB`` (an integer >= 0) or the default."""
    env = os.environ if environ is None else environ
    raw = env.get(PREFIX_ENV, "").strip()
    if not raw:
        return DEFAULT_PREFIX_MB << 20
    try:
        mb = int(raw)
    except ValueError:
        mb = -1
    if mb < 0:
        raise ConfigError(f"{PREFIX_ENV}={raw!r} must be an integer >= 0 (megabytes; 0 turns prefix reuse off)")
    return mb << 20


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common prefix of two token arrays."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n


@dataclass
class _Entry:
    tokens: np.ndarray
    state: bytes


class PrefixCache:
    """Evaluated token prefixes and their context state, least recently used evicted past ``max_bytes``.

    Keys are opaque integers; ``best(tokens)`` finds the entry sharing the longest prefix with ``tokens``.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes={max_bytes} must be >= 0")
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._next = 0
        self.nbytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def best(self, tokens: np.ndarray) -> tuple[int | None, int]:
        """The key of the entry sharing the longest prefix with ``tokens`` and that length ((None, 0) if none
        shares a token). Ties go to the most recently used entry."""
        key, n = None, 0
        for k in reversed(self._entries):
            m = common_prefix(self._entries[k].tokens, tokens)
            if m > n:
                key, n = k, m
        return key, n

    def get(self, key: int) -> _Entry:
        """The entry, marked most recently used."""
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, tokens: Sequence[int] | np.ndarray, state: bytes) -> int | None:
        """Keep ``state`` under ``tokens``; returns its key, None when it alone exceeds the bound. Drops entries
        that are a prefix of ``tokens``, then the least recently used ones until the bound holds."""
        tokens = np.asarray(tokens, dtype=np.int32).copy()
        if len(state) > self.max_bytes or len(tokens) == 0:
            return None
        for k in [k for k, e in self._entries.items()
                  if len(e.tokens) <= len(tokens) and common_prefix(e.tokens, tokens) == len(e.tokens)]:
            self._drop(k)
        while self._entries and self.nbytes + len(state) > self.max_bytes:
            self._drop(next(iter(self._entries)))
            self.evictions += 1
        key, self._next = self._next, self._next + 1
        self._entries[key] = _Entry(tokens, state)
        self.nbytes += len(state)
        return key

    def _drop(self, key: int) -> None:
        self.nbytes -= len(self._entries.pop(key).state)

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0


class KVState(Protocol):
    """What prefix reuse needs from a model context: its evaluated tokens, and a copy of them to restore."""

    def live(self) -> np.ndarray:
        """The tokens whose evaluation the context holds now."""

    def save(self) -> bytes:
        """A copy of the context's evaluated state."""

    def restore(self, tokens: np.ndarray, state: bytes) -> None:
        """Make the context hold ``state``, the evaluation of ``tokens``."""


class LlamaKV:
    """``KVState`` of a ``llama_cpp.Llama``: sequence 0 of its context (the one its calls use), and its
    ``input_ids``/``n_tokens`` bookkeeping, which ``Llama.generate`` matches the next prompt against."""

    def __init__(self, llama: Any) -> None:
        self.llama = llama

    def live(self) -> np.ndarray:
        return np.asarray(self.llama.input_ids[: self.llama.n_tokens], dtype=np.int32)

    def save(self) -> bytes:
        import llama_cpp

        ctx = self.llama._ctx.ctx  # noqa: SLF001 - the per-sequence state API needs the raw context
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        n = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
        return bytes(memoryview(buf)[:n])

    def restore(self, tokens: np.ndarray, state: bytes) -> None:
        import llama_cpp

        llama = self.llama
        ctx = llama._ctx.ctx  # noqa: SLF001
        llama._ctx.kv_cache_seq_rm(0, -1, -1)  # noqa: SLF001 - empty sequence 0 before restoring into it
        if len(tokens) == 0 or not state:
            llama.reset()
            return
        buf = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if llama_cpp.llama_state_seq_set_data(ctx, buf, len(state), 0) != len(state):
            llama.reset()  # nothing restored: the context is empty, the prompt is evaluated in full
            return
        llama.input_ids[: len(tokens)] = tokens
        llama.n_tokens = len(tokens)
        llama._requires_eval = True  # noqa: SLF001 - its logits are not those of a live decode


class PrefixReuse:
    """Before a call, put the longest known prefix of the prompt in the context; after it, remember it.

    ``reuse=False`` empties the context before every call (each prompt evaluated in full: the baseline).
    """

    def __init__(self, kv: KVState, max_bytes: int) -> None:
        self.kv = kv
        self.cache = PrefixCache(max_bytes)
        self.reuse = max_bytes > 0

    def prepare(self, tokens: Sequence[int]) -> int:
        """Restore the best cached prefix of ``tokens`` if it beats the context's; returns the number of
        prompt tokens that will not be evaluated (at least the last one always is: its logits are needed)."""
        toks = np.asarray(tokens, dtype=np.int32)
        if not self.reuse:
            self.kv.restore(toks[:0], b"")
            return 0
        n_live = common_prefix(self.kv.live(), toks)
        key, n_best = self.cache.best(toks)
        if key is not None and n_best > n_live:
            entry = self.cache.get(key)
            self.kv.restore(entry.tokens, entry.state)
            n_live = common_prefix(self.kv.live(), toks)
        return max(0, min(n_live, len(toks) - 1))

    def remember(self) -> None:
        """Keep the context's state (after a call) for later prompts."""
        if self.reuse:
            live = self.kv.live()
            if len(live):
                self.cache.put(live, self.kv.save())


# ───────────────────────────── forced answer prefix ─────────────────────────────


@dataclass(frozen=True)
class AnswerPlan:
    """How to ask for a JSON object answer: ``prefix`` is appended to the prompt, ``grammar`` (GBNF)
    constrains what follows it, ``stop`` (``"}"`` or None) ends the call at the closing brace.

    ``slots``, when the remainder is one value of finite strings and the brace (hours, rates, a vote, a
    yes/no), is the language the grammar accepts after the prefix; the answer is then constrained by
    ``SlotMask`` instead of llama.cpp's grammar sampler, which tests the grammar against every token of a
    large vocabulary (Gemma 3: 262,144 tokens, ~0.14 s a token here) to find the few that fit."""

    prefix: str
    grammar: str
    stop: str | None
    slots: tuple[tuple[str, ...], ...] | None = None


def _brace_free(schema: Any, defs: dict[str, Any]) -> bool:
    """Whether no value of ``schema`` can contain ``}`` (numbers, booleans, enums without braces, arrays
    of those): then the first ``}`` generated after the answer's prefix is its closing brace."""
    if not isinstance(schema, dict):
        return False
    if "$ref" in schema:
        return _brace_free(defs.get(schema["$ref"].rsplit("/", 1)[-1]), defs)
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        return all(not isinstance(v, (dict, list)) and "}" not in json.dumps(v) for v in values)
    t = schema.get("type")
    if t in ("number", "integer", "boolean", "null"):
        return True
    if t == "array":
        return _brace_free(schema.get("items"), defs)
    if "anyOf" in schema:
        return all(_brace_free(s, defs) for s in schema["anyOf"])
    return False


def answer_plan(schema: Any) -> AnswerPlan | None:
    """The forced prefix and remainder grammar of an object ``schema`` whose properties are all required, in
    order, and nothing else allowed; None for any other schema (it is then sent whole)."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return None
    props = schema.get("properties")
    if not isinstance(props, dict) or not props or list(schema.get("required") or []) != list(props):
        return None
    if schema.get("additionalProperties", True) is not False:
        return None
    from llama_cpp.llama_grammar import SchemaConverter

    conv = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    resolved = conv.resolve_refs(json.loads(json.dumps(schema)), "schema")
    names = list(props)
    values = [conv.visit(resolved["properties"][n], f"answer-{i}") for i, n in enumerate(names)]
    rest = [values[0]] + [f'"," space {conv._format_literal(json.dumps(n))} space ":" space {v}'  # noqa: SLF001
                          for n, v in zip(names[1:], values[1:])]
    conv._add_rule("root", " ".join(rest) + ' "}"')  # noqa: SLF001 - the converter's own rule table
    defs = schema.get("$defs") or {}
    stop = "}" if all(_brace_free(props[n], defs) for n in names) else None
    return AnswerPlan(prefix="{" + json.dumps(names[0]) + ": ", grammar=conv.format_grammar(), stop=stop,
                      slots=_answer_slots(resolved["properties"][names[0]]) if len(names) == 1 else None)


def _answer_slots(prop: Any) -> tuple[tuple[str, ...], ...] | None:
    """The slots of a one-property answer after its prefix: the value's, then the closing brace."""
    slots = value_slots(prop)
    return None if slots is None else tuple(tuple(a) for a in slots) + (("}",),)


#: The converter's ``space`` rule (``llama_cpp.llama_grammar.SPACE_RULE``, ``" "?``) as a slot.
_SPACE = ("", " ")


def value_slots(prop: Any) -> list[tuple[str, ...]] | None:
    """The language llama-cpp-python's schema converter gives ``prop``, as a sequence of slots (each a set of
    alternative strings, one of which follows the other slots' choices), for the values whose rules are
    finite strings: an ``enum`` or ``const`` of scalars (no trailing space), a boolean (then a space), and an
    array of such items with a fixed count (``"[" space item ("," space item)* "]" space``). None otherwise."""
    if not isinstance(prop, dict):
        return None
    if "enum" in prop or "const" in prop:
        values = prop["enum"] if "enum" in prop else [prop["const"]]
        if not values or any(isinstance(v, (dict, list)) for v in values):
            return None
        return [tuple(dict.fromkeys(json.dumps(v) for v in values))]
    if prop.get("type") == "boolean":
        return [("true", "false"), _SPACE]
    if prop.get("type") == "array":
        item = value_slots(prop.get("items"))
        k = prop.get("minItems")
        if item is None or not isinstance(k, int) or k < 1 or prop.get("maxItems") != k:
            return None
        slots = [("[",), _SPACE, *item]
        for _ in range(k - 1):
            slots += [(",",), _SPACE, *item]
        return slots + [("]",), _SPACE]
    return None


class SlotMask:
    """The tokens that keep an answer within a language of ``slots``: the grammar's choice, found by running
    the few tokens made of the language's characters through a small automaton instead of testing every
    token of the vocabulary against the grammar.

    A token is allowed after the generated text ``g`` when ``g`` + its piece is a prefix of a string of the
    language, an end-of-generation token when ``g`` is a whole string of it: the tokens llama.cpp's grammar
    sampler leaves (tested against it on the real model). Pieces are llama.cpp's own (``special=True``, as
    its grammar reads them).
    """

    def __init__(self, slots: Sequence[Sequence[str]], pieces: dict[str, list[int]], eog: Sequence[int]) -> None:
        self.slots = [frozenset(alts) for alts in slots]
        # Proper prefixes of each slot's alternatives: where a piece may stop inside the slot.
        self._inside = [frozenset(a[:k] for a in alts for k in range(1, len(a))) for alts in self.slots]
        self._pieces = list(pieces.items())
        self._eog = np.asarray(sorted(set(eog)), dtype=np.intc)
        self._memo: dict[str, np.ndarray] = {}

    def _close(self, states: set[tuple[int, str]]) -> set[tuple[int, str]]:
        """Add the states reached by skipping slots that allow the empty string."""
        todo = list(states)
        while todo:
            i, part = todo.pop()
            if part == "" and i < len(self.slots) and "" in self.slots[i] and (i + 1, "") not in states:
                states.add((i + 1, ""))
                todo.append((i + 1, ""))
        return states

    def _advance(self, states: set[tuple[int, str]], text: str) -> set[tuple[int, str]]:
        """The states after reading ``text`` from ``states`` (state: slot index, text read inside that slot)."""
        for ch in text:
            nxt: set[tuple[int, str]] = set()
            for i, part in states:
                if i == len(self.slots):
                    continue
                w = part + ch
                if w in self.slots[i]:
                    nxt.add((i + 1, ""))
                if w in self._inside[i]:
                    nxt.add((i, w))
            states = self._close(nxt)
            if not states:
                break
        return states

    def allowed(self, generated: str) -> np.ndarray:
        """Token ids allowed after ``generated`` (sorted)."""
        ids = self._memo.get(generated)
        if ids is None:
            start = self._advance(self._close({(0, "")}), generated)
            found = [t for piece, toks in self._pieces if self._advance(start, piece) for t in toks]
            out = np.asarray(sorted(found), dtype=np.intc)
            if (len(self.slots), "") in start:
                out = np.union1d(out, self._eog).astype(np.intc)
            if len(self._memo) >= 4096:
                self._memo.clear()
            ids = self._memo[generated] = out
        return ids


_PIECES: dict[tuple[int, frozenset[str]], dict[str, list[int]]] = {}
#: Longest piece indexed: longer runs of a language's characters (e.g. long digit or space runs) are rare in
#: vocabularies and are left to shorter tokens (a narrower choice, still within the schema).
_MAX_PIECE = 16


def slot_pieces(llama: Any, slots: Sequence[Sequence[str]]) -> dict[str, list[int]]:
    """``piece -> token ids`` for the tokens of ``llama`` made only of the characters of ``slots``' strings.
    Read once per model and alphabet (~0.5 s for 262,144 tokens)."""
    import llama_cpp

    chars = frozenset("".join(a for alts in slots for a in alts))
    key = (id(llama), chars)
    index = _PIECES.get(key)
    if index is None:
        vocab = llama_cpp.llama_model_get_vocab(llama._model.model)  # noqa: SLF001 - the raw vocab
        buf = ctypes.create_string_buffer(64)
        index = {}
        for tid in range(llama.n_vocab()):
            n = llama_cpp.llama_token_to_piece(vocab, tid, buf, 64, 0, True)
            if not 0 < n <= _MAX_PIECE:
                continue
            raw = buf.raw[:n]
            if raw.isascii() and set(text := raw.decode("ascii")) <= chars:
                index.setdefault(text, []).append(tid)
        if len(_PIECES) >= 16:
            _PIECES.clear()
        _PIECES[key] = index
    return index


def mask_processor(llama: Any, mask: SlotMask, n_prompt: int):
    """A llama-cpp-python logits processor that leaves only ``mask``'s tokens (the others at -inf) after the
    ``n_prompt`` prompt tokens. It runs first in llama-cpp-python's sampler chain, the grammar sampler second
    (after the repetition penalty, which leaves -inf at -inf): either way the rest of the chain (top-k, top-p,
    min-p, temperature, the seeded draw) sees the same candidates."""
    out = np.full(llama.n_vocab(), -np.inf, dtype=np.single)
    last: list[np.ndarray] = [np.empty(0, dtype=np.intc)]

    def process(input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        generated = llama.detokenize(list(input_ids[n_prompt:]), special=True).decode("utf-8", "replace")
        ids = mask.allowed(generated)
        out[last[0]] = -np.inf
        out[ids] = scores[ids]
        last[0] = ids
        return out

    return process


_PLANS: dict[str, AnswerPlan | None] = {}
_PLANS_LOCK = threading.Lock()


def _plan_of(schema: Any) -> AnswerPlan | None:
    key = json.dumps(schema, sort_keys=True)
    with _PLANS_LOCK:
        if key not in _PLANS:
            if len(_PLANS) >= 256:  # schemas built per call (a vote's candidates) must not accumulate
                _PLANS.clear()
            _PLANS[key] = answer_plan(schema)
        return _PLANS[key]


# ───────────────────────────── the runner ─────────────────────────────


@dataclass
class ChatResult:
    """A chat completion (llama-cpp-python's dict) and the prompt tokens it reused and evaluated."""

    completion: dict[str, Any]
    prompt_tokens: int
    reused: int

    @property
    def evaluated(self) -> int:
        return self.prompt_tokens - self.reused


class _Proxy:
    """A ``Llama`` whose ``create_completion`` reuses prefixes and forces the answer's prefix: the chat
    handler of ``Llama.create_chat_completion`` runs on it unchanged."""

    def __init__(self, runner: "PrefixRunner", plan: AnswerPlan | None) -> None:
        self._runner = runner
        self._plan = plan
        self.prompt_tokens = 0
        self.reused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner.llama, name)

    def create_completion(self, prompt: Any, **kw: Any) -> Any:
        llama, plan = self._runner.llama, self._plan
        tokens = list(prompt) if isinstance(prompt, list) else llama.tokenize(prompt.encode(), add_bos=False, special=True)
        if plan is not None and kw.get("grammar") is not None:
            from llama_cpp import LlamaGrammar, LogitsProcessorList

            tokens += llama.tokenize(plan.prefix.encode(), add_bos=False, special=False)
            if plan.slots and self._runner.fast_mask and not kw.get("logits_processor"):
                kw["grammar"] = None
                kw["logits_processor"] = LogitsProcessorList([mask_processor(llama, self._runner.mask(plan),
                                                                             len(tokens))])
            else:
                kw["grammar"] = LlamaGrammar.from_string(plan.grammar, verbose=False)
            if plan.stop is not None:
                kw["stop"] = list(kw.get("stop") or []) + [plan.stop]
        else:
            plan = None
        if len(tokens) < llama.n_ctx():  # a longer prompt gets llama-cpp-python's own error
            self.reused = self._runner.reuse.prepare(tokens)
        self.prompt_tokens = len(tokens)
        out = llama.create_completion(prompt=tokens, **kw)
        self._runner.reuse.remember()
        if plan is not None:
            choice = out["choices"][0]
            closed = plan.stop is not None and choice.get("finish_reason") == "stop"
            choice["text"] = plan.prefix + choice["text"] + ("}" if closed else "")
        return out


class PrefixRunner:
    """``create_chat_completion`` on one ``Llama`` with prefix reuse and forced answer prefixes.

    Not thread-safe (neither is the ``Llama``): callers hold the model's lock.
    """

    def __init__(self, llama: Any, max_bytes: int | None = None, force_prefix: bool = True,
                 fast_mask: bool = True) -> None:
        self.llama = llama
        self.reuse = PrefixReuse(LlamaKV(llama), prefix_bytes() if max_bytes is None else max_bytes)
        self.force_prefix = force_prefix
        self.fast_mask = fast_mask  # False: llama.cpp's grammar sampler for every answer (the baseline)
        self._masks: dict[tuple[tuple[str, ...], ...], SlotMask] = {}

    def mask(self, plan: AnswerPlan) -> SlotMask:
        """The ``SlotMask`` of ``plan``'s slots on this model (kept: its memo of states is per language)."""
        assert plan.slots is not None
        m = self._masks.get(plan.slots)
        if m is None:
            if len(self._masks) >= 64:  # votes build a language per set of candidates
                self._masks.clear()
            m = self._masks[plan.slots] = SlotMask(plan.slots, slot_pieces(self.llama, plan.slots),
                                                   _eog_tokens(self.llama))
        return m

    def chat(self, messages: list[dict[str, str]], schema: dict[str, Any] | None = None, **kw: Any) -> ChatResult:
        """``Llama.create_chat_completion(messages=..., **kw)``, the answer constrained to ``schema``."""
        from llama_cpp import Llama

        if schema is not None:
            kw["response_format"] = {"type": "json_object", "schema": schema}
        proxy = _Proxy(self, _plan_of(schema) if schema is not None and self.force_prefix else None)
        out = Llama.create_chat_completion(proxy, messages=messages, **kw)
        return ChatResult(out, proxy.prompt_tokens, proxy.reused)


_EOG: dict[int, list[int]] = {}


def _eog_tokens(llama: Any) -> list[int]:
    """The model's end-of-generation tokens (the grammar allows them once the answer is whole); read once."""
    import llama_cpp

    eog = _EOG.get(id(llama))
    if eog is None:
        vocab = llama_cpp.llama_model_get_vocab(llama._model.model)  # noqa: SLF001
        eog = _EOG[id(llama)] = [t for t in range(llama.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    return eog


_RUNNERS: dict[int, PrefixRunner] = {}
_RUNNERS_LOCK = threading.Lock()


def runner_for(llama: Any) -> PrefixRunner:
    """The process's one ``PrefixRunner`` of ``llama`` (made on first use, bound from the environment)."""
    with _RUNNERS_LOCK:
        runner = _RUNNERS.get(id(llama))
        if runner is None or runner.llama is not llama:
            runner = _RUNNERS[id(llama)] = PrefixRunner(llama)
        return runner
