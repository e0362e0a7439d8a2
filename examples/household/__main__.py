"""``python -m examples.household``: workers and households in one simulation, households against the exact rule."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from examples.common import build_example_lms, example_parser, fail, lm_banner, lm_name
from programs.errors import ConfigError

PROG = "python -m examples.household"


def report(sim, scenario) -> str:
    """Per year: the rates, mean income, % consumed (LM / rule), mean savings (LM / rule); lifetime utility."""
    import numpy as np

    from examples.household.economics import lifetime_utility, simulate_paths

    lm = scenario.paths(sim)
    rule = simulate_paths(lm["income"], None, scenario.interest_rate, scenario.discount_factor)
    head = ["year", "rates %", "income $", "consumed % LM / rule", "savings $ LM / rule", "fallbacks"]
    body = []
    for y, yr in enumerate(sim.years[: len(lm["income"])]):
        fb = {k: v for k, v in yr.fallbacks.items()}
        body.append([str(y), " ".join(f"{r:g}" for r in np.round(yr.rates_percent, 1)),
                     f"{lm['income'][y].mean():,.0f}",
                     f"{100 * lm['share'][y].mean():.1f} / {100 * rule['share'][y].mean():.1f}",
                     f"{lm['saving'][y].mean():,.0f} / {rule['saving'][y].mean():,.0f}",
                     ", ".join(f"{k} {v}" for k, v in fb.items()) or "0"])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    u_lm = lifetime_utility(lm["consumption"], scenario.discount_factor)
    u_rule = lifetime_utility(rule["consumption"], scenario.discount_factor)
    gap = u_rule - u_lm
    tail = (f"lifetime utility sum_t beta^t ln C_t, mean over households: LM {u_lm.mean():.4f}, exact rule "
            f"{u_rule.mean():.4f} (rule - LM: mean {gap.mean():.4f}, largest {gap.max():.4f}; the rule is optimal "
            "for the income each household expects, so when taxes move incomes a household can beat it ex post)")
    return "\n".join([line(head), "  ".join("-" * w for w in widths)] + [line(b) for b in body] + [tail])


def main(argv: list[str] | None = None) -> int:
    p = example_parser(PROG, "Workers choose hours every step; at each year's end every household splits its "
                             "disposable income between consumption and saving (the 'household' scenario).")
    p.add_argument("--agents", type=int, default=20, help="workers, one household each")
    p.add_argument("--years", type=int, default=4, help="tax years (the households' horizon)")
    p.add_argument("--steps-per-year", type=int, default=3, help="worker steps per tax year")
    p.add_argument("--interest", type=float, default=5.0, help="interest on savings, percent a year")
    p.add_argument("--discount-factor", type=float, default=0.99,
                   help="households' patience beta; beta*(1+interest) must be >= 1")
    p.add_argument("--out", default="runs/household", help="run directory (config.json, steps.jsonl, summary.json)")
    p.add_argument("--overwrite", action="store_true", help="replace a run log already in --out")
    args = p.parse_args(argv)

    from examples.household import HouseholdScenario  # registers the scenario and the offline policy
    from programs.simulation import load_config
    from programs.simulation.runlog import RunLog

    try:
        scenario = HouseholdScenario(args.interest / 100.0, args.discount_factor, module_type=args.module_type)
        config = load_config(agents=args.agents, years=args.years, steps_per_year=args.steps_per_year,
                             scenario="household", seed=args.seed, temperature=args.temperature,
                             module_type=args.module_type)
    except (ValueError, ConfigError) as exc:
        fail(PROG, str(exc))
    lms = build_example_lms(args, PROG)
    from programs.simulation import Simulation

    try:
        log = RunLog.create(Path(args.out), config.model_dump(), lm=lm_name(lms), overwrite=args.overwrite)
    except ConfigError as exc:
        fail(PROG, str(exc))
    print(lm_banner(lms))
    print(f"{args.agents} workers/households, {args.years} tax years x {args.steps_per_year} steps, interest "
          f"{args.interest:g}%, beta {args.discount_factor:g}, seed {args.seed}. The planner is the project's "
          "PlannerAgent on the same LM.")
    t0 = time.perf_counter()
    sim = Simulation(config, lms, scenario=scenario)
    try:
        with log:
            summary = sim.run(progress=False, log=log)
    finally:
        sim.close()
    print(report(sim, scenario))
    print("consumed %: mean share of cash on hand consumed; rule: the exact log-utility rule on the same "
          "incomes (income expected to persist, no borrowing); fallbacks: workers' and households' (saving_*).")
    print(f"welfare by year: {', '.join(f'{w:,.0f}' for w in summary.welfare_by_year)}; fallbacks "
          f"{summary.fallbacks or 0}. Run log: {log.dir}/ (config.json, steps.jsonl, summary.json). "
          f"{time.perf_counter() - t0:.1f} s. LM: {lm_name(lms)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
