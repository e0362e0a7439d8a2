"""LM backends: what a ``--lm`` string names, as registered classes (``docs/design.md`` §6.1).

A backend is one small class that knows one kind of model string:

- ``matches(lm)``: whether it is this backend's (``offline``; ``local`` / ``local:PATH``; anything else is
  a DSPy/LiteLLM model string served by an endpoint, the catch-all);
- ``check(lm, bases, opts, settings, environ)``: validation without an LM call (one-line ``ConfigError``);
- ``probe(lm, bases, opts, settings, timeout)``: the pre-flight before a run (``GET /models`` for
  endpoints, one tiny answer in a child process for the local model);
- ``build(lm, bases, opts, settings)``: one ``dspy.LM`` per endpoint (one for in-process backends);
- ``describe(lm, bases, temperature)``, ``owns(built)``, ``label(built)``: what reports print;
- ``in_process``: the LM computes in this process (batches then run inline, ``models.in_process``);
- its own settings: ``settings_type`` (a frozen dataclass with ``check()``), the CLI flags that set it
  (``add_args``/``settings_from_args``, added to every CLI by ``programs.cli.add_answer_args``) and
  ``record`` (what ``config.json`` keeps).

``programs.lm.models`` (``build_lms``, ``check_lm_config``, ``describe_lm``, ``lm_label``, ``in_process``)
dispatches to the backend ``backend_for(lm)`` returns: the newest registered whose ``matches`` is true,
so a new backend is one ``@register_backend`` class and may claim strings before the built-ins.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from programs.errors import ConfigError
from programs.lm.reasoning import reasoning_plan
from programs.lm.llama_load import LoadSettings  # light: llama_cpp is imported only to load a model

if TYPE_CHECKING:  # pragma: no cover
    import dspy

__all__ = ["LMOptions", "Backend", "BACKENDS", "register_backend", "backend_for", "backend_of", "OfflineBackend",
           "LocalBackend", "EndpointBackend", "add_backend_args", "backend_settings"]


@dataclass(frozen=True)
class LMOptions:
    """The knobs every backend shares (validated once by ``check``)."""

    temperature: float = 0.7
    seed: int = 0
    concurrency: int = 8
    num_retries: int = 3
    timeout: float = 60.0
    retry_backoff: float = 1.0
    max_tokens: int | None = None
    cache: bool | None = None
    structured: str = "auto"
    #: ``low`` | ``medium`` | ``high`` for a reasoning model (``programs.lm.reasoning``).
    reasoning_effort: str | None = None

    def check(self) -> None:
        from programs.lm.structured import MODES

        if self.structured not in MODES:
            raise ConfigError(f"structured={self.structured!r} must be one of {', '.join(MODES)}")
        mt = self.max_tokens
        if mt is not None and (isinstance(mt, bool) or not isinstance(mt, int) or not 1 <= mt <= 1_000_000):
            raise ConfigError(f"max_tokens={mt!r} must be an integer in [1, 1000000] (or unset: a budget "
                              "per signature)")
        t = self.temperature
        if not isinstance(t, (int, float)) or not math.isfinite(t) or not 0 <= t <= 2:
            raise ConfigError(f"temperature={t!r} is outside [0, 2]")
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise ConfigError(f"concurrency={self.concurrency!r} must be an integer >= 1")
        if isinstance(self.num_retries, bool) or not isinstance(self.num_retries, int) or self.num_retries < 0:
            raise ConfigError(f"num_retries={self.num_retries!r} must be an integer >= 0")
        if not isinstance(self.timeout, (int, float)) or not math.isfinite(self.timeout) or self.timeout <= 0:
            raise ConfigError(f"timeout={self.timeout!r} must be a number of seconds > 0")
        b = self.retry_backoff
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) or not 0 <= b <= 600:
            raise ConfigError(f"retry_backoff={b!r} must be a number of seconds in [0, 600]")


class Backend:
    """Base class of a kind of LM (see the module docstring). Subclasses set ``name`` and override."""

    name: ClassVar[str] = ""
    #: Computes in this process (batches run inline; no endpoint, no concurrency).
    in_process: ClassVar[bool] = False
    #: Its LMs get structured outputs and token budgets (``programs.lm.structured.mark``).
    structured: ClassVar[bool] = True
    #: Its own settings (a frozen dataclass with ``check()``), or None.
    settings_type: ClassVar[type | None] = None

    def matches(self, lm: str) -> bool:
        return lm == self.name

    def check(self, lm: str, bases: list[str], opts: LMOptions, settings: Any, environ: Mapping[str, str]) -> None:
        if bases:
            raise ConfigError(f"api_base is for a served model; lm={lm!r} runs in-process")

    def probe(self, lm: str, bases: list[str], opts: LMOptions, settings: Any, timeout: float) -> None:
        """Pre-flight before a run (no-op by default); one-line ``ConfigError`` naming cause and remedy.
        ``timeout`` bounds a network probe; a backend that loads a model sets its own bound."""

    def build(self, lm: str, bases: list[str], opts: LMOptions, settings: Any) -> list[dspy.BaseLM]:
        raise NotImplementedError

    def describe(self, lm: str, bases: list[str], temperature: float | None) -> str:
        return lm + (f", temperature {temperature:g}" if temperature is not None else "")

    def owns(self, built: dspy.BaseLM) -> bool:
        """Whether ``built`` (an LM object) is one of this backend's."""
        return str(getattr(built, "model", "")).startswith(self.name + "/")

    def label(self, built: dspy.BaseLM) -> str:
        return str(getattr(built, "model", "?"))

    def default_settings(self) -> Any:
        return self.settings_type() if self.settings_type is not None else None

    def record(self, lm: str, settings: Any) -> dict[str, Any] | None:
        """This backend's settings as a run's ``config.json`` records them (None: nothing of its own)."""
        return None

    @classmethod
    def add_args(cls, group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        """Add the CLI flags of this backend's settings (none by default)."""

    @classmethod
    def settings_from_args(cls, args: argparse.Namespace) -> Any:
        return None


#: Registered backends, oldest first (``backend_for`` asks the newest first).
BACKENDS: list[Backend] = []


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make ``cls`` a backend (its ``matches`` is asked before every older backend's)."""
    if not isinstance(getattr(cls, "name", ""), str) or not cls.name:
        raise ValueError(f"{cls.__name__} needs a class attribute `name`")
    if any(b.name == cls.name and type(b) is not cls for b in BACKENDS):
        raise ValueError(f"backend {cls.name!r} is already registered")
    BACKENDS[:] = [b for b in BACKENDS if type(b) is not cls] + [cls()]
    return cls


def backend_for(lm: str) -> Backend:
    """The backend of a ``--lm`` string (the newest registered that matches it)."""
    for b in reversed(BACKENDS):
        if b.matches(lm):
            return b
    raise ConfigError(f"lm={lm!r}: no backend takes it")  # pragma: no cover - the endpoint backend takes all


def backend_of(built: dspy.BaseLM) -> Backend:
    """The backend an LM object came from (the endpoint backend for any LM built elsewhere)."""
    for b in reversed(BACKENDS):
        if b.owns(built):
            return b
    return BACKENDS[0]


def add_backend_args(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Every backend's own flags (``programs.cli.add_answer_args`` calls it on every CLI that takes --lm)."""
    for b in BACKENDS:
        type(b).add_args(group)


def backend_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Each backend's settings from parsed CLI flags, by backend name (for ``build_lms(settings=...)``)."""
    out = {}
    for b in BACKENDS:
        s = type(b).settings_from_args(args)
        if s is not None:
            out[b.name] = s
    return out


# ─────────────────────────────── the built-in backends ───────────────────────────────


@register_backend
class EndpointBackend(Backend):
    """A DSPy/LiteLLM model string ``provider/model``, hosted or served at ``api_base`` (``EndpointLM``)."""

    name = "endpoint"

    def matches(self, lm: str) -> bool:
        return True  # the catch-all: asked last

    def owns(self, built: dspy.BaseLM) -> bool:
        return True

    def check(self, lm: str, bases: list[str], opts: LMOptions, settings: Any, environ: Mapping[str, str]) -> None:
        from programs.lm.endpoint import provider_of
        from programs.lm.models import _MODEL_RE, HOSTED_KEYS, LOCAL_PROVIDERS, known_provider

        if not _MODEL_RE.match(lm):
            raise ConfigError(f"lm={lm!r} must be 'offline' or 'provider/model', e.g. openai/gpt-4o-mini or "
                              "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct")
        provider = provider_of(lm)
        if not known_provider(provider):
            raise ConfigError(f"lm={lm!r}: unknown provider {provider!r} (use a DSPy/LiteLLM provider such as "
                              "openai, anthropic, hosted_vllm or ollama_chat; 'openai/<name>' with --api-base for any "
                              "OpenAI-compatible server)")
        if provider in LOCAL_PROVIDERS and not bases and LOCAL_PROVIDERS[provider] is None:
            raise ConfigError(f"lm={lm!r} runs on your own server: give its URL with --api-base (api_base), "
                              "e.g. http://127.0.0.1:8000/v1")
        if provider in HOSTED_KEYS and not bases:
            names = HOSTED_KEYS[provider]
            if not any(environ.get(n) for n in names):
                raise ConfigError(f"lm={lm!r} needs {' or '.join(names)} set in the environment "
                                  "(keys are read from the environment only)")
        reasoning_plan(lm, bases, opts.reasoning_effort).check_max_tokens(opts.max_tokens)

    def probe(self, lm: str, bases: list[str], opts: LMOptions, settings: Any, timeout: float) -> None:
        from programs.lm.models import check_endpoints

        check_endpoints(bases, timeout=timeout)

    def build(self, lm: str, bases: list[str], opts: LMOptions, settings: Any) -> list[dspy.BaseLM]:
        from programs.lm.endpoint import EndpointLM, provider_of
        from programs.lm.models import LOCAL_PLACEHOLDER_KEY, LOCAL_PROVIDERS

        plan = reasoning_plan(lm, bases, opts.reasoning_effort)
        kwargs: dict = dict(temperature=plan.temperature(opts.temperature), num_retries=opts.num_retries,
                            timeout=opts.timeout, cache=True if opts.cache is None else opts.cache,
                            concurrency=opts.concurrency, retry_backoff=opts.retry_backoff, **plan.lm_kwargs())
        provider = provider_of(lm)

        def endpoint(**extra: Any) -> dspy.BaseLM:
            from dspy.utils.exceptions import LMConfigurationError

            try:
                built = EndpointLM(lm, **kwargs, **extra)
            except (LMConfigurationError, ValueError, TypeError) as exc:  # DSPy refused the settings: one line
                raise ConfigError(f"lm={lm!r}: {' '.join(str(exc).split())[:300]}") from None
            return plan.apply(built)

        if not bases:
            default = LOCAL_PROVIDERS.get(provider)
            return [endpoint(**({"api_base": default} if default else {}))]
        out = []
        for base in bases:
            extra = {}
            if provider == "openai" and not os.environ.get("OPENAI_API_KEY"):
                # OpenAI-compatible local servers ignore the key but the client insists on one.
                extra["api_key"] = LOCAL_PLACEHOLDER_KEY
            out.append(endpoint(api_base=base, **extra))
        return out

    def describe(self, lm: str, bases: list[str], temperature: float | None) -> str:
        from programs.redact import redact

        text = lm
        if bases:
            shown = ", ".join(redact(b) for b in bases)
            text += f" via {len(bases)} endpoint{'s' if len(bases) > 1 else ''} ({shown})"
        return text + (f", temperature {temperature:g}" if temperature is not None else "")

    def label(self, built: dspy.BaseLM) -> str:
        from programs.lm.models import describe_lm

        model = getattr(built, "model", "?")
        base = (getattr(built, "kwargs", {}) or {}).get("api_base")
        return describe_lm(model, base) if base else str(model)


@register_backend
class LocalBackend(Backend):
    """``local`` / ``local:PATH.gguf``: a GGUF model run in-process by llama.cpp (``programs.lm.local``)."""

    name = "local"
    in_process = True

    settings_type = LoadSettings

    def matches(self, lm: str) -> bool:
        from programs.lm.local import is_local

        return is_local(lm)

    def check(self, lm: str, bases: list[str], opts: LMOptions, settings: Any, environ: Mapping[str, str]) -> None:
        from programs.lm.local import check_local

        if bases:
            raise ConfigError(f"api_base is for a served model; lm={lm!r} runs in-process (serve a GGUF file with "
                              "`python -m programs.lm.llama_server --model PATH` and use --lm openai/NAME --api-base URL)")
        reasoning_plan(lm, None, opts.reasoning_effort)  # refuses an effort for a model that does not reason
        check_local(lm)
        (settings or self.default_settings()).check()

    def probe(self, lm: str, bases: list[str], opts: LMOptions, settings: Any, timeout: float) -> None:
        from programs.lm.local import probe_local

        probe_local(lm, settings or self.default_settings())

    def build(self, lm: str, bases: list[str], opts: LMOptions, settings: Any) -> list[dspy.BaseLM]:
        from programs.lm.local import local_lm

        return [local_lm(lm, seed=opts.seed, temperature=opts.temperature, cache=bool(opts.cache),
                         settings=settings or self.default_settings())]

    def describe(self, lm: str, bases: list[str], temperature: float | None) -> str:
        from programs.lm.local import describe_local

        return describe_local(lm) + (f", temperature {temperature:g}" if temperature is not None else "")

    def label(self, built: dspy.BaseLM) -> str:
        from programs.lm.local import local_label

        return local_label(str(getattr(built, "model", "?"))[len(self.name) + 1:])

    def record(self, lm: str, settings: Any) -> dict[str, Any] | None:
        return (settings or self.default_settings()).resolved()

    @classmethod
    def add_args(cls, group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        from programs.lm.llama_load import N_CTX, REPACK_CHOICES, REPACK_ENV, THREADS_ENV

        group.add_argument("--n-ctx", type=int, default=N_CTX, metavar="TOKENS",
                           help=f"--lm local: context window in tokens (default {N_CTX}); a longer prompt is a "
                                "'context_overflow' fallback")
        group.add_argument("--n-threads", type=int, default=None, metavar="N",
                           help=f"--lm local: llama.cpp threads (default: {THREADS_ENV} or the usable cores minus one)")
        group.add_argument("--n-gpu-layers", type=int, default=None, metavar="N",
                           help="--lm local: layers offloaded to the GPU, -1 all (default: all when llama.cpp was "
                                "built with a GPU backend, else 0)")
        group.add_argument("--repack", default="auto", metavar="{" + ",".join(REPACK_CHOICES) + "}",
                           help="--lm local: repack weights into llama.cpp's extra (AMX) buffers; auto: off on a CPU "
                                f"with AMX, where llama.cpp crashes (or {REPACK_ENV}=1|0)")

    @classmethod
    def settings_from_args(cls, args: argparse.Namespace) -> Any:
        from programs.lm.llama_load import N_CTX, LoadSettings

        return LoadSettings(n_ctx=getattr(args, "n_ctx", N_CTX), n_threads=getattr(args, "n_threads", None),
                            n_gpu_layers=getattr(args, "n_gpu_layers", None), repack=getattr(args, "repack", "auto"))


@register_backend
class OfflineBackend(Backend):
    """``offline``: the embedded offline engine, a numeric stand-in (**not a language model**)."""

    name = "offline"
    in_process = True
    #: Not marked for structured outputs: its answers are seeded by the prompt text (``structured``).
    structured = False

    def check(self, lm: str, bases: list[str], opts: LMOptions, settings: Any, environ: Mapping[str, str]) -> None:
        reasoning_plan(lm, None, opts.reasoning_effort)  # refuses an effort for the offline engine
        if bases:
            raise ConfigError("api_base is for a served model; the offline engine runs in-process "
                              "(serve it with `python -m programs.serve` and use --lm openai/offline-engine --api-base URL)")

    def build(self, lm: str, bases: list[str], opts: LMOptions, settings: Any) -> list[dspy.BaseLM]:
        from programs.lm.offline import offline_lm

        return [offline_lm(seed=opts.seed, temperature=opts.temperature)]

    def describe(self, lm: str, bases: list[str], temperature: float | None) -> str:
        from programs.lm.offline import OFFLINE_LABEL

        return OFFLINE_LABEL

    def label(self, built: dspy.BaseLM) -> str:
        from programs.lm.offline import OFFLINE_LABEL

        return OFFLINE_LABEL

