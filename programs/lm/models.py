"""LM set-up: model strings, endpoints, keys from the environment, and the offline engine.

Each ``--lm`` string belongs to one registered backend (``programs.lm.backends``: offline, local,
endpoint); the functions here validate the shared knobs and dispatch to it. ``build_lms("offline")`` returns the embedded offline engine (a numeric stand-in, not a language model);
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
``max_tokens`` knobs). ``probe_lm`` is the pre-flight: one ``GET {api_base}/models`` per endpoint
(``check_endpoints``), one tiny answer of the local model in a child process, so an unreachable server or
a model that crashes is reported in one line before any LM call is spent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import dspy

from programs.errors import ConfigError
from programs.lm.compat import litellm_prefixes
from programs.lm.backends import LMOptions, backend_for, backend_of
from programs.lm.endpoint import EndpointLM, RequestStats, split_endpoint
from programs.redact import redact
from programs.lm.offline import OFFLINE_LABEL
from programs.lm.structured import mark

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
            raise ConfigError(f"api_base[{i}]={redact(b)!r} must be an http(s) URL such as http://127.0.0.1:8000/v1")
        try:
            query = split_endpoint(b)[2]
        except ValueError as exc:  # a port that is not a number, a broken IPv6 host
            raise ConfigError(f"api_base[{i}]={redact(b)!r} is not a valid URL ({exc})") from None
        if query:
            raise ConfigError(f"api_base[{i}]={redact(b)!r} carries a query, which DSPy's LM clients cannot send (they "
                              "join paths onto the URL and drop it, so every call would fail): give a gateway's "
                              "token as user-info ('user:TOKEN@' before the host, sent as HTTP Basic) or as "
                              "OPENAI_API_KEY (sent as Bearer)")
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
    settings: Mapping[str, Any] | None = None,
    reasoning_effort: str | None = None,
) -> list[str]:
    """Validate an LM configuration without calling any LM (``programs.lm.backends``: the backend of ``lm``
    checks its own part).

    Returns the list of endpoints (possibly empty). Raises ``ConfigError`` with one line naming the
    setting: a model string not of the form ``provider/model`` or of a provider no client knows, a hosted
    provider without its key in the environment, a local provider without ``api_base``, or a numeric knob
    out of range. With ``probe``, the backend's pre-flight runs too (each ``api_base`` must answer
    ``GET {api_base}/models`` within ``probe_timeout`` seconds). ``local`` and ``local:PATH`` need the
    ``local`` extra installed and, for a path, an existing ``.gguf`` file. ``settings`` holds backends'
    own settings by backend name (``{"local": LoadSettings(...)}``).
    ``reasoning_effort`` and a reasoning model's ``max_tokens`` floor: ``programs.lm.reasoning``.
    """
    env = os.environ if environ is None else environ
    if not isinstance(lm, str) or not lm.strip():
        raise ConfigError("lm must be 'offline', 'local[:PATH.gguf]' or a model string 'provider/model', "
                          "e.g. openai/gpt-4o-mini")
    opts = LMOptions(temperature=temperature, concurrency=concurrency, num_retries=num_retries, timeout=timeout,
                     retry_backoff=retry_backoff, structured=structured, max_tokens=max_tokens,
                     reasoning_effort=reasoning_effort)
    opts.check()
    lm = lm.strip()
    bases = _bases(api_base)
    backend = backend_for(lm)
    own = (settings or {}).get(backend.name)
    backend.check(lm, bases, opts, own, env)
    if probe:
        backend.probe(lm, bases, opts, own, probe_timeout)
    return bases


def probe_lm(lm: str = OFFLINE, api_base: None | str | Sequence[str] = None, *, timeout: float = 3.0,
             settings: Mapping[str, Any] | None = None) -> None:
    """The pre-flight of ``lm``'s backend before a run: ``GET /models`` on every endpoint, one tiny answer of
    the local model in a child process (``programs.lm.local.probe_local``); nothing for the offline engine.
    One-line ``ConfigError`` naming the cause and the remedy."""
    lm = lm.strip()
    backend = backend_for(lm)
    backend.probe(lm, _bases(api_base), LMOptions(), (settings or {}).get(backend.name), timeout)


def lm_record(lm: str, settings: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The backend's own settings of ``lm`` as this machine resolves them, for ``config.json`` (None when
    the backend has none, e.g. the offline engine and endpoints)."""
    backend = backend_for(lm.strip())
    return backend.record(lm.strip(), (settings or {}).get(backend.name))


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
    """Pre-flight: ``GET {base}/models`` on every endpoint (in parallel), no API key sent, no LM call (a URL's
    own credentials are sent, as with every call).

    Any HTTP answer, even 401 or 404, shows a server is listening. A refused connection, an unknown host
    or no answer within ``timeout`` seconds raises ``ConfigError`` naming the endpoint (credentials
    stripped) and the reason, in one line.
    """
    import urllib.error
    import urllib.request

    def probe(base: str) -> str | None:
        root, auth, _ = split_endpoint(base)  # a gateway's credentials, sent as the calls send them
        url = root.rstrip("/") + "/models"
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "llm-economist-preflight", **auth})
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
            raise ConfigError(f"api_base[{i}]={redact(base)!r} is unreachable ({why}); start the server or "
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
    settings: Mapping[str, Any] | None = None,
    reasoning_effort: str | None = None,
) -> list[dspy.LM]:
    """Build one LM per endpoint (one in-process LM for ``offline`` and ``local``, one ``EndpointLM`` for a
    hosted model): ``programs.lm.backends``, the backend of ``lm`` builds them.

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

    settings : backends' own settings by backend name, e.g. ``{"local": LoadSettings(n_ctx=2048)}``.

    Returns
    -------
    list of dspy.LM, length max(1, len(api_base)).
    """
    bases = check_lm_config(lm, api_base, temperature=temperature, concurrency=concurrency,
                            num_retries=num_retries, timeout=timeout, retry_backoff=retry_backoff,
                            structured=structured, max_tokens=max_tokens, settings=settings,
                            reasoning_effort=reasoning_effort)
    lm = lm.strip()
    backend = backend_for(lm)
    opts = LMOptions(temperature=temperature, seed=seed, concurrency=concurrency, num_retries=num_retries,
                     timeout=timeout, retry_backoff=retry_backoff, max_tokens=max_tokens, cache=cache,
                     structured=structured, reasoning_effort=reasoning_effort)
    lms = backend.build(lm, bases, opts, (settings or {}).get(backend.name))
    return [mark(x, structured, max_tokens) for x in lms] if backend.structured else lms


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
    if not isinstance(lm, str) or not lm.strip():
        return OFFLINE_LABEL
    try:
        bases = _bases(api_base)
    except ConfigError:
        bases = []
    return backend_for(lm.strip()).describe(lm.strip(), bases, temperature)


def in_process(lm: dspy.BaseLM) -> bool:
    """True for the embedded offline engine and the local model (a backend's ``in_process``): CPU-bound work
    in this process (Python under the GIL; llama.cpp, one context behind one lock, already using every
    core), so concurrent threads only contend and a batch runs fastest inline."""
    return backend_of(lm).in_process


def lm_label(lm: dspy.BaseLM) -> str:
    """Describe a built LM object (its backend's label)."""
    return backend_of(lm).label(lm)
