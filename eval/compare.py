"""``python -m eval.compare``: every planner side by side on the same populations and seeds.

Seed ``s`` gives the population ``Population.sample(agents, seed=s)``; every planner is run on it and its
final schedule is evaluated with the same (rational, exact best-response) worker model, so welfare,
revenue, hours and Gini are comparable across rows, and the oracle is a true ceiling over the rational
baselines. Outputs: a printed table, ``summary.csv``, ``report.md`` and PNG plots under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from economy import KAPPA_PAPER, PRESETS, TaxSchedule, parse_kappa, resolve_cutoffs, resolve_kappa
from economy.welfare import SWFS, check_swf
from eval import baselines
from programs.cli import SEEDS_HELP, OneLineParser, add_answer_args, parse_seeds
from programs.errors import ConfigError
from eval.report import ORDER, Run, aggregate, format_table, summary_frame, trajectory_frame, write_report

PLANNERS: tuple[str, ...] = ORDER
BASELINES: tuple[str, ...] = ("oracle", "saez", "us_federal", "flat", "none")
LEARNING: tuple[str, ...] = ("llm", "compiled", "democratic")
SCENARIOS: tuple[str, ...] = ("rational", "bounded", "democratic")
WORKERS: tuple[str, ...] = ("rational", "llm")

#: What ``--preset paper`` sets (each can still be overridden by giving the flag explicitly).
PAPER_PRESET: dict[str, Any] = {"brackets": "three", "swf": "paper", "steps_per_year": 25, "kappa": "paper"}

#: Defaults chosen so that ``python -m eval.compare`` finishes offline on 2 cores in under 3 minutes.
DEFAULTS: dict[str, Any] = {
    "agents": 100, "years": 8, "steps_per_year": 5, "seeds": "0-2", "scenario": "rational",
    "brackets": "us_federal_2024", "swf": "inverse_skill", "kappa": "calibrated", "lm": "offline",
    "workers": "llm", "oracle_trials": None, "oracle_refine": None, "out": "results",
}


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
    plots: bool = True
    progress: bool = True
    concurrency: int = 8
    timeout: float = 60.0
    num_retries: int = 3
    structured: str = "auto"
    max_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

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
            "8 tax years x 5 steps, LM workers on the offline engine) take about a minute on 2 cores. "
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
    p.add_argument("--preset", default=None, choices=["paper"],
                   help="'paper' = the LLM Economist paper's set-up: --brackets three --swf paper "
                        "--steps-per-year 25 --kappa paper (κ = 0.0005); flags given explicitly override it")
    p.add_argument("--out", default=None, help=f"output directory (default {d['out']}/)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def resolve_config(args: argparse.Namespace) -> CompareConfig:
    """Fill defaults (preset first, explicit flags win) and validate every value; raise ConfigError."""
    values = dict(DEFAULTS)
    if args.preset == "paper":
        values.update(PAPER_PRESET)
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
        if brackets in PRESETS:
            cutoffs = resolve_cutoffs(brackets)
        else:
            try:
                nums = [float(x) for x in brackets.split(",") if x.strip()]
            except ValueError:
                raise ValueError(f"unknown --brackets {brackets!r}; choose one of {', '.join(sorted(PRESETS))} "
                                 "or give comma-separated lower bounds starting at 0") from None
            cutoffs = resolve_cutoffs(nums)
    except ValueError as e:
        raise ConfigError(str(e) if "--brackets" in str(e) else f"--brackets {brackets!r}: {e}") from None

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

    notes: list[str] = []
    if args.planners is None:
        planners = [p for p in PLANNERS if p != "compiled" or args.planner_program]
        if brackets not in PRESETS:
            # The simulation runs on preset brackets; the one-shot baselines work on any cut-offs.
            planners = [p for p in planners if p not in LEARNING]
            notes.append(f"The learning planners ({', '.join(LEARNING)}) were left out: their simulation runs on "
                         "bracket presets only, and --brackets gives custom cut-offs.")
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
        if not os.path.isfile(args.planner_program):
            raise ConfigError(f"--planner-program {args.planner_program!r} is not a file")
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
    lm = str(values["lm"]).strip()
    if not lm:
        raise ConfigError("--lm is empty; give a model string such as openai/gpt-4o-mini, or 'offline'")

    return CompareConfig(
        agents=agents, years=values["years"], steps_per_year=values["steps_per_year"], seeds=seeds,
        scenario=values["scenario"], brackets=brackets, cutoffs=[float(c) for c in cutoffs], swf=swf,
        kappa=kappa, kappa_name=kappa_name, lm=lm, api_base=list(args.api_base), temperature=args.temperature,
        workers=values["workers"], planners=planners, planner_program=args.planner_program,
        oracle_trials=values["oracle_trials"], oracle_refine=values["oracle_refine"], out=values["out"], preset=args.preset,
        plots=not args.no_plots, progress=not args.no_progress,
        concurrency=args.concurrency, timeout=args.timeout, num_retries=args.num_retries,
        structured=args.structured, max_tokens=args.max_tokens, extra={"notes": notes},
    )




# ------------------------------------------------------------------------------------------------------
def run_comparison(cfg: CompareConfig, *, log=print) -> dict[str, Any]:
    """Run every planner on every seed, write the outputs and return them (runs, table, paths)."""
    from tqdm.auto import tqdm

    from economy.population import Population

    t0 = time.perf_counter()
    cutoffs = np.asarray(cfg.cutoffs, dtype=np.float64)
    learning = [p for p in cfg.planners if p in LEARNING]
    lm_label = None
    if learning:
        from eval.learning import LearningContext
        ctx = LearningContext(cfg)  # LMs are built per seed (the offline engine is seeded by it)
        lm_label = ctx.lm_label
    n_tasks = len(cfg.seeds) * (len(BASELINES) + len(learning))
    bar = tqdm(total=n_tasks, desc="eval.compare", unit="run", disable=not cfg.progress, file=sys.stderr)
    runs: list[Run] = []
    refs: dict[int, tuple[float, float]] = {}
    notes: list[str] = list(cfg.extra.get("notes", []))
    for seed in cfg.seeds:
        pop = Population.sample(cfg.agents, seed=seed)
        schedules: dict[str, TaxSchedule] = {}
        extra: dict[str, dict[str, float]] = {}

        def step(name: str) -> None:
            bar.set_postfix_str(f"seed {seed}: {name}")

        step("none")  # the one-shot baselines first, then the learning planners, then the oracle
        schedules["none"] = baselines.none_schedule(cutoffs)
        bar.update()
        step("flat")
        schedules["flat"] = baselines.flat_schedule(pop, cutoffs, cfg.swf, cfg.kappa)
        bar.update()
        step("us_federal")
        schedules["us_federal"], note = baselines.us_federal_schedule(cfg.brackets, cutoffs)
        if note and note not in notes:
            notes.append(note)
        bar.update()
        step("saez")
        schedules["saez"] = baselines.saez_baseline(pop, cutoffs, cfg.swf, cfg.kappa)
        bar.update()
        learned: list[Run] = []
        for name in learning:
            step(name)
            learned.append(ctx.run(name, pop, seed))
            bar.update()
        step("oracle")
        # The oracle's search also starts from every other planner's schedule on these brackets, so it is
        # a ceiling over all rows (LM planners included) whatever its trial budget.
        schedules["oracle"], n_eval = baselines.oracle_baseline(
            pop, cutoffs, cfg.swf, cfg.kappa, seed=seed, n_trials=cfg.oracle_trials, n_refine=cfg.oracle_refine,
            candidates=[schedules["saez"], schedules["flat"], schedules["none"]] + [r.schedule for r in learned])
        extra["oracle"] = {"oracle_evaluations": float(n_eval)}
        bar.update()
        outcomes = {k: baselines.evaluate(pop, s, cfg.swf, cfg.kappa) for k, s in schedules.items()}
        refs[seed] = (float(outcomes["none"].welfare), float(outcomes["oracle"].welfare))
        runs += learned
        for name in BASELINES:
            if name in cfg.planners:
                runs.append(Run(name, seed, schedules[name], outcomes[name], extra=extra.get(name, {})))
    bar.close()
    elapsed = time.perf_counter() - t0

    os.makedirs(cfg.out, exist_ok=True)
    labels = _labels(cfg, ctx.offline) if learning else {}
    df = summary_frame(runs, refs)
    csv_path = os.path.join(cfg.out, "summary.csv")
    df.to_csv(csv_path, index=False)
    if learning:
        trajectory_frame(runs).to_csv(os.path.join(cfg.out, "trajectory.csv"), index=False)
    agg = aggregate(df)
    table = format_table(agg, labels=labels)
    plots: list[str] = []
    if cfg.plots:
        from eval.plots import plot_all
        plots = plot_all(runs, cutoffs, cfg.out, labels=labels)
    if learning:
        notes += ctx.notes()
    worker_note = (
        "every schedule in the table is scored with rational workers (each agent's exact best response, "
        f"κ = {cfg.kappa:g}, δ = 3.5) on the same population, so the rows are comparable and the oracle is a ceiling"
    )
    if learning:
        who = ("LM workers (`WorkerAgent`, answered by " + (lm_label or cfg.lm) + ")" if cfg.workers == "llm"
               else "rational workers (exact best response)")
        worker_note += (
            f". The learning planners' simulations ran {cfg.years} tax years × {cfg.steps_per_year} steps with {who}; "
            "a learning planner's welfare is that of the schedule it set for the final tax year"
            + (", and `welfare_sim` is what the simulation's own workers reached at that year's last step."
               if cfg.workers == "llm" else "."))
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
    with open(os.path.join(cfg.out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(_config_for_report(cfg), f, indent=2, default=str)
    log(table)
    if lm_label:
        log(f"LM planners ({', '.join(learning)}): {lm_label}")
    log(f"wrote {csv_path}, {report_path}" + (f" and {len(plots)} plots" if plots else "") + f" in {elapsed:.1f} s")
    return {"runs": runs, "summary": df, "aggregate": agg, "table": table, "refs": refs, "elapsed": elapsed}


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


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns 0, or raises SystemExit(2) on a bad configuration (one line on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = resolve_config(args)
        cfg.extra["command"] = "python -m eval.compare" + ("" if not argv else " " + shlex.join(argv))
        if any(p in LEARNING for p in cfg.planners):
            from eval.learning import check_learning_config
            check_learning_config(cfg)
    except ConfigError as e:
        parser.exit(2, f"eval.compare: error: {e}\n")
    run_comparison(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
