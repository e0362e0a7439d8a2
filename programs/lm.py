"""LM set-up: model strings, endpoints, keys from the environment, and the offline engine.

``build_lms("offline")`` returns the embedded offline engine (a numeric stand-in, not a language model);
any other value is a DSPy/LiteLLM model string ``provider/model`` (``openai/gpt-4o-mini``,
``hosted_vllm/meta-llama/Llama-3.1-8B-Instruct`` with ``api_base``, ``ollama_chat/llama3.1``). Several
``api_base`` values give one ``dspy.LM`` per endpoint; the simulation spreads agents across them.

API keys are read by the client from the environment only: nothing here accepts, stores or prints a key,
and ``describe_lm`` strips credentials from endpoint URLs.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

import dspy

OFFLINE = "offline"
#: Printed wherever the offline engine runs (kept in sync with programs.offline.OFFLINE_LABEL).
try:  # pragma: no cover - the offline engine ships in the same package
    from programs.offline import OFFLINE_LABEL
except ImportError:  # pragma: no cover
    OFFLINE_LABEL = "offline engine (not a language model)"

#: Hosted providers and the environment variables their clients read a key from (any one suffices).
HOSTED_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "groq": ("GROQ_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHER_API_KEY"),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "fireworks_ai": ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY"),
    "openrouter": ("OPENROUTER_API_KEY",),
    "cohere": ("COHERE_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "perplexity": ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
}
#: Providers that talk to a server the user runs; they need ``api_base`` (ollama has a default).
LOCAL_PROVIDERS: dict[str, str | None] = {
    "hosted_vllm": None,
    "lm_studio": None,
    "ollama": "http://localhost:11434",
    "ollama_chat": "http://localhost:11434",
}
#: Placeholder key for OpenAI-compatible servers that ignore keys (vLLM/SGLang without --api-key).
#: Not a secret; a real OPENAI_API_KEY in the environment takes precedence.
LOCAL_PLACEHOLDER_KEY = "EMPTY"

_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/\S+$")


class ConfigError(ValueError):
    """A bad LM or simulation setting; the message is one line naming the setting."""


def _bases(api_base: None | str | Sequence[str]) -> list[str]:
    if api_base is None:
        return []
    if isinstance(api_base, str):
        items = [api_base]
    else:
        items = list(api_base)
    out = []
    for i, b in enumerate(items):
        if not isinstance(b, str) or not b.strip():
            raise ConfigError(f"api_base[{i}]={b!r} must be a non-empty URL such as http://127.0.0.1:8000/v1")
        b = b.strip()
        parts = urlsplit(b)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"api_base[{i}]={_redact(b)!r} must be an http(s) URL such as http://127.0.0.1:8000/v1")
        out.append(b)
    return out


def _redact(url: str) -> str:
    """The URL without user-info, query or fragment (where credentials may hide)."""
    try:
        p = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urlunsplit((p.scheme, host, p.path, "", ""))


def provider_of(lm: str) -> str:
    """The provider prefix of a model string (``openai`` for ``openai/gpt-4o-mini``)."""
    return lm.split("/", 1)[0].lower()


def check_lm_config(
    lm: str = OFFLINE,
    api_base: None | str | Sequence[str] = None,
    *,
    temperature: float = 0.7,
    concurrency: int = 8,
    num_retries: int = 3,
    timeout: float = 60.0,
    environ: dict[str, str] | None = None,
) -> list[str]:
    """Validate an LM configuration without building or calling anything.

    Returns the list of endpoints (possibly empty). Raises ``ConfigError`` with one line naming the
    setting: a model string not of the form ``provider/model``, a hosted provider without its key in
    the environment, a local provider without ``api_base``, or a numeric knob out of range.
    """
    env = os.environ if environ is None else environ
    if not isinstance(lm, str) or not lm.strip():
        raise ConfigError("lm must be 'offline' or a model string 'provider/model', e.g. openai/gpt-4o-mini")
    lm = lm.strip()
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or not 0 <= temperature <= 2:
        raise ConfigError(f"temperature={temperature!r} is outside [0, 2]")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency={concurrency!r} must be an integer >= 1")
    if isinstance(num_retries, bool) or not isinstance(num_retries, int) or num_retries < 0:
        raise ConfigError(f"num_retries={num_retries!r} must be an integer >= 0")
    if not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise ConfigError(f"timeout={timeout!r} must be a number of seconds > 0")
    bases = _bases(api_base)
    if lm == OFFLINE:
        if bases:
            raise ConfigError("api_base is for a served model; the offline engine runs in-process "
                              "(serve it with `python -m programs.serve` and use --lm openai/offline --api-base URL)")
        return bases
    if not _MODEL_RE.match(lm):
        raise ConfigError(f"lm={lm!r} must be 'offline' or 'provider/model', e.g. openai/gpt-4o-mini or "
                          "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct")
    provider = provider_of(lm)
    if provider in LOCAL_PROVIDERS and not bases and LOCAL_PROVIDERS[provider] is None:
        raise ConfigError(f"lm={lm!r} runs on your own server: give its URL with --api-base (api_base), "
                          "e.g. http://127.0.0.1:8000/v1")
    if provider in HOSTED_KEYS and not bases:
        names = HOSTED_KEYS[provider]
        if not any(env.get(n) for n in names):
            raise ConfigError(f"lm={lm!r} needs {' or '.join(names)} set in the environment "
                              "(keys are read from the environment only)")
    return bases


def build_lms(
    lm: str = OFFLINE,
    api_base: None | str | Sequence[str] = None,
    *,
    temperature: float = 0.7,
    seed: int = 0,
    concurrency: int = 8,
    num_retries: int = 3,
    timeout: float = 60.0,
    max_tokens: int | None = None,
    cache: bool | None = None,
) -> list[dspy.LM]:
    """Build one ``dspy.LM`` per endpoint (one in-process LM for ``offline`` or a hosted model).

    Parameters
    ----------
    lm : "offline" or a DSPy/LiteLLM model string ``provider/model``.
    api_base : an OpenAI-compatible base URL or a list of them (one LM each, agents spread round-robin).
    temperature : sampling temperature in [0, 2]; > 0 lets identical agents differ (distinct rollout ids).
    seed : seed of the offline engine (ignored by hosted models).
    concurrency : bound on concurrent calls made by the simulation (validated here, applied by the caller).
    num_retries, timeout : client retries with back-off and per-request timeout in seconds.
    cache : DSPy response cache; default off for the offline engine (the cache key ignores a custom
        engine's identity and seed) and on for real models.

    Returns
    -------
    list of dspy.LM, length max(1, len(api_base)).
    """
    bases = check_lm_config(lm, api_base, temperature=temperature, concurrency=concurrency,
                            num_retries=num_retries, timeout=timeout)
    lm = lm.strip()
    if lm == OFFLINE:
        from programs.offline import offline_lm

        return [offline_lm(seed=seed, temperature=temperature)]
    kwargs: dict = dict(temperature=temperature, num_retries=num_retries, timeout=timeout,
                        cache=True if cache is None else cache)
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    provider = provider_of(lm)
    if not bases:
        default = LOCAL_PROVIDERS.get(provider)
        return [dspy.LM(lm, **kwargs, **({"api_base": default} if default else {}))]
    out = []
    for base in bases:
        extra = {}
        if provider == "openai" and not os.environ.get("OPENAI_API_KEY"):
            # OpenAI-compatible local servers ignore the key but the client insists on one.
            extra["api_key"] = LOCAL_PLACEHOLDER_KEY
        out.append(dspy.LM(lm, api_base=base, **kwargs, **extra))
    return out


def describe_lm(
    lm: str = OFFLINE,
    api_base: None | str | Sequence[str] = None,
    *,
    temperature: float | None = None,
) -> str:
    """A one-line description for reports and progress output; never contains keys or URL credentials."""
    if not isinstance(lm, str) or lm.strip() == OFFLINE:
        return OFFLINE_LABEL
    try:
        bases = _bases(api_base)
    except ConfigError:
        bases = []
    text = lm.strip()
    if bases:
        shown = ", ".join(_redact(b) for b in bases)
        text += f" via {len(bases)} endpoint{'s' if len(bases) > 1 else ''} ({shown})"
    if temperature is not None:
        text += f", temperature {temperature:g}"
    return text


def in_process(lm: dspy.BaseLM) -> bool:
    """True for the embedded offline engine: CPU-bound Python in this process, so concurrent threads
    only contend for the GIL and a batch runs fastest inline."""
    return str(getattr(lm, "model", "")).startswith("offline/")


def lm_label(lm: dspy.BaseLM) -> str:
    """Describe a built LM object (offline engine recognised by its model name)."""
    model = getattr(lm, "model", "?")
    if str(model).startswith("offline/"):
        return OFFLINE_LABEL
    base = (getattr(lm, "kwargs", {}) or {}).get("api_base")
    return describe_lm(model, base) if base else str(model)
