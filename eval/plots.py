"""PNG plots of a comparison (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: the comparison runs on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from economy import TaxSchedule  # noqa: E402
from eval.report import Run, _order  # noqa: E402
from programs.page import income_top  # noqa: E402

_COLORS = {
    "llm": "tab:blue", "compiled": "tab:cyan", "democratic": "tab:purple", "oracle": "tab:green",
    "saez": "black", "saez_v1": "tab:brown", "us_federal": "tab:red", "flat": "tab:orange", "none": "tab:gray",
}


#: What a plot says when the LM planners ran on the offline engine.
OFFLINE_NOTE = "offline engine (not a language model)"

#: The unit of social welfare per SWF (``economy.welfare``): the weighted utilities are dollars a year,
#: except the reference's ``paper`` SWF, a sum of utility/income ratios.
WELFARE_UNITS = {
    "inverse_skill": "$ / year: mean of skill-weighted utilities (weights of mean 1)",
    "utilitarian": "$ / year: mean utility",
    "rawlsian": "$ / year: lowest utility",
    "atkinson": "$ / year: equally-distributed equivalent consumption",
    "paper": "no unit: Σ utility / max(pre-tax income, 1)",
}


def plot_all(runs: Sequence[Run], cutoffs: np.ndarray, out_dir: str,
             labels: Mapping[str, str] | None = None, *, swf: str | None = None,
             offline: bool = False) -> list[str]:
    """Write the three plots into ``out_dir``; return their file names.

    ``labels`` renames planners in legends (e.g. ``llm (offline engine)``). ``offline`` (the LM planners ran
    on the offline engine) adds "offline engine (not a language model)" to every legend entry of an LM
    planner and to the titles; ``swf`` names the welfare axis's unit.
    """
    labels = dict(labels or {})
    note = f"\nLM planners: {OFFLINE_NOTE}" if offline else ""
    if offline:
        for p in ("llm", "compiled", "democratic"):
            labels[p] = f"{p} ({OFFLINE_NOTE})"
    unit = WELFARE_UNITS.get(swf or "", "")
    files = [
        plot_welfare_by_year(runs, os.path.join(out_dir, "welfare_by_year.png"), labels, unit=unit, note=note),
        plot_schedules(runs, cutoffs, os.path.join(out_dir, "schedules.png"), labels, note=note),
        plot_income_by_bracket(runs, cutoffs, os.path.join(out_dir, "income_by_bracket.png"), labels, note=note),
    ]
    return [os.path.basename(f) for f in files]


def plot_welfare_by_year(runs: Sequence[Run], path: str, labels: Mapping[str, str] | None = None, *,
                         unit: str = "", note: str = "") -> str:
    """Welfare per tax year of each learning planner (mean over seeds, thin lines per seed); the one-shot
    planners as horizontal lines at their mean welfare. Tax years are numbered from 0."""
    fig, ax = plt.subplots(figsize=(8, 5))
    planners = sorted({r.planner for r in runs}, key=_order)
    n_years = max((len(r.years) for r in runs), default=0)
    for p in planners:
        mine = [r for r in runs if r.planner == p]
        color = _COLORS.get(p)
        if any(r.years for r in mine):
            for r in mine:
                ax.plot([y.year for y in r.years], [y.welfare for y in r.years], color=color, alpha=0.25, lw=0.8)
            k = min(len(r.years) for r in mine)
            mean = np.mean([[y.welfare for y in r.years[:k]] for r in mine], axis=0)
            ax.plot(np.arange(k), mean, color=color, marker="o", lw=2, label=(labels or {}).get(p, p))
        else:
            w = float(np.mean([r.outcome.welfare for r in mine]))
            ax.axhline(w, color=color, ls="--", lw=1.5, label=f"{(labels or {}).get(p, p)} (baseline)")
    if n_years:
        # A legend entry for the thin lines: one per seed, the thick line is their mean.
        ax.plot([], [], color="gray", alpha=0.4, lw=0.8, label="thin lines: one seed each (thick: mean)")
    ax.set_xlabel("tax year (year 0 runs the initial schedule)")
    ax.set_ylabel("social welfare, rational workers" + (f"\n({unit})" if unit else ""))
    if n_years:
        ax.set_xlim(-0.2, n_years - 0.8)
        ax.set_xticks(np.arange(n_years))
    else:
        ax.set_xticks([])
    ax.set_title("Welfare per tax year (mean over seeds)" + note)
    return _finish(fig, ax, path)


def plot_schedules(runs: Sequence[Run], cutoffs: np.ndarray, path: str,
                   labels: Mapping[str, str] | None = None, *, note: str = "") -> str:
    """Marginal rate against income for every planner (seed-mean rates), Saez and US federal emphasised."""
    fig, ax = plt.subplots(figsize=(8, 5))
    top = income_top(cutoffs)
    z = np.linspace(0.0, top, 4000)
    for p in sorted({r.planner for r in runs}, key=_order):
        mine = [r for r in runs if r.planner == p]
        s = _mean_schedule(mine)
        lw, ls = (3.0, "-") if p in ("saez", "us_federal") else (1.6, "-" if p != "none" else ":")
        ax.plot(z / 1000.0, 100.0 * s.marginal_rate(z), color=_COLORS.get(p), lw=lw, ls=ls, label=(labels or {}).get(p, p),
                drawstyle="steps-post")
    ax.set_xlabel("pre-tax income (thousand $ / year)")
    ax.set_ylabel("marginal tax rate (%)")
    ax.set_ylim(-2, 102)
    ax.set_title("Tax schedules (mean rates over seeds) against Saez and US federal" + note)
    return _finish(fig, ax, path)


def plot_income_by_bracket(runs: Sequence[Run], cutoffs: np.ndarray, path: str,
                           labels: Mapping[str, str] | None = None, *, note: str = "") -> str:
    """Share of agents whose pre-tax income falls in each of the chosen brackets, per planner."""
    planners = sorted({r.planner for r in runs}, key=_order)
    k = len(cutoffs)
    fig, ax = plt.subplots(figsize=(max(8, 1.2 * k + 4), 5))
    width = 0.8 / max(1, len(planners))
    x = np.arange(k)
    for i, p in enumerate(planners):
        shares = []
        for r in (r for r in runs if r.planner == p):
            j = np.searchsorted(cutoffs, np.maximum(np.asarray(r.outcome.income), 0.0), side="right") - 1
            shares.append(np.bincount(j, minlength=k)[:k] / max(1, j.size))
        ax.bar(x + (i - (len(planners) - 1) / 2) * width, 100.0 * np.mean(shares, axis=0), width,
               color=_COLORS.get(p), label=(labels or {}).get(p, p))
    upper = list(cutoffs[1:]) + [np.inf]
    # "\\$": a bare "$...$" pair would switch matplotlib to mathtext.
    labels = [f"\\${lo / 1000:,.0f}k–" + ("" if np.isinf(hi) else f"\\${hi / 1000:,.0f}k") for lo, hi in zip(cutoffs, upper)]
    ax.set_xticks(x, labels, rotation=20 if k > 4 else 0, fontsize=8)
    ax.set_ylabel("agents (%)")
    ax.set_xlabel("pre-tax income bracket")
    ax.set_title("Income distribution by bracket (mean over seeds)" + note)
    return _finish(fig, ax, path, grid_axis="y")


def _mean_schedule(runs: Sequence[Run]) -> TaxSchedule:
    s0 = runs[0].schedule
    same = [r.schedule.rates for r in runs if np.array_equal(r.schedule.cutoffs, s0.cutoffs)]
    return s0.with_rates(np.clip(np.mean(same, axis=0), 0.0, 1.0))


def _finish(fig: plt.Figure, ax: plt.Axes, path: str, grid_axis: str = "both") -> str:
    """Legend, grid, layout; write the PNG and free the figure (long runs make many plots)."""
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, axis=grid_axis)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
