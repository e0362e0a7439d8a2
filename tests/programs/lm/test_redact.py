"""One redaction for every output, and endpoint URLs that carry a gateway's credentials."""

from __future__ import annotations

import base64
import logging

import pytest

from programs.lm import ConfigError, EndpointLM, check_lm_config
from programs.lm.endpoint import split_endpoint
from programs.redact import redact, redact_logs


@pytest.mark.parametrize("text, expected", [
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("http://bob:hunter2@gw:8000/v1", "http://bob:***@gw:8000/v1"),
    ("https://sk-abc@gw/v1", "https://***@gw/v1"),
    ("http://gw/v1?token=T0K&region=eu", "http://gw/v1?token=***&region=***"),
    ("postgresql://bob:hunter2@db.example/optuna", "postgresql://bob:***@db.example/optuna"),
    ("sqlite:///runs/study.db", "sqlite:///runs/study.db"),
    ("--api-base 'http://u:pw@h:1/v1?k=x' --agents 4", "--api-base 'http://u:***@h:1/v1?k=***' --agents 4"),
    ('{"api_base": ["http://u:pw@h/v1"]}', '{"api_base": ["http://u:***@h/v1"]}'),
    ("Authorization: Basic dXNlcjpQVw==", "Authorization: Basic ***"),
    ("sent Bearer sk-1234567890abcdef to", "sent Bearer *** to"),
    ("a basic income of $5,000", "a basic income of $5,000"),  # English is left alone
])
def test_redact_hides_every_form_of_credential(text, expected):
    assert redact(text) == expected
    assert redact(redact(text)) == redact(text)  # idempotent: outputs may pass through twice


def test_logs_are_redacted_whatever_the_logger(caplog):
    redact_logs()
    redact_logs()  # idempotent
    with caplog.at_level(logging.WARNING):
        logging.getLogger("some.library").warning("POST %s failed", "http://u:pw@h/v1?token=T0K")
    assert caplog.records[-1].getMessage() == "POST http://u:***@h/v1?token=*** failed"


def test_user_info_becomes_the_requests_authorization():
    base, headers, query = split_endpoint("http://gw%40corp:p%3Ass@127.0.0.1:8000/v1")
    assert base == "http://127.0.0.1:8000/v1" and query == {}
    assert headers == {"Authorization": "Basic " + base64.b64encode(b"gw@corp:p:ss").decode()}
    lm = EndpointLM("openai/m", api_base="http://u:pw@127.0.0.1:8000/v1", api_key="EMPTY")
    assert lm.kwargs["api_base"] == "http://127.0.0.1:8000/v1"
    assert lm.kwargs["extra_headers"]["Authorization"].startswith("Basic ")
    assert lm.endpoint == "http://127.0.0.1:8000/v1"
    state = lm.dump_state()  # a saved program keeps no credential
    assert "extra_headers" not in state and "api_key" not in state and "pw" not in str(state)
    assert "extra_headers" not in EndpointLM("openai/m", api_base="http://127.0.0.1:8000/v1").kwargs


@pytest.mark.parametrize("url, message", [
    ("http://127.0.0.1:8000/v1?token=T0K", "api_base[0]='http://127.0.0.1:8000/v1?token=***' carries a query"),
    ("http://127.0.0.1:port/v1", "is not a valid URL"),
])
def test_endpoint_urls_the_clients_cannot_use_are_refused_in_one_line(url, message):
    with pytest.raises(ConfigError) as err:
        check_lm_config("openai/m", url)
    assert message in str(err.value) and "\n" not in str(err.value) and "T0K" not in str(err.value)
