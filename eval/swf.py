"""What a welfare number rests on, and how it moves with the welfare judgement (issue 12).

Four additions to every ``eval.compare`` run, each a table in ``report.md`` and a CSV:

- :func:`weight_frame` (``weights.csv``): per seed, the Kish effective sample size of the run's welfare weights,
  its share of the agents, the largest single agent's share and the bottom 1%'s share
  (``economy.welfare.weight_diagnostics``), beside the same figures without the skill floor.
- :func:`swf_matrix` (``swf_matrix.csv``): every planner's final schedule under every SWF of
  ``economy.welfare.SWFS``, with distributional measures, and an oracle per SWF as that SWF's ceiling.
- :func:`paired_frame` (``paired_vs_saez.csv``): each planner's per-seed difference from Saez (welfare and %
  of the oracle gain), a 95% Student-t interval and a paired t-test (``scipy.stats.ttest_rel``).
- :func:`saez_robustness` (``saez_robustness.csv``): Saez for an elasticity sweep and with the elasticity
  estimated from the agents' own responses to a small rate change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from economy import TaxSchedule
from economy.labor import best_response
from economy.saez import estimate_elasticity, saez_schedule
from economy.welfare import SWFS, social_welfare, weight_diagnostics, welfare_weights
from eval import baselines
from eval.report import Run, _order, _table, pct_gain
from programs.redact import redact
from eval.stats import format_ci, mean_ci

#: Oracle budget per extra SWF in the matrix (Optuna trials, refinement evaluations), warm-started at the best
#: planner schedule. Measured on 100 agents, 7 brackets, seed 0: within 0.1% of the full budget (200, 1500)
#: under every SWF (inverse_skill 43,098 vs 43,136; rawlsian 40,452 vs 40,454; atkinson 50,192 vs 50,198;
#: utilitarian and paper equal) in about a quarter of the time (~1 s against ~4-6 s).
MATRIX_ORACLE_TRIALS: int = 60
MATRIX_ORACLE_REFINE: int = 300
#: Elasticities of the Saez sweep.
ELASTICITIES: tuple[float, ...] = (0.2, 0.4, 0.8, 1.5)
#: Rate perturbation (fraction) of the empirical elasticity: every bracket's rate moves by -/+ this.
PERTURB: float = 0.03
#: Distributional measures of the matrix (the same for every SWF: the schedule's rational outcome).
DISTRIBUTION: tuple[str, ...] = ("bottom_quintile_utility", "median_utility", "gini_consumption", "revenue_per_agent")


# ------------------------------------------------------------------------------------------------------
# welfare weights
# ------------------------------------------------------------------------------------------------------
def run_weights(population: Any, swf: str, skill_floor: float, kappa: float, cutoffs: np.ndarray) -> np.ndarray:
    """The welfare weights of the run's SWF on ``population`` (``paper``/``atkinson``: at no tax, rational hours)."""
    skill = np.asarray(population.skill, dtype=np.float64)
    if swf in ("paper", "atkinson"):
        out = baselines.evaluate(population, TaxSchedule.none(cutoffs), swf, kappa, skill_floor=skill_floor)
        return welfare_weights(skill, swf, income=out.income, utility=out.utility, skill_floor=skill_floor)
    return welfare_weights(skill, swf, skill_floor=skill_floor)


def weight_frame(pops: Mapping[int, Any], swf: str, skill_floor: float, kappa: float, cutoffs: np.ndarray) -> pd.DataFrame:
    """One row per seed: n, ess, ess_share, top_share, bottom_1pct_share, and ess/top share without the floor."""
    rows = []
    for seed, pop in pops.items():
        d = weight_diagnostics(run_weights(pop, swf, skill_floor, kappa, cutoffs), pop.skill)
        raw = weight_diagnostics(run_weights(pop, swf, 0.0, kappa, cutoffs), pop.skill)
        rows.append({"seed": seed, "swf": swf, "skill_floor": skill_floor, "n": d.n, "ess": d.ess,
                     "ess_share": d.ess_share, "top_share": d.top_share, "bottom_1pct_share": d.bottom_1pct_share,
                     "ess_no_floor": raw.ess, "top_share_no_floor": raw.top_share,
                     "bottom_1pct_share_no_floor": raw.bottom_1pct_share})
    return pd.DataFrame(rows)


def weights_markdown(wf: pd.DataFrame) -> list[str]:
    swf, floor = wf["swf"].iloc[0], float(wf["skill_floor"].iloc[0])
    head = ["seed", "agents", "ESS", "ESS / agents", "largest agent's share", "bottom 1%'s share",
            "ESS without floor", "largest share without floor"]
    body = [[str(r.seed), str(r.n), f"{r.ess:,.1f}", f"{100 * r.ess_share:.1f}%", f"{100 * r.top_share:.2f}%",
             f"{100 * r.bottom_1pct_share:.2f}%", f"{r.ess_no_floor:,.1f}", f"{100 * r.top_share_no_floor:.2f}%"]
            for r in wf.itertuples()]
    L = ["## Welfare weights: how many agents the welfare rests on", "",
         f"Weights of `{swf}` (normalised to mean 1) with skill floor {floor:g} $/year per weekly hour "
         f"(a full-time income of ${floor * 40:,.0f}; 0 = raw weights). ESS is Kish's effective sample size "
         "(Σw)²/Σw²: the welfare average is as noisy as a plain mean over ESS agents. `paper` and `atkinson` "
         "weights depend on choices and are shown at no tax with rational hours.", "",
         _table(head, body, markdown=True, right=range(1, len(head))), ""]
    return L


# ------------------------------------------------------------------------------------------------------
# every planner under every SWF
# ------------------------------------------------------------------------------------------------------
def distribution(out: Any) -> dict[str, float]:
    """Bottom-quintile mean utility, median utility, Gini of consumption and revenue per agent of an outcome."""
    u = np.sort(np.asarray(out.utility, dtype=np.float64))
    n = u.size
    q = max(1, int(math.ceil(n / 5)))
    return {"bottom_quintile_utility": float(u[:q].mean()), "median_utility": float(np.median(u)),
            "gini_consumption": float(out.gini), "revenue_per_agent": float(out.revenue) / n}


def swf_welfare(population: Any, out: Any, swf: str, skill_floor: float) -> float:
    return social_welfare(out.utility, skill=population.skill, income=out.income, swf=swf, skill_floor=skill_floor)


def swf_matrix(runs: Sequence[Run], pops: Mapping[int, Any], cutoffs: np.ndarray, *, main_swf: str,
               main_refs: Mapping[int, tuple[float, float]], kappa: float, skill_floor: float,
               swfs: Sequence[str] = SWFS, n_trials: int = MATRIX_ORACLE_TRIALS,
               n_refine: int = MATRIX_ORACLE_REFINE,
               oracle_refs: Mapping[tuple[int, str], tuple[float, float]] | None = None) -> pd.DataFrame:
    """One row per planner × SWF × seed (final schedules, rational workers), then a mean row per planner × SWF.

    Columns: planner, seed ("mean" on the mean rows), swf, welfare, pct_oracle_gain (against that SWF's no tax
    and oracle), oracle_welfare, then :data:`DISTRIBUTION`. Under the run's own SWF the references are the main
    table's (``main_refs``: seed -> (W_none, W_oracle)), so those rows equal the main table; under every other
    SWF the oracle is searched anew (``economy.oracle_schedule``, budget ``n_trials``/``n_refine``), started
    from the best planner schedule on these brackets and never below it. ``oracle_refs`` ((seed, swf) -> (W_none,
    W_oracle), from :func:`swf_refs`, e.g. computed in worker processes) replaces those searches.
    """
    rows: list[dict[str, Any]] = []
    for seed, pop in pops.items():
        mine = [r for r in runs if r.seed == seed]
        dist = {id(r): distribution(r.outcome) for r in mine}
        for swf in swfs:
            if swf == main_swf and seed in main_refs:
                w_none, w_oracle = main_refs[seed]
            elif oracle_refs is not None and (seed, swf) in oracle_refs:
                w_none, w_oracle = oracle_refs[(seed, swf)]
            else:
                w_none, w_oracle = swf_refs(pop, cutoffs, main_swf, swf, kappa, skill_floor, seed,
                                            matrix_candidates(mine, cutoffs), n_trials, n_refine)
            for r in mine:
                w = float(r.outcome.welfare) if swf == main_swf else swf_welfare(pop, r.outcome, swf, skill_floor)
                rows.append({"planner": r.planner, "seed": seed, "swf": swf, "welfare": w,
                             "pct_oracle_gain": pct_gain(w, w_none, w_oracle), "oracle_welfare": w_oracle,
                             **dist[id(r)]})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    means = (df.groupby(["planner", "swf"], sort=False)[["welfare", "pct_oracle_gain", "oracle_welfare", *DISTRIBUTION]]
             .mean().reset_index())
    means.insert(1, "seed", "mean")
    out = pd.concat([df, means], ignore_index=True)
    out["_o"] = out["planner"].map(_order)
    out["_s"] = out["swf"].map(lambda s: list(swfs).index(s))
    out["_m"] = out["seed"].map(lambda s: 1 if s == "mean" else 0)
    return out.sort_values(["_s", "_o", "_m"], kind="stable").drop(columns=["_o", "_s", "_m"]).reset_index(drop=True)


def matrix_candidates(runs: Sequence[Run], cutoffs: np.ndarray) -> list[TaxSchedule]:
    """The schedules of one seed's ``runs`` on these brackets: the starting points of the matrix's oracles."""
    return [r.schedule for r in runs if np.array_equal(r.schedule.cutoffs, cutoffs)]


def swf_refs(population: Any, cutoffs: np.ndarray, main_swf: str, swf: str, kappa: float, skill_floor: float,
             seed: int, candidates: Sequence[TaxSchedule], n_trials: int = MATRIX_ORACLE_TRIALS,
             n_refine: int = MATRIX_ORACLE_REFINE) -> tuple[float, float]:
    """(W_none, W_oracle) of SWF ``swf`` on one seed: the matrix's references (its own oracle search)."""
    none_out = baselines.evaluate(population, TaxSchedule.none(cutoffs), main_swf, kappa, skill_floor=skill_floor)
    w_none = swf_welfare(population, none_out, swf, skill_floor)
    _, w_oracle = _oracle(population, cutoffs, swf, kappa, skill_floor, seed, list(candidates), n_trials, n_refine)
    return w_none, w_oracle


def _oracle(pop, cutoffs, swf, kappa, skill_floor, seed, candidates, n_trials, n_refine) -> tuple[TaxSchedule, float]:
    sched, _ = baselines.oracle_baseline(pop, cutoffs, swf, kappa, seed=seed, n_trials=n_trials, n_refine=n_refine,
                                         candidates=candidates, skill_floor=skill_floor)
    return sched, baselines.welfare_of(pop, sched, swf, kappa, skill_floor=skill_floor)


def winners(matrix: pd.DataFrame, exclude: Sequence[str] = ("oracle",)) -> dict[str, str]:
    """SWF -> the planner (oracle excluded) with the highest mean welfare under it."""
    m = matrix[(matrix["seed"] == "mean") & ~matrix["planner"].isin(exclude)]
    return {swf: str(sub.loc[sub["welfare"].idxmax(), "planner"]) for swf, sub in m.groupby("swf", sort=False)}


def matrix_markdown(matrix: pd.DataFrame, main_swf: str, labels: Mapping[str, str] | None = None) -> list[str]:
    labels = labels or {}
    seeds = matrix[matrix["seed"] != "mean"]
    swfs = list(dict.fromkeys(matrix["swf"]))
    planners = sorted(set(matrix["planner"]), key=_order)
    head = ["planner"] + [f"`{s}`" + (" (run's)" if s == main_swf else "") for s in swfs] + [
        "bottom-20% mean u", "median u", "Gini (consumption)", "revenue $/agent"]
    body = []
    for p in planners:
        cells = [labels.get(p, p)]
        for s in swfs:
            v = seeds[(seeds["planner"] == p) & (seeds["swf"] == s)]["pct_oracle_gain"].to_numpy(float)
            cells.append(format_ci(*mean_ci(v), "{:.1f}"))
        sub = seeds[(seeds["planner"] == p) & (seeds["swf"] == swfs[0])]
        for col, fmt in zip(DISTRIBUTION, ("{:,.0f}", "{:,.0f}", "{:.3f}", "{:,.0f}")):
            cells.append(format_ci(*mean_ci(sub[col].to_numpy(float)), fmt))
        body.append(cells)
    win = winners(matrix)
    L = ["## Every planner under every SWF", "",
         "Each planner's final schedule (rational workers, the same populations) scored under every social welfare "
         "function, as % of that SWF's oracle gain over no tax (mean ± 95% CI over seeds). The run's own SWF uses "
         "the main table's oracle; every other SWF has its own oracle (`economy.oracle_schedule`, "
         f"{MATRIX_ORACLE_TRIALS} trials + {MATRIX_ORACLE_REFINE} refinement evaluations, started from the best "
         "planner schedule). Learning planners learned under the run's SWF only. The distributional columns do not "
         "depend on the SWF. Welfare levels per seed: `swf_matrix.csv`.", "",
         _table(head, body, markdown=True, right=range(1, len(head))), "",
         "A '–' means that SWF's oracle gains nothing over no tax (e.g. `utilitarian` with quasi-linear utility and "
         "a lump-sum rebate: no tax is optimal), so % of its gain is undefined; compare welfare levels in the CSV.", "",
         "Winner under each SWF (highest mean welfare, oracle excluded): "
         + "; ".join(f"`{s}`: **{labels.get(p, p)}**" for s, p in win.items()) + ".", ""]
    return L


# ------------------------------------------------------------------------------------------------------
# paired comparison with Saez
# ------------------------------------------------------------------------------------------------------
def paired_frame(summary: pd.DataFrame, reference: str = "saez", level: float = 0.95) -> pd.DataFrame:
    """Per planner: mean per-seed difference from ``reference`` (welfare, % oracle gain), CI, paired t-test.

    Only seeds both planners ran on are paired. Columns: planner, n, then for ``m`` in (welfare,
    pct_oracle_gain): ``diff_<m>``, ``diff_<m>_ci`` (half-width; NaN with n < 2), ``diff_<m>_lo``/``_hi``,
    ``p_<m>`` (``scipy.stats.ttest_rel``; NaN with n < 2 or no variation), and ``per_seed_<m>`` (";"-joined).
    """
    from scipy import stats

    ref = summary[summary["planner"] == reference].set_index("seed")
    rows = []
    if ref.empty:
        return pd.DataFrame(rows)
    for planner in sorted(summary["planner"].unique(), key=_order):
        sub = summary[summary["planner"] == planner].set_index("seed")
        seeds = [s for s in sub.index if s in ref.index]
        row: dict[str, Any] = {"planner": planner, "reference": reference, "n": len(seeds)}
        for m in ("welfare", "pct_oracle_gain"):
            a = sub.loc[seeds, m].to_numpy(float)
            b = ref.loc[seeds, m].to_numpy(float)
            d = a - b
            mean, half = mean_ci(d, level)
            p = math.nan
            if len(seeds) >= 2 and np.ptp(d) > 0:
                p = float(stats.ttest_rel(a, b).pvalue)
            row.update({f"diff_{m}": mean, f"diff_{m}_ci": half, f"diff_{m}_lo": mean - half,
                        f"diff_{m}_hi": mean + half, f"p_{m}": p,
                        f"per_seed_{m}": ";".join(f"{x:.6g}" for x in d)})
        rows.append(row)
    return pd.DataFrame(rows)


def _p(p: float, n: int) -> str:
    if n < 2:
        return "n/a (n < 2)"
    if math.isnan(p):
        return "n/a (no variation)"
    return f"{p:.3g}"


def paired_table(pf: pd.DataFrame, *, markdown: bool, labels: Mapping[str, str] | None = None) -> str:
    labels = labels or {}
    head = ["planner", "seeds", "Δ welfare vs saez (95% CI)", "p (paired t)", "Δ % oracle gain (95% CI)", "p (paired t)"]
    body = []
    for r in pf.itertuples():
        n = int(r.n)
        ci = lambda m, fmt: (fmt.format(getattr(r, f"diff_{m}")) + " (CI n/a)" if n < 2  # noqa: E731
                             else f"{fmt.format(getattr(r, f'diff_{m}'))} [{fmt.format(getattr(r, f'diff_{m}_lo'))}, "
                                  f"{fmt.format(getattr(r, f'diff_{m}_hi'))}]")
        body.append([labels.get(r.planner, r.planner), str(n), ci("welfare", "{:+,.1f}"), _p(r.p_welfare, n),
                     ci("pct_oracle_gain", "{:+.1f}"), _p(r.p_pct_oracle_gain, n)])
    return _table(head, body, markdown=markdown, right=range(1, len(head)))


def paired_markdown(pf: pd.DataFrame, labels: Mapping[str, str] | None = None) -> list[str]:
    return ["## Paired comparison with Saez", "",
            "Per seed, each planner's welfare (and % oracle gain) minus Saez's on the same population; mean with a "
            "two-sided 95% Student-t interval over seeds and the p-value of a paired t-test (`scipy.stats.ttest_rel`). "
            "Positive = better than Saez. Per-seed differences: `paired_vs_saez.csv`.", "",
            paired_table(pf, markdown=True, labels=labels), ""]


# ------------------------------------------------------------------------------------------------------
# Saez robustness
# ------------------------------------------------------------------------------------------------------
def _panel_elasticity(z0: np.ndarray, z1: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> float:
    """Within-agent estimate: OLS through the origin of Δlog z on Δlog(1−τ) over agents whose rate changed."""
    ok = (z0 > 0) & (z1 > 0) & (t0 < 1) & (t1 < 1)
    dx = np.log1p(-t1[ok]) - np.log1p(-t0[ok])
    dy = np.log(z1[ok]) - np.log(z0[ok])
    keep = np.abs(dx) > 1e-9
    if np.count_nonzero(keep) < 1:
        return math.nan
    return float(np.dot(dx[keep], dy[keep]) / np.dot(dx[keep], dx[keep]))


def empirical_elasticity(population: Any, base: TaxSchedule, kappa: float, *, perturb: float = PERTURB,
                         sim_config: Any = None, lms: Sequence[Any] | None = None,
                         fallbacks: dict[str, int] | None = None,
                         usage: dict[str, dict[str, int]] | None = None) -> dict[str, float]:
    """Elasticity of taxable income from the agents' own responses to every rate moved by -/+ ``perturb``.

    With ``sim_config`` (workers="llm") the two schedules are two tax years of a ``PlannerEnv`` on the same
    population (LM workers, their hours at each year's last step); else rational best responses. Returns
    ``panel`` (within-agent: Δlog z on Δlog(1−τ), the estimate used), ``pooled`` (``economy.saez.estimate_elasticity``
    on both cross-sections pooled, biased by the skill-rate correlation; shown for contrast) and ``n`` (agents
    whose marginal rate changed). The LM workers' fallbacks are added to ``fallbacks`` when given, their
    answers and tokens by role to ``usage``.
    """
    lo = base.with_rates(np.clip(base.rates - perturb, 0.0, 1.0))
    hi = base.with_rates(np.clip(base.rates + perturb, 0.0, 1.0))
    skill = np.asarray(population.skill, dtype=np.float64)
    if sim_config is not None and sim_config.workers == "llm":
        from programs.simulation.env import PlannerEnv

        env = PlannerEnv(sim_config.model_copy(update={"years": 2}), lms=lms, population=population)
        hours = []
        try:
            env.reset(seed=sim_config.seed)
            for s in (lo, hi):
                env.step(s.rates)
                hours.append(np.asarray(env.sim.hours, dtype=np.float64))
            if fallbacks is not None:
                for k, v in env.sim.fallback_totals.items():
                    fallbacks[k] = fallbacks.get(k, 0) + int(v)
            if usage is not None:
                from programs.lm.usage import usage_sum

                usage.update(usage_sum([usage, env.sim.usage_totals]))
        finally:
            env.close()
    else:
        hours = [best_response(skill, s, kappa=kappa) for s in (lo, hi)]
    z0, z1 = skill * hours[0], skill * hours[1]
    t0, t1 = lo.marginal_rate(z0), hi.marginal_rate(z1)
    try:
        pooled = estimate_elasticity(np.concatenate([z0, z1]), np.concatenate([t0, t1]))
    except ValueError:
        pooled = math.nan
    ok = (z0 > 0) & (z1 > 0) & (np.abs(t1 - t0) > 1e-9)
    return {"panel": _panel_elasticity(z0, z1, t0, t1), "pooled": pooled, "n": float(np.count_nonzero(ok))}


def saez_robustness(population: Any, cutoffs: np.ndarray, *, seed: int, swf: str, kappa: float, skill_floor: float,
                    refs: tuple[float, float], base: TaxSchedule, elasticities: Sequence[float] = ELASTICITIES,
                    sim_config: Any = None, lms: Sequence[Any] | None = None,
                    fallbacks: dict[str, int] | None = None,
                    usage: dict[str, dict[str, int]] | None = None) -> list[dict[str, Any]]:
    """Saez rates and welfare (rational workers) for each elasticity, and for the empirically estimated one.

    ``base`` is the schedule the agents are perturbed around (the run's Saez schedule); ``refs`` = (W_none,
    W_oracle) of this seed for % oracle gain. One dict per variant: seed, variant, elasticity, welfare,
    pct_oracle_gain, rates (percent, ";"-joined), and for the empirical one the pooled estimate and the agents used.
    """
    rows = []
    ests = {"rational": empirical_elasticity(population, base, kappa)}
    if sim_config is not None and sim_config.workers == "llm":
        ests["llm"] = empirical_elasticity(population, base, kappa, sim_config=sim_config, lms=lms, fallbacks=fallbacks,
                                          usage=usage)
    variants: list[tuple[str, float, dict[str, float] | None]] = [(f"e={e:g}", float(e), None) for e in elasticities]
    variants += [(f"empirical ({who} workers)", est["panel"], est) for who, est in ests.items()]
    for name, e, est in variants:
        row: dict[str, Any] = {"seed": seed, "variant": name, "elasticity": e, "welfare": math.nan,
                               "pct_oracle_gain": math.nan, "rates_pct": ""}
        if math.isfinite(e) and e > 0:
            s = saez_schedule(population, cutoffs, swf=swf, kappa=kappa, elasticity=e, skill_floor=skill_floor)
            w = baselines.welfare_of(population, s, swf, kappa, skill_floor=skill_floor)
            row.update({"welfare": w, "pct_oracle_gain": pct_gain(w, *refs),
                        "rates_pct": ";".join(f"{100 * r:.2f}" for r in s.rates)})
        if est is not None:
            row.update({"pooled_cross_section_elasticity": est["pooled"], "agents_with_rate_change": est["n"]})
        rows.append(row)
    return rows


def robustness_markdown(rf: pd.DataFrame) -> list[str]:
    head = ["Saez variant", "elasticity (mean over seeds)", "welfare (95% CI)", "% oracle gain (95% CI)", "rates % (seed mean)"]
    body = []
    for variant in dict.fromkeys(rf["variant"]):
        sub = rf[rf["variant"] == variant]
        rates = [np.array([float(x) for x in r.split(";")]) for r in sub["rates_pct"] if r]
        body.append([variant, f"{sub['elasticity'].mean():.3f}", format_ci(*mean_ci(sub["welfare"].to_numpy(float))),
                     format_ci(*mean_ci(sub["pct_oracle_gain"].to_numpy(float)), "{:.1f}"),
                     "/".join(f"{x:.0f}" for x in np.mean(rates, axis=0)) if rates else "–"])
    emp = rf[rf["variant"].str.startswith("empirical")]
    L = ["## Saez robustness: elasticity sweep and an empirical elasticity", "",
         "Saez (2001) rates with the run's welfare weights for elasticities 0.2, 0.4, 0.8, 1.5 (the model's own is "
         "1/(δ−1) = 0.4), and with the elasticity of taxable income estimated from the agents' own responses: every "
         f"rate moved by −/+{100 * PERTURB:.0f} points around the Saez schedule, the same agents observed under both, "
         "elasticity = OLS through the origin of Δlog z on Δlog(1−τ) over agents whose marginal rate changed. Each "
         "schedule is scored with rational workers; % oracle gain against the main table's oracle. Per seed: "
         "`saez_robustness.csv`.", "",
         _table(head, body, markdown=True, right=range(1, len(head))), ""]
    if not emp.empty and "pooled_cross_section_elasticity" in emp:
        pooled = "; ".join(f"{v}: {sub['pooled_cross_section_elasticity'].mean():.3f}"
                           for v, sub in emp.groupby("variant", sort=False))
        L += [f"For contrast, the pooled cross-section slope (`economy.saez.estimate_elasticity` on both schedules' "
              f"incomes stacked), mean over seeds: {pooled}. It is biased, because under a progressive schedule the "
              "marginal rate rises with skill; the within-agent estimate above is the one applied.", ""]
    return L


def insert_sections(report_path: str, sections: Sequence[str]) -> None:
    """Insert Markdown lines into ``report.md`` before its ``## Notes`` (else ``## Reproduce``) section."""
    with open(report_path, encoding="utf-8") as f:
        text = f.read()
    block = "\n".join(sections).rstrip("\n") + "\n\n"
    for marker in ("\n## Notes\n", "\n## Plots\n", "\n## Reproduce\n"):
        i = text.find(marker)
        if i >= 0:
            text = text[: i + 1] + block + text[i + 1:]
            break
    else:
        text = text.rstrip("\n") + "\n\n" + block
    with open(report_path, "w", encoding="utf-8") as f:
        f.write(redact(text))
