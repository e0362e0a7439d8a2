"""``report.html``: one interactive page of a run, built from the files the run wrote (``docs/design.md`` §7.1).

One builder serves every consumer: ``eval.compare`` and ``programs.simulate`` call :func:`write_html` when
they finish, ``python -m eval.view RUN_DIR --html`` calls it on any existing run, and the live viewer
(``eval.view``) serves :func:`page_model` as JSON for the page to redraw itself as ``steps.jsonl`` grows.
The page model is plain JSON: a list of Plotly figures (data + layout) and tables, so the browser only draws.

Plotly's JavaScript comes from the ``plotly`` Python package and is written beside the page
(``plotly.min.js``): the page opens offline from the file, with no CDN.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from programs.errors import ConfigError

__all__ = ["PAGE", "PLOTLY_JS", "run_kind", "page_model", "render_html", "write_html", "plotly_js_path",
           "model_version"]

#: The page's file name, beside ``report.md`` / ``summary.json``.
PAGE = "report.html"
#: Plotly's bundled JavaScript, written beside the page.
PLOTLY_JS = "plotly.min.js"

#: Files whose change means the page must be rebuilt (the live view's cache key).
_WATCHED = ("config.json", "steps.jsonl", "summary.json", "summary.csv", "trajectory.csv", "weights.csv",
            "swf_matrix.csv", "paired_vs_saez.csv")

_COLORS = {
    "llm": "#1f77b4", "compiled": "#17becf", "democratic": "#9467bd", "es": "#8c564b", "random": "#bcbd22",
    "oracle": "#2ca02c", "saez": "#000000", "saez_v1": "#a0522d", "us_federal": "#d62728", "flat": "#ff7f0e",
    "none": "#7f7f7f",
}


# ------------------------------------------------------------------------------------------------
# which run
# ------------------------------------------------------------------------------------------------
def run_kind(run_dir: str | Path) -> str:
    """``"simulation"`` (``programs.simulate``: config.json + steps.jsonl) or ``"comparison"``
    (``eval.compare``: config.json + summary.csv); ``ConfigError`` naming the directory otherwise."""
    d = Path(run_dir)
    if not d.is_dir():
        raise ConfigError(f"run_dir={str(d)!r} is not a directory; give the --out of a programs.simulate or "
                          "eval.compare run")
    if (d / "config.json").is_file():
        if (d / "steps.jsonl").is_file():
            return "simulation"
        if (d / "summary.csv").is_file():
            return "comparison"
    raise ConfigError(f"run_dir={str(d)!r} is not a run: it needs config.json with steps.jsonl (programs.simulate) "
                      "or with summary.csv (eval.compare)")


def model_version(run_dir: str | Path) -> str:
    """A short digest of the watched files' sizes and times: it changes when the run writes anything."""
    d = Path(run_dir)
    parts = []
    for name in _WATCHED:
        p = d / name
        if p.is_file():
            st = p.stat()
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def page_model(run_dir: str | Path) -> dict[str, Any]:
    """The page of the run in ``run_dir`` as JSON-ready data: title, engine, charts, tables."""
    d = Path(run_dir)
    kind = run_kind(d)
    version = model_version(d)
    model = _simulation_model(d) if kind == "simulation" else _comparison_model(d)
    model.update(kind=kind, version=version, run_dir=str(d))
    return _clean(model)


# ------------------------------------------------------------------------------------------------
# charts
# ------------------------------------------------------------------------------------------------
def _chart(cid: str, title: str, engine: str, data: list[dict[str, Any]], layout: dict[str, Any] | None = None,
           *, slider: dict[str, Any] | None = None, note: str = "") -> dict[str, Any]:
    """One figure; its title always says which engine answered (never an offline result passed as an LLM's)."""
    lay = {"title": {"text": f"{title}<br><sup>answered by: {engine}{' · ' + note if note else ''}</sup>"},
           "margin": {"t": 70, "l": 70, "r": 20, "b": 60}, "legend": {"font": {"size": 10}}, "height": 420}
    lay.update(layout or {})
    return {"id": cid, "title": title, "data": data, "layout": lay, "slider": slider}


def _step_line(cutoffs: Sequence[float], rates_pct: Sequence[float], top: float) -> tuple[list[float], list[float]]:
    """x (thousand $) and y (%) of a marginal-rate step function up to ``top`` dollars."""
    xs = [float(c) / 1000.0 for c in cutoffs] + [top / 1000.0]
    ys = [float(r) for r in rates_pct] + [float(rates_pct[-1])]
    return xs, ys


def _top(cutoffs: Sequence[float]) -> float:
    return max(float(cutoffs[-1]) * 1.6, 700_000.0)


_SCHEDULE_AXES = {"xaxis": {"title": {"text": "pre-tax income (thousand $ / year)"}},
                  "yaxis": {"title": {"text": "marginal tax rate (%)"}, "range": [-2, 102]}}


# ------------------------------------------------------------------------------------------------
# a simulation (programs.simulate)
# ------------------------------------------------------------------------------------------------
def _simulation_model(d: Path) -> dict[str, Any]:
    from economy import Population, best_response, outcome, resolve_kappa
    from economy.constants import MAX_HOURS
    from programs.simulation import load_config
    from programs.simulation.records import merge_counts
    from programs.simulation.runlog import read_steps

    doc = json.loads((d / "config.json").read_text())
    if not isinstance(doc.get("config"), dict):
        raise ConfigError(f"run_dir={str(d)!r}: config.json was not written by programs.simulate")
    cfg = load_config(**doc["config"])
    engine = str(doc.get("lm") or "unknown engine")
    switches = doc.get("lm_switches") or []
    note = "; ".join(f"LM switched at step {s.get('at_step')}" for s in switches)
    records = read_steps(d / "steps.jsonl")  # read only: a line being written is ignored, never cut
    summary = json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file() else None
    pop = Population.sample(cfg.agents, seed=cfg.seed, stratified=cfg.stratified, utility_mix=cfg.utility_mix)
    skill = np.asarray(pop.skill, dtype=np.float64)
    kappa = resolve_kappa(cfg.kappa)
    base = cfg.initial_tax_schedule()
    cutoffs = base.cutoffs.tolist()
    top = _top(cutoffs)
    grid = None if cfg.hours_grid is None else np.arange(0.0, MAX_HOURS + 1e-9, cfg.hours_grid)
    order = np.argsort(skill, kind="stable")

    steps: list[int] = []
    welfare, revenue, gini = [], [], []
    hours_traces: list[dict[str, Any]] = []
    by_year_rates: dict[int, list[float]] = {}
    by_year_income: dict[int, np.ndarray] = {}
    fallbacks: list[dict[str, int]] = []
    usage: list[dict[str, int]] = []
    elections: list[tuple[int, dict[str, Any]]] = []
    br_cache: dict[tuple[float, ...], np.ndarray] = {}
    for rec in records:
        t, year = int(rec["t"]), int(rec["year"])
        rates = [float(r) for r in rec["rates"]]
        sched = base.with_rates(rates)
        hours = np.asarray(rec["hours"], dtype=np.float64)
        out = outcome(pop, sched, hours, cfg.swf, kappa=kappa, skill_floor=cfg.skill_floor)
        key = tuple(rates)
        if key not in br_cache:  # one best response per schedule (a tax year), as the loop caches it
            br_cache[key] = best_response(skill, sched, kappa=kappa, grid=grid)
        br = br_cache[key]
        steps.append(t)
        welfare.append(rec.get("welfare"))
        revenue.append(rec.get("revenue"))
        gini.append(float(out.gini))
        by_year_rates[year] = [100.0 * r for r in rates]
        by_year_income[year] = np.asarray(out.income)
        hours_traces += [
            {"type": "scatter", "mode": "markers", "name": f"hours chosen (step {t})", "meta": {"step": t},
             "x": skill.tolist(), "y": hours.tolist(), "marker": {"size": 7, "color": "#1f77b4"}},
            {"type": "scatter", "mode": "lines+markers", "name": f"exact best response (step {t})",
             "meta": {"step": t}, "x": skill[order].tolist(), "y": br[order].tolist(),
             "line": {"color": "#2ca02c", "dash": "dash"}, "marker": {"size": 4, "color": "#2ca02c"}},
        ]
        ev = rec.get("event") or {}
        fallbacks.append(merge_counts(rec.get("fallbacks"), ev.get("fallbacks"),
                                      (rec.get("year_end") or {}).get("fallbacks")))
        usage.append({role: int(u.get("prompt_tokens", 0)) + int(u.get("completion_tokens", 0))
                      for role, u in (rec.get("usage") or {}).items()})
        if ev.get("election"):
            elections.append((year, ev["election"]))

    years = sorted(by_year_rates)
    charts: list[dict[str, Any]] = []
    # Whole steps only, about 20 ticks at most.
    step_axis = {"title": {"text": "step (t, from 0)"}, "tick0": 0, "dtick": max(1, math.ceil(len(steps) / 20))}
    # The schedule in force each tax year, against the year-0 schedule.
    x0, y0 = _step_line(cutoffs, [100.0 * r for r in base.rates], top)
    sched_data = [{"type": "scatter", "mode": "lines", "name": "year-0 schedule", "x": x0, "y": y0,
                   "line": {"shape": "hv", "color": "#7f7f7f", "dash": "dot"}}]
    for y in years:
        xs, ys = _step_line(cutoffs, by_year_rates[y], top)
        sched_data.append({"type": "scatter", "mode": "lines", "name": f"tax year {y}", "meta": {"year": y},
                           "x": xs, "y": ys, "line": {"shape": "hv", "width": 3, "color": "#1f77b4"}})
    charts.append(_chart("schedule", "Tax schedule per tax year (slider: tax year, counted from 0)", engine,
                         sched_data, _SCHEDULE_AXES, slider=_slider("year", "tax year", years), note=note))
    charts.append(_chart(
        "hours", "Weekly hours against skill per step, with each agent's exact best response", engine, hours_traces,
        {"xaxis": {"title": {"text": "skill ($ / year per weekly hour)"}, "type": "log"},
         "yaxis": {"title": {"text": "weekly hours"}, "range": [-2, MAX_HOURS + 2]}},
        slider=_slider("step", "step", steps), note=note))
    upper = cutoffs[1:] + [math.inf]
    names = [f"${lo / 1000:,.0f}k–" + ("" if math.isinf(hi) else f"${hi / 1000:,.0f}k") for lo, hi in zip(cutoffs, upper)]
    inc_data = []
    for y in years:
        j = np.searchsorted(np.asarray(cutoffs), np.maximum(by_year_income[y], 0.0), side="right") - 1
        share = 100.0 * np.bincount(j, minlength=len(cutoffs))[: len(cutoffs)] / max(1, j.size)
        inc_data.append({"type": "bar", "name": f"tax year {y} (last step logged)", "meta": {"year": y},
                         "x": names, "y": share.tolist(), "marker": {"color": "#1f77b4"}})
    charts.append(_chart("income", "Agents by pre-tax income bracket (slider: tax year)", engine, inc_data,
                         {"xaxis": {"title": {"text": "pre-tax income bracket"}},
                          "yaxis": {"title": {"text": "agents (%)"}, "range": [0, 100]}},
                         slider=_slider("year", "tax year", years), note=note))
    charts.append(_chart(
        "per_step", "Welfare, revenue and Gini per step", engine,
        [{"type": "scatter", "mode": "lines+markers", "name": f"welfare ({cfg.swf})", "x": steps, "y": welfare},
         {"type": "scatter", "mode": "lines+markers", "name": "revenue ($ / year)", "x": steps, "y": revenue,
          "yaxis": "y2"},
         {"type": "scatter", "mode": "lines+markers", "name": "Gini of consumption", "x": steps, "y": gini,
          "yaxis": "y3"}],
        {"height": 560, "xaxis": {**step_axis, "anchor": "y3"},
         "yaxis": {"domain": [0.7, 1.0], "title": {"text": "welfare"}},
         "yaxis2": {"domain": [0.37, 0.63], "title": {"text": "revenue"}},
         "yaxis3": {"domain": [0.0, 0.3], "title": {"text": "Gini"}}}, note=note))
    tables: list[dict[str, Any]] = []
    if elections:
        cands = sorted({p["candidate"] for _, e in elections for p in e.get("platforms", [])})
        vote_data = []
        for c in cands:
            xs, ys, text = [], [], []
            for y, e in elections:
                tally = (e.get("rounds") or [{}])[0]
                xs.append(f"year {y}")
                ys.append(int(tally.get(c, 0)))
                text.append("winner" if e.get("winner") == c else "")
            vote_data.append({"type": "bar", "name": c, "x": xs, "y": ys, "text": text, "textposition": "outside"})
        charts.append(_chart("elections", "Elections: first-round votes per candidate (the winner is marked)",
                             engine, vote_data, {"barmode": "group", "yaxis": {"title": {"text": "votes"}}},
                             note=note))
        rows = []
        for y, e in elections:
            tally = (e.get("rounds") or [{}])[0]
            for p in e.get("platforms", []):
                rows.append([y, p["candidate"], ", ".join(f"{r:g}" for r in p.get("rates_percent", [])),
                             int(tally.get(p["candidate"], 0)), "✓" if e.get("winner") == p["candidate"] else "",
                             p.get("pitch", "")])
        tables.append({"id": "platforms", "title": f"Election platforms (marginal rates, %; {elections[0][1].get('method', '')} voting)",
                       "columns": ["tax year", "candidate", "rates (%)", "first-round votes", "winner", "pitch"],
                       "rows": rows})
    causes = sorted({k for f in fallbacks for k in f})
    fb_data = [{"type": "bar", "name": c, "x": steps, "y": [f.get(c, 0) for f in fallbacks]} for c in causes] or [
        {"type": "bar", "name": "no fallbacks", "x": steps, "y": [0] * len(steps)}]
    charts.append(_chart("fallbacks", "Fallbacks by cause per step (an LM answer that could not be used)", engine,
                         fb_data, {"barmode": "stack", "xaxis": step_axis,
                                   "yaxis": {"title": {"text": "fallbacks"}, "rangemode": "tozero"}}, note=note))
    roles = sorted({r for u in usage for r in u})
    src = ((summary or {}).get("usage") or {}).get("source") or ("estimated" if "offline" in engine else "reported")
    tok_data = [{"type": "bar", "name": r, "x": steps, "y": [u.get(r, 0) for u in usage]} for r in roles] or [
        {"type": "bar", "name": "no LM calls", "x": steps, "y": [0] * len(steps)}]
    charts.append(_chart("tokens", f"Tokens (prompt + completion) by role per step ({src})", engine, tok_data,
                         {"barmode": "stack", "xaxis": step_axis,
                          "yaxis": {"title": {"text": "tokens"}, "rangemode": "tozero"}}, note=note))
    total = cfg.years * cfg.steps_per_year
    status = "finished" if summary is not None else f"running or stopped: {len(records)} of {total} steps logged"
    return {
        "title": f"Simulation: {cfg.scenario} scenario, {cfg.agents} agents, {cfg.years} tax years × "
                 f"{cfg.steps_per_year} steps",
        "engine": engine, "offline": "not a language model" in engine, "n_steps": len(records),
        "total_steps": total, "status": status, "charts": charts, "tables": tables,
        "facts": [f"workers: {cfg.workers}", f"brackets: {cfg.brackets}", f"SWF: {cfg.swf}", f"seed: {cfg.seed}",
                  f"steps logged: {len(records)} of {total}"],
    }


def _slider(key: str, label: str, values: Sequence[int]) -> dict[str, Any]:
    return {"key": key, "label": label, "values": list(values)}


# ------------------------------------------------------------------------------------------------
# a comparison (eval.compare)
# ------------------------------------------------------------------------------------------------
def _comparison_model(d: Path) -> dict[str, Any]:
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
    traj = pd.read_csv(traj_path) if traj_path.is_file() and traj_path.stat().st_size > 0 else None
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
    charts.append(_chart("welfare_by_year", "Welfare per tax year (mean ± 95% CI over seeds; rational workers)",
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
        xs, ys = _step_line(cut, rates, _top(cfg.get("cutoffs") or cut))
        width = 4 if p in ("saez", "us_federal", "oracle") else 2
        data.append({"type": "scatter", "mode": "lines", "name": labels[p], "x": xs, "y": ys,
                     "line": {"shape": "hv", "color": _COLORS.get(p), "width": width,
                              "dash": "dot" if p == "none" else "solid"}})
    charts.append(_chart("schedules", "Final schedules against Saez, US federal and the oracle (mean over seeds)",
                         engine, data, _SCHEDULE_AXES))

    # % of the oracle's gain with intervals.
    charts.append(_chart(
        "oracle_gain", "% of the oracle's welfare gain over no tax (mean ± 95% CI over seeds)", engine,
        [{"type": "bar", "name": "% oracle gain", "x": [labels[p] for p in agg["planner"]],
          "y": agg["pct_oracle_gain"].tolist(),
          "error_y": {"type": "data", "array": agg["pct_oracle_gain_ci"].tolist(), "visible": True},
          "marker": {"color": [_COLORS.get(p, "#444") for p in agg["planner"]]}}],
        {"yaxis": {"title": {"text": "% of the oracle's gain"}}}))

    # The SWF matrix: every planner's final schedule under every SWF (seed means).
    mpath = d / "swf_matrix.csv"
    if mpath.is_file() and mpath.stat().st_size > 0:
        m = pd.read_csv(mpath, dtype={"seed": str})
        m = m[m["seed"] == "mean"]
        swfs = list(dict.fromkeys(m["swf"]))
        rows = sorted(m["planner"].unique(), key=_order)
        z = [[_cell(m, p, s) for s in swfs] for p in rows]
        charts.append(_chart(
            "swf_matrix", "% oracle gain of each planner's final schedule under every SWF (mean over seeds)", engine,
            [{"type": "heatmap", "name": "% oracle gain", "x": swfs, "y": [labels.get(p, p) for p in rows], "z": z,
              "colorscale": "Viridis", "texttemplate": "%{z:.1f}", "colorbar": {"title": {"text": "%"}}}],
            {"yaxis": {"autorange": "reversed", "automargin": True},
             "xaxis": {"title": {"text": "social welfare function (blank: the oracle gains nothing over no tax)"}}}))

    # Paired differences from Saez (per seed, 95% interval).
    ppath = d / "paired_vs_saez.csv"
    if ppath.is_file() and ppath.stat().st_size > 0:
        pr = pd.read_csv(ppath)
        if len(pr):
            ys = pr["diff_welfare"].to_numpy(dtype=float)
            charts.append(_chart(
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
    if wpath.is_file() and wpath.stat().st_size > 0:
        w = pd.read_csv(wpath)
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
        charts.append(_chart("weights", f"Welfare-weight diagnostics ({cfg.get('swf')}): how concentrated the weights are",
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


def _cell(m: Any, planner: str, swf: str) -> float | None:
    v = m[(m["planner"] == planner) & (m["swf"] == swf)]["pct_oracle_gain"]
    return float(v.iloc[0]) if len(v) else None


def _welfare_unit(swf: str | None) -> str:
    from eval.plots import WELFARE_UNITS

    u = WELFARE_UNITS.get(swf or "", "")
    return f"({u.split(':')[0]})" if u else ""


# ------------------------------------------------------------------------------------------------
# the page
# ------------------------------------------------------------------------------------------------
def _clean(obj: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN/inf to null (Plotly draws a gap)."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    return obj


def model_json(model: Mapping[str, Any]) -> str:
    """The model as JSON (strict: no NaN)."""
    return json.dumps(model, allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def render_html(model: Mapping[str, Any], *, live: bool = False, plotly_src: str = PLOTLY_JS) -> str:
    """The page: the model embedded as JSON, drawn by a small script; ``live`` polls ``data.json``."""
    payload = model_json(model).replace("</", "<\\/")
    title = _esc(str(model.get("title", "run")))
    script = (resources.files("eval") / "page.js").read_text(encoding="utf-8")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.2em auto; max-width: 1100px; color: #222; padding: 0 1em; }}
.engine {{ padding: .5em .8em; border-radius: 4px; background: #eef4fb; }}
.engine.offline {{ background: #fff3cd; }}
.chart-box {{ border-top: 1px solid #ddd; margin-top: 1em; padding-top: .5em; }}
.slider {{ display: flex; gap: .8em; align-items: center; margin: .3em 0 0 4em; }}
.slider input {{ width: 50%; }}
table {{ border-collapse: collapse; font-size: .85em; margin: .5em 0; }}
td, th {{ border: 1px solid #ccc; padding: .2em .5em; text-align: left; vertical-align: top; }}
pre {{ background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: .85em; }}
#status {{ color: #555; font-size: .9em; }}
</style>
<script src="{_esc(plotly_src)}"></script>
</head><body>
<h1 id="title">{title}</h1>
<p id="engine" class="engine"></p>
<p id="status"></p>
<ul id="facts"></ul>
<pre id="text" hidden></pre>
<div id="charts"></div>
<div id="tables"></div>
<script id="model" type="application/json">{payload}</script>
<script>const LIVE = {"true" if live else "false"};</script>
<script>
{script}
</script>
</body></html>
"""


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def plotly_js_path() -> Path:
    """Plotly's bundled ``plotly.min.js`` (shipped in the ``plotly`` Python package)."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise ConfigError("plotly: package_data/plotly.min.js is missing; reinstall plotly (pip install 'plotly>=6')")
    return path


def write_html(run_dir: str | Path) -> list[Path]:
    """Write ``report.html`` and ``plotly.min.js`` beside it for the run in ``run_dir``; return both paths."""
    from programs.simulation.runlog import replace_atomic, write_atomic

    d = Path(run_dir)
    # Without the live view's fields (a file-time digest, the absolute path): the same run gives the same page.
    html = render_html({k: v for k, v in page_model(d).items() if k not in ("version", "run_dir")})
    src = plotly_js_path()
    dst = d / PLOTLY_JS
    if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
        replace_atomic(dst, lambda tmp: shutil.copyfile(src, tmp))
    write_atomic(d / PAGE, html)
    return [d / PAGE, dst]
