"""LM set-up: model strings, endpoints, keys from the environment, and the offline engine.

``build_lms("offline")`` returns the embedded offline engine (a numeric stand-in, not a language model);
``build_lms("local")`` / ``"local:/path/model.gguf"`` a GGUF language model run in-process by llama.cpp
(``programs.lm.local``); any other value is a DSPy/LiteLLM model string ``provider/model`` (``openai/gpt-4o-mini``,
``hosted_vllm/meta-llama/Llama-3.1-8B-Instruct`` with ``api_base``, ``ollama_chat/llama3.1``). Several
``api_base`` values give one ``dspy.LM`` per endpoint; the simulation spreads agents across them.

API keys are read by the client from the environment only: nothing here accepts, stores or prints a key,
and ``describe_lm`` strips credentials from endpoint URLs.

Served models are ``EndpointLM`` objects (a ``dspy.LM``): at most ``concurrency`` requests in flight per
endpoint, and retries with exponential back-off (honouring a server's ``Retry-After``) done here rather
than inside DSPy, so that every attempt, retry and error is counted (``EndpointLM.stats``) and the
simulation can log them per step. Every LM built here for a real model (local or served) gets structured
outputs and per-signature token budgets (``programs.lm.structured``, the ``structured`` and
``max_tokens`` knobs). ``check_endpoints`` is the pre-flight: one ``GET {api_base}/models``
per endpoint, so an unreachable server is reported in one line before any LM call is spent.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import dspy

from programs.errors import ConfigError
from programs.lm.compat import litellm_prefixes
from programs.lm.endpoint import EndpointLM, RequestStats, provider_of, redact_url
from programs.lm.local import LOCAL, check_local, describe_local, is_local, local_label
from programs.lm.offline import OFFLINE_LABEL
from programs.lm.reasoning import reasoning_plan
from programs.lm.structured import MODES, mark

OFFLINE = "offline"

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
            raise ConfigError(f"api_base[{i}]={redact_url(b)!r} must be an http(s) URL such as http://127.0.0.1:8000/v1")
        out.append(b)
    return out


def check_lm_config(
    lm: str = OFFLINE,
    api_base: None | str | Sequence[str] = None,
    *,
    temperature: float = 0.7,
    concurrency: int = 8,
    num_retries: int = 3,
    timeout: float = 60.0,
    retry_backoff: float = 1.0,
    environ: dict[str, str] | None = None,
    probe: bool = False,
    probe_timeout: float = 3.0,
    structured: str = "auto",
    max_tokens: int | None = None,
    reasoning_effort: str | None = None,
) -> list[str]:
    """Validate an LM configuration without calling any LM.

    Returns the list of endpoints (possibly empty). Raises ``ConfigError`` with one line naming the
    setting: a model string not of the form ``provider/model`` or of a provider no client knows, a hosted
    provider without its key in the environment, a local provider without ``api_base``, or a numeric knob
    out of range. With ``probe``, each ``api_base`` must also answer ``GET {api_base}/models`` within
    ``probe_timeout`` seconds (``check_endpoints``; any HTTP status counts as reachable). ``local`` and
    ``local:PATH`` need the ``local`` extra installed and, for a path, an existing ``.gguf`` file.
    ``reasoning_effort`` and a reasoning model's ``max_tokens`` floor: ``programs.lm.reasoning``.
    """
    env = os.environ if environ is None else environ
    if not isinstance(lm, str) or not lm.strip():
        raise ConfigError("lm must be 'offline', 'local[:PATH.gguf]' or a model string 'provider/model', "
                          "e.g. openai/gpt-4o-mini")
    if structured not in MODES:
        raise ConfigError(f"structured={structured!r} must be one of {', '.join(MODES)}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or not 1 <= max_tokens <= 1_000_000):
        raise ConfigError(f"max_tokens={max_tokens!r} must be an integer in [1, 1000000] (or unset: a budget "
                          "per signature)")
    lm = lm.strip()
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or not 0 <= temperature <= 2:
        raise ConfigError(f"temperature={temperature!r} is outside [0, 2]")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency={concurrency!r} must be an integer >= 1")
    if isinstance(num_retries, bool) or not isinstance(num_retries, int) or num_retries < 0:
        raise ConfigError(f"num_retries={num_retries!r} must be an integer >= 0")
    if not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise ConfigError(f"timeout={timeout!r} must be a number of seconds > 0")
    if (isinstance(retry_backoff, bool) or not isinstance(retry_backoff, (int, float))
            or not math.isfinite(retry_backoff) or not 0 <= retry_backoff <= 600):
        raise ConfigError(f"retry_backoff={retry_backoff!r} must be a number of seconds in [0, 600]")
    bases = _bases(api_base)
    if lm == OFFLINE:
        if bases:
            raise ConfigError("api_base is for a served model; the offline engine runs in-process "
                              "(serve it with `python -m programs.serve` and use --lm openai/offline-engine --api-base URL)")
        reasoning_plan(lm, None, reasoning_effort)
        return bases
    if is_local(lm):
        if bases:
            raise ConfigError(f"api_base is for a served model; lm={lm!r} runs in-process (serve a GGUF file with "
                              "`python -m llama_cpp.server --model PATH` and use --lm openai/NAME --api-base URL)")
        reasoning_plan(lm, None, reasoning_effort)
        check_local(lm)
        return bases
    if not _MODEL_RE.match(lm):
        raise ConfigError(f"lm={lm!r} must be 'offline' or 'provider/model', e.g. openai/gpt-4o-mini or "
                          "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct")
    provider = provider_of(lm)
    if not known_provider(provider):
        raise ConfigError(f"lm={lm!r}: unknown provider {provider!r} (use a DSPy/LiteLLM provider such as openai, "
                          "anthropic, hosted_vllm or ollama_chat; 'openai/<name>' with --api-base for any "
                          "OpenAI-compatible server)")
    if provider in LOCAL_PROVIDERS and not bases and LOCAL_PROVIDERS[provider] is None:
        raise ConfigError(f"lm={lm!r} runs on your own server: give its URL with --api-base (api_base), "
                          "e.g. http://127.0.0.1:8000/v1")
    if provider in HOSTED_KEYS and not bases:
        names = HOSTED_KEYS[provider]
        if not any(env.get(n) for n in names):
            raise ConfigError(f"lm={lm!r} needs {' or '.join(names)} set in the environment "
                              "(keys are read from the environment only)")
    reasoning_plan(lm, bases, reasoning_effort).check_max_tokens(max_tokens)
    if probe and bases:
        check_endpoints(bases, timeout=probe_timeout)
    return bases


def known_provider(provider: str) -> bool:
    """Whether a DSPy client can route ``provider/...`` (lm15's native doors, then LiteLLM's list).

    LiteLLM is imported only for a provider outside the common ones (the import takes seconds).
    """
    provider = provider.lower()
    if provider in HOSTED_KEYS or provider in LOCAL_PROVIDERS:
        return True
    if provider in litellm_prefixes():
        return True
    try:
        import litellm
    except ImportError:  # pragma: no cover - then we cannot tell; let the client decide
        return True
    return provider in {str(getattr(p, "value", p)).lower() for p in litellm.provider_list}


def check_endpoints(bases: Sequence[str], timeout: float = 3.0) -> None:
    """Pre-flight: ``GET {base}/models`` on every endpoint (in parallel), no key sent, no LM call.

    Any HTTP answer, even 401 or 404, shows a server is listening. A refused connection, an unknown host
    or no answer within ``timeout`` seconds raises ``ConfigError`` naming the endpoint (credentials
    stripped) and the reason, in one line.
    """
    import urllib.error
    import urllib.request

    def probe(base: str) -> str | None:
        url = base.rstrip("/") + "/models"
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "llm-economist-preflight"})
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - http(s) checked in _bases
                resp.read(1024)
            return None
        except urllib.error.HTTPError:
            return None  # a server answered
        except urllib.error.URLError as exc:
            reason = exc.reason
        except (OSError, ValueError) as exc:  # timeouts, resets, malformed host
            reason = exc
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return f"no answer within {timeout:g} s"
        text = getattr(reason, "strerror", None) or str(reason)
        return " ".join(str(text).split())[:120]

    bases = list(bases)
    if not bases:
        return
    with ThreadPoolExecutor(max_workers=min(16, len(bases))) as ex:
        reasons = list(ex.map(probe, bases))
    for i, (base, why) in enumerate(zip(bases, reasons)):
        if why is not None:
            raise ConfigError(f"api_base[{i}]={redact_url(base)!r} is unreachable ({why}); start the server or "
                              "fix --api-base")


def build_lms(
    lm: str = OFFLINE,
    api_base: None | str | Sequence[str] = None,
    *,
    temperature: float = 0.7,
    seed: int = 0,
    concurrency: int = 8,
    num_retries: int = 3,
    timeout: float = 60.0,
    retry_backoff: float = 1.0,
    max_tokens: int | None = None,
    cache: bool | None = None,
    structured: str = "auto",
    reasoning_effort: str | None = None,
) -> list[dspy.LM]:
    """Build one LM per endpoint (one in-process LM for ``offline`` and ``local``, one ``EndpointLM`` for a
    hosted model).

    Parameters
    ----------
    lm : "offline" or a DSPy/LiteLLM model string ``provider/model``.
    api_base : an OpenAI-compatible base URL or a list of them (one LM each, agents spread round-robin).
    temperature : sampling temperature in [0, 2]; > 0 lets identical agents differ (distinct rollout ids).
    seed : seed of the offline engine (ignored by hosted models).
    concurrency : requests in flight per endpoint (each ``EndpointLM`` holds its own bound).
    num_retries, retry_backoff : retries after a transient failure, first back-off in seconds (doubling).
    timeout : seconds to wait for the server's next byte (and to send); connecting has its own 10 s.
    cache : DSPy response cache; default off for the offline engine and the local model (the cache key
        ignores a custom engine's identity and seed) and on for served models.
    structured : ``auto`` | ``on`` | ``off``: send each answer's JSON schema as ``response_format``
        (``auto`` backs off to plain prompts when a server rejects it); not used by the offline engine.
    max_tokens : one token budget for every answer instead of the per-signature budgets
        (``programs.lm.structured.token_budget``); not used by the offline engine.
    reasoning_effort : ``low`` | ``medium`` | ``high`` for a reasoning model (``programs.lm.reasoning``,
        which also sets such a model's temperature and budgets).

    Returns
    -------
    list of dspy.LM, length max(1, len(api_base)).
    """
    bases = check_lm_config(lm, api_base, temperature=temperature, concurrency=concurrency,
                            num_retries=num_retries, timeout=timeout, retry_backoff=retry_backoff,
                            structured=structured, max_tokens=max_tokens, reasoning_effort=reasoning_effort)
    lm = lm.strip()
    if lm == OFFLINE:
        from programs.lm.offline import offline_lm

        # Not marked for structured outputs: its answers are seeded by the prompt text (structured.py).
        return [offline_lm(seed=seed, temperature=temperature)]
    if is_local(lm):
        from programs.lm.local import local_lm

        return [mark(local_lm(lm, seed=seed, temperature=temperature, cache=bool(cache)), structured, max_tokens)]
    plan = reasoning_plan(lm, bases, reasoning_effort)
    kwargs: dict = dict(temperature=plan.temperature(temperature), num_retries=num_retries, timeout=timeout,
                        cache=True if cache is None else cache, concurrency=concurrency,
                        retry_backoff=retry_backoff, **plan.lm_kwargs())
    provider = provider_of(lm)

    def endpoint(**extra: Any) -> dspy.LM:
        from dspy.utils.exceptions import LMConfigurationError

        try:
            built = EndpointLM(lm, **kwargs, **extra)
        except (LMConfigurationError, ValueError, TypeError) as exc:  # DSPy refused the settings: one line
            raise ConfigError(f"lm={lm!r}: {' '.join(str(exc).split())[:300]}") from None
        return plan.apply(mark(built, structured, max_tokens))

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


def request_stats(lms: Sequence[dspy.BaseLM]) -> list[dict[str, Any]] | None:
    """Snapshots of the ``EndpointLM`` counters of ``lms`` (None when no LM is served over the network)."""
    if not any(isinstance(lm, EndpointLM) for lm in lms):
        return None
    empty = RequestStats().snapshot()
    return [lm.stats.snapshot() if isinstance(lm, EndpointLM) else dict(empty) for lm in lms]


def describe_lm(
    lm: str = OFFLINE,
    api_base: None | str | Sequence[str] = None,
    *,
    temperature: float | None = None,
) -> str:
    """A one-line description for reports and progress output; never contains keys or URL credentials."""
    if not isinstance(lm, str) or lm.strip() == OFFLINE:
        return OFFLINE_LABEL
    if is_local(lm):
        text = describe_local(lm)
        return text + (f", temperature {temperature:g}" if temperature is not None else "")
    try:
        bases = _bases(api_base)
    except ConfigError:
        bases = []
    text = lm.strip()
    if bases:
        shown = ", ".join(redact_url(b) for b in bases)
        text += f" via {len(bases)} endpoint{'s' if len(bases) > 1 else ''} ({shown})"
    if temperature is not None:
        text += f", temperature {temperature:g}"
    return text


def in_process(lm: dspy.BaseLM) -> bool:
    """True for the embedded offline engine and the local model: CPU-bound work in this process (Python
    under the GIL; llama.cpp, one context behind one lock, already using every core), so concurrent
    threads only contend and a batch runs fastest inline."""
    return str(getattr(lm, "model", "")).startswith(("offline/", LOCAL + "/"))


def lm_label(lm: dspy.BaseLM) -> str:
    """Describe a built LM object (offline engine recognised by its model name)."""
    model = getattr(lm, "model", "?")
    if str(model).startswith("offline/"):
        return OFFLINE_LABEL
    if str(model).startswith(LOCAL + "/"):
        return local_label(str(model)[len(LOCAL) + 1:])
    base = (getattr(lm, "kwargs", {}) or {}).get("api_base")
    return describe_lm(model, base) if base else str(model)
