"""The page of an ``eval.compare`` run (``programs.page``; ``docs/design.md`` §7.1): welfare by tax year per
planner with intervals, the final schedules against Saez, US federal and the oracle, % oracle gain with
intervals, the SWF matrix as a heatmap, paired differences from Saez and the welfare-weight diagnostics,
all read from the CSVs the comparison wrote.

Importing this module registers both kinds of run, so ``page_model`` / ``write_html`` here serve any run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

import programs.simulation.page  # noqa: F401  (registers the simulation page)
from programs.page import (PAGE, PLOTLY_JS, SCHEDULE_AXES, chart, income_top, model_json, model_version, page_model,
                           plotly_js_path, register, render_html, run_kind, step_line, write_html)

__all__ = ["comparison_model", "PAGE", "PLOTLY_JS", "page_model", "model_json", "model_version", "plotly_js_path",
           "render_html", "run_kind", "write_html"]

_COLORS = {
    "llm": "#1f77b4", "compiled": "#17becf", "democratic": "#9467bd", "es": "#8c564b", "random": "#bcbd22",
    "oracle": "#2ca02c", "saez": "#000000", "saez_v1": "#a0522d", "us_federal": "#d62728", "flat": "#ff7f0e",
    "none": "#7f7f7f",
}


@register("comparison", ("config.json", "summary.csv"))
def comparison_model(d: Path) -> dict[str, Any]:
    import pandas as pd

    from eval.report import LEARNING, _order, aggregate, format_table
    from eval.stats import mean_ci
    from programs.lm import describe_lm

    cfg = json.loads((d / "config.json").read_text())
    df = pd.read_csv(d / "summary.csv")
    planners = sorted(df["planner"].unique(), key=_order)
    uses_lm = any(p in LEARNING for p in planners) or (
        cfg.get("workers") == "llm" and any(p in ("es", "random") for p in planners))
    engine = (describe_lm(cfg.get("lm") or "offline", cfg.get("api_base") or None, temperature=cfg.get("temperature"))
              if uses_lm else "no language model (no planner of this run uses one)")
    offline = "not a language model" in engine
    labels = {p: f"{p} (offline engine)" if offline and p in LEARNING else p for p in planners}
    agg = aggregate(df)
    charts: list[dict[str, Any]] = []

    # Welfare by tax year: learning planners' mean ± 95% CI over seeds; one-shot planners as flat lines.
    traj_path = d / "trajectory.csv"
    traj = _csv(traj_path)
    n_years = int(traj["year"].max()) + 1 if traj is not None and len(traj) else 0
    data = []
    for p in planners:
        color = _COLORS.get(p)
        if traj is not None and p in set(traj["planner"]):
            sub = traj[traj["planner"] == p]
            ys, err = [], []
            for y in range(n_years):
                m, h = mean_ci(sub[sub["year"] == y]["welfare"].to_numpy(dtype=float))
                ys.append(m)
                err.append(h)
            data.append({"type": "scatter", "mode": "lines+markers", "name": labels[p], "x": list(range(n_years)),
                         "y": ys, "error_y": {"type": "data", "array": err, "visible": True},
                         "line": {"color": color, "width": 3}})
        else:
            w = float(agg.loc[agg["planner"] == p, "welfare"].iloc[0])
            xs = [0, max(n_years - 1, 1)]
            data.append({"type": "scatter", "mode": "lines", "name": f"{labels[p]} (one-shot)", "x": xs, "y": [w, w],
                         "line": {"color": color, "dash": "dash"}})
    unit = _welfare_unit(cfg.get("swf"))
    charts.append(chart("welfare_by_year", "Welfare per tax year (mean ± 95% CI over seeds; rational workers)",
                         engine, data, {"xaxis": {"title": {"text": "tax year (year 0 runs the initial schedule)"},
                                                  "dtick": 1},
                                        "yaxis": {"title": {"text": f"social welfare ({cfg.get('swf')}) {unit}"}}}))

    # Final schedules (mean rates over seeds), each on its own brackets.
    rate_cols = sorted((c for c in df.columns if c.startswith("rate_") and c.endswith("_pct")),
                       key=lambda c: int(c.split("_")[1]))
    data = []
    for p in planners:
        sub = df[df["planner"] == p]
        cut = [float(x) for x in str(sub["cutoffs"].iloc[0]).split(";")]
        rates = [float(sub[c].mean()) for c in rate_cols[: len(cut)]]
        xs, ys = step_line(cut, rates, income_top(cfg.get("cutoffs") or cut))
        width = 4 if p in ("saez", "us_federal", "oracle") else 2
        data.append({"type": "scatter", "mode": "lines", "name": labels[p], "x": xs, "y": ys,
                     "line": {"shape": "hv", "color": _COLORS.get(p), "width": width,
                              "dash": "dot" if p == "none" else "solid"}})
    charts.append(chart("schedules", "Final schedules against Saez, US federal and the oracle (mean over seeds)",
                         engine, data, SCHEDULE_AXES))

    # % of the oracle's gain with intervals.
    charts.append(chart(
        "oracle_gain", "% of the oracle's welfare gain over no tax (mean ± 95% CI over seeds)", engine,
        [{"type": "bar", "name": "% oracle gain", "x": [labels[p] for p in agg["planner"]],
          "y": agg["pct_oracle_gain"].tolist(),
          "error_y": {"type": "data", "array": agg["pct_oracle_gain_ci"].tolist(), "visible": True},
          "marker": {"color": [_COLORS.get(p, "#444") for p in agg["planner"]]}}],
        {"yaxis": {"title": {"text": "% of the oracle's gain"}}}))

    # The SWF matrix: every planner's final schedule under every SWF (seed means).
    mpath = d / "swf_matrix.csv"
    m = _csv(mpath, dtype={"seed": str})
    if m is not None:
        m = m[m["seed"] == "mean"]
        swfs = list(dict.fromkeys(m["swf"]))
        rows = sorted(m["planner"].unique(), key=_order)
        z = [[_cell(m, p, s) for s in swfs] for p in rows]
        charts.append(chart(
            "swf_matrix", "% oracle gain of each planner's final schedule under every SWF (mean over seeds)", engine,
            [{"type": "heatmap", "name": "% oracle gain", "x": swfs, "y": [labels.get(p, p) for p in rows], "z": z,
              "colorscale": "Viridis", "texttemplate": "%{z:.1f}", "colorbar": {"title": {"text": "%"}}}],
            {"yaxis": {"autorange": "reversed", "automargin": True},
             "xaxis": {"title": {"text": "social welfare function (blank: the oracle gains nothing over no tax)"}}}))

    # Paired differences from Saez (per seed, 95% interval).
    ppath = d / "paired_vs_saez.csv"
    pr = _csv(ppath)
    if pr is not None:
        ys = pr["diff_welfare"].to_numpy(dtype=float)
        charts.append(chart(
            "paired_vs_saez", "Paired difference in welfare from Saez (per seed; 95% interval, paired t-test p)",
            engine,
            [{"type": "bar", "name": "welfare − Saez's", "x": [labels.get(p, p) for p in pr["planner"]],
              "y": ys.tolist(),
              "error_y": {"type": "data", "symmetric": False, "visible": True,
                          "array": (pr["diff_welfare_hi"].to_numpy(dtype=float) - ys).tolist(),
                          "arrayminus": (ys - pr["diff_welfare_lo"].to_numpy(dtype=float)).tolist()},
              "text": [f"p = {p:.3g}" if np.isfinite(p) else "" for p in pr["p_welfare"].to_numpy(dtype=float)],
              "textposition": "outside",
              "marker": {"color": [_COLORS.get(p, "#444") for p in pr["planner"]]}}],
            {"yaxis": {"title": {"text": f"welfare difference {unit}"}}}))

    # Welfare-weight diagnostics per seed, with and without the skill floor.
    wpath = d / "weights.csv"
    w = _csv(wpath)
    if w is not None:
        seeds = [f"seed {s}" for s in w["seed"]]
        series = [("ess_share", "effective sample share"), ("top_share", "top agent's weight share"),
                  ("bottom_1pct_share", "bottom 1%'s weight share")]
        data = []
        for col, name in series:
            data.append({"type": "bar", "name": f"{name} (floor {w['skill_floor'].iloc[0]:g})", "x": seeds,
                         "y": w[col].tolist()})
            raw = w["ess_no_floor"] / w["n"] if col == "ess_share" and "ess_no_floor" in w else w.get(f"{col}_no_floor")
            if raw is not None:
                data.append({"type": "bar", "name": f"{name} (no floor)", "x": seeds, "y": raw.tolist(), "opacity": 0.5})
        charts.append(chart("weights", f"Welfare-weight diagnostics ({cfg.get('swf')}): how concentrated the weights are",
                             engine, data, {"barmode": "group", "yaxis": {"title": {"text": "share"}, "range": [0, 1]}}))

    table = format_table(agg, labels=labels)
    seeds = cfg.get("seeds") or sorted(df["seed"].unique().tolist())
    return {
        "title": f"Comparison: {len(planners)} planners, {cfg.get('agents')} agents, seeds {seeds}",
        "engine": engine, "offline": offline, "status": "finished", "n_steps": None, "charts": charts,
        "tables": [], "text": table,
        "facts": [f"brackets: {cfg.get('brackets')}", f"SWF: {cfg.get('swf')}", f"κ = {cfg.get('kappa'):.4g} ({cfg.get('kappa_name')})" if isinstance(cfg.get("kappa"), (int, float)) else f"κ = {cfg.get('kappa')}",
                  f"workers: {cfg.get('workers')}", f"scenario: {cfg.get('scenario')}"],
    }


def _csv(path: Path, **kw: Any) -> "pd.DataFrame | None":
    """A CSV the comparison wrote, or None when it is absent or has no rows (e.g. no paired differences)."""
    import pandas as pd

    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path, **kw)
    except pd.errors.EmptyDataError:
        return None
    return df if len(df) else None


def _cell(m: Any, planner: str, swf: str) -> float | None:
    v = m[(m["planner"] == planner) & (m["swf"] == swf)]["pct_oracle_gain"]
    return float(v.iloc[0]) if len(v) else None


def _welfare_unit(swf: str | None) -> str:
    from eval.plots import WELFARE_UNITS

    u = WELFARE_UNITS.get(swf or "", "")
    return f"({u.split(':')[0]})" if u else ""
