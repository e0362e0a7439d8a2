"""LM set-up: model strings, endpoints, keys from the environment, and the offline engine.

``build_lms("offline")`` returns the embedded offline engine (a numeric stand-in, not a language model);
any other value is a DSPy/LiteLLM model string ``provider/model`` (``openai/gpt-4o-mini``,
``hosted_vllm/meta-llama/Llama-3.1-8B-Instruct`` with ``api_base``, ``ollama_chat/llama3.1``). Several
``api_base`` values give one ``dspy.LM`` per endpoint; the simulation spreads agents across them.

API keys are read by the client from the environment only: nothing here accepts, stores or prints a key,
and ``describe_lm`` strips credentials from endpoint URLs.

Served models are ``EndpointLM`` objects (a ``dspy.LM``): at most ``concurrency`` requests in flight per
endpoint, and retries with exponential back-off (honouring a server's ``Retry-After``) done here rather
than inside DSPy, so that every attempt, retry and error is counted (``EndpointLM.stats``) and the
simulation can log them per step. ``check_endpoints`` is the pre-flight: one ``GET {api_base}/models``
per endpoint, so an unreachable server is reported in one line before any LM call is spent.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
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
    retry_backoff: float = 1.0,
    environ: dict[str, str] | None = None,
    probe: bool = False,
    probe_timeout: float = 3.0,
) -> list[str]:
    """Validate an LM configuration without calling any LM.

    Returns the list of endpoints (possibly empty). Raises ``ConfigError`` with one line naming the
    setting: a model string not of the form ``provider/model`` or of a provider no client knows, a hosted
    provider without its key in the environment, a local provider without ``api_base``, or a numeric knob
    out of range. With ``probe``, each ``api_base`` must also answer ``GET {api_base}/models`` within
    ``probe_timeout`` seconds (``check_endpoints``; any HTTP status counts as reachable).
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
    if (isinstance(retry_backoff, bool) or not isinstance(retry_backoff, (int, float))
            or not math.isfinite(retry_backoff) or not 0 <= retry_backoff <= 600):
        raise ConfigError(f"retry_backoff={retry_backoff!r} must be a number of seconds in [0, 600]")
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
    try:
        from dspy._vendor.lm15.router import LITELLM_PROVIDER_PREFIXES

        if provider in LITELLM_PROVIDER_PREFIXES:
            return True
    except ImportError:  # pragma: no cover - another DSPy layout
        pass
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
            raise ConfigError(f"api_base[{i}]={_redact(base)!r} is unreachable ({why}); start the server or "
                              "fix --api-base")


#: Counted error kinds of failed attempts (all retried): HTTP 429, HTTP 5xx, no answer within the timeout,
#: a broken connection or cut body, a 200 whose body is not a completion.
ERROR_KINDS = ("rate_limited", "server_error", "timeout", "transport", "bad_body", "other")


def error_kind(exc: BaseException) -> str | None:
    """The retryable kind of a failed LM attempt (``ERROR_KINDS``), or None when retrying cannot help
    (bad request, authentication, unsupported feature, a bug)."""
    from dspy.utils.exceptions import (
        LMProviderError,
        LMRateLimitError,
        LMServerError,
        LMTimeoutError,
        LMTransportError,
        is_retryable_lm_error,
    )

    if isinstance(exc, LMRateLimitError):
        return "rate_limited"
    if isinstance(exc, LMTimeoutError):
        return "timeout"
    if isinstance(exc, LMServerError):
        return "server_error"
    if isinstance(exc, LMTransportError):
        return "timeout" if "timed out" in str(exc).lower() else "transport"
    if isinstance(exc, LMProviderError) and getattr(exc, "status", None) == 200:
        # A 200 that is not a completion (a proxy's HTML page, a cut JSON body): transient, so retried.
        return "bad_body"
    if isinstance(exc, Exception) and is_retryable_lm_error(exc):
        return "other"
    return None


class RequestStats:
    """Thread-safe counts of one endpoint's requests.

    ``calls`` public LM calls; ``attempts`` HTTP requests sent (calls + retries; a DSPy cache hit counts
    as an attempt that sent nothing); ``failed`` calls that raised (retries exhausted or not retryable);
    ``errors`` failed attempts by kind; ``backoff_s`` seconds slept between attempts; ``in_flight`` and
    the highest ``in_flight`` since the last ``take_max``.
    """

    FIELDS = ("calls", "attempts", "retries", "failed")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.backoff_s = 0.0
        self.in_flight = 0
        self._max = 0

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self._max = max(self._max, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def add(self, field: str, n: int = 1) -> None:
        with self._lock:
            self.counts[field] += n

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def slept(self, seconds: float) -> None:
        with self._lock:
            self.backoff_s += seconds

    def take_max(self) -> int:
        """The highest number of requests in flight since the previous call (then reset to the current)."""
        with self._lock:
            m, self._max = self._max, self.in_flight
            return m

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {f: int(self.counts[f]) for f in self.FIELDS}
            out["errors"] = {k: int(v) for k, v in sorted(self.errors.items()) if v}
            out["backoff_s"] = round(self.backoff_s, 3)
            return out


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``after - before`` of two ``RequestStats.snapshot()`` values."""
    out: dict[str, Any] = {f: int(after[f]) - int(before[f]) for f in RequestStats.FIELDS}
    errs = {k: int(v) - int(before["errors"].get(k, 0)) for k, v in after["errors"].items()}
    out["errors"] = {k: v for k, v in sorted(errs.items()) if v}
    out["backoff_s"] = round(float(after["backoff_s"]) - float(before["backoff_s"]), 3)
    return out


def stats_sum(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sum of stats dicts (snapshots or deltas)."""
    out: dict[str, Any] = {f: 0 for f in RequestStats.FIELDS}
    errs: Counter[str] = Counter()
    backoff = 0.0
    for d in items:
        for f in RequestStats.FIELDS:
            out[f] += int(d.get(f, 0))
        errs.update({k: int(v) for k, v in (d.get("errors") or {}).items()})
        backoff += float(d.get("backoff_s", 0.0))
    out["errors"] = {k: v for k, v in sorted(errs.items()) if v}
    out["backoff_s"] = round(backoff, 3)
    return out


_METADATA_LOCK = threading.Lock()


def _memoize_metadata_misses() -> None:
    """Remember DSPy's model-metadata misses (one per process, idempotent).

    DSPy prices every completion from a bundled metadata table. For a model the table does not list (any
    model a user serves: ``openai/<name>`` on vLLM or SGLang) each lookup scans the whole table, twice per
    call: ~3 ms of CPU, measured at 40% of the client's time per request on 2 cores. The table is loaded
    once per process, so a miss stays a miss; only misses are remembered (hits are already a dict lookup),
    and each caller still gets a fresh dict. Guarded: on another DSPy layout nothing is patched.
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


class EndpointLM(dspy.LM):
    """A ``dspy.LM`` for one served endpoint: bounded concurrency, counted retries with back-off.

    Parameters
    ----------
    model : DSPy/LiteLLM model string.
    concurrency : at most this many requests of this LM (and its copies) in flight at once; a call waits
        for a free slot, and gives it up while it backs off.
    num_retries : retries after a failed attempt of a retryable kind (``error_kind``); the call raises
        after ``num_retries + 1`` failed attempts.
    retry_backoff : the first back-off in seconds; attempt ``k`` waits ``retry_backoff * 2**k`` (capped at
        ``max_backoff``) with jitter in its upper half, or exactly the server's ``Retry-After`` when given.
    **kwargs : passed to ``dspy.LM`` (api_base, timeout, temperature, cache, ...).

    Notes
    -----
    DSPy's own retry loop is switched off (``num_retries=0`` inside): it would retry invisibly. The state
    a saved program holds (``dump_state``) is a plain ``dspy.LM``'s, without keys.
    """

    def __init__(self, model: str, *, concurrency: int = 8, num_retries: int = 3, retry_backoff: float = 1.0,
                 max_backoff: float = 60.0, **kwargs: Any) -> None:
        super().__init__(model, num_retries=0, **kwargs)
        _memoize_metadata_misses()
        self.retries = int(num_retries)
        self.retry_backoff = float(retry_backoff)
        self.max_backoff = float(max_backoff)
        self.concurrency = int(concurrency)
        base = self.kwargs.get("api_base")
        self.endpoint = _redact(base) if base else f"{provider_of(model)} (default endpoint)"
        self.limiter = threading.BoundedSemaphore(self.concurrency)
        self.stats = RequestStats()

    # -- retries --------------------------------------------------------------------------------
    def _delay(self, exc: BaseException, attempt: int) -> float:
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, (int, float)) and math.isfinite(hint) and hint > 0:
            return min(float(hint), self.max_backoff)  # the server said how long; waiting less is pointless
        d = min(self.retry_backoff * 2.0 ** attempt, self.max_backoff)
        return d * (0.5 + 0.5 * random.random())  # jitter spreads a batch that failed together

    def _failed(self, exc: BaseException, attempt: int) -> bool:
        """Count a failed attempt; True when the call must raise."""
        kind = error_kind(exc)
        if kind is not None:
            self.stats.error(kind)
        if kind is None or attempt >= self.retries:
            self.stats.add("failed")
            return True
        self.stats.add("retries")
        return False

    @contextmanager
    def _slot(self):
        self.limiter.acquire()
        self.stats.enter()
        try:
            yield
        finally:
            self.stats.leave()
            self.limiter.release()

    def __call__(self, prompt: Any = None, *, messages: Any = None, **kwargs: Any) -> Any:
        self.stats.add("calls")
        attempt = 0
        while True:
            self.stats.add("attempts")
            try:
                with self._slot():
                    return super().__call__(prompt, messages=messages, **kwargs)
            except Exception as exc:
                if self._failed(exc, attempt):
                    raise
                delay = self._delay(exc, attempt)
            self.stats.slept(delay)
            time.sleep(delay)
            attempt += 1

    async def _aacquire(self) -> None:
        # Not `to_thread(limiter.acquire)`: waiters blocked in the default executor would starve the
        # executor threads DSPy's own acall needs (a deadlock once waiters outnumber its threads).
        wait = 0.001
        while not self.limiter.acquire(blocking=False):
            await asyncio.sleep(wait)
            wait = min(wait * 2, 0.025)

    async def acall(self, prompt: Any = None, *, messages: Any = None, **kwargs: Any) -> Any:
        self.stats.add("calls")
        attempt = 0
        while True:
            self.stats.add("attempts")
            await self._aacquire()
            self.stats.enter()
            try:
                return await super().acall(prompt, messages=messages, **kwargs)
            except Exception as exc:
                if self._failed(exc, attempt):
                    raise
                delay = self._delay(exc, attempt)
            finally:
                self.stats.leave()
                self.limiter.release()
            self.stats.slept(delay)
            await asyncio.sleep(delay)
            attempt += 1

    # -- copies and saved state ------------------------------------------------------------------
    def copy(self, **kwargs: Any) -> "EndpointLM":
        """A copy sharing the endpoint's concurrency bound and counters (it is the same endpoint)."""
        retries = kwargs.pop("num_retries", None)
        new = super().copy(**kwargs)
        if retries is not None:
            new.retries = int(retries)
        return new

    def __deepcopy__(self, memo: dict) -> "EndpointLM":
        # Locks cannot be deep-copied, and a copy still talks to the same endpoint.
        return self.copy()

    def dump_state(self) -> dict[str, Any]:
        from dspy.clients.base_lm import LM_CLASS_STATE_KEY

        state = super().dump_state()
        state[LM_CLASS_STATE_KEY] = "dspy.clients.lm.LM"  # the bound and counters are runtime-only
        state["num_retries"] = self.retries
        state.pop("api_key", None)
        return state


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
) -> list[dspy.LM]:
    """Build one LM per endpoint (one in-process LM for ``offline``, one ``EndpointLM`` for a hosted model).

    Parameters
    ----------
    lm : "offline" or a DSPy/LiteLLM model string ``provider/model``.
    api_base : an OpenAI-compatible base URL or a list of them (one LM each, agents spread round-robin).
    temperature : sampling temperature in [0, 2]; > 0 lets identical agents differ (distinct rollout ids).
    seed : seed of the offline engine (ignored by hosted models).
    concurrency : requests in flight per endpoint (each ``EndpointLM`` holds its own bound).
    num_retries, retry_backoff : retries after a transient failure, first back-off in seconds (doubling).
    timeout : seconds to wait for the server's next byte (and to send); connecting has its own 10 s.
    cache : DSPy response cache; default off for the offline engine (the cache key ignores a custom
        engine's identity and seed) and on for real models.

    Returns
    -------
    list of dspy.LM, length max(1, len(api_base)).
    """
    bases = check_lm_config(lm, api_base, temperature=temperature, concurrency=concurrency,
                            num_retries=num_retries, timeout=timeout, retry_backoff=retry_backoff)
    lm = lm.strip()
    if lm == OFFLINE:
        from programs.offline import offline_lm

        return [offline_lm(seed=seed, temperature=temperature)]
    kwargs: dict = dict(temperature=temperature, num_retries=num_retries, timeout=timeout,
                        cache=True if cache is None else cache, concurrency=concurrency,
                        retry_backoff=retry_backoff)
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    provider = provider_of(lm)
    if not bases:
        default = LOCAL_PROVIDERS.get(provider)
        return [EndpointLM(lm, **kwargs, **({"api_base": default} if default else {}))]
    out = []
    for base in bases:
        extra = {}
        if provider == "openai" and not os.environ.get("OPENAI_API_KEY"):
            # OpenAI-compatible local servers ignore the key but the client insists on one.
            extra["api_key"] = LOCAL_PLACEHOLDER_KEY
        out.append(EndpointLM(lm, api_base=base, **kwargs, **extra))
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
