"""``python -m eval.compare``: every planner side by side on the same populations and seeds.

Seed ``s`` gives the population ``Population.sample(agents, seed=s)``; every planner is run on it and its
final schedule is evaluated with the same (rational, exact best-response) worker model, so welfare,
revenue, hours and Gini are comparable across rows, and the oracle is a true ceiling over the rational
baselines. Outputs: a printed table, ``summary.csv``, ``report.md`` and PNG plots under ``--out``.

Every run also reports (``eval.swf``): the welfare weights' effective sample size per seed (``weights.csv``), every
planner's final schedule under every SWF with an oracle per SWF (``swf_matrix.csv``), each planner's paired
difference from Saez with a 95% interval and a paired t-test (``paired_vs_saez.csv``), and Saez under an
elasticity sweep and an empirically estimated elasticity (``saez_robustness.csv``). The ``es`` and ``random``
planners (``eval.blackbox``) get exactly the LM planner's feedback: one welfare figure per tax year.
"""

from __future__ import annotations

import argparse
import json

import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from economy import KAPPA_PAPER, PRESETS, TaxSchedule, parse_brackets, parse_kappa, resolve_cutoffs, resolve_kappa
from economy.constants import MIN_WAGE_SKILL, SKILL_FLOOR_PRESETS, resolve_skill_floor
from economy.saez_v1 import V1_TOP, V1_VARIANTS
from economy.welfare import SWFS, check_swf
from eval import baselines
from eval.blackbox import BLACKBOX
from programs.cli import (EXIT_FALLBACKS, EXIT_INTERRUPTED, add_fallback_args, add_price_args, OVERWRITE_HELP, SEEDS_HELP, OneLineParser, add_answer_args, check_out_dir,
                          check_program_file, parse_seeds)
from programs.simulation.runlog import replace_atomic, write_atomic
from programs.errors import ConfigError
from eval.report import ORDER, Run, aggregate, format_table, summary_frame, trajectory_frame, write_report

PLANNERS: tuple[str, ...] = ORDER
BASELINES: tuple[str, ...] = ("oracle", "saez", "saez_v1", "us_federal", "flat", "none")
LEARNING: tuple[str, ...] = ("llm", "compiled", "democratic")
SCENARIOS: tuple[str, ...] = ("rational", "bounded", "democratic")
WORKERS: tuple[str, ...] = ("rational", "llm")

#: What ``--preset paper`` sets (each can still be overridden by giving the flag explicitly). The paper's welfare
#: weights have no floor, so the preset sets ``skill_floor`` 0 to stay faithful to it.
PAPER_PRESET: dict[str, Any] = {"brackets": "three", "swf": "paper", "steps_per_year": 25, "kappa": "paper",
                                "skill_floor": 0.0}

#: What ``--preset paper-v1`` sets: the earlier implementation's set-up wherever it is observable (its
#: main.py defaults, bracket.py, planner.py and worker.py); flags given explicitly override each value.
PAPER_V1_PRESET: dict[str, Any] = {
    "brackets": "three", "swf": "paper", "kappa": "paper", "skill_floor": "0", "steps_per_year": 25,
    "top_income_cap": str(V1_TOP), "initial_rate": 50.0, "max_rate_move": "20", "rate_grid": "10",
    "hours_grid": "10", "history_len": 50,
}
#: The world-rule settings (None: off) and how their flags read.
_WORLD_RULES: tuple[str, ...] = ("hours_grid", "rate_grid", "max_rate_move", "top_income_cap")

#: Defaults chosen so that ``python -m eval.compare`` finishes offline on 2 cores in about
#: ``DEFAULT_RUN_TIME`` (the one figure the README and ``--help`` state).
DEFAULTS: dict[str, Any] = {
    "agents": 100, "years": 8, "steps_per_year": 5, "seeds": "0-2", "scenario": "rational",
    "brackets": "us_federal_2024", "swf": "inverse_skill", "kappa": "calibrated", "lm": "offline",
    "workers": "llm", "oracle_trials": None, "oracle_refine": None, "out": "results",
    "skill_floor": "min_wage", "hours_grid": "none", "rate_grid": "none", "max_rate_move": "none",
    "top_income_cap": "none", "initial_rate": None, "history_len": None, "saez_v1_variant": "saez",
}


#: The default run's time on the 2-core development machine (offline engine), stated once.
DEFAULT_RUN_TIME = "about 3.5 minutes on 2 cores"

#: Every file a comparison may write under --out (a re-run of the same settings replaces exactly these).
OUTPUT_FILES: tuple[str, ...] = ("summary.csv", "trajectory.csv", "weights.csv", "swf_matrix.csv",
                                 "paired_vs_saez.csv", "saez_robustness.csv", "report.md", "config.json",
                                 "welfare_by_year.png", "schedules.png", "income_by_bracket.png")


@dataclass
class CompareConfig:
    """The resolved configuration of one comparison (everything the report records)."""

    agents: int
    years: int
    steps_per_year: int
    seeds: list[int]
    scenario: str
    brackets: str
    cutoffs: list[float]
    swf: str
    kappa: float
    kappa_name: str
    lm: str
    api_base: list[str]
    temperature: float | None
    workers: str
    planners: list[str]
    planner_program: str | None
    oracle_trials: int | None
    oracle_refine: int | None
    out: str
    preset: str | None
    skill_floor: float = MIN_WAGE_SKILL
    plots: bool = True
    progress: bool = True
    concurrency: int = 8
    timeout: float = 60.0
    num_retries: int = 3
    structured: str = "auto"
    max_tokens: int | None = None
    reasoning_effort: str | None = None
    max_fallback_rate: float = 0.5
    fallback_patience: int = 3
    price_in: float | None = None
    price_out: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The world's rules (--preset paper-v1 sets them; see SimulationConfig).
    saez_v1_variant: str = "saez"
    hours_grid: float | None = None
    rate_grid: float | None = None
    max_rate_move: float | None = None
    top_income_cap: float | None = None
    initial_rate: float | None = None
    history_len: int | None = None

    def world(self) -> dict[str, Any]:
        """How every schedule is scored: the welfare-weight floor and the workers' hours grid."""
        return {"skill_floor": self.skill_floor, "hours_grid": self.hours_grid}

    def capped(self, schedule: TaxSchedule) -> TaxSchedule:
        """``schedule`` with the run's top-income cap (unchanged when there is none)."""
        return schedule if self.top_income_cap is None else schedule.with_top_income_cap(self.top_income_cap)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kappa"] = self.kappa
        return d


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
    return p


def resolve_config(args: argparse.Namespace) -> CompareConfig:
    """Fill defaults (preset first, explicit flags win) and validate every value; raise ConfigError."""
    values = dict(DEFAULTS)
    if args.preset == "paper":
        values.update(PAPER_PRESET)
    elif args.preset == "paper-v1":
        values.update(PAPER_PRESET)
        values.update(PAPER_V1_PRESET)
    for key in values:
        v = getattr(args, key, None)
        if v is not None:
            values[key] = v

    agents = values["agents"]
    if agents <= 0:
        raise ConfigError(f"--agents={agents} must be a positive integer")
    if values["years"] <= 0:
        raise ConfigError(f"--years={values['years']} must be a positive integer")
    if values["steps_per_year"] <= 0:
        raise ConfigError(f"--steps-per-year={values['steps_per_year']} must be a positive integer")
    seeds = parse_seeds(values["seeds"] if isinstance(values["seeds"], (str, int)) else list(values["seeds"]))
    if values["scenario"] not in SCENARIOS:
        raise ConfigError(f"unknown --scenario {values['scenario']!r}; choose one of {', '.join(SCENARIOS)}")

    brackets = str(values["brackets"])
    try:
        cutoffs = resolve_cutoffs(parse_brackets(brackets, "--brackets"))
    except ValueError as e:
        raise ConfigError(str(e)) from None

    swf = str(values["swf"])
    try:
        swf = check_swf(swf)
    except ValueError:
        raise ConfigError(f"unknown --swf {swf!r}; choose one of {', '.join(SWFS)}") from None

    kappa_name = str(values["kappa"])
    try:
        kappa = resolve_kappa(parse_kappa(kappa_name))
    except ValueError as e:
        raise ConfigError(f"--kappa: {e}") from None

    try:
        skill_floor = resolve_skill_floor(values["skill_floor"])
    except ValueError:
        raise ConfigError(f"--skill-floor={values['skill_floor']!r} must be a number >= 0 ($/year per weekly hour) "
                          f"or one of {', '.join(sorted(SKILL_FLOOR_PRESETS))}") from None

    notes: list[str] = []
    if args.planners is None:
        planners = [p for p in PLANNERS if p != "compiled" or args.planner_program]
    else:
        planners = [x.strip() for x in args.planners.split(",") if x.strip()]
        unknown = [x for x in planners if x not in PLANNERS]
        if unknown:
            raise ConfigError(f"unknown planner {unknown[0]!r} in --planners; choose from {', '.join(PLANNERS)}")
        if not planners:
            raise ConfigError("--planners is empty; choose from " + ", ".join(PLANNERS))
        planners = sorted(set(planners), key=PLANNERS.index)
    if values["scenario"] == "democratic" and "llm" in planners and "democratic" in planners:
        # The llm planner in the democratic scenario IS the democratic planner: run it once.
        planners.remove("llm")
        notes.append("--scenario democratic: the llm planner's simulation is the democratic scenario, reported as "
                     "the 'democratic' row (not run twice).")
    if "compiled" in planners:
        if not args.planner_program:
            raise ConfigError("planner 'compiled' needs --planner-program PATH (a program from optimize.planner)")
        check_program_file(args.planner_program, "--planner-program")
    elif args.planner_program and args.planners is not None:
        raise ConfigError("--planner-program is given but 'compiled' is not in --planners")
    if values["oracle_trials"] is not None and values["oracle_trials"] <= 0:
        raise ConfigError(f"--oracle-trials={values['oracle_trials']} must be a positive integer")
    if values["oracle_refine"] is not None and values["oracle_refine"] < 0:
        raise ConfigError(f"--oracle-refine={values['oracle_refine']} must be >= 0")
    if args.temperature is not None and not 0.0 <= args.temperature <= 2.0:
        raise ConfigError(f"--temperature={args.temperature} is outside [0, 2]")
    if args.concurrency < 1:
        raise ConfigError(f"--concurrency={args.concurrency} must be >= 1")
    if not args.timeout > 0:
        raise ConfigError(f"--timeout={args.timeout} must be > 0 seconds")
    if args.num_retries < 0:
        raise ConfigError(f"--num-retries={args.num_retries} must be >= 0")
    rules = {k: _optional_number(k, values[k]) for k in _WORLD_RULES}
    for k, hi in (("hours_grid", 100.0), ("rate_grid", 100.0)):
        if rules[k] is not None and not 0 < rules[k] <= hi:
            raise ConfigError(f"--{k.replace('_', '-')}={rules[k]:g} must be in (0, {hi:g}] or none")
    if rules["max_rate_move"] is not None and not 0 <= rules["max_rate_move"] <= 100:
        raise ConfigError(f"--max-rate-move={rules['max_rate_move']:g} must be in [0, 100] or none")
    if rules["top_income_cap"] is not None and not rules["top_income_cap"] > cutoffs[-1]:
        raise ConfigError(f"--top-income-cap={rules['top_income_cap']:g} must be above the top bracket's cut-off "
                          f"{cutoffs[-1]:g}")
    initial_rate = values["initial_rate"]
    if initial_rate is not None and not 0.0 <= float(initial_rate) <= 100.0:
        raise ConfigError(f"--initial-rate={initial_rate:g} is outside [0, 100] (percent)")
    history_len = values["history_len"]
    if history_len is not None and not 0 <= int(history_len) <= 1000:
        raise ConfigError(f"--history-len={history_len} must be in [0, 1000]")
    variant = str(values["saez_v1_variant"])
    if "saez_v1" in planners and args.planners is None and cutoffs[-1] >= V1_TOP:
        planners.remove("saez_v1")  # not asked for: leave it out rather than fail the default run
        notes.append(f"saez_v1 was left out: the earlier implementation's Saez needs every cut-off below "
                     f"${V1_TOP:,.0f}.")
    if "saez_v1" in planners:
        if cutoffs[-1] >= V1_TOP:
            raise ConfigError(f"saez_v1 needs every cut-off below ${V1_TOP:,.0f} (the reference's top bound); "
                              f"--brackets has {cutoffs[-1]:,.0f}")
        fallback = V1_VARIANTS.get(variant)
        if fallback is not None and len(fallback) not in (1, len(cutoffs)):
            raise ConfigError(f"--saez-v1-variant {variant} has {len(fallback)} elasticities but --brackets has "
                              f"{len(cutoffs)} brackets (the reference raises here too); choose saez or saez_flat")
    lm = str(values["lm"]).strip()
    if not lm:
        raise ConfigError("--lm is empty; give a model string such as openai/gpt-4o-mini, or 'offline'")

    from programs.simulation.guard import make_guard

    make_guard(args)  # --max-fallback-rate / --fallback-patience: one line before any work
    from programs.lm.cost import check_prices

    check_prices(args.price_in, args.price_out)
    return CompareConfig(
        agents=agents, years=values["years"], steps_per_year=values["steps_per_year"], seeds=seeds,
        scenario=values["scenario"], brackets=brackets, cutoffs=[float(c) for c in cutoffs], swf=swf,
        kappa=kappa, kappa_name=kappa_name, lm=lm, api_base=list(args.api_base), temperature=args.temperature,
        workers=values["workers"], planners=planners, planner_program=args.planner_program,
        oracle_trials=values["oracle_trials"], oracle_refine=values["oracle_refine"], out=values["out"], preset=args.preset,
        skill_floor=skill_floor,
        plots=not args.no_plots, progress=not args.no_progress,
        concurrency=args.concurrency, timeout=args.timeout, num_retries=args.num_retries,
        structured=args.structured, max_tokens=args.max_tokens, reasoning_effort=args.reasoning_effort,
        extra={"notes": notes},
        max_fallback_rate=args.max_fallback_rate, fallback_patience=args.fallback_patience,
        price_in=args.price_in, price_out=args.price_out,
        saez_v1_variant=variant, initial_rate=None if initial_rate is None else float(initial_rate),
        history_len=None if history_len is None else int(history_len), **rules,
    )


def _optional_number(key: str, value: Any) -> float | None:
    """A world-rule flag's value: a number, or None for 'none'/'off'/None (one-line ConfigError otherwise)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "off")):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--{key.replace('_', '-')}={value!r} must be a number or none") from None
    if not np.isfinite(v):
        raise ConfigError(f"--{key.replace('_', '-')}={value!r} must be a finite number or none")
    return v




# ------------------------------------------------------------------------------------------------------
def run_comparison(cfg: CompareConfig, *, log=print) -> dict[str, Any]:
    """Run every planner on every seed, write the outputs and return them (runs, table, paths)."""
    from tqdm.auto import tqdm

    from economy.population import Population

    t0 = time.perf_counter()
    cutoffs = np.asarray(cfg.cutoffs, dtype=np.float64)
    learning = [p for p in cfg.planners if p in LEARNING]
    blackbox = [p for p in cfg.planners if p in BLACKBOX]
    lm_label = None
    ctx = None
    if learning or blackbox:
        from eval.learning import LearningContext
        ctx = LearningContext(cfg)  # LMs are built per seed (the offline engine is seeded by it)
        if learning or cfg.workers == "llm":
            lm_label = ctx.lm_label
    n_tasks = len(cfg.seeds) * (len(BASELINES) + len(learning) + len(blackbox) + 2)  # + SWF matrix, Saez robustness
    pops: dict[int, Any] = {}
    robustness_rows: list[dict[str, Any]] = []
    world = cfg.world()
    bar = tqdm(total=n_tasks, desc="eval.compare", unit="run", disable=not cfg.progress, file=sys.stderr)
    runs: list[Run] = []
    refs: dict[int, tuple[float, float]] = {}
    notes: list[str] = list(cfg.extra.get("notes", []))
    for seed in cfg.seeds:
        pop = Population.sample(cfg.agents, seed=seed)
        pops[seed] = pop
        schedules: dict[str, TaxSchedule] = {}
        extra: dict[str, dict[str, float]] = {}

        def step(name: str) -> None:
            bar.set_postfix_str(f"seed {seed}: {name}")

        step("none")  # the one-shot baselines first, then the learning planners, then the oracle
        schedules["none"] = cfg.capped(baselines.none_schedule(cutoffs))
        bar.update()
        step("flat")
        # (The flat and oracle searches run without the top-income cap; their results are scored with it.)
        schedules["flat"] = cfg.capped(baselines.flat_schedule(pop, cutoffs, cfg.swf, cfg.kappa, **world))
        bar.update()
        step("us_federal")
        us, note = baselines.us_federal_schedule(cfg.brackets, cutoffs)
        schedules["us_federal"] = cfg.capped(us) if cfg.top_income_cap is None or us.cutoffs[-1] < cfg.top_income_cap else us
        if note and note not in notes:
            notes.append(note)
        bar.update()
        step("saez")
        schedules["saez"] = cfg.capped(baselines.saez_baseline(pop, cutoffs, cfg.swf, cfg.kappa,
                                                               skill_floor=cfg.skill_floor))
        bar.update()
        if "saez_v1" in cfg.planners:
            step("saez_v1")
            schedules["saez_v1"] = cfg.capped(baselines.saez_v1_baseline(pop, cutoffs, cfg.saez_v1_variant))
        bar.update()
        learned: list[Run] = []
        for name in learning:
            step(name)
            learned.append(ctx.run(name, pop, seed))
            bar.update()
        for name in blackbox:
            step(name)
            learned.append(ctx.run_blackbox(name, pop, seed))
            bar.update()
        step("oracle")
        # The oracle's search also starts from every other planner's schedule on these brackets, so it is
        # a ceiling over all rows (LM planners included) whatever its trial budget.
        schedules["oracle"], n_eval = baselines.oracle_baseline(
            pop, cutoffs, cfg.swf, cfg.kappa, seed=seed, n_trials=cfg.oracle_trials, n_refine=cfg.oracle_refine,
            candidates=[schedules[k] for k in ("saez", "saez_v1", "flat", "none") if k in schedules]
            + [r.schedule for r in learned], **world)
        extra["oracle"] = {"oracle_evaluations": float(n_eval)}
        bar.update()
        outcomes = {k: baselines.evaluate(pop, s, cfg.swf, cfg.kappa, **world) for k, s in schedules.items()}
        refs[seed] = (float(outcomes["none"].welfare), float(outcomes["oracle"].welfare))
        step("saez robustness")
        robustness_rows += _saez_robustness(cfg, ctx, pop, seed, cutoffs, refs[seed], schedules["saez"])
        bar.update()
        runs += learned
        for name in BASELINES:
            if name in cfg.planners and name in schedules:
                runs.append(Run(name, seed, schedules[name], outcomes[name], extra=extra.get(name, {})))
    bar.set_postfix_str("every planner under every SWF")
    from eval import swf as swf_eval

    matrix = swf_eval.swf_matrix(runs, pops, cutoffs, main_swf=cfg.swf, main_refs=refs, kappa=cfg.kappa,
                                 skill_floor=cfg.skill_floor)
    bar.update(len(cfg.seeds))
    bar.close()
    elapsed = time.perf_counter() - t0

    os.makedirs(cfg.out, exist_ok=True)
    for name in OUTPUT_FILES:  # the previous run's files (allowed by check_output): none may be left stale
        stale = os.path.join(cfg.out, name)
        if os.path.isfile(stale):
            os.unlink(stale)
    written: list[str] = []

    def save(name: str, write) -> str:
        path = os.path.join(cfg.out, name)
        replace_atomic(Path(path), write)
        written.append(path)
        return path

    labels = _labels(cfg, ctx.offline) if ctx is not None else {}
    df = summary_frame(runs, refs)
    weights = swf_eval.weight_frame(pops, cfg.swf, cfg.skill_floor, cfg.kappa, cutoffs)
    df = _with_weights(df, weights)
    df = _with_best_seen(df, runs)
    save("summary.csv", lambda tmp: df.to_csv(tmp, index=False))
    paired = swf_eval.paired_frame(df)
    robustness = pd.DataFrame(robustness_rows)
    save("weights.csv", lambda tmp: weights.to_csv(tmp, index=False))
    save("swf_matrix.csv", lambda tmp: matrix.to_csv(tmp, index=False))
    save("paired_vs_saez.csv", lambda tmp: paired.to_csv(tmp, index=False))
    save("saez_robustness.csv", lambda tmp: robustness.to_csv(tmp, index=False))
    if learning or blackbox:
        traj = trajectory_frame(runs)
        save("trajectory.csv", lambda tmp: traj.to_csv(tmp, index=False))
    agg = aggregate(df)
    table = format_table(agg, labels=labels)
    paired_text = swf_eval.paired_table(paired, markdown=False, labels=labels) if not paired.empty else ""
    plots: list[str] = []
    if cfg.plots:
        from eval.plots import plot_all
        plots = plot_all(runs, cutoffs, cfg.out, labels=labels, swf=cfg.swf,
                         offline=bool(ctx is not None and ctx.offline))
    if ctx is not None:
        notes += ctx.notes()
    worker_note = (
        "every schedule in the table is scored with rational workers (each agent's exact best response, "
        f"κ = {cfg.kappa:g}, δ = 3.5) on the same population, so the rows are comparable and the oracle is a ceiling"
    )
    if learning:
        who = ("LM workers (`WorkerAgent`, answered by " + (lm_label or cfg.lm) + ")" if cfg.workers == "llm"
               else "rational workers (exact best response)")
        worker_note += (
            f". The learning planners' simulations ran {cfg.years} tax years (numbered 0..{cfg.years - 1}) × "
            f"{cfg.steps_per_year} steps with {who}; "
            "a learning planner's welfare is that of the schedule it set for the final tax year"
            + (", and `welfare_sim` is what the simulation's own workers reached at that year's last step."
               if cfg.workers == "llm" else "."))
    if cfg.preset == "paper" and cfg.skill_floor == 0:
        notes.append("--preset paper: welfare weights without a skill floor (--skill-floor 0), as in the paper; the "
                     "default floors the skill in the weights at the full-time federal minimum wage ($15,080 a year).")
    if cfg.swf == "paper":
        notes.append("SWF `paper` (the reference's Σ u_i / max(z_i, 1) on pre-tax income) is gameable: driving low "
                     "earners to zero hours gives them weight 1 and the whole rebate, so the oracle's welfare dwarfs "
                     "every sensible schedule's and '% oracle gain' is near 0 for the others. It is kept for "
                     "replication; compare the planners by their welfare, or use the default `inverse_skill`.")
    report_path = os.path.join(cfg.out, "report.md")
    write_report(
        report_path, runs=runs, agg=agg, cutoffs=cutoffs, command=cfg.extra.get("command", "python -m eval.compare"),
        config=_config_for_report(cfg), lm_label=lm_label, labels=labels, worker_note=worker_note, notes=notes, plots=plots,
        elapsed=elapsed,
    )
    from eval.blackbox import best_seen_markdown

    swf_eval.insert_sections(report_path, swf_eval.weights_markdown(weights) + best_seen_markdown(runs, labels)
                             + (swf_eval.paired_markdown(paired, labels) if not paired.empty else [])
                             + swf_eval.matrix_markdown(matrix, cfg.swf, labels)
                             + (swf_eval.robustness_markdown(robustness) if not robustness.empty else []))
    written.append(report_path)
    config_path = os.path.join(cfg.out, "config.json")
    write_atomic(Path(config_path), json.dumps(_config_for_report(cfg), indent=2, default=str) + "\n")
    written.append(config_path)
    written += [os.path.join(cfg.out, p) for p in plots]
    log(table)
    if paired_text:
        log("")
        log("Paired difference from Saez (per seed, 95% Student-t CI, paired t-test):")
        log(paired_text)
    log(f"Welfare weights ({cfg.swf}, skill floor {cfg.skill_floor:g}): effective sample size "
        + ", ".join(f"{r.ess:,.0f}" for r in weights.itertuples()) + f" of {cfg.agents} agents (seeds "
        + ", ".join(str(s) for s in weights["seed"]) + ")")
    if lm_label:
        log(f"LM planners ({', '.join(learning)}): {lm_label}")
    if ctx is not None:
        from programs.cli import usage_line

        line = usage_line(ctx.usage_summary())  # by role, a reasoning model's reasoning tokens apart
        if line:
            log(line)
    log(f"wrote {len(written)} files in {cfg.out}/: {', '.join(os.path.basename(w) for w in written)} "
        f"({elapsed:.1f} s)")
    return {"runs": runs, "summary": df, "aggregate": agg, "table": table, "refs": refs, "elapsed": elapsed,
            "written": written, "weights": weights, "swf_matrix": matrix, "paired": paired,
            "saez_robustness": robustness, "populations": pops}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_output(cfg: CompareConfig, overwrite: bool = False) -> None:
    """Validate ``--out`` before any work (one line, ConfigError): a directory that can be written and holds
    no other run's files. An earlier eval.compare run with the same settings may be replaced (re-running a
    command reproduces its files); anything else needs ``--overwrite``."""
    allowed: tuple[str, ...] = ()
    previous = os.path.join(cfg.out, "config.json")
    if os.path.isfile(previous):
        try:
            with open(previous, encoding="utf-8") as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict) and _same_settings(old, _config_for_report(cfg)):
            allowed = OUTPUT_FILES
    check_out_dir(cfg.out, "--out", overwrite=overwrite, allowed=allowed, create=False)


def _same_settings(old: dict[str, Any], new: dict[str, Any]) -> bool:
    new = json.loads(json.dumps(new, default=str))
    ignore = {"command", "plots"}
    return {k: v for k, v in old.items() if k not in ignore} == {k: v for k, v in new.items() if k not in ignore}


def _with_weights(df: "pd.DataFrame", weights: "pd.DataFrame") -> "pd.DataFrame":
    """summary.csv with each seed's welfare-weight diagnostics (ESS, its share, largest and bottom-1% shares)."""
    cols = {"ess": "weights_ess", "ess_share": "weights_ess_share", "top_share": "weights_top_share",
            "bottom_1pct_share": "weights_bottom_1pct_share"}
    w = weights[["seed", *cols]].rename(columns=cols)
    return df.merge(w, on="seed", how="left")


def _with_best_seen(df: "pd.DataFrame", runs: Sequence[Any]) -> "pd.DataFrame":
    """summary.csv with the black-box planners' best-seen year and its welfare (rational workers); NaN elsewhere."""
    best = {(r.planner, r.seed): (r.extra.get("best_seen_welfare", np.nan), r.extra.get("best_seen_year", np.nan))
            for r in runs if r.planner in BLACKBOX}
    df = df.copy()
    df["best_seen_welfare"] = [best.get((p, s), (np.nan, np.nan))[0] for p, s in zip(df["planner"], df["seed"])]
    df["best_seen_year"] = [best.get((p, s), (np.nan, np.nan))[1] for p, s in zip(df["planner"], df["seed"])]
    return df


def _saez_robustness(cfg: CompareConfig, ctx: Any, pop: Any, seed: int, cutoffs: np.ndarray,
                     refs: tuple[float, float], saez: TaxSchedule) -> list[dict[str, Any]]:
    """Saez's elasticity sweep and empirical elasticity on one seed (LM workers when the run uses them)."""
    from eval.swf import saez_robustness

    sim_config, lms = None, None
    if cfg.workers == "llm" and ctx is not None and cfg.brackets in PRESETS:
        from eval.learning import _sim_settings
        from programs.simulation import load_config

        sim_config = load_config(**_sim_settings(cfg, "es", seed))  # the rational/bounded scenario, LM workers
        lms = ctx._lms(seed)
    fallbacks: dict[str, int] = {}
    usage: dict[str, dict[str, int]] = {}
    rows = saez_robustness(pop, cutoffs, seed=seed, swf=cfg.swf, kappa=cfg.kappa, skill_floor=cfg.skill_floor,
                           refs=refs, base=saez, sim_config=sim_config, lms=lms, fallbacks=fallbacks, usage=usage)
    if ctx is not None:
        ctx.count_fallbacks("saez_empirical", fallbacks)
        ctx.count_usage(usage)
    return rows


def _labels(cfg: CompareConfig, offline: bool) -> dict[str, str]:
    """Display names that say when the LM planners ran on the offline engine (never shown as LLM results)."""
    if not offline:
        return {}
    return {p: f"{p} (offline engine)" for p in LEARNING}


def _config_for_report(cfg: CompareConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    d.pop("extra", None)
    d.pop("progress", None)
    d["command"] = cfg.extra.get("command")
    return d


def dry_run_calls(cfg: CompareConfig) -> dict[str, int]:
    """LM answers by role of the whole comparison (``programs.simulation.dryrun``): per seed, each learning
    planner's simulation, and with LM workers each black-box planner's and the empirical Saez elasticity's."""
    from eval.learning import _sim_settings
    from programs.simulation import load_config
    from programs.simulation.dryrun import add_calls, calls_by_role

    parts = []
    for seed in cfg.seeds:
        for p in cfg.planners:
            if p in LEARNING:
                parts.append(calls_by_role(load_config(**_sim_settings(cfg, p, seed))))
            elif p in BLACKBOX and cfg.workers == "llm":
                parts.append(calls_by_role(load_config(**_sim_settings(cfg, p, seed)), planner_calls=False))
        if cfg.workers == "llm" and cfg.brackets in PRESETS:  # the empirical Saez elasticity: 2 tax years
            es = load_config(**_sim_settings(cfg, "es", seed))
            parts.append(calls_by_role(es.model_copy(update={"years": 2}), planner_calls=False))
    return add_calls(*parts)


def dry_run_lines(cfg: CompareConfig) -> list[str]:
    from programs.simulation.dryrun import dry_run

    from programs.lm.reasoning import reasoning_plan

    plan = dry_run(dry_run_calls(cfg), max_tokens=cfg.max_tokens, n_brackets=len(cfg.cutoffs),
                   reasoning=reasoning_plan(cfg.lm, cfg.api_base or None, cfg.reasoning_effort))
    what = (f"eval.compare ({len(cfg.seeds)} seeds x planners {', '.join(cfg.planners)}; {cfg.agents} agents, "
            f"{cfg.years} tax years x {cfg.steps_per_year} steps, workers {cfg.workers})")
    return plan.lines(what) + [plan.cost_line(cfg.lm, cfg.api_base, cfg.price_in, cfg.price_out)]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns 0, or raises SystemExit(2) on a bad configuration (one line on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = resolve_config(args)
        cfg.extra["command"] = "python -m eval.compare" + ("" if not argv else " " + shlex.join(argv))
        if any(p in LEARNING for p in cfg.planners) or (cfg.workers == "llm" and any(p in BLACKBOX for p in cfg.planners)):
            from eval.learning import check_learning_config
            check_learning_config(cfg)
        if not args.dry_run:
            check_output(cfg, overwrite=args.overwrite)
    except ConfigError as e:
        parser.exit(2, f"eval.compare: error: {e}\n")
    if args.dry_run:
        for line in dry_run_lines(cfg):
            print(line)
        return 0
    from programs.simulation.guard import FallbackStop

    try:
        run_comparison(cfg)
    except FallbackStop as stop:
        # eval.compare writes its outputs at the end (it has no --resume): nothing was saved.
        print(f"eval.compare: {stop.line(cfg.extra['command'], how='nothing was saved; run again with')}",
              file=sys.stderr)
        return EXIT_FALLBACKS
    except KeyboardInterrupt:
        print(f"\neval.compare: interrupted: nothing was saved (the outputs in {cfg.out}/ are written at the end); "
              f"run again with: {cfg.extra['command']}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
