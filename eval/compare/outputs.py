"""What a comparison writes under ``--out``: the check of the directory before any work, and the CSVs,
``report.md``, ``config.json`` and the plots at the end (written atomically, the previous run's files of the
same settings replaced, none left stale)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eval.blackbox import BLACKBOX
from eval.compare.config import LEARNING, OUTPUT_FILES, CompareConfig
from eval.page import write_html
from eval.report import Run, aggregate, format_table, summary_frame, trajectory_frame, write_report
from programs.cli import check_out_dir
from programs.redact import redact
from programs.simulation.runlog import replace_atomic, write_atomic


def check_output(cfg: CompareConfig, overwrite: bool = False) -> None:
    """Validate ``--out`` before any work (one line, ConfigError): a directory that can be written and holds
    no other run's files. An earlier eval.compare run with the same settings may be replaced (re-running a
    command reproduces its files); anything else needs ``--overwrite``."""
    allowed: tuple[str, ...] = ()
    previous = os.path.join(cfg.out, "config.json")
    if os.path.isfile(previous):
        try:
            with open(previous, encoding="utf-8") as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict) and _same_settings(old, report_config(cfg)):
            allowed = OUTPUT_FILES
    check_out_dir(cfg.out, "--out", overwrite=overwrite, allowed=allowed, create=False)


def _same_settings(old: dict[str, Any], new: dict[str, Any]) -> bool:
    new = json.loads(json.dumps(new, default=str))
    ignore = {"command", "plots"}
    return {k: v for k, v in old.items() if k not in ignore} == {k: v for k, v in new.items() if k not in ignore}


def _with_weights(df: "pd.DataFrame", weights: "pd.DataFrame") -> "pd.DataFrame":
    """summary.csv with each seed's welfare-weight diagnostics (ESS, its share, largest and bottom-1% shares)."""
    cols = {"ess": "weights_ess", "ess_share": "weights_ess_share", "top_share": "weights_top_share",
            "bottom_1pct_share": "weights_bottom_1pct_share"}
    w = weights[["seed", *cols]].rename(columns=cols)
    return df.merge(w, on="seed", how="left")


def _with_best_seen(df: "pd.DataFrame", runs: Sequence[Any]) -> "pd.DataFrame":
    """summary.csv with the black-box planners' best-seen year and its welfare (rational workers); NaN elsewhere."""
    best = {(r.planner, r.seed): (r.extra.get("best_seen_welfare", np.nan), r.extra.get("best_seen_year", np.nan))
            for r in runs if r.planner in BLACKBOX}
    df = df.copy()
    df["best_seen_welfare"] = [best.get((p, s), (np.nan, np.nan))[0] for p, s in zip(df["planner"], df["seed"])]
    df["best_seen_year"] = [best.get((p, s), (np.nan, np.nan))[1] for p, s in zip(df["planner"], df["seed"])]
    return df


def _labels(cfg: CompareConfig, offline: bool) -> dict[str, str]:
    """Display names that say when the LM planners ran on the offline engine (never shown as LLM results)."""
    if not offline:
        return {}
    return {p: f"{p} (offline engine)" for p in LEARNING}


def report_config(cfg: CompareConfig) -> dict[str, Any]:
    """The resolved configuration as `config.json` and the report record it (endpoint URLs redacted)."""
    d = cfg.to_dict()
    d.pop("extra", None)
    d.pop("progress", None)
    d.pop("jobs", None)  # the same files for every --jobs
    d["api_base"] = [redact(b) for b in d.get("api_base") or []]
    d["command"] = cfg.extra.get("command")
    return d


def write_outputs(cfg: CompareConfig, *, runs: list[Run], pops: dict[int, Any], refs: dict[int, tuple[float, float]],
                  matrix: pd.DataFrame, robustness_rows: list[dict[str, Any]], notes: list[str], ctx: Any,
                  lm_label: str | None, learning: Sequence[str], blackbox: Sequence[str], cutoffs: np.ndarray,
                  elapsed: float, log=print) -> dict[str, Any]:
    """Write every output of a finished comparison and print its table; returns what ``run_comparison`` returns."""
    from eval import swf as swf_eval

    os.makedirs(cfg.out, exist_ok=True)
    for name in OUTPUT_FILES:  # the previous run's files (allowed by check_output): none may be left stale
        stale = os.path.join(cfg.out, name)
        if os.path.isfile(stale):
            os.unlink(stale)
    written: list[str] = []

    def save(name: str, write) -> str:
        path = os.path.join(cfg.out, name)
        replace_atomic(Path(path), write)
        written.append(path)
        return path

    labels = _labels(cfg, ctx.offline) if ctx is not None else {}
    df = summary_frame(runs, refs)
    weights = swf_eval.weight_frame(pops, cfg.swf, cfg.skill_floor, cfg.kappa, cutoffs)
    df = _with_weights(df, weights)
    df = _with_best_seen(df, runs)
    save("summary.csv", lambda tmp: df.to_csv(tmp, index=False))
    paired = swf_eval.paired_frame(df)
    robustness = pd.DataFrame(robustness_rows)
    save("weights.csv", lambda tmp: weights.to_csv(tmp, index=False))
    save("swf_matrix.csv", lambda tmp: matrix.to_csv(tmp, index=False))
    save("paired_vs_saez.csv", lambda tmp: paired.to_csv(tmp, index=False))
    save("saez_robustness.csv", lambda tmp: robustness.to_csv(tmp, index=False))
    if learning or blackbox:
        traj = trajectory_frame(runs)
        save("trajectory.csv", lambda tmp: traj.to_csv(tmp, index=False))
    agg = aggregate(df)
    table = format_table(agg, labels=labels)
    paired_text = swf_eval.paired_table(paired, markdown=False, labels=labels) if not paired.empty else ""
    plots: list[str] = []
    if cfg.plots:
        from eval.plots import plot_all
        plots = plot_all(runs, cutoffs, cfg.out, labels=labels, swf=cfg.swf,
                         offline=bool(ctx is not None and ctx.offline))
    if ctx is not None:
        notes += ctx.notes()
    worker_note = (
        "every schedule in the table is scored with rational workers (each agent's exact best response, "
        f"κ = {cfg.kappa:g}, δ = 3.5) on the same population, so the rows are comparable and the oracle is a ceiling"
    )
    if learning:
        who = ("LM workers (`WorkerAgent`, answered by " + (lm_label or cfg.lm) + ")" if cfg.workers == "llm"
               else "rational workers (exact best response)")
        worker_note += (
            f". The learning planners' simulations ran {cfg.years} tax years (numbered 0..{cfg.years - 1}) × "
            f"{cfg.steps_per_year} steps with {who}; "
            "a learning planner's welfare is that of the schedule it set for the final tax year"
            + (", and `welfare_sim` is what the simulation's own workers reached at that year's last step."
               if cfg.workers == "llm" else "."))
    if cfg.preset == "paper" and cfg.skill_floor == 0:
        notes.append("--preset paper: welfare weights without a skill floor (--skill-floor 0), as in the paper; the "
                     "default floors the skill in the weights at the full-time federal minimum wage ($15,080 a year).")
    if cfg.swf == "paper":
        notes.append("SWF `paper` (the reference's Σ u_i / max(z_i, 1) on pre-tax income) is gameable: driving low "
                     "earners to zero hours gives them weight 1 and the whole rebate, so the oracle's welfare dwarfs "
                     "every sensible schedule's and '% oracle gain' is near 0 for the others. It is kept for "
                     "replication; compare the planners by their welfare, or use the default `inverse_skill`.")
    report_path = os.path.join(cfg.out, "report.md")
    write_report(
        report_path, runs=runs, agg=agg, cutoffs=cutoffs, command=cfg.extra.get("command", "python -m eval.compare"),
        config=report_config(cfg), lm_label=lm_label, labels=labels, worker_note=worker_note, notes=notes, plots=plots,
    )
    from eval.blackbox import best_seen_markdown

    swf_eval.insert_sections(report_path, swf_eval.weights_markdown(weights) + best_seen_markdown(runs, labels)
                             + (swf_eval.paired_markdown(paired, labels) if not paired.empty else [])
                             + swf_eval.matrix_markdown(matrix, cfg.swf, labels)
                             + (swf_eval.robustness_markdown(robustness) if not robustness.empty else []))
    written.append(report_path)
    config_path = os.path.join(cfg.out, "config.json")
    write_atomic(Path(config_path), json.dumps(report_config(cfg), indent=2, default=str) + "\n")
    written.append(config_path)
    written += [os.path.join(cfg.out, p) for p in plots]
    written += [str(p) for p in write_html(cfg.out)]  # report.html (eval.page), built from the files above
    log(table)
    if paired_text:
        log("")
        log("Paired difference from Saez (per seed, 95% Student-t CI, paired t-test):")
        log(paired_text)
    log(f"Welfare weights ({cfg.swf}, skill floor {cfg.skill_floor:g}): effective sample size "
        + ", ".join(f"{r.ess:,.0f}" for r in weights.itertuples()) + f" of {cfg.agents} agents (seeds "
        + ", ".join(str(s) for s in weights["seed"]) + ")")
    if lm_label:
        log(f"LM planners ({', '.join(learning)}): {lm_label}")
    if ctx is not None:
        from programs.cli import usage_line

        line = usage_line(ctx.usage_summary())  # by role, a reasoning model's reasoning tokens apart
        if line:
            log(line)
    log(f"wrote {len(written)} files in {cfg.out}/: {', '.join(os.path.basename(w) for w in written)} "
        f"({elapsed:.1f} s)")
    return {"runs": runs, "summary": df, "aggregate": agg, "table": table, "refs": refs, "elapsed": elapsed,
            "written": written, "weights": weights, "swf_matrix": matrix, "paired": paired,
            "saez_robustness": robustness, "populations": pops, "lm_label": lm_label,
            "offline": bool(ctx is not None and ctx.offline),
            "usage": ctx.usage_summary() if ctx is not None else None,
            "fallbacks": ctx.counts()["fallbacks"] if ctx is not None else {}}

