"""The command line of ``python -m eval.compare``: its parser and ``main`` (one line and exit 2 on a bad
flag, before any LM is called; one line and exit 130 on Ctrl-C)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import eval.compare as compare
from economy import KAPPA_PAPER, PRESETS
from economy.saez_v1 import V1_VARIANTS
from economy.welfare import SWFS
from eval.blackbox import BLACKBOX
from eval.compare.config import DEFAULT_RUN_TIME, DEFAULTS, LEARNING, PLANNERS, SCENARIOS, WORKERS, resolve_config
from eval.compare.dryrun import dry_run_lines
from eval.compare.outputs import check_output
from eval.parallel import JOBS_HELP, usable_cores, without_jobs
from programs.cli import (EXIT_FALLBACKS, command_line, EXIT_INTERRUPTED, OVERWRITE_HELP, SEEDS_HELP, OneLineParser,
                          add_answer_args, add_fallback_args, add_price_args, lm_interrupted)
from programs.errors import ConfigError
from programs.redact import redact, redact_logs
from programs.tracking import add_mlflow_args


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m eval.compare",
        description=(
            "Compare tax planners (LLM planner, compiled planner, democratic leaders, Saez, US federal, flat, "
            "no tax, oracle) on the same census-calibrated populations and seeds. Every final schedule is "
            "evaluated with rational (exact best-response) workers, so the rows are comparable and the oracle "
            "is the ceiling. Runs offline by default: the LM planners use the offline engine, which is NOT a "
            "language model."
        ),
        epilog=(
            "Outputs under --out: summary.csv (one row per planner x seed), trajectory.csv (the learning planners' "
            "welfare and rates per tax year), report.md (means and 95% CIs, "
            "schedules side by side, the LM, the exact command and configuration), config.json and the plots "
            "welfare_by_year.png, schedules.png, income_by_bracket.png. The defaults (100 agents, 3 seeds, "
            "8 tax years x 5 steps, LM workers on the offline engine) take " + DEFAULT_RUN_TIME + ". "
            "Tax years are numbered from 0 (year 0 runs the initial schedule). --out must be new or empty, or "
            "hold an earlier eval.compare run with the same settings (which is replaced); " + OVERWRITE_HELP + ". "
            "A bad flag exits with status 2 and one line naming it, before any LM is called."
        ),
    )
    d = DEFAULTS
    p.add_argument("--agents", type=int, default=None, help=f"agents per population (default {d['agents']})")
    p.add_argument("--years", type=int, default=None,
                   help=f"tax years the learning planners run (default {d['years']})")
    p.add_argument("--steps-per-year", type=int, default=None,
                   help=f"worker steps per tax year (default {d['steps_per_year']}, enough for the offline engine's "
                        "workers to settle within half an hour of their best response; the paper uses 25). Rational "
                        "workers best-respond exactly at every step")
    p.add_argument("--seeds", default=None,
                   help=f"{SEEDS_HELP} (default {d['seeds']})")
    p.add_argument("--scenario", default=None,
                   help=f"scenario of the llm/compiled planners' simulation: {', '.join(SCENARIOS)} "
                        f"(default {d['scenario']}); the democratic planner always runs the democratic scenario")
    p.add_argument("--brackets", default=None,
                   help=f"bracket preset ({', '.join(sorted(PRESETS))}) or comma-separated lower bounds in $ "
                        f"starting at 0 (default {d['brackets']})")
    p.add_argument("--swf", default=None,
                   help=f"social welfare function: {', '.join(SWFS)} (default {d['swf']}; 'paper' is the reference's "
                        "gameable one, kept for replication)")
    p.add_argument("--kappa", default=None,
                   help=f"labor cost: calibrated, paper (= {KAPPA_PAPER}) or a number > 0 (default {d['kappa']})")
    p.add_argument("--skill-floor", default=None, metavar="V",
                   help="floor on the skill used in the inverse_skill and paper welfare weights (and in Saez's weights "
                        "and the oracle), in $/year per weekly hour: a number >= 0, 'min_wage' (the default: the full-time "
                        "federal minimum wage, FLSA 29 U.S.C. 206, $7.25/h x 52 = 377, i.e. $15,080 a year at 40 h/week) "
                        "or 'none' (= 0, raw 1/skill weights, the behaviour before the floor; --preset paper uses 0)")
    p.add_argument("--lm", default=None,
                   help="DSPy/LiteLLM model string for the LM planners (and LLM workers), 'local' or "
                        "'local:PATH.gguf' for a GGUF model run in-process by llama.cpp (pip install -e \".[local]\"), "
                        "or 'offline' for the "
                        "offline engine, a deterministic stand-in that is not a language model (default offline)")
    p.add_argument("--api-base", action="append", default=[],
                   help="OpenAI-compatible endpoint (vLLM, SGLang, Ollama); repeat to spread agents over several")
    p.add_argument("--temperature", type=float, default=None,
                   help="LM sampling temperature in [0, 2] (default: the simulation's, 0.7)")
    p.add_argument("--workers", default=None, choices=WORKERS,
                   help="worker model inside the learning planners' simulations: llm (WorkerAgent, one LM call per "
                        "agent per step, in concurrent batches; the default, as in the paper) or rational (exact "
                        "best response, much faster with a real LM). Whatever it is, every final schedule is also "
                        "scored with rational workers, the model the baselines and the oracle use")
    p.add_argument("--concurrency", type=int, default=8,
                   help="LM requests in flight per endpoint (default 8)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per LM request (default 60)")
    p.add_argument("--num-retries", type=int, default=3,
                   help="retries of a failed LM request, with back-off (default 3)")
    add_answer_args(p)
    add_fallback_args(p)
    add_price_args(p)
    p.add_argument("--planners", default=None,
                   help=f"comma list from {', '.join(PLANNERS)} (default: all; 'compiled' only with "
                        "--planner-program). No tax and the oracle are always computed, as the references of "
                        "'%% oracle gain', but only shown when listed")
    p.add_argument("--planner-program", default=None,
                   help="compiled planner program (JSON from `python -m optimize.planner`) for the 'compiled' planner")
    p.add_argument("--oracle-trials", type=int, default=None,
                   help="trial budget of the oracle's numerical search (default: economy.oracle_schedule's own)")
    p.add_argument("--oracle-refine", type=int, default=None,
                   help="evaluation budget of the oracle's local refinement after the trials, >= 0 "
                        "(default: economy.oracle_schedule's own)")
    p.add_argument("--saez-v1-variant", default=None, choices=sorted(V1_VARIANTS),
                   help="variant of the saez_v1 row (the earlier implementation's SAEZ, SAEZ_FLAT, SAEZ_THREE "
                        "planner types; default saez, as the paper's runs used)")
    p.add_argument("--hours-grid", default=None,
                   help="workers' hours on multiples of this (e.g. 10: {0, 10, ..., 100}, the reference's choices), "
                        "in the simulations and the scoring; none (default) = any hours")
    p.add_argument("--rate-grid", default=None,
                   help="the learning planners' rate changes rounded to multiples of this many points; none (default)")
    p.add_argument("--max-rate-move", default=None,
                   help="largest change of a bracket rate per tax year in points for the learning planners "
                        "(the reference: 20); none (default) = any move")
    p.add_argument("--top-income-cap", default=None,
                   help="income above this many $ is untaxed, for every planner (the reference: 10000000); "
                        "none (default) = open top bracket")
    p.add_argument("--initial-rate", type=float, default=None,
                   help="the learning planners' year-0 rate on every bracket, in percent (default: the preset's)")
    p.add_argument("--history-len", type=int, default=None,
                   help="recent steps (workers) / tax years (planner) in the learning agents' prompts "
                        "(default: the simulation's, 5)")
    p.add_argument("--preset", default=None, choices=["paper", "paper-v1"],
                   help="'paper' = the LLM Economist paper's set-up: --brackets three --swf paper "
                        "--steps-per-year 25 --kappa paper (κ = 0.0005) --skill-floor 0 (the paper's weights have no "
                        "floor). 'paper-v1' = a faithful replication of the earlier implementation: 'paper' plus "
                        "--top-income-cap 10000000 "
                        "--initial-rate 50 --max-rate-move 20 --rate-grid 10 --hours-grid 10 --history-len 50. "
                        "Flags given explicitly override it")
    p.add_argument("--out", default=None, help=f"output directory (default {d['out']}/)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the files of another run in --out (without it such an --out is refused)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--dry-run", action="store_true", help="print the LM answers by role and the estimated tokens of "
                   "this comparison, then exit 0 without building or calling any LM or writing anything")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--jobs", type=int, default=None, help=JOBS_HELP.format(cores=usable_cores()))
    add_mlflow_args(p, what="the comparison (one run: the configuration, every planner x seed's metrics, the "
                            "table's means and intervals, fallbacks, tokens and the output files)",
                    experiment="eval.compare")
    return p



def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns 0, or raises SystemExit(2) on a bad configuration (one line on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    redact_logs()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = resolve_config(args)
        shown = without_jobs(argv)  # --jobs changes no output, so the recorded command leaves it out
        cfg.extra["command"] = command_line("python -m eval.compare", shown)
        rerun = command_line("python -m eval.compare", argv)  # what was typed
        if not args.dry_run:  # before the LM probes: an unreachable tracking store is quick to tell
            from programs.tracking import check_mlflow

            check_mlflow(args.mlflow)
        if any(p in LEARNING for p in cfg.planners) or (cfg.workers == "llm" and any(p in BLACKBOX for p in cfg.planners)):
            from eval.learning import check_learning_config
            check_learning_config(cfg)
        if not args.dry_run:
            check_output(cfg, overwrite=args.overwrite)
    except ConfigError as e:
        parser.exit(2, f"eval.compare: error: {redact(str(e))}\n")
    except KeyboardInterrupt:  # while the LMs are checked and probed: nothing written yet
        return lm_interrupted("checking and probing the LM")
    if args.dry_run:
        for line in dry_run_lines(cfg):
            print(line)
        return 0
    from eval.compare.tracking import comparison_run, log_comparison
    from programs.simulation.guard import FallbackStop

    try:
        with comparison_run(args.mlflow, args.mlflow_experiment, cfg) as run:
            result = compare.run_comparison(cfg)  # looked up on the package, so a caller can replace it
            if run is not None:  # the parent, after every --jobs worker finished
                log_comparison(result, cfg)
    except FallbackStop as stop:
        # eval.compare writes its outputs at the end (it has no --resume): nothing was saved.
        print(f"eval.compare: {stop.line(rerun, how='nothing was saved; run again with')}",
              file=sys.stderr)
        return EXIT_FALLBACKS
    except KeyboardInterrupt:
        print(f"\neval.compare: interrupted: nothing was saved (the outputs in {cfg.out}/ are written at the end); "
              f"run again with: {rerun}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0

