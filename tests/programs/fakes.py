"""Fake DSPy engines for the agents' tests: garbage answers, slow answers, scripted answers.

Each is a DSPy 3.4 custom engine (``complete(Request) -> Response``); ``lm(engine)`` wraps one in a
``dspy.LM`` with the cache off. Where an engine needs a sensible answer it asks the offline engine.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable

import dspy
from dspy.lm15 import Message, Request, Response, TextPart, Usage

from programs.lm.offline import answer_request

_HOURS = re.compile(r"(\[\[ ## hours ## \]\]\n)([^\n]*)")


def texts(request: Request) -> tuple[str, str]:
    """(system text, the concatenated chat text) of a request."""
    system = request.system if isinstance(request.system, str) else ""
    chat = "\n".join((m.text or "") for m in request.messages)
    return system, chat


def _response(text: str) -> Response:
    return Response(id=None, model="fake", message=Message.assistant([TextPart(text)]), finish_reason="stop",
                    usage=Usage(input_tokens=1, output_tokens=1))


class FunctionEngine:
    """Answers with ``fn(request) -> str`` and counts its calls (thread-safe)."""

    def __init__(self, fn: Callable[[Request], str]) -> None:
        self.fn = fn
        self.calls = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def complete(self, request: Request) -> Response:
        with self._lock:
            self.calls += 1
            self.threads.add(threading.current_thread().name)
        return _response(self.fn(request))

    def close(self) -> None:
        pass


def garbage_engine(seed: int = 0, share: float = 0.3) -> FunctionEngine:
    """The offline engine, except that a deterministic share of prompts gets a malformed answer.

    Garbage kinds, picked by a hash of the prompt: prose with no fields (a parse failure), ``NaN`` hours,
    250 hours (out of range: a fallback) and an empty answer.
    """
    def fn(request: Request) -> str:
        system, chat = texts(request)
        h = int.from_bytes(hashlib.blake2b((system + chat).encode(), digest_size=8).digest(), "little")
        good = answer_request(request, seed)
        if (h % 1000) / 1000.0 >= share:
            return good
        kind = (h // 1000) % 4
        if kind == 0:
            return "Sorry, I would rather not say."
        if kind == 3:
            return ""
        if _HOURS.search(good):
            return _HOURS.sub(lambda m: m.group(1) + ("NaN" if kind == 1 else "250"), good)
        return "[[ ## nonsense ## ]]\n???"
    return FunctionEngine(fn)


def slow_engine(delay: float, seed: int = 0) -> FunctionEngine:
    def fn(request: Request) -> str:
        time.sleep(delay)
        return answer_request(request, seed)
    return FunctionEngine(fn)


#: What Gemma 3 270M answered MIPROv2's dataset-summary prompt with (its start, from a real compile).
SMALL_MODEL_PROSE = "[[ ## dataset_description ## ]]\nIn summary, this report highlights the following key points: << a."
#: The text ``writer_engine`` puts in every string field of a schema.
WRITTEN = "Keep the rates of the best year so far and move one bracket by at most five points."


def _fill(schema: dict) -> object:
    kind = schema.get("type")
    return {"string": WRITTEN, "object": {}, "array": [], "integer": 0, "number": 0.0, "boolean": False}.get(kind)


def writer_engine() -> FunctionEngine:
    """An instruction writer like the small model: prose no DSPy adapter parses when no schema is sent, the
    schema's JSON (``WRITTEN`` in every text field) when one is. ``engine.requests`` keeps every request."""
    import json

    engine: FunctionEngine

    def fn(request: Request) -> str:
        engine.requests.append(request)
        fmt = request.config.response_format
        if fmt is None:
            return SMALL_MODEL_PROSE
        props = (fmt.get("schema") or fmt["json_schema"]["schema"])["properties"]
        return json.dumps({k: _fill(v) for k, v in props.items()})

    engine = FunctionEngine(fn)
    engine.requests = []
    return engine


def offline_counting_engine(seed: int = 0) -> FunctionEngine:
    return FunctionEngine(lambda r: answer_request(r, seed))


def lm(engine: object, temperature: float = 0.7, name: str = "fake/engine") -> dspy.LM:
    return dspy.LM(name, engine=engine, cache=False, temperature=temperature, num_retries=0)


def offline_for(cfg) -> list[dspy.LM]:
    """The offline engine as a simulation's LMs, seeded and tempered like the run (what the CLI builds)."""
    from programs.lm import build_lms

    return build_lms("offline", temperature=cfg.temperature, seed=cfg.seed)


def simulation(cfg, **kw):
    """``Simulation(cfg, offline_for(cfg), **kw)``."""
    from programs.simulation import Simulation

    return Simulation(cfg, kw.pop("lms", None) or offline_for(cfg), **kw)
