"""Served models: ``EndpointLM`` (a ``dspy.LM``) with bounded concurrency and counted retries.

At most ``concurrency`` requests in flight per endpoint, and retries with exponential back-off
(honouring a server's ``Retry-After``) done here rather than inside DSPy, so that every attempt, retry
and error is counted (``EndpointLM.stats``) and the simulation can log them per step.
"""

from __future__ import annotations

import asyncio
import base64
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import dspy

from programs.lm.compat import memoize_metadata_misses, plain_lm_state_class
from programs.redact import redact

__all__ = ["EndpointLM", "RequestStats", "ERROR_KINDS", "error_kind", "stats_delta", "stats_sum",
           "split_endpoint", "provider_of"]


def split_endpoint(url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """``(base, headers, query)`` of an endpoint URL that may carry credentials (gateways, proxies).

    User-info becomes the request's ``Authorization`` (HTTP Basic, RFC 7617, as curl and browsers send it).
    ``base`` has neither user-info nor query nor fragment. The query is returned for the configuration
    check to refuse (``programs.lm.models``): DSPy's clients (its native engine and LiteLLM with the
    OpenAI SDK) join paths onto ``api_base`` as text and LiteLLM drops ``extra_query``, so a query cannot
    reach the server. Raises ValueError for a port that is not a number or a broken IPv6 host.
    """
    p = urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if p.port:
        host = f"{host}:{p.port}"
    headers: dict[str, str] = {}
    if p.username is not None or p.password is not None:
        pair = f"{unquote(p.username or '')}:{unquote(p.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    query = dict(parse_qsl(p.query, keep_blank_values=True))
    return urlunsplit((p.scheme, host, p.path, "", "")), headers, query


def provider_of(lm: str) -> str:
    """The provider prefix of a model string (``openai`` for ``openai/gpt-4o-mini``)."""
    return lm.split("/", 1)[0].lower()


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

    from programs.lm.structured import rejects_schema

    if rejects_schema(exc):
        return None  # a server that cannot take our response_format will not take it on a retry either
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
    ``errors`` failed attempts by kind; ``timeouts_capped`` calls given up because they timed out more
    often than ``EndpointLM.timeout_retries`` allows (retries left unused); ``backoff_s`` seconds slept
    between attempts; ``in_flight`` and the highest ``in_flight`` since the last ``take_max``.
    """

    FIELDS = ("calls", "attempts", "retries", "failed", "timeouts_capped")

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
    out: dict[str, Any] = {f: int(after.get(f, 0)) - int(before.get(f, 0)) for f in RequestStats.FIELDS}
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


class EndpointLM(dspy.LM):
    """A ``dspy.LM`` for one served endpoint: bounded concurrency, counted retries with back-off.

    Parameters
    ----------
    model : DSPy/LiteLLM model string.
    concurrency : at most this many requests of this LM (and its copies) in flight at once; a call waits
        for a free slot, and gives it up while it backs off.
    num_retries : retries after a failed attempt of a retryable kind (``error_kind``); the call raises
        after ``num_retries + 1`` failed attempts.
    timeout_retries : at most this many of those retries follow a time-out (default 1). A server that
        did not answer in time is busy: the abandoned request may still be queued or generating there,
        so each retry adds to its queue. A call that times out once more raises (counted in
        ``timeouts_capped``), and the agent falls back.
    retry_backoff : the first back-off in seconds; attempt ``k`` waits ``retry_backoff * 2**k`` (capped at
        ``max_backoff``) with jitter in its upper half, or exactly the server's ``Retry-After`` when given.
    **kwargs : passed to ``dspy.LM`` (api_base, timeout, temperature, cache, ...).

    Notes
    -----
    DSPy's own retry loop is switched off (``num_retries=0`` inside): it would retry invisibly. The state
    a saved program holds (``dump_state``) is a plain ``dspy.LM``'s, without keys.
    """

    def __init__(self, model: str, *, concurrency: int = 8, num_retries: int = 3, retry_backoff: float = 1.0,
                 max_backoff: float = 60.0, timeout_retries: int = 1, **kwargs: Any) -> None:
        if kwargs.get("api_base"):
            # A gateway's credentials in the URL travel as the request's Authorization (the client would
            # otherwise take "user:pw@host" for the host name); DSPy then sends the call through its
            # LiteLLM engine, which takes extra headers.
            base, headers, _ = split_endpoint(kwargs["api_base"])
            kwargs["api_base"] = base
            if headers:
                kwargs["extra_headers"] = {**(kwargs.get("extra_headers") or {}), **headers}
        super().__init__(model, num_retries=0, **kwargs)
        memoize_metadata_misses()
        self.retries = int(num_retries)
        self.timeout_retries = int(timeout_retries)
        self.retry_backoff = float(retry_backoff)
        self.max_backoff = float(max_backoff)
        self.concurrency = int(concurrency)
        base = self.kwargs.get("api_base")
        self.endpoint = redact(base) if base else f"{provider_of(model)} (default endpoint)"
        self.limiter = threading.BoundedSemaphore(self.concurrency)
        self.stats = RequestStats()

    # -- retries --------------------------------------------------------------------------------
    def _delay(self, exc: BaseException, attempt: int) -> float:
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, (int, float)) and math.isfinite(hint) and hint > 0:
            return min(float(hint), self.max_backoff)  # the server said how long; waiting less is pointless
        d = min(self.retry_backoff * 2.0 ** attempt, self.max_backoff)
        return d * (0.5 + 0.5 * random.random())  # jitter spreads a batch that failed together

    def _failed(self, exc: BaseException, attempt: int, timeouts: list[int]) -> bool:
        """Count a failed attempt; True when the call must raise. ``timeouts``: the call's time-outs so far
        (a one-element list, updated here)."""
        kind = error_kind(exc)
        if kind is not None:
            self.stats.error(kind)
        if kind == "timeout":
            timeouts[0] += 1
            if timeouts[0] > self.timeout_retries and attempt < self.retries:
                self.stats.add("timeouts_capped")
                self.stats.add("failed")
                return True
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

    # -- one request: each attempt (a retry is another) goes through these, which a budget cap wraps
    # (``optimize.budget``: a retry that could pass ``--budget`` is refused, not reserved in advance) --
    def _send(self, prompt: Any, messages: Any, kwargs: dict[str, Any]) -> Any:
        self.stats.add("attempts")
        with self._slot():
            return super().__call__(prompt, messages=messages, **kwargs)

    async def _asend(self, prompt: Any, messages: Any, kwargs: dict[str, Any]) -> Any:
        self.stats.add("attempts")
        await self._aacquire()
        self.stats.enter()
        try:
            return await super().acall(prompt, messages=messages, **kwargs)
        finally:
            self.stats.leave()
            self.limiter.release()

    def __call__(self, prompt: Any = None, *, messages: Any = None, **kwargs: Any) -> Any:
        self.stats.add("calls")
        attempt, timeouts = 0, [0]
        while True:
            try:
                return self._send(prompt, messages, kwargs)
            except Exception as exc:
                if self._failed(exc, attempt, timeouts):
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
        attempt, timeouts = 0, [0]
        while True:
            try:
                return await self._asend(prompt, messages, kwargs)
            except Exception as exc:
                if self._failed(exc, attempt, timeouts):
                    raise
                delay = self._delay(exc, attempt)
            self.stats.slept(delay)
            await asyncio.sleep(delay)
            attempt += 1

    # -- copies and saved state ------------------------------------------------------------------
    def copy(self, **kwargs: Any) -> "EndpointLM":
        """A copy sharing the endpoint's concurrency bound and counters (it is the same endpoint)."""
        retries = kwargs.pop("num_retries", None)
        timeout_retries = kwargs.pop("timeout_retries", None)
        new = super().copy(**kwargs)
        if timeout_retries is not None:
            new.timeout_retries = int(timeout_retries)
        if retries is not None:
            new.retries = int(retries)
        return new

    def __deepcopy__(self, memo: dict) -> "EndpointLM":
        # Locks cannot be deep-copied, and a copy still talks to the same endpoint.
        return self.copy()

    def dump_state(self) -> dict[str, Any]:
        state = plain_lm_state_class(super().dump_state())
        state["num_retries"] = self.retries
        for secret in ("api_key", "extra_headers"):  # a gateway's credentials stay out of files
            state.pop(secret, None)
        return state


