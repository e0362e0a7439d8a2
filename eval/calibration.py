"""``python -m eval.calibration``: what the labor-cost preset does to hours and to the optimal rates.

The reference's ``kappa = 0.0005`` makes labor nearly free at census income scales, so most agents sit
at the 100-hour cap and hardly respond to taxes; the calibrated default puts the median worker at 40 h.
This prints both side by side on one population (rational workers, no planner, no LM).
"""

from __future__ import annotations

import argparse
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
    agents: int = 1000, seed: int = 0, brackets: str | list[float] = "us_federal_2024", swf: str = "inverse_skill"
) -> pd.DataFrame:
    """One row per kappa preset: hours with no tax, Saez and oracle rates, Saez's share of the oracle's gain."""
    pop = Population.sample(agents, seed=seed)
    brackets = parse_brackets(brackets)
    none = TaxSchedule.none(brackets)
    rows = []
    for name, kappa in KAPPA_PRESETS.items():
        h0 = best_response(pop.skill, none, kappa=kappa)
        w_none = outcome(pop, none, h0, swf, kappa=kappa).welfare
        saez = saez_schedule(pop, brackets, swf=swf, kappa=kappa)
        w_saez = outcome(pop, saez, best_response(pop.skill, saez, kappa=kappa), swf, kappa=kappa).welfare
        oracle = oracle_schedule(pop, brackets, swf=swf, seed=seed, kappa=kappa)
        gain = oracle.welfare - w_none
        rows.append(
            {
                "kappa": f"{name} ({kappa:.4g})",
                "median hours, no tax": float(np.median(h0)),
                "share at the 100 h cap": float(np.mean(h0 >= MAX_HOURS - 1e-9)),
                "saez rates %": _pct(saez.rates),
                "oracle rates %": _pct(oracle.schedule.rates),
                "saez % of oracle gain": 100.0 * (w_saez - w_none) / gain if gain > 0 else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("kappa")


def _pct(rates: np.ndarray) -> str:
    return " ".join(f"{100 * r:.0f}" for r in rates)


def main(argv: Sequence[str] | None = None) -> int:
    from economy import PRESETS, SWFS
    from programs.cli import DefaultsOnceFormatter, OneLineParser

    ap = OneLineParser(prog="python -m eval.calibration", formatter_class=DefaultsOnceFormatter,
                       description="What the labor-cost preset does to hours and to the optimal rates: one row per "
                                   "kappa preset (calibrated, paper) on one population of rational workers; no "
                                   "planner, no LM. Prints a table and writes no file.")
    ap.add_argument("--agents", type=int, default=1000, help="agents in the population, >= 1")
    ap.add_argument("--seed", type=int, default=0, help="population seed (also the oracle search's)")
    ap.add_argument("--brackets", default="us_federal_2024", help=f"bracket preset: {', '.join(sorted(PRESETS))}")
    ap.add_argument("--swf", default="inverse_skill", help=f"social welfare function: {', '.join(SWFS)}")
    args = ap.parse_args(argv)
    if args.agents < 1:
        ap.error(f"--agents={args.agents} must be >= 1")
    if args.seed < 0:
        ap.error(f"--seed={args.seed} must be >= 0")
    try:
        table = calibration_table(args.agents, args.seed, args.brackets, args.swf)
    except ValueError as err:
        ap.exit(2, f"{ap.prog}: error: {err}\n")
    with pd.option_context("display.width", 200, "display.max_colwidth", 60, "display.float_format", "{:.2f}".format):
        print(table.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
