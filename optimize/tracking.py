"""``optimize.planner --mlflow URI``: track a compile, or a tune, the way DSPy users do (extra ``[mlflow]``).

A compile is one run with DSPy's MLflow integration on (``mlflow.dspy.autolog``: the compile, its
evaluations and, for optimizers that run trials, MIPROv2's Optuna trials as child runs); once it is done,
the held-out scores and their paired interval, the budget used and the compiled program with its summary.

A tune (``--tune``) is a parent run for the study and one child run per Optuna trial this process ran, as
it finishes (its knobs as parameters, its end-to-end score, its state; a failed trial too), then the best
trial's knobs and score and the held-out scores on the parent. Optuna's ``MLflowCallback``
(``optuna-integration``) is not used: a study callback never sees a trial that failed (the study stops on
it), it names the experiment after the study and is experimental; ``TrialRuns`` is the few lines needed.

The run, parameter and redaction helpers are ``programs.tracking``'s (shared with ``eval.compare``):
parameters are the resolved settings redacted, the program is saved without LMs
(``optimize.compile.clean_program``), API keys are only ever read from the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from programs.cli import command_line
from programs.redact import redact
from programs.tracking import backend_tags, log_metrics, log_params, metric_key, mlflow_run

__all__ = ["tracking", "run_params", "log_compile", "TrialRuns", "log_tune"]


def tracking(cfg: Any) -> Any:
    """The job's MLflow run (a no-op without ``--mlflow``): ``compile-<optimizer>`` with DSPy's autologging,
    or ``tune-<study>`` without it (the trials are child runs of their own)."""
    a = cfg.args
    name = f"tune-{a.study_name}" if a.tune else f"compile-{a.optimizer}"
    return mlflow_run(a.mlflow, experiment=a.mlflow_experiment, run_name=name, params=run_params(cfg),
                      tags={"job": "optimize.planner " + ("--tune" if a.tune else "compile"),
                            **backend_tags(a.lm)},
                      dspy_autolog=not a.tune)


def run_params(cfg: Any) -> dict[str, Any]:
    """What MLflow records about the job: the resolved settings, endpoint URLs and the command redacted."""
    from programs.lm import describe_lm

    from optimize.args import PROG
    from optimize.run_tune import tune_workers

    a = cfg.args
    common = {"lm": describe_lm(a.lm, a.api_base, temperature=a.temperature),
              "workers": tune_workers(a) if a.tune else cfg.workers,
              "agents": a.agents, "brackets": a.brackets, "swf": a.swf, "seed": a.seed,
              "heldout_seeds": cfg.heldout_seeds, "command": command_line(PROG, getattr(a, "_argv", None))}
    if a.tune:
        return {"mode": "tune", "study_name": a.study_name, "trials": a.trials, "budget": a.budget,
                "storage": a.storage, "program": a.program, "tune_seeds": cfg.tune_seeds, **common}
    return {"optimizer": a.optimizer, "budget": cfg.plan.budget + cfg.eval_calls, "knobs": cfg.plan.knobs,
            "train_seeds": cfg.train_seeds, "val_seeds": cfg.val_seeds, **common}


def _usage_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    tokens = (summary.get("usage") or {}).get("total") or {}
    return {k: tokens[k] for k in ("prompt_tokens", "completion_tokens") if k in tokens}


def log_compile(summary: dict[str, Any], program: Path, summary_path: Path) -> None:
    """The compile's scores, interval, budget used and files, on the active run."""
    import mlflow

    h, b = summary["heldout"], summary["budget"]
    metrics = {"heldout_before": h["before"]["mean"], "heldout_after": h["after"]["mean"],
               "heldout_delta": h["delta_mean"], "lm_calls": b["total_calls"],
               "lm_calls_failed": b.get("failed_calls", 0), "lm_calls_refused": b.get("refused_calls", 0),
               "demos": summary["program"]["demos"], **_usage_metrics(summary)}
    seed = (h.get("paired") or {}).get("per_seed") or {}
    if seed.get("half_width") is not None:
        metrics.update(heldout_delta_ci_low=seed["low"], heldout_delta_ci_high=seed["high"])
    log_metrics(metrics)
    aborted = (summary.get("failures") or {}).get("compile_aborted")
    if aborted:  # the optimizer stopped on an LM failure; the uncompiled program was kept
        mlflow.set_tag("compile_aborted", redact(str(aborted))[:5000])
    mlflow.log_text(summary["program"]["instructions"] or "", "program/instructions.txt")
    mlflow.log_artifact(str(program), artifact_path="program")
    mlflow.log_artifact(str(summary_path), artifact_path="program")


class TrialRuns:
    """An Optuna study callback: each trial a child MLflow run of the active (parent) run.

    ``run_study`` calls it for every trial this process finished and, when the study stops on a failed
    trial, for that trial too (Optuna's callbacks never see it). Only the trials this process ran are
    logged, so processes sharing a ``--storage`` study each log their own.
    """

    def __init__(self) -> None:
        import mlflow

        self.parent = mlflow.active_run()
        if self.parent is None:
            raise RuntimeError("TrialRuns needs an active MLflow run (the study's parent run)")
        self.logged: list[int] = []

    def __call__(self, study: Any, trial: Any) -> None:
        import mlflow

        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True,
                              parent_run_id=self.parent.info.run_id):
            mlflow.set_tags({"optuna.study": study.study_name, "optuna.trial": str(trial.number),
                             "optuna.state": trial.state.name})
            log_params({k: round(v, 6) if isinstance(v, float) else v for k, v in trial.params.items()})
            metrics: dict[str, Any] = {"trial_number": trial.number}
            if trial.value is not None:
                metrics["score"] = trial.value
            for seed, score in (trial.user_attrs.get("per_seed") or {}).items():
                metrics[metric_key("score", f"seed{seed}")] = score
            if trial.duration is not None:
                metrics["seconds"] = trial.duration.total_seconds()
            log_metrics(metrics)
        self.logged.append(trial.number)


def log_tune(summary: dict[str, Any], program: Path, summary_path: Path) -> None:
    """The study's best trial (its knobs as ``best.<knob>`` parameters, its score), the trials by state, the
    held-out scores and the LM calls, and the saved planner, on the parent run."""
    import mlflow

    info, h = summary["study"], summary["heldout"]
    best = info.get("best") or {}
    log_params({"best": {"trial": best.get("number"), **(best.get("knobs") or {})}})
    calls = (summary.get("budget") or {}).get("calls") or {}
    metrics: dict[str, Any] = {"best_score": best.get("score"), "trials": info["trials"],
                               "heldout_before": h["before"]["mean"], "heldout_after": h["after"]["mean"],
                               "heldout_delta": h["delta_mean"], **_usage_metrics(summary)}
    metrics.update({metric_key("trials", state.lower()): n for state, n in info["by_state"].items()})
    if isinstance(calls, dict) and "total" in calls:
        metrics["lm_calls"] = calls["total"]
    log_metrics(metrics)
    mlflow.log_artifact(str(program), artifact_path="program")
    mlflow.log_artifact(str(summary_path), artifact_path="program")
