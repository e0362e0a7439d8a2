"""``--mlflow URI``: track a compile the way DSPy users do (optional extra ``[mlflow]``).

DSPy's MLflow integration (``mlflow.dspy.autolog``) traces the compile, its evaluations and, for
optimizers that run trials (MIPROv2's Optuna trials), one child run per trial. This module opens the
parent run and logs, once the compile is done, the held-out scores and their paired interval, the budget
used and the compiled program with its summary as artifacts.

Nothing secret reaches MLflow: parameters are the resolved settings with endpoint URLs redacted
(``programs.redact``, the one redaction), the command line is the redacted one,
the program is saved without LMs (``optimize.compile.clean_program``), and API keys are only ever read
from the environment. The tracking URI itself may carry credentials MLflow needs to connect; it is
redacted everywhere we write it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from programs.errors import ConfigError

__all__ = ["check_mlflow", "tracking", "log_compile"]


def check_mlflow(uri: str | None) -> None:
    """``--mlflow`` needs the extra; one line naming the flag otherwise."""
    if uri is None:
        return
    if not uri.strip():
        raise ConfigError("--mlflow must be a tracking URI such as http://127.0.0.1:5000 or sqlite:///mlflow.db")
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError("--mlflow needs MLflow: pip install -e \".[mlflow]\"") from None


@contextlib.contextmanager
def tracking(uri: str | None, *, experiment: str, run_name: str, params: dict[str, Any]) -> Iterator[Any]:
    """A parent MLflow run with DSPy autologging on (a no-op without ``uri``); yields the run or None."""
    if uri is None:
        yield None
        return
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    mlflow.dspy.autolog(log_compiles=True, log_evals=True, log_traces_from_compile=False, silent=True)
    try:
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            yield run
    finally:
        mlflow.dspy.autolog(disable=True, silent=True)


def log_compile(summary: dict[str, Any], program: Path, summary_path: Path) -> None:
    """The compile's scores, interval, budget used and files, on the active run."""
    import mlflow

    h, b = summary["heldout"], summary["budget"]
    metrics = {"heldout_before": h["before"]["mean"], "heldout_after": h["after"]["mean"],
               "heldout_delta": h["delta_mean"], "lm_calls": b["total_calls"],
               "lm_calls_failed": b.get("failed_calls", 0), "lm_calls_refused": b.get("refused_calls", 0),
               "demos": summary["program"]["demos"]}
    seed = (h.get("paired") or {}).get("per_seed") or {}
    if seed.get("half_width") is not None:
        metrics.update(heldout_delta_ci_low=seed["low"], heldout_delta_ci_high=seed["high"])
    tokens = (summary.get("usage") or {}).get("total") or {}
    for k in ("prompt_tokens", "completion_tokens"):
        if k in tokens:
            metrics[k] = tokens[k]
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
    mlflow.log_text(summary["program"]["instructions"] or "", "program/instructions.txt")
    mlflow.log_artifact(str(program), artifact_path="program")
    mlflow.log_artifact(str(summary_path), artifact_path="program")
