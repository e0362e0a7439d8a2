"""``eval.compare --mlflow URI``: one MLflow run per comparison (the optional extra ``[mlflow]``).

The run holds the resolved configuration as parameters (``config.json``'s content: endpoint URLs and the
command line redacted, keys never), a metric per planner × seed (``<planner>/seed<s>/<metric>``, the values
of ``summary.csv``), the table's summary per planner (``<planner>/<metric>`` the mean over seeds,
``<planner>/<metric>_ci95`` the half-width of its 95% Student-t interval, as ``eval.report.aggregate``
computes them), the fallbacks by planner and cause (``fallbacks/<planner>/<cause>``) and, when an LM ran, its
answers and tokens by role (``lm/<role>/...``); the output directory's small files as artifacts (the CSVs,
``report.md``, ``config.json``, ``report.html``, the plots, the printed table); tags naming the backend that
ran and, for the offline engine, that it is NOT a language model.

Everything is logged by the parent process after the comparison, so ``--jobs N`` changes nothing here.
The shared helpers (the run, redaction of every parameter, metric names) are ``programs.tracking``'s.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from eval.compare.config import CompareConfig
from programs.redact import redact
from programs.tracking import backend_tags, log_metrics, log_small_files, metric_key, mlflow_run

__all__ = ["comparison_run", "comparison_metrics", "log_comparison", "SEED_METRICS", "SUMMARY_METRICS"]

#: ``summary.csv`` columns logged per planner × seed.
SEED_METRICS = ("welfare", "pct_oracle_gain", "revenue_per_agent", "mean_hours", "gini", "welfare_sim", "fallbacks")
#: ``eval.report.aggregate`` columns logged per planner (each with its ``_ci95`` half-width).
SUMMARY_METRICS = ("welfare", "pct_oracle_gain", "revenue_per_agent", "mean_hours", "gini")


def comparison_run(uri: str | None, experiment: str, cfg: CompareConfig) -> Any:
    """The comparison's MLflow run (a no-op without ``uri``), opened before the work so a failed or stopped
    comparison is visible as such; parameters and tags are logged on entry."""
    from eval.compare.outputs import report_config

    uses_lm = cfg.lm if _uses_lm(cfg) else None
    return mlflow_run(uri, experiment=experiment, run_name=f"compare-{'-'.join(cfg.planners)}"[:200],
                      params=report_config(cfg), tags={"job": "eval.compare", **backend_tags(uses_lm)})


def _uses_lm(cfg: CompareConfig) -> bool:
    from eval.blackbox import BLACKBOX
    from eval.compare.config import LEARNING

    return any(p in LEARNING for p in cfg.planners) or (cfg.workers == "llm" and any(p in BLACKBOX
                                                                                     for p in cfg.planners))


def comparison_metrics(result: dict[str, Any]) -> dict[str, float]:
    """Every metric of a finished comparison (``run_comparison``'s result), by MLflow name."""
    out: dict[str, float] = {}
    df: pd.DataFrame = result["summary"]
    for row in df.itertuples(index=False):
        for m in SEED_METRICS:
            if m in df.columns:
                out[metric_key(row.planner, f"seed{row.seed}", m)] = getattr(row, m)
    for row in result["aggregate"].to_dict("records"):
        out[metric_key(row["planner"], "n_seeds")] = row["n_seeds"]
        for m in SUMMARY_METRICS:
            out[metric_key(row["planner"], m)] = row[m]
            out[metric_key(row["planner"], m + "_ci95")] = row[m + "_ci"]
    fallbacks = result.get("fallbacks") or {}
    for who, n in fallbacks.items():
        out[metric_key("fallbacks", *who.split(":", 1))] = n
    if result.get("usage"):
        out["fallbacks/total"] = sum(fallbacks.values())
        usage = result["usage"]
        for role, u in usage["by_role"].items():
            for k in ("calls", "prompt_tokens", "completion_tokens", "reasoning_tokens", "reused_prompt_tokens"):
                if u.get(k) is not None:
                    out[metric_key("lm", role, k)] = u[k]
        for k in ("prompt_tokens", "completion_tokens"):
            out[metric_key("lm", "total", k)] = usage["total"][k]
        cost = usage.get("cost") or {}
        if isinstance(cost, dict) and cost.get("usd") is not None:
            out["lm/cost_usd"] = cost["usd"]
    out["elapsed_seconds"] = result["elapsed"]
    return out


def log_comparison(result: dict[str, Any], cfg: CompareConfig) -> dict[str, float]:
    """Log a finished comparison's metrics, table and small output files on the active run; returns the
    metrics logged."""
    import mlflow

    logged = log_metrics(comparison_metrics(result))
    mlflow.log_text(result["table"] + "\n", "table.txt")
    log_small_files(cfg.out)
    tags = {"lm_label": result["lm_label"]} if result.get("lm_label") else {}
    if result.get("offline"):  # also an endpoint that serves the offline engine (programs.serve)
        tags.update(backend_tags(cfg.lm, offline=True))
    mlflow.set_tags({k: redact(str(v)) for k, v in tags.items()})
    return logged
