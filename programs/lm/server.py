"""Serve the offline engine over the OpenAI chat-completions protocol, with latency and fault injection.

    python -m programs.serve --port 8000 [--host 127.0.0.1] [--latency-ms 50] [--fail-rate 0.1] [--seed 0]

Then ``dspy.LM("openai/offline", api_base="http://127.0.0.1:8000/v1", api_key="x")`` talks to it
through the real network path (client, retries, concurrency). It is the offline engine, **not a
language model**; it says so on start and in ``GET /v1/models``.

Fault injection (``--fail-rate F``): each request is faulty with probability ``F``, the kind drawn
from ``--faults`` (default all): ``http500``; ``http429`` with ``Retry-After``; ``hang`` (no answer for
``--hang-s`` seconds, past a client's timeout, then the connection is closed); ``truncated`` (a body cut
short of its Content-Length); ``nonjson`` (a 200 whose body is not JSON); ``out_of_range`` (a
well-formed answer holding an invalid value: hours 250, a rate of 140%, a candidate not on the ballot,
a satisfaction that is not a boolean). The draw is seeded by the server seed, the request body and how
many times that body was seen before, so it replays under any interleaving and a retry is a new draw.
``--retry-after-s`` sets the 429's ``Retry-After`` (a fraction such as 0.2 is sent as is, which some
clients, DSPy's included, honour; whole seconds are the standard form).

Reasoning tokens, a test aid (``--reasoning-tokens N``): every answer reports ``N`` reasoning tokens in
``usage.completion_tokens_details.reasoning_tokens`` (and in ``completion_tokens``), as a hosted
reasoning model does, so a run addressed as ``--lm openai/gpt-5-mini --api-base URL`` exercises that
path. They are drawn from the request's budget (``max_completion_tokens`` or ``max_tokens``) first, as a
reasoning model's are: a budget they exhaust gets ``finish_reason: "length"`` and no answer, one they
leave too little of gets the answer cut. No reasoning happens; the engine's answer is the same.

``GET /v1/stats`` reports what the server saw, for tests and benchmarks: chat requests, requests in flight
and the most at once, injected faults by kind, responses by status, requests by ``reasoning_effort``,
and which credentials and query strings
were presented, by chat requests and by ``GET /models`` probes apart (as the first 12 hex digits of their
SHA-256, never the key itself).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import threading
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from aiohttp import web

from programs.lm.offline import MODEL_NAME, OFFLINE_LABEL, answer_fields, format_answer
from programs.lm.prompts import openai_content_text, split_messages

__all__ = ["FAULTS", "ServeConfig", "make_app", "serve_in_thread", "main"]

FAULTS = ("http500", "http429", "hang", "truncated", "nonjson", "out_of_range")


@dataclass(frozen=True)
class ServeConfig:
    """Server settings; see the module docstring for the fault kinds."""

    latency_ms: float = 0.0
    fail_rate: float = 0.0
    seed: int = 0
    faults: tuple[str, ...] = FAULTS
    hang_s: float = 30.0
    retry_after_s: float = 1.0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.reasoning_tokens, bool) or not isinstance(self.reasoning_tokens, int) \
                or not 0 <= self.reasoning_tokens <= 1_000_000:
            raise ValueError(f"reasoning_tokens={self.reasoning_tokens!r} must be an integer in [0, 1000000]")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail_rate={self.fail_rate} is outside [0, 1]")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms={self.latency_ms} must be >= 0")
        if self.hang_s < 0:
            raise ValueError(f"hang_s={self.hang_s} must be >= 0")
        if not self.retry_after_s >= 0:
            raise ValueError(f"retry_after_s={self.retry_after_s} must be >= 0")
        bad = [f for f in self.faults if f not in FAULTS]
        if bad or not self.faults:
            raise ValueError(f"faults={list(self.faults)} must be a non-empty subset of {list(FAULTS)}")


@dataclass
class _State:
    config: ServeConfig
    seen: dict[bytes, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    faults: Counter = field(default_factory=Counter)
    status: Counter = field(default_factory=Counter)
    credentials: Counter = field(default_factory=Counter)
    queries: Counter = field(default_factory=Counter)
    probe_credentials: Counter = field(default_factory=Counter)
    probe_queries: Counter = field(default_factory=Counter)
    efforts: Counter = field(default_factory=Counter)

    def stats(self) -> dict:
        return {"requests": self.requests, "in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
                "faults": dict(sorted(self.faults.items())),
                "status": {str(k): v for k, v in sorted(self.status.items())},
                "reasoning_effort": dict(sorted(self.efforts.items())),
                "credentials_sha256_12": dict(sorted(self.credentials.items())),
                "query_sha256_12": dict(sorted(self.queries.items())),
                "probe": {"credentials_sha256_12": dict(sorted(self.probe_credentials.items())),
                          "query_sha256_12": dict(sorted(self.probe_queries.items()))}}

    def presented(self, request: web.Request, probe: bool = False) -> None:
        """Count the credential and the query a chat request (or a ``GET /models`` probe) presented, as hash
        prefixes only: what a gateway would check."""
        pairs = ((self.probe_credentials if probe else self.credentials, _credential_tag(request)),
                 (self.probe_queries if probe else self.queries, _query_tag(request)))
        for counter, tag in pairs:
            if tag in counter or len(counter) < 64:
                counter[tag] += 1


def _credential_tag(request: web.Request) -> str:
    """What credential a request presented, as a hash prefix (the key itself is never kept)."""
    auth = request.headers.get("Authorization", "") or request.headers.get("api-key", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else auth.strip()
    if not token:
        return "none"
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def _query_tag(request: web.Request) -> str:
    """The request's query string (a gateway's token travels there) as a hash prefix; "none" without one."""
    q = request.query_string
    return hashlib.sha256(q.encode()).hexdigest()[:12] if q else "none"


def _draw_fault(state: _State, body: bytes) -> str | None:
    cfg = state.config
    if cfg.fail_rate <= 0:
        return None
    key = hashlib.blake2b(body, digest_size=12).digest()
    with state.lock:
        n = state.seen.get(key, 0)
        if len(state.seen) > 200_000:  # bound memory on very long runs; replay is kept within a run's window
            state.seen.clear()
        state.seen[key] = n + 1
    rng = np.random.default_rng([cfg.seed, int.from_bytes(key[:8], "little"), n])
    if rng.random() >= cfg.fail_rate:
        return None
    return cfg.faults[int(rng.integers(len(cfg.faults)))]


def _corrupt(fields: list[tuple[str, str]], values: dict, rng_key: bytes) -> dict:
    """An out-of-range answer a client must reject (the format stays valid)."""
    v = dict(values)
    names = [n for n, _ in fields]
    if "hours" in names:
        v["hours"] = 250.0
    elif "rates_percent" in names and v.get("rates_percent"):
        rates = list(v["rates_percent"])
        rates[rng_key[0] % len(rates)] = 140.0
        v["rates_percent"] = rates
    elif "candidate" in names:
        v["candidate"] = "Nobody On The Ballot"
    elif "satisfied" in names:
        v["satisfied"] = "perhaps"
    else:
        for n, t in fields:
            if t.startswith(("float", "int")):
                v[n] = -1e12
                break
    return v


def _error(status: int, message: str, kind: str, headers: dict | None = None) -> web.Response:
    body = {"error": {"message": f"{message} (injected by the {OFFLINE_LABEL})", "type": kind, "code": status}}
    return web.json_response(body, status=status, headers=headers)


def _completion(model: str, text: str, prompt_chars: int, key: bytes, reasoning: int = 0,
                budget: int | None = None) -> dict:
    """An OpenAI chat completion of ``text`` (tokens counted as characters / 4), after ``reasoning``
    reasoning tokens that come out of ``budget`` first (the answer cut, or dropped, where they leave too
    little: ``finish_reason`` is then ``length``)."""
    finish = "stop"
    answer = max(1, len(text) // 4)
    if budget is not None and reasoning + answer > budget:
        finish = "length"
        reasoning = min(reasoning, budget)
        left = budget - reasoning
        text = text[: 4 * left]
        answer = len(text) // 4 if text else 0
    usage = {"prompt_tokens": prompt_chars // 4, "completion_tokens": answer + reasoning,
             "total_tokens": prompt_chars // 4 + answer + reasoning}
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return {
        "id": "chatcmpl-" + key.hex(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": MODEL_NAME,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                     "finish_reason": finish}],
        "usage": usage,
    }


async def _abort(request: web.Request) -> web.StreamResponse:
    """Close the connection without a complete answer."""
    if request.transport is not None:
        request.transport.close()
    raise asyncio.CancelledError


def make_app(config: ServeConfig | None = None) -> web.Application:
    """The aiohttp application: ``POST /v1/chat/completions`` and ``GET /v1/models``."""
    state = _State(config or ServeConfig())
    cfg = state.config

    async def models(request: web.Request) -> web.Response:
        state.presented(request, probe=True)
        return web.json_response({"object": "list", "data": [
            {"id": MODEL_NAME, "object": "model", "created": 0, "owned_by": "llm-economist-dspy",
             "description": OFFLINE_LABEL}]})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(state.stats())

    async def chat(request: web.Request) -> web.StreamResponse:
        state.requests += 1
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        state.presented(request)
        status = 0
        try:
            resp = await _chat(request)
            status = resp.status
            return resp
        except asyncio.CancelledError:
            status = -1  # connection dropped (hang, truncated body) or the client went away
            raise
        finally:
            state.in_flight -= 1
            state.status[status] += 1

    async def _chat(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
            messages = body["messages"]
            if not isinstance(messages, list) or not messages:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": {"message": "the body must be JSON with a non-empty 'messages' list",
                                                "type": "invalid_request_error", "code": 400}}, status=400)
        effort = body.get("reasoning_effort")
        if isinstance(effort, str) and (effort in state.efforts or len(state.efforts) < 16):
            state.efforts[effort] += 1
        if cfg.latency_ms:
            await asyncio.sleep(cfg.latency_ms / 1000.0)
        fault = _draw_fault(state, raw)
        if fault is not None:
            state.faults[fault] += 1
        if fault == "http500":
            return _error(500, "internal server error", "server_error")
        if fault == "http429":
            ra = cfg.retry_after_s
            return _error(429, "rate limit reached", "rate_limit_exceeded",
                          headers={"Retry-After": str(int(ra)) if ra == math.floor(ra) else f"{ra:g}"})
        if fault == "hang":
            await asyncio.sleep(cfg.hang_s)
            return await _abort(request)
        if fault == "nonjson":
            return web.Response(status=200, text="<html><body>502 Bad Gateway</body></html>",
                                content_type="application/json")

        system, chat_messages = split_messages(
            (m.get("role", "user"), openai_content_text(m.get("content"))) for m in messages)
        rf = body.get("response_format") or {}
        json_mode = isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema")
        seed = body.get("seed")
        seed = cfg.seed if not isinstance(seed, int) else seed
        fields, values, fmt = answer_fields(system, chat_messages, seed=seed,
                                            temperature=body.get("temperature"), json_mode=json_mode)
        key = hashlib.blake2b(raw, digest_size=12).digest()
        if fault == "out_of_range":
            values = _corrupt(fields, values, key)
        text = format_answer(fields, values, fmt)
        model = str(body.get("model") or MODEL_NAME)
        prompt_chars = len(system) + sum(len(t) for _, t in chat_messages)
        budget = body.get("max_completion_tokens", body.get("max_tokens"))
        budget = budget if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0 else None
        completion = _completion(model, text, prompt_chars, key, cfg.reasoning_tokens,
                                 budget if cfg.reasoning_tokens else None)
        text = completion["choices"][0]["message"]["content"]

        if body.get("stream"):
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            await resp.prepare(request)
            base = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}
            chunks = [
                {**base, "object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]},
                {**base, "object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": {}, "finish_reason": completion["choices"][0]["finish_reason"]}],
                 "usage": completion["usage"]},
            ]
            for c in chunks:
                await resp.write(f"data: {json.dumps(c)}\n\n".encode())
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp

        payload = json.dumps(completion).encode()
        if fault == "truncated":
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            resp.content_length = len(payload)
            await resp.prepare(request)
            await resp.write(payload[: len(payload) // 2])
            return await _abort(request)
        return web.Response(body=payload, content_type="application/json")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/models", models)
    app.router.add_get("/v1/stats", stats)
    app.router.add_get("/stats", stats)
    return app


async def _start(host: str, port: int, config: ServeConfig) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(make_app(config), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # the real port when 0 was asked
    return runner, int(bound)


def serve_in_thread(
    port: int = 0,
    host: str = "127.0.0.1",
    latency_ms: float = 0.0,
    fail_rate: float = 0.0,
    seed: int = 0,
    faults: Sequence[str] | None = None,
    hang_s: float = 30.0,
    retry_after_s: float = 1.0,
    reasoning_tokens: int = 0,
) -> tuple[str, Callable[[], None]]:
    """Run the server on a background thread (for tests and notebooks).

    Returns
    -------
    url : str
        The API base, ``http://HOST:PORT/v1``.
    stop : callable
        Shuts the server down and joins the thread (open hangs are dropped).
    """
    config = ServeConfig(latency_ms=latency_ms, fail_rate=fail_rate, seed=seed,
                         faults=tuple(faults) if faults else FAULTS, hang_s=hang_s, retry_after_s=retry_after_s,
                         reasoning_tokens=reasoning_tokens)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            box["runner"], box["port"] = loop.run_until_complete(_start(host, port, config))
        except BaseException as exc:  # report bind errors to the caller
            box["error"] = exc
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(box["runner"].cleanup())
        pending = asyncio.all_tasks(loop)  # e.g. a handler still inside a 'hang' fault
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, name="offline-engine-server", daemon=True)
    thread.start()
    started.wait()
    if "error" in box:
        raise box["error"]

    def stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    return f"http://{host}:{box['port']}/v1", stop


def main(argv: Sequence[str] | None = None) -> None:
    from programs.cli import EXIT_CONFIG, DefaultsOnceFormatter, OneLineParser

    ap = OneLineParser(prog="python -m programs.serve", description=__doc__.split("\n\n")[0],
                       formatter_class=DefaultsOnceFormatter,
                       epilog="It serves the offline engine, not a language model. A port in use, a port outside "
                              "[0, 65535] or a bad setting exits with status 2 and one line. Ctrl-C stops it.")
    ap.add_argument("--port", type=int, default=8000, help="TCP port, in [0, 65535] (0 picks a free one)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (0.0.0.0 for every interface: the server has no authentication)")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every request, in milliseconds")
    ap.add_argument("--fail-rate", type=float, default=0.0, help="probability that a request is faulty, in [0, 1]")
    ap.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated fault kinds from {','.join(FAULTS)}")
    ap.add_argument("--hang-s", type=float, default=30.0,
                    help="seconds a 'hang' fault holds the connection (past a client's timeout)")
    ap.add_argument("--retry-after-s", type=float, default=1.0, help="Retry-After of an injected 429, in seconds")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the fault draws and of the engine's answers: same seed, same replies")
    ap.add_argument("--reasoning-tokens", type=int, default=0, metavar="N",
                    help="test aid: report N reasoning tokens per answer, drawn from its budget first, as a "
                         "reasoning model does (no reasoning happens)")
    args = ap.parse_args(argv)
    if not 0 <= args.port <= 65535:
        ap.error(f"--port={args.port} is outside [0, 65535]")
    try:
        config = ServeConfig(latency_ms=args.latency_ms, fail_rate=args.fail_rate, seed=args.seed,
                             faults=tuple(f.strip() for f in args.faults.split(",") if f.strip()), hang_s=args.hang_s,
                             retry_after_s=args.retry_after_s, reasoning_tokens=args.reasoning_tokens)
    except ValueError as exc:
        ap.error(str(exc))

    async def serve() -> None:
        runner, port = await _start(args.host, args.port, config)
        print(f"serving {OFFLINE_LABEL} on http://{args.host}:{port}/v1", flush=True)
        if config.latency_ms or config.fail_rate:
            print(f"latency {config.latency_ms:g} ms; fail rate {config.fail_rate:g} over {','.join(config.faults)}",
                  flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the port is in use, the host is not ours, ...
        reason = exc.strerror or str(exc)
        ap.exit(EXIT_CONFIG, f"{ap.prog}: error: cannot listen on {args.host}:{args.port} ({reason})\n")


if __name__ == "__main__":
    main()
