"""Tables, CSV and the Markdown report of a comparison.

The unit of data is a :class:`Run`: one planner on one seed's population, with the schedule it ends on,
that schedule's outcome under the common worker model, and (for planners that learn across tax years)
the per-year trajectory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from economy import TaxSchedule
from eval.stats import format_ci, mean_ci
from programs.redact import redact

#: Planners in display order.
ORDER: tuple[str, ...] = ("llm", "compiled", "democratic", "es", "random", "oracle", "saez", "saez_v1", "us_federal",
                          "flat", "none")
#: Planners that learn over tax years through a simulation (the others are one-shot schedules).
LEARNING: tuple[str, ...] = ("llm", "compiled", "democratic")
#: One-line description of each planner for the report.
DESCRIPTIONS: dict[str, str] = {
    "llm": "planner agent (ProposeTaxSchedule) learning in context over the tax years",
    "compiled": "the same planner agent with a compiled program (prompts/demonstrations from optimize.planner)",
    "democratic": "leaders elected by the workers set the schedule (democratic scenario)",
    "es": "CMA-ES (cmaes) given exactly the LM planner's feedback: one welfare figure per tax year, the same years and "
          "start (eval.blackbox); the row is its final year's schedule (the search mean)",
    "random": "uniform random rates each tax year with the LM planner's feedback (eval.blackbox); the row is its final "
              "year's schedule (the best seen)",
    "oracle": "best rates on the chosen brackets under rational workers, found numerically (Optuna + local "
              "refinement, warm-started from every other planner's schedule on these brackets: the ceiling)",
    "saez": "Saez (2001) optimal rates with the SWF's welfare weights, iterated to a fixed point",
    "saez_v1": "the earlier implementation's 'Saez' with its quirks (economy.saez_v1: e = 3.0 on every bracket by "
               "default, skills read as income/100, KDE density, midpoint evaluation; a fixed schedule from skills at 40 h)",
    "us_federal": "US federal 2024 statutory rates (10/12/22/24/32/35/37%)",
    "flat": "best single rate on every bracket, found numerically",
    "none": "no tax",
}

METRICS: tuple[str, ...] = (
    "welfare", "pct_oracle_gain", "revenue", "revenue_per_agent", "mean_hours", "gini", "productivity", "equality_x_productivity",
    "rebate",
)


@dataclass
class YearRecord:
    """One tax year of a learning planner: the schedule it set and what it yielded."""

    year: int
    rates: list[float]          # fractions, one per bracket
    welfare: float              # the year's schedule under the common (rational) worker model
    welfare_sim: float = math.nan  # what the simulation's workers achieved at the year's last step


@dataclass
class Run:
    """One planner on one seed."""

    planner: str
    seed: int
    schedule: TaxSchedule
    outcome: Any                # economy.world.Outcome of `schedule` under the common worker model
    years: list[YearRecord] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)


def pct_gain(w: float, w_none: float, w_oracle: float) -> float:
    """``100 * (w - w_none) / (w_oracle - w_none)``; NaN when the oracle gains nothing over no tax."""
    d = w_oracle - w_none
    if not np.isfinite(d) or abs(d) <= 1e-12 * max(1.0, abs(w_oracle), abs(w_none)):
        return math.nan
    return 100.0 * (w - w_none) / d


def summary_frame(runs: Sequence[Run], refs: Mapping[int, tuple[float, float]]) -> pd.DataFrame:
    """One row per planner × seed (the content of ``summary.csv``).

    Parameters
    ----------
    runs : the runs to tabulate.
    refs : seed -> (welfare of no tax, welfare of the oracle) on that seed's population.

    Columns: planner, seed, welfare, pct_oracle_gain, revenue (total tax, $/year), revenue_per_agent,
    mean_hours, gini (of consumption), productivity (total pre-tax income), equality_x_productivity, rebate, welfare_sim, fallbacks, n_brackets, cutoffs (";"-joined dollars),
    then rate_1_pct … rate_K_pct (marginal rates in percent, K = most brackets of any row; empty beyond
    a row's own brackets).
    """
    k = max((r.schedule.n_brackets for r in runs), default=0)
    rows = []
    for r in sorted(runs, key=lambda r: (_order(r.planner), r.seed)):
        o = r.outcome
        w_none, w_oracle = refs.get(r.seed, (math.nan, math.nan))
        row: dict[str, Any] = {
            "planner": r.planner,
            "seed": r.seed,
            "welfare": float(o.welfare),
            "pct_oracle_gain": pct_gain(float(o.welfare), w_none, w_oracle),
            "revenue": float(o.revenue),
            "revenue_per_agent": float(o.revenue) / max(1, len(o.hours)),
            "mean_hours": float(o.mean_hours),
            "gini": float(o.gini),
            "productivity": float(o.productivity),
            "equality_x_productivity": float(o.equality_x_productivity),
            "rebate": float(o.rebate),
            "welfare_sim": float(r.extra.get("welfare_sim", math.nan)),
            "fallbacks": float(r.extra.get("fallbacks", math.nan)),
            "n_brackets": r.schedule.n_brackets,
            "cutoffs": ";".join(f"{c:.0f}" for c in r.schedule.cutoffs),
        }
        for j in range(k):
            row[f"rate_{j + 1}_pct"] = 100.0 * float(r.schedule.rates[j]) if j < r.schedule.n_brackets else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def trajectory_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per learning planner × seed × tax year (the content of ``trajectory.csv``).

    Columns: planner, seed, year (0-based: year 0 runs the initial schedule), welfare (that year's schedule, rational workers), welfare_sim
    (the simulation's workers at the year's last step), rate_1_pct … rate_K_pct.
    """
    rows = []
    for r in sorted(runs, key=lambda r: (_order(r.planner), r.seed)):
        for y in r.years:
            row: dict[str, Any] = {"planner": r.planner, "seed": r.seed, "year": y.year, "welfare": y.welfare,
                                   "welfare_sim": y.welfare_sim}
            row.update({f"rate_{j + 1}_pct": 100.0 * v for j, v in enumerate(y.rates)})
            rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["planner", "seed", "year", "welfare", "welfare_sim"])


def aggregate(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean and CI half-width of each metric per planner (columns ``<metric>`` and ``<metric>_ci``)."""
    out = []
    for planner in sorted(df["planner"].unique(), key=_order):
        sub = df[df["planner"] == planner]
        row: dict[str, Any] = {"planner": planner, "n_seeds": int(sub["seed"].nunique())}
        for m in METRICS + ("welfare_sim",):
            mean, half = mean_ci(sub[m].to_numpy(dtype=float), level)
            row[m], row[m + "_ci"] = mean, half
        out.append(row)
    return pd.DataFrame(out)


def format_table(agg: pd.DataFrame, *, markdown: bool = False, labels: Mapping[str, str] | None = None) -> str:
    """The headline table: welfare and % of the oracle's gain (mean ± 95% CI), revenue per agent, hours, Gini.

    ``labels`` renames planners for display (e.g. ``llm`` -> ``llm (offline engine)``).
    """
    labels = labels or {}
    head = ["planner", "welfare (95% CI)", "% oracle gain (95% CI)", "revenue $/agent", "mean hours", "Gini", "seeds"]
    body = []
    for _, r in agg.iterrows():
        body.append([
            labels.get(str(r["planner"]), str(r["planner"])),
            format_ci(r["welfare"], r["welfare_ci"], "{:,.1f}"),
            format_ci(r["pct_oracle_gain"], r["pct_oracle_gain_ci"], "{:.1f}"),
            format_ci(r["revenue_per_agent"], r["revenue_per_agent_ci"], "{:,.0f}"),
            format_ci(r["mean_hours"], r["mean_hours_ci"], "{:.1f}"),
            format_ci(r["gini"], r["gini_ci"], "{:.3f}"),
            str(int(r["n_seeds"])),
        ])
    return _table(head, body, markdown=markdown, right=range(1, len(head)))


def schedules_table(runs: Sequence[Run], cutoffs: np.ndarray, *, markdown: bool = True) -> str:
    """Marginal rates in percent, brackets as rows and planners as columns (mean over seeds).

    Only planners whose schedules sit on ``cutoffs`` appear (``us_federal`` on its own brackets is listed
    separately by the report).
    """
    planners = sorted({r.planner for r in runs if np.array_equal(r.schedule.cutoffs, cutoffs)}, key=_order)
    head = ["bracket"] + planners
    body = []
    upper = list(cutoffs[1:]) + [math.inf]
    for j, (lo, hi) in enumerate(zip(cutoffs, upper)):
        span = f"${lo:,.0f} – " + ("and up" if math.isinf(hi) else f"${hi:,.0f}")
        cells = [span]
        for p in planners:
            rates = [100.0 * r.schedule.rates[j] for r in runs if r.planner == p]
            m, h = mean_ci(rates)
            cells.append(format_ci(m, h, "{:.1f}", bounds=(0.0, 100.0)))
        body.append(cells)
    return _table(head, body, markdown=markdown, right=range(1, len(head)))


def trajectory_table(runs: Sequence[Run], *, markdown: bool = True, labels: Mapping[str, str] | None = None) -> str:
    """Welfare per tax year (mean over seeds) of the learning planners."""
    learners = sorted({r.planner for r in runs if r.years}, key=_order)
    if not learners:
        return ""
    n_years = max(len(r.years) for r in runs if r.years)
    head = ["tax year"] + [(labels or {}).get(p, p) for p in learners]
    body = []
    for y in range(n_years):
        cells = [str(y)]
        for p in learners:
            vals = [r.years[y].welfare for r in runs if r.planner == p and len(r.years) > y]
            cells.append(format_ci(*mean_ci(vals), "{:,.1f}"))
        body.append(cells)
    return _table(head, body, markdown=markdown, right=range(1, len(head)))


def write_report(
    path: str,
    *,
    runs: Sequence[Run],
    agg: pd.DataFrame,
    cutoffs: np.ndarray,
    command: str,
    config: Mapping[str, Any],
    lm_label: str | None,
    labels: Mapping[str, str] | None,
    worker_note: str,
    notes: Iterable[str],
    plots: Iterable[str],
) -> None:
    """Write ``report.md``: headline table, schedules side by side, trajectories, LM, command, config.

    It holds no wall time (printed instead): the file is the same for every ``--jobs`` and on every machine."""
    planners = sorted({r.planner for r in runs}, key=_order)
    L: list[str] = ["# Tax-policy comparison (`python -m eval.compare`)", ""]
    L += ["## Set-up", ""]
    if lm_label is None:
        L.append("- Language model: none (no planner of this run uses one).")
    else:
        L.append(f"- Language model for the LM planners: **{lm_label}**.")
        if "not a language model" in lm_label:
            L.append("  These results come from the deterministic offline stand-in engine; they are **not** results of "
                     "a language model. Re-run with `--lm <model>` for LLM results.")
    L.append(f"- Workers: {worker_note}")
    L.append(f"- Population: {config['agents']} agents sampled from the census-calibrated GB2 fit, one population per "
             f"seed, shared by every planner; seeds {config['seeds']}.")
    L.append(f"- Brackets: `{config['brackets']}` ({len(cutoffs)} brackets, lower bounds "
             + ", ".join(f"${c:,.0f}" for c in cutoffs) + f"); social welfare function `{config['swf']}`; "
             f"labor cost κ = {config['kappa']:g}.")
    L.append("- `% oracle gain` = 100 · (W − W_none) / (W_oracle − W_none) per seed; intervals are two-sided 95% "
             "Student-t intervals over seeds (blank with one seed).")
    L += ["", "Planners:", ""]
    L += [f"- `{p}`: {DESCRIPTIONS.get(p, p)}" for p in planners]
    L += ["", "## Results (mean ± 95% CI over seeds)", "", format_table(agg, markdown=True, labels=labels), ""]
    if "welfare_sim" in agg and agg["welfare_sim"].notna().any():
        L += ["Welfare the simulation's own workers reached in the final tax year's last step "
              "(`welfare_sim` in summary.csv):", ""]
        for _, r in agg[agg["welfare_sim"].notna()].iterrows():
            name = (labels or {}).get(r["planner"], r["planner"])
            L.append(f"- {name}: {format_ci(r['welfare_sim'], r['welfare_sim_ci'])}")
        L.append("")
    L += ["## Schedules side by side (marginal rate, %, mean ± 95% CI over seeds)", "",
          schedules_table(runs, cutoffs), "",
          "A rate lies in [0, 100]%: an interval that a few seeds make wider than that is shown clipped to it, "
          "as `mean [low, high]*`.", ""]
    own = [r for r in runs if not np.array_equal(r.schedule.cutoffs, cutoffs)]
    for p in sorted({r.planner for r in own}, key=_order):
        s = next(r.schedule for r in own if r.planner == p)
        L += [f"`{p}` on its own brackets:", "", "```", s.table(), "```", ""]
    traj = trajectory_table(runs, labels=labels)
    if traj:
        L += ["## Learning planners: welfare per tax year (each year's schedule, rational workers; mean ± 95% CI)",
              "", "Tax years are numbered from 0: year 0 runs the initial schedule, the planner first moves at the "
              "start of year 1.", "", traj, ""]
    notes = [n for n in notes if n]
    if notes:
        L += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    plots = list(plots)
    if plots:
        L += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    L += ["## Reproduce", "", "```", command, "```", "", "Resolved configuration:", "", "```json",
          json.dumps(dict(config), indent=2, default=str), "```", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write(redact("\n".join(L)))


def _order(planner: str) -> int:
    return ORDER.index(planner) if planner in ORDER else len(ORDER)


def _table(head: list[str], body: list[list[str]], *, markdown: bool, right: Iterable[int] = ()) -> str:
    right = set(right)
    if markdown:
        sep = ["---:" if i in right else "---" for i in range(len(head))]
        lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(sep) + " |"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([fmt(head), "  ".join("-" * w for w in widths)] + [fmt(r) for r in body])
