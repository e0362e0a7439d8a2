"""Credentials out of everything ``optimize.planner`` writes or prints: the command line and storage URLs.

Endpoint URLs go through ``programs.lm.endpoint.redact_url`` (its one home); this module adds the Optuna
storage URL (a SQLAlchemy URL whose password is masked) and the command line as run.
"""

from __future__ import annotations

from collections.abc import Sequence

from programs.lm.endpoint import redact_url

__all__ = ["redact_storage", "redacted_argv", "URL_FLAGS"]

#: Flags whose value is a URL that may carry credentials.
URL_FLAGS = ("--storage", "--api-base", "--reflection-api-base", "--prompt-api-base", "--mlflow")


def redact_storage(url: str) -> str:
    """An RDB URL with its password masked (``postgresql://bob:***@db/optuna``)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<storage url>"


def redacted_argv(argv: Sequence[str]) -> list[str]:
    """The command line as run, with storage and endpoint credentials hidden."""
    out, skip = [], False
    argv = list(argv)
    for i, tok in enumerate(argv):
        if skip:
            skip = False
            continue
        flag, eq, val = tok.partition("=")
        if flag in URL_FLAGS:
            if not eq:
                val = argv[i + 1] if i + 1 < len(argv) else ""
                skip = True
            val = redact_storage(val) if flag == "--storage" else redact_url(val)
            out.append(f"{flag}={val}")
        else:
            out.append(tok)
    return out
