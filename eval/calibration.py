"""``python -m eval.calibration``: what the labor-cost preset does to hours and to the optimal rates.

The reference's ``kappa = 0.0005`` makes labor nearly free at census income scales, so most agents sit
at the 100-hour cap and hardly respond to taxes; the calibrated default puts the median worker at 40 h.
This prints both side by side on one population (rational workers, no planner, no LM).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from economy import (
    KAPPA_PRESETS,
    MAX_HOURS,
    Population,
    parse_brackets,
    TaxSchedule,
    best_response,
    oracle_schedule,
    outcome,
    saez_schedule,
)


def calibration_table(
    agents: int = 1000, seed: int = 0, brackets: str | list[float] = "us_federal_2024", swf: str = "inverse_skill",
    jobs: int = 1, progress: bool = False,
) -> pd.DataFrame:
    """One row per kappa preset: hours with no tax, Saez and oracle rates, Saez's share of the oracle's gain.

    Each preset's row is one unit (``eval.parallel``): ``jobs`` processes give the same table.
    """
    from eval.parallel import Unit, run_units

    units = [Unit(name, calibration_row, (agents, seed, brackets, swf, name), label=f"kappa {name}")
             for name in KAPPA_PRESETS]
    done = run_units(units, jobs, desc="eval.calibration", progress=progress)
    return pd.DataFrame([done[name] for name in KAPPA_PRESETS]).set_index("kappa")


def calibration_row(agents: int, seed: int, brackets: str | list[float], swf: str, name: str) -> dict[str, object]:
    """The table's row of kappa preset ``name`` (a unit of its own: module-level, so a worker process can run it)."""
    kappa = KAPPA_PRESETS[name]
    pop = Population.sample(agents, seed=seed)
    brackets = parse_brackets(brackets)
    none = TaxSchedule.none(brackets)
    h0 = best_response(pop.skill, none, kappa=kappa)
    w_none = outcome(pop, none, h0, swf, kappa=kappa).welfare
    saez = saez_schedule(pop, brackets, swf=swf, kappa=kappa)
    w_saez = outcome(pop, saez, best_response(pop.skill, saez, kappa=kappa), swf, kappa=kappa).welfare
    oracle = oracle_schedule(pop, brackets, swf=swf, seed=seed, kappa=kappa)
    gain = oracle.welfare - w_none
    return {
        "kappa": f"{name} ({kappa:.4g})",
        "median hours, no tax": float(np.median(h0)),
        "share at the 100 h cap": float(np.mean(h0 >= MAX_HOURS - 1e-9)),
        "saez rates %": _pct(saez.rates),
        "oracle rates %": _pct(oracle.schedule.rates),
        "saez % of oracle gain": 100.0 * (w_saez - w_none) / gain if gain > 0 else float("nan"),
    }


def _pct(rates: np.ndarray) -> str:
    return " ".join(f"{100 * r:.0f}" for r in rates)


def main(argv: Sequence[str] | None = None) -> int:
    from economy import PRESETS, SWFS
    from economy.welfare import check_swf
    from eval.parallel import JOBS_HELP, resolve_jobs, usable_cores
    from programs.cli import EXIT_INTERRUPTED, DefaultsOnceFormatter, OneLineParser
    from programs.errors import ConfigError

    ap = OneLineParser(prog="python -m eval.calibration", formatter_class=DefaultsOnceFormatter,
                       description="What the labor-cost preset does to hours and to the optimal rates: one row per "
                                   "kappa preset (calibrated, paper) on one population of rational workers; no "
                                   "planner, no LM. Prints a table and writes no file.")
    ap.add_argument("--agents", type=int, default=1000, help="agents in the population, >= 1")
    ap.add_argument("--seed", type=int, default=0, help="population seed (also the oracle search's)")
    ap.add_argument("--brackets", default="us_federal_2024", help=f"bracket preset: {', '.join(sorted(PRESETS))}")
    ap.add_argument("--swf", default="inverse_skill", help=f"social welfare function: {', '.join(SWFS)}")
    ap.add_argument("--jobs", type=int, default=None, help=JOBS_HELP.format(cores=usable_cores()))
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.agents < 1:
        ap.error(f"--agents={args.agents} must be >= 1")
    if args.seed < 0:
        ap.error(f"--seed={args.seed} must be >= 0")
    try:
        jobs = resolve_jobs(args.jobs)
    except ConfigError as err:
        ap.exit(2, f"{ap.prog}: error: {err}\n")
    try:
        parse_brackets(args.brackets)  # a bad value: one line before any work
        check_swf(args.swf)
        table = calibration_table(args.agents, args.seed, args.brackets, args.swf, jobs=jobs,
                                  progress=not args.no_progress)
    except ValueError as err:
        ap.exit(2, f"{ap.prog}: error: {err}\n")
    except KeyboardInterrupt:
        print(f"\n{ap.prog}: interrupted: nothing was printed", file=sys.stderr)
        return EXIT_INTERRUPTED
    with pd.option_context("display.width", 200, "display.max_colwidth", 60, "display.float_format", "{:.2f}".format):
        print(table.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
