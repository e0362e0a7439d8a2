"""``python -m examples.eitc``: the unchanged worker under an earned-income credit, across credit rates."""

from __future__ import annotations

import sys
import time

from examples.common import build_example_lms, example_parser, fail, lm_banner, lm_name, threads_for
from examples.eitc.mechanism import PHASE_IN_END, PHASE_OUT_END, PHASE_OUT_START

PROG = "python -m examples.eitc"


def _percents(text: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--credit-rates={text!r}: give percents such as 0,17,34,51") from None
    if not vals:
        raise ValueError(f"--credit-rates={text!r}: give at least one percent")
    for v in vals:
        if not 0.0 <= v <= 100.0:
            raise ValueError(f"--credit-rates: {v:g} is outside [0, 100] (percent)")
    return [v / 100.0 for v in vals]


def main(argv: list[str] | None = None) -> int:
    p = example_parser(PROG, "ChooseLabor workers, unchanged, under an earned-income credit financed by a flat "
                             "tax; hours and welfare per credit rate against the exact best response.")
    p.add_argument("--credit-rates", default="0,17,34,51", help="phase-in credit rates to sweep, in percent")
    p.add_argument("--tax-rate", type=float, default=20.0, help="flat tax financing the credit, in percent")
    p.add_argument("--agents", type=int, default=40, help="workers (a stratified census-calibrated sample)")
    p.add_argument("--steps", type=int, default=6, help="worker steps per credit rate")
    args = p.parse_args(argv)
    try:
        credit_rates = _percents(args.credit_rates)
    except ValueError as exc:
        fail(PROG, str(exc))
    if not 0.0 <= args.tax_rate <= 100.0:
        fail(PROG, f"--tax-rate={args.tax_rate:g} is outside [0, 100] (percent)")
    if args.agents < 1 or args.steps < 1:
        fail(PROG, f"--agents={args.agents} and --steps={args.steps} must be >= 1")
    lms = build_example_lms(args, PROG)

    from examples.eitc.sweep import format_table, run_sweep  # after the flags: a bad flag costs no import

    print(lm_banner(lms))
    print(f"Earned-income credit: phase-in to ${PHASE_IN_END:,.0f}, plateau to ${PHASE_OUT_START:,.0f}, "
          f"phase-out to ${PHASE_OUT_END:,.0f}; a {args.tax_rate:g}% flat tax finances it and the rest is "
          f"rebated equally. {args.agents} workers, {args.steps} steps per credit rate, seed {args.seed}.")
    t0 = time.perf_counter()
    rows = run_sweep(lms, credit_rates, tax_rate=args.tax_rate / 100.0, agents=args.agents, steps=args.steps,
                     seed=args.seed, module_type=args.module_type, threads=threads_for(lms))
    print(format_table(rows))
    print("hours: mean weekly hours at the last step, LM workers / exact best response (BR), for all workers "
          "and by where their 40-hour income falls (phase-in, phase-out); |gap| h: median |LM - BR| hours; "
          "welfare: inverse-skill SWF with each set of hours' own budget-balanced rebate.")
    print(f"{len(rows)} credit rates in {time.perf_counter() - t0:.1f} s. LM: {lm_name(lms)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
