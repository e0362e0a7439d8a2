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
    text = describe_lm("openai/m", ["https://user:pw@host:8000/v1?key=abc", "http://b/v1"], temperature=0.2)
    assert text == "openai/m via 2 endpoints (https://host:8000/v1, http://b/v1), temperature 0.2"
    assert "pw" not in text and "abc" not in text
