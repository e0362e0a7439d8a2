"""The page of a ``programs.simulate`` run (``programs.page``; ``docs/design.md`` §7.1): the schedule per tax
year, hours against skill per step beside each agent's exact best response (``economy.best_response``), income
by bracket, welfare / revenue / Gini per step, elections, fallbacks by cause and tokens by role per step.

Everything is recomputed from ``config.json`` and ``steps.jsonl`` (the population from the seed, each step's
outcome with ``economy.outcome``), so a run in progress shows every step logged so far.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from programs.errors import ConfigError
from programs.page import SCHEDULE_AXES, chart, income_top, register, slider, step_line, write_html

__all__ = ["simulation_model", "write_html"]


@register("simulation", ("config.json", "steps.jsonl"))
def simulation_model(d: Path) -> dict[str, Any]:
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
    top = income_top(cutoffs)
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
    x0, y0 = step_line(cutoffs, [100.0 * r for r in base.rates], top)
    sched_data = [{"type": "scatter", "mode": "lines", "name": "year-0 schedule", "x": x0, "y": y0,
                   "line": {"shape": "hv", "color": "#7f7f7f", "dash": "dot"}}]
    for y in years:
        xs, ys = step_line(cutoffs, by_year_rates[y], top)
        sched_data.append({"type": "scatter", "mode": "lines", "name": f"tax year {y}", "meta": {"year": y},
                           "x": xs, "y": ys, "line": {"shape": "hv", "width": 3, "color": "#1f77b4"}})
    charts.append(chart("schedule", "Tax schedule per tax year (slider: tax year, counted from 0)", engine,
                         sched_data, SCHEDULE_AXES, slider=slider("year", "tax year", years), note=note))
    charts.append(chart(
        "hours", "Weekly hours against skill per step, with each agent's exact best response", engine, hours_traces,
        {"xaxis": {"title": {"text": "skill ($ / year per weekly hour)"}, "type": "log"},
         "yaxis": {"title": {"text": "weekly hours"}, "range": [-2, MAX_HOURS + 2]}},
        slider=slider("step", "step", steps), note=note))
    upper = cutoffs[1:] + [math.inf]
    names = [f"${lo / 1000:,.0f}k–" + ("" if math.isinf(hi) else f"${hi / 1000:,.0f}k") for lo, hi in zip(cutoffs, upper)]
    inc_data = []
    for y in years:
        j = np.searchsorted(np.asarray(cutoffs), np.maximum(by_year_income[y], 0.0), side="right") - 1
        share = 100.0 * np.bincount(j, minlength=len(cutoffs))[: len(cutoffs)] / max(1, j.size)
        inc_data.append({"type": "bar", "name": f"tax year {y} (last step logged)", "meta": {"year": y},
                         "x": names, "y": share.tolist(), "marker": {"color": "#1f77b4"}})
    charts.append(chart("income", "Agents by pre-tax income bracket (slider: tax year)", engine, inc_data,
                         {"xaxis": {"title": {"text": "pre-tax income bracket"}},
                          "yaxis": {"title": {"text": "agents (%)"}, "range": [0, 100]}},
                         slider=slider("year", "tax year", years), note=note))
    charts.append(chart(
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
        charts.append(chart("elections", "Elections: first-round votes per candidate (the winner is marked)",
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
    charts.append(chart("fallbacks", "Fallbacks by cause per step (an LM answer that could not be used)", engine,
                         fb_data, {"barmode": "stack", "xaxis": step_axis,
                                   "yaxis": {"title": {"text": "fallbacks"}, "rangemode": "tozero"}}, note=note))
    roles = sorted({r for u in usage for r in u})
    src = ((summary or {}).get("usage") or {}).get("source") or ("estimated" if "offline" in engine else "reported")
    tok_data = [{"type": "bar", "name": r, "x": steps, "y": [u.get(r, 0) for u in usage]} for r in roles] or [
        {"type": "bar", "name": "no LM calls", "x": steps, "y": [0] * len(steps)}]
    charts.append(chart("tokens", f"Tokens (prompt + completion) by role per step ({src})", engine, tok_data,
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
