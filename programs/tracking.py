"""``--mlflow URI``: what every tracked job shares (the optional extra ``[mlflow]``).

``optimize.planner`` (``optimize/tracking.py``) and ``eval.compare`` (``eval/compare/tracking.py``) log one
MLflow run per job through these helpers: the flags, the check before any work (the extra is installed,
the URI names a store MLflow can open and, for a server, answers), the run itself, and the one way a
parameter, a tag, a metric name and an artifact are written.

Nothing secret reaches MLflow: every parameter and tag value passes through ``programs.redact.redact``
(endpoint URLs, database URLs, a quoted ``Authorization`` header), API keys are only ever read from the
environment and never logged, and a URI's own credentials (MLflow needs them to connect) appear redacted in
every message we print.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from programs.errors import ConfigError
from programs.redact import redact

__all__ = ["add_mlflow_args", "check_mlflow", "mlflow_run", "log_params", "log_metrics", "log_small_files",
           "metric_key", "backend_tags", "SMALL_FILE_BYTES", "OFFLINE_TAG"]

#: Output files up to this size are logged as artifacts (plots, CSVs, reports); larger ones are left out.
SMALL_FILE_BYTES = 1_000_000

#: The tag every run on the offline engine carries, so no MLflow view presents it as an LM result.
OFFLINE_TAG = "the offline engine: a deterministic stand-in, NOT a language model"

# MLflow's metric and parameter names: letters, digits, _ - . / and spaces (colons only in newer servers).
_NAME = re.compile(r"[^\w\-./ ]")

_URI_HELP = "a tracking URI such as http://127.0.0.1:5000 or sqlite:///mlflow.db"


def add_mlflow_args(group: argparse.ArgumentParser | argparse._ArgumentGroup, *, what: str,
                    experiment: str) -> None:
    """``--mlflow URI`` and ``--mlflow-experiment NAME``, the same on every tracked CLI."""
    group.add_argument("--mlflow", default=None, metavar="URI",
                       help=f"track {what} in MLflow ({_URI_HELP}; needs the [mlflow] extra: "
                            "pip install -e \".[mlflow]\")")
    group.add_argument("--mlflow-experiment", default=experiment, metavar="NAME",
                       help=f"MLflow experiment of --mlflow (default: {experiment})")


def check_mlflow(uri: str | None, *, timeout: float = 5.0) -> None:
    """Before any work: the extra is installed and ``uri`` names a tracking store that answers.

    One ``ConfigError`` line otherwise, naming ``--mlflow`` (the URI redacted). A server is asked once for
    one experiment, without MLflow's retries (a wrong port fails in about a second, not minutes); a
    database or file store is opened, which creates it as MLflow would on the first run.
    """
    if uri is None:
        return
    if not uri.strip():
        raise ConfigError(f"--mlflow is empty; give {_URI_HELP}")
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError("--mlflow needs the [mlflow] extra: pip install -e \".[mlflow]\"") from None
    from mlflow.tracking import MlflowClient

    shown = redact(uri)
    # Read by MLflow at each request: one attempt, a short wait, for this probe only.
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT=str(int(max(1, timeout))))
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # MlflowException, connection errors, a bad scheme: all one line
        reason = redact(" ".join(str(exc).split()))
        if len(reason) > 200:
            reason = reason[:200] + "..."
        raise ConfigError(f"--mlflow={shown!r}: cannot open the tracking store ({type(exc).__name__}: "
                          f"{reason})") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def mlflow_run(uri: str | None, *, experiment: str, run_name: str, params: Mapping[str, Any] | None = None,
               tags: Mapping[str, Any] | None = None, dspy_autolog: bool = False) -> Iterator[Any]:
    """One MLflow run (a no-op yielding None without ``uri``), its parameters and tags logged first.

    ``dspy_autolog`` turns on DSPy's MLflow integration for the run (compiles, their evaluations and
    trials; not the traces of every program call) and off again after it. A run left by an exception is
    marked FAILED by MLflow, an interrupted one KILLED.
    """
    if uri is None:
        yield None
        return
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    if dspy_autolog:
        mlflow.dspy.autolog(log_compiles=True, log_evals=True, log_traces_from_compile=False, silent=True)
    try:
        with mlflow.start_run(run_name=run_name) as run:
            log_params(params or {})
            if tags:
                mlflow.set_tags({k: redact(str(v)) for k, v in tags.items()})
            try:
                yield run
            except KeyboardInterrupt:
                mlflow.end_run(status="KILLED")
                raise
    finally:
        if dspy_autolog:
            mlflow.dspy.autolog(disable=True, silent=True)


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def log_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Log ``params`` on the active run, nested mappings flattened (``a.b``), every value redacted and cut
    to MLflow's limit; returns what was logged."""
    import mlflow
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    flat: dict[str, Any] = {}
    for k, v in params.items():
        _flat(str(k), v, flat)
    logged = {metric_key(k): redact(str(v))[:MAX_PARAM_VAL_LENGTH] for k, v in flat.items()}
    if logged:
        mlflow.log_params(logged)
    return logged


def metric_key(*parts: Any) -> str:
    """A metric or parameter name from ``parts`` joined by ``/``, characters MLflow refuses made ``_``."""
    return "/".join(_NAME.sub("_", str(p)) for p in parts if str(p))


def log_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Log the finite numbers of ``metrics`` on the active run (NaN, e.g. a one-seed interval, is left out);
    returns what was logged."""
    import mlflow

    logged = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
    if logged:
        mlflow.log_metrics(logged)
    return logged


def log_small_files(directory: str | os.PathLike, names: list[str] | None = None, *,
                    artifact_path: str | None = None, max_bytes: int = SMALL_FILE_BYTES) -> list[str]:
    """Log the files of ``directory`` (or only ``names``) up to ``max_bytes`` each as artifacts; returns the
    names logged."""
    import mlflow

    root = Path(directory)
    paths = [root / n for n in names] if names is not None else sorted(root.iterdir())
    logged = []
    for p in paths:
        if p.is_file() and p.stat().st_size <= max_bytes:
            mlflow.log_artifact(str(p), artifact_path=artifact_path)
            logged.append(p.name)
    return logged


def backend_tags(lm: str | None, *, offline: bool | None = None) -> dict[str, str]:
    """Tags naming the LM backend that ran (``offline``, ``local``, ``endpoint``, or ``none``); a run on the
    offline engine (``offline`` also covers endpoints that serve it) says it is not a language model."""
    if lm is None:
        return {"backend": "none", "language_model": "none: no LM was called"}
    from programs.lm.backends import backend_for

    name = backend_for(lm.strip()).name
    offline = name == "offline" if offline is None else offline
    tags = {"backend": name, "lm": lm}
    if offline:
        tags["language_model"] = "NO: " + OFFLINE_TAG
        tags["mlflow.note.content"] = ("Ran on " + OFFLINE_TAG + ". Its figures are not language-model results.")
    else:
        tags["language_model"] = "yes"
    return tags
