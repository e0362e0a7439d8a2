"""What a comparison runs with: the planners, presets and defaults, :class:`CompareConfig` and the
resolution of the command line into it (every value validated, one-line ``ConfigError``)."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from economy import TaxSchedule, parse_brackets, parse_kappa, resolve_cutoffs, resolve_kappa
from economy.constants import MIN_WAGE_SKILL, SKILL_FLOOR_PRESETS, resolve_skill_floor
from economy.saez_v1 import V1_TOP, V1_VARIANTS
from economy.welfare import SWFS, check_swf
from eval.report import ORDER
from programs.cli import check_program_file, parse_seeds
from programs.errors import ConfigError

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
                                 "welfare_by_year.png", "schedules.png", "income_by_bracket.png", "report.html",
                                 "plotly.min.js")


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
    #: Worker processes (``eval.parallel``); not a setting of the results, so not recorded with them.
    jobs: int = 1
    concurrency: int = 8
    timeout: float = 60.0
    num_retries: int = 3
    structured: str = "auto"
    max_tokens: int | None = None
    reasoning_effort: str | None = None
    #: The LM backend's own settings (``--lm local``: ``LoadSettings``), by backend name.
    backend_settings: dict[str, Any] = field(default_factory=dict)
    #: Those settings as this machine resolved them (window, threads, GPU layers, repacking and why).
    lm_backend: dict[str, Any] | None = None
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

    from eval.parallel import resolve_jobs

    jobs = resolve_jobs(getattr(args, "jobs", None), lm)
    from programs.simulation.guard import make_guard

    make_guard(args)  # --max-fallback-rate / --fallback-patience: one line before any work
    from programs.lm.cost import check_prices

    check_prices(args.price_in, args.price_out)
    from programs.lm.backends import backend_for, backend_settings
    from programs.lm.models import lm_record

    own = {k: v for k, v in backend_settings(args).items() if k == backend_for(lm).name}
    return CompareConfig(
        agents=agents, years=values["years"], steps_per_year=values["steps_per_year"], seeds=seeds,
        scenario=values["scenario"], brackets=brackets, cutoffs=[float(c) for c in cutoffs], swf=swf,
        kappa=kappa, kappa_name=kappa_name, lm=lm, api_base=list(args.api_base), temperature=args.temperature,
        workers=values["workers"], planners=planners, planner_program=args.planner_program,
        oracle_trials=values["oracle_trials"], oracle_refine=values["oracle_refine"], out=values["out"], preset=args.preset,
        skill_floor=skill_floor,
        plots=not args.no_plots, progress=not args.no_progress, jobs=jobs,
        concurrency=args.concurrency, timeout=args.timeout, num_retries=args.num_retries,
        structured=args.structured, max_tokens=args.max_tokens, reasoning_effort=args.reasoning_effort,
        extra={"notes": notes},
        backend_settings=own, lm_backend=lm_record(lm, own),
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
