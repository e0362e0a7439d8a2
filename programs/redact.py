"""The one redaction: every output (files, printed lines, logs; later MLflow) passes through ``redact``.

Gateways and proxies carry credentials in the endpoint URL itself, as user-info
(``http://user:PW@host/v1``) or in the query (``...?token=TOK``); a database URL (``--storage``) carries a
password the same way; an error text may quote an ``Authorization`` header. ``redact`` hides all of them
wherever they occur in a text (a URL alone, a command line, a log line, a JSON document) and keeps the
rest readable: the scheme, host, port and path, the user name before a password, the query's keys.

The requests themselves keep the secrets (``programs.lm.endpoint.split_endpoint`` turns a URL's
credentials into the request's ``Authorization`` and keeps its query); only what we write or print is
redacted.
"""

from __future__ import annotations

import logging
import re

__all__ = ["redact", "redact_logs", "MASK"]

#: What a secret is replaced by.
MASK = "***"

# scheme://authority[path][?query][#fragment], stopping at whitespace and the quotes/brackets around a URL.
_URL = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<authority>[^\s/?#'\"<>`]*)"
                  r"(?P<path>[^\s?#'\"<>`]*)(?:\?(?P<query>[^\s#'\"<>`]*))?(?:#(?P<fragment>[^\s'\"<>`]*))?")
# An HTTP credential quoted in a text (an error echoing a header): "Authorization: <scheme> <credential>"
# or a bare "Bearer <token>" ("Basic" alone is an English word, so only after "Authorization").
_AUTH = re.compile(r"(?i:(?P<head>\bauthorization[\"']?\s*[:=]\s*[\"']?)(?P<kind>(?:bearer|basic)\s+)?)"
                   r"(?P<cred>[^\s\"',;}]+)|(?P<bearer>\bBearer\s+)[A-Za-z0-9._~+/=\-]{8,}")


def _url(m: re.Match[str]) -> str:
    authority = m["authority"]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        # "user:password@" keeps the user (it helps a reader); a lone "token@" is the secret itself.
        authority = (f"{user}:{MASK}" if colon else MASK) + "@" + host
    out = m["scheme"] + authority + m["path"]
    if m["query"] is not None:
        # Every value: a query cannot say which of its parameters is the secret.
        out += "?" + "&".join(f"{k}={MASK}" if eq else (MASK if k else "")
                              for k, eq, _ in (p.partition("=") for p in m["query"].split("&")))
    if m["fragment"] is not None:
        out += "#" + MASK
    return out


def redact(text: str) -> str:
    """``text`` with the secrets of every URL in it hidden, and any quoted ``Authorization`` credential.

    >>> redact("--api-base http://bob:hunter2@gw:8000/v1?token=T0K&x=1")
    '--api-base http://bob:***@gw:8000/v1?token=***&x=***'
    >>> redact("https://sk-abc@gw/v1")
    'https://***@gw/v1'
    """
    if "://" not in text and not _AUTH.search(text):
        return text
    return _AUTH.sub(_auth, _URL.sub(_url, text))


def _auth(m: re.Match[str]) -> str:
    if m["bearer"]:
        return m["bearer"] + MASK
    return m["head"] + (m["kind"] or "") + MASK


_installed = False


def redact_logs() -> None:
    """Redact every log record from now on, whatever logger or handler emits it (idempotent).

    Installed as the log-record factory, so it also covers handlers libraries add later (LiteLLM, httpx);
    only records a logger lets through are formatted, so quiet loggers cost nothing.
    """
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:  # a malformed record: let logging report it as it would
            return record
        clean = redact(text)
        if clean != text:
            record.msg, record.args = clean, ()
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
