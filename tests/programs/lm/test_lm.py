"""LM set-up: model strings, keys from the environment only, one LM per endpoint, safe descriptions."""

from __future__ import annotations

import pytest

from programs.lm import OFFLINE_LABEL, ConfigError, build_lms, check_lm_config, describe_lm


def test_offline_is_the_labelled_offline_engine():
    [lm] = build_lms("offline", seed=3, temperature=0.5)
    assert lm.model.startswith("offline/") and lm.cache is False and lm.kwargs["temperature"] == 0.5
    assert describe_lm("offline") == OFFLINE_LABEL


def test_one_lm_per_endpoint_and_placeholder_key_for_local_servers(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    lms = build_lms("openai/served", ["http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"], num_retries=1)
    assert [lm.kwargs["api_base"] for lm in lms] == ["http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"]
    assert all(lm.kwargs["api_key"] == "EMPTY" for lm in lms)  # not a secret: local servers ignore it
    assert all("api_key" not in str(lm.dump_state()) for lm in lms)


def test_hosted_provider_key_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        check_lm_config("anthropic/claude-sonnet")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    [lm] = build_lms("anthropic/claude-sonnet")
    assert "api_key" not in lm.kwargs  # the client reads the environment itself


@pytest.mark.parametrize("kwargs, message", [
    (dict(lm="gpt-4o"), "provider/model"),
    (dict(lm="openai/"), "provider/model"),
    (dict(lm=""), "lm must be"),
    (dict(lm="ollama_chat/llama3.1", temperature=2.5), "temperature=2.5"),
    (dict(lm="ollama_chat/llama3.1", concurrency=0), "concurrency=0"),
    (dict(lm="ollama_chat/llama3.1", timeout=0), "timeout=0"),
    (dict(lm="lm_studio/x"), "--api-base"),
    (dict(lm="openai/x", api_base=["http://a/v1", ""]), "api_base[1]"),
])
def test_bad_lm_settings(kwargs, message):
    with pytest.raises(ConfigError) as err:
        check_lm_config(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_descriptions_hide_credentials():
    text = describe_lm("openai/m", ["https://user:pw@host:8000/v1", "http://b/v1"], temperature=0.2)
    assert text == "openai/m via 2 endpoints (https://user:***@host:8000/v1, http://b/v1), temperature 0.2"
    assert "pw" not in text


# ---------------------------------------------------------------------------------------------------
# EndpointLM: counted retries with back-off, per-endpoint concurrency, safe saved state, pre-flight
# ---------------------------------------------------------------------------------------------------
import copy  # noqa: E402
import json  # noqa: E402
import urllib.request  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import dspy  # noqa: E402

from programs.lm import (  # noqa: E402
    EndpointLM,
    check_endpoints,
    error_kind,
    known_provider,
    stats_delta,
    stats_sum,
)
from programs.lm.server import serve_in_thread  # noqa: E402


def served(**kw):
    url, stop = serve_in_thread(**kw)
    return url, stop


def stats_of(url):
    with urllib.request.urlopen(url + "/stats", timeout=5) as r:
        return json.loads(r.read())


def test_retry_after_is_honoured_and_every_attempt_counted(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    url, stop = served(fail_rate=1.0, faults=["http429"], retry_after_s=0.2)
    try:
        [lm] = build_lms("openai/offline", url, num_retries=2, retry_backoff=5.0, cache=False, timeout=5)
        with pytest.raises(dspy.utils.exceptions.LMRateLimitError):
            lm("hello")
        seen = stats_of(url)
    finally:
        stop()
    # Two back-offs of exactly the server's 0.2 s (not the 5 s exponential default), as counted.
    assert lm.stats.snapshot() == {"calls": 1, "attempts": 3, "retries": 2, "failed": 1, "timeouts_capped": 0,
                                   "errors": {"rate_limited": 3}, "backoff_s": 0.4}
    assert seen["requests"] == 3 and seen["faults"] == {"http429": 3}


@pytest.mark.parametrize("fault, kind", [("http500", "server_error"), ("truncated", "transport"),
                                         ("nonjson", "bad_body"), ("hang", "timeout")])
def test_each_fault_is_a_retryable_kind(fault, kind, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    url, stop = served(fail_rate=1.0, faults=[fault], hang_s=2.0)
    try:
        [lm] = build_lms("openai/offline", url, num_retries=1, retry_backoff=0.01, cache=False, timeout=0.3)
        with pytest.raises(dspy.utils.exceptions.LMError) as err:
            lm("hello")
    finally:
        stop()
    assert error_kind(err.value) == kind
    s = lm.stats.snapshot()
    assert (s["attempts"], s["retries"], s["failed"], s["errors"]) == (2, 1, 1, {kind: 2})


def test_a_timeout_is_retried_once_not_num_retries_times(monkeypatch):
    # Issue 10: a busy server that did not answer in time must not get num_retries more copies of the
    # request queued behind the abandoned one. One retry after a time-out, then the call gives up, counted.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    url, stop = served(fail_rate=1.0, faults=["hang"], hang_s=2.0)
    try:
        [lm] = build_lms("openai/offline", url, num_retries=5, retry_backoff=0.01, cache=False, timeout=0.3)
        with pytest.raises(dspy.utils.exceptions.LMError):
            lm("hello")
        seen = stats_of(url)
    finally:
        stop()
    s = lm.stats.snapshot()
    assert (s["attempts"], s["retries"], s["failed"], s["timeouts_capped"]) == (2, 1, 1, 1)
    assert s["errors"] == {"timeout": 2}
    assert seen["requests"] == 2  # the server saw two requests, not six
    assert lm.copy().timeout_retries == 1 and lm.copy(timeout_retries=0).timeout_retries == 0


def test_a_flaky_server_is_survived_by_retries(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    url, stop = served(fail_rate=0.5, faults=["http500", "truncated", "nonjson"], seed=7)
    try:
        [lm] = build_lms("openai/offline", url, num_retries=8, retry_backoff=0.001, cache=False, timeout=2)
        outs = [lm(f"question {i}") for i in range(12)]
        seen = stats_of(url)
    finally:
        stop()
    s = lm.stats.snapshot()
    assert len(outs) == 12 and s["failed"] == 0 and s["retries"] > 0
    assert s["attempts"] == seen["requests"] == 12 + s["retries"] == 12 + sum(seen["faults"].values())


def test_backoff_doubles_with_jitter_and_is_capped():
    lm = EndpointLM("openai/x", api_base="http://127.0.0.1:9/v1", api_key="k", retry_backoff=0.5, max_backoff=3.0)
    exc = RuntimeError("no hint")
    for attempt, full in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (8, 3.0)]:
        delays = [lm._delay(exc, attempt) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays) and max(delays) - min(delays) > 0
    assert error_kind(ValueError("a bug")) is None  # not retried


def test_concurrency_is_bounded_per_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    url, stop = served(latency_ms=80)
    try:
        [lm] = build_lms("openai/offline", url, concurrency=3, cache=False, timeout=5)
        twin = copy.deepcopy(lm)  # a copy is the same endpoint: it shares the bound
        with ThreadPoolExecutor(12) as ex:
            list(ex.map(lambda i: (lm if i % 2 else twin)(f"q{i}"), range(12)))
        seen = stats_of(url)
    finally:
        stop()
    assert twin.limiter is lm.limiter and lm.stats.take_max() == 3
    assert seen["max_in_flight"] == 3 and seen["requests"] == 12


def test_saved_state_has_no_key_and_is_a_plain_lm(tmp_path):
    lm = EndpointLM("openai/x", api_base="http://127.0.0.1:9/v1", api_key="sk-planted-in-test", num_retries=5)
    state = lm.dump_state()
    assert "sk-planted" not in json.dumps(state) and state["num_retries"] == 5
    assert state["_dspy_lm_class"] == "dspy.clients.lm.LM"
    assert isinstance(dspy.BaseLM.load_state(state), dspy.LM)
    pred = dspy.Predict("question -> answer")
    pred.lm = lm
    pred.save(str(tmp_path / "p.json"))
    assert "sk-planted" not in (tmp_path / "p.json").read_text()
    assert lm.copy(num_retries=1).retries == 1 and lm.copy().stats is lm.stats


def test_preflight_names_the_unreachable_endpoint():
    url, stop = served()
    try:
        check_endpoints([url, url.replace("/v1", "/no/such/path")])  # any HTTP answer counts as reachable
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = f"http://user:pw@127.0.0.1:{s.getsockname()[1]}/v1"
        with pytest.raises(ConfigError) as err:
            check_lm_config("openai/m", [url, dead], probe=True, probe_timeout=2)
    finally:
        stop()
    msg = str(err.value)
    assert msg.startswith("api_base[1]='http://user:***@127.0.0.1:") and "unreachable" in msg
    assert "\n" not in msg and "pw" not in msg


def test_providers_and_retry_settings():
    assert known_provider("openai") and known_provider("ollama_chat") and known_provider("hosted_vllm")
    assert not known_provider("nosuchprovider")
    with pytest.raises(ConfigError, match="unknown provider 'nosuchprovider'"):
        check_lm_config("nosuchprovider/m", "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match=r"retry_backoff=-1 must be"):
        check_lm_config("openai/m", "http://127.0.0.1:9/v1", retry_backoff=-1)


def test_stats_arithmetic():
    a = {"calls": 2, "attempts": 3, "retries": 1, "failed": 0, "errors": {"timeout": 1}, "backoff_s": 0.5}
    b = {"calls": 5, "attempts": 8, "retries": 3, "failed": 1, "errors": {"timeout": 2, "server_error": 2},
         "backoff_s": 1.75}
    d = stats_delta(a, b)
    # (Logs written before `timeouts_capped` existed lack it: it reads as 0.)
    assert d == {"calls": 3, "attempts": 5, "retries": 2, "failed": 1, "timeouts_capped": 0,
                 "errors": {"server_error": 2, "timeout": 1}, "backoff_s": 1.25}
    assert stats_sum([a, d]) == b | {"errors": {"server_error": 2, "timeout": 2}, "timeouts_capped": 0}


def test_metadata_misses_are_remembered():
    import dspy.clients.costs as costs
    import dspy.clients.model_metadata as metadata

    EndpointLM("openai/some-served-model", api_base="http://127.0.0.1:9/v1", api_key="k")
    assert costs.model_info is metadata.model_info and metadata.model_info._memoized_misses
    assert metadata.model_info("openai", "some-served-model") == {}
    hit = metadata.model_info("openai", "gpt-4o-mini")
    hit["mutated"] = True  # each caller still gets its own dict
    assert "mutated" not in metadata.model_info("openai", "gpt-4o-mini")


def test_async_calls_are_bounded_and_counted(monkeypatch):
    import asyncio

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    url, stop = served(latency_ms=50, fail_rate=0.3, faults=["http500"], seed=1)
    try:
        [lm] = build_lms("openai/offline", url, concurrency=2, num_retries=6, retry_backoff=0.01, cache=False)

        async def main():
            return await asyncio.gather(*(lm.acall(f"q{i}") for i in range(8)))

        outs = asyncio.run(main())
        seen = stats_of(url)
    finally:
        stop()
    s = lm.stats.snapshot()
    assert len(outs) == 8 and s["calls"] == 8 and s["failed"] == 0
    assert s["attempts"] == seen["requests"] == 8 + s["retries"] and s["errors"].get("server_error", 0) == s["retries"]
    assert seen["max_in_flight"] <= 2
