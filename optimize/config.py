"""Resolved, validated settings of one ``optimize.planner`` run: every flag checked before any LM call.

``resolve`` raises ``programs.errors.ConfigError`` (one line naming the flag and its allowed range) and
builds no LM; ``--budget`` is split here into the held-out/validation scoring and the optimizer's share.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from economy.constants import resolve_skill_floor
from optimize.args import DEFAULT_BUDGET
from programs.lm.backends import backend_settings
from programs.redact import redact
from programs.cli import check_out_file, check_program_file, parse_seeds
from programs.errors import ConfigError

__all__ = ["Config", "resolve", "evaluation_calls"]


@dataclass
class Config:
    """The resolved, validated settings of one run."""

    args: argparse.Namespace
    econ: Any
    sit: Any
    demos: Any
    train_seeds: list[int]
    val_seeds: list[int]
    heldout_seeds: list[int]
    tune_seeds: list[int]
    out: Path
    summary_path: Path
    plan: Any = None
    workers: str = "rational"
    eval_calls: int = 0

    @property
    def in_process(self) -> bool:
        return self.args.lm.strip() == "offline"



def _check_int(name: str, value: int, lo: int, hi: int | None = None) -> None:
    if value < lo or (hi is not None and value > hi):
        rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ConfigError(f"--{name}={value} must be {rng}")


def resolve(args: argparse.Namespace) -> Config:
    """Validate every flag without building or calling any LM; raise ConfigError (one line)."""
    from optimize.compile import OPTIMIZERS, DemoSettings
    from optimize.situations import EconomySpec, SituationSpec
    from programs.lm import ConfigError as LMConfigError
    from programs.lm import check_lm_config

    if args.optimizer not in OPTIMIZERS:
        raise ConfigError(f"--optimizer={args.optimizer!r} must be one of {', '.join(OPTIMIZERS)}")
    if args.module_type not in ("predict", "cot"):
        raise ConfigError(f"--module={args.module_type!r} must be predict or cot")
    workers = args.workers
    if workers not in ("rational", "llm"):
        raise ConfigError(f"--workers={workers!r} must be rational or llm")
    _check_int("history-len", args.history_len, 0, 1000)
    _check_int("best-k", args.best_k, 0, 100)
    _check_int("max-demos", args.max_demos, 0, 64)
    _check_int("max-labeled-demos", args.max_labeled_demos, 0, 64)
    _check_int("steps-per-year", args.steps_per_year, 1, 1000)
    _check_int("concurrency", args.concurrency, 1, 1024)
    _check_int("trials", args.trials, 1)
    _check_int("seed", args.seed, 0, 2**32 - 1)
    if not (math.isfinite(args.demo_threshold) and 0.0 < args.demo_threshold <= 1.0):
        raise ConfigError(f"--demo-threshold={args.demo_threshold} must be in (0, 1]")
    if args.budget is not None and args.budget < 1:
        raise ConfigError(f"--budget={args.budget} must be >= 1 LM call")
    try:
        seeds = {name: parse_seeds(getattr(args, name.replace("-", "_")), f"--{name}")
                 for name in ("train-seeds", "val-seeds", "heldout-seeds", "tune-seeds")}
        econ = EconomySpec(agents=args.agents, brackets=args.brackets, swf=args.swf, kappa=args.kappa,
                           skill_floor=resolve_skill_floor(args.skill_floor),
                           oracle_trials=args.oracle_trials, oracle_refine=args.oracle_refine)
        sit = SituationSpec(years=args.years, steps_per_year=args.steps_per_year,
                            workers=workers if not args.tune else "rational", history_len=args.history_len,
                            best_k=args.best_k, labels=not args.no_labels, temperature=args.temperature)
    except ValueError as exc:
        raise ConfigError(_flagged(str(exc))) from None
    for a, b in (("train-seeds", "val-seeds"), ("train-seeds", "heldout-seeds"), ("val-seeds", "heldout-seeds"),
                 ("tune-seeds", "heldout-seeds")):
        common = sorted(set(seeds[a]) & set(seeds[b]))
        if common:
            raise ConfigError(f"--{a} and --{b} share seed(s) {common[:5]}: held-out and validation populations "
                              "must differ from the ones trained on")
    if not getattr(args, "dry_run", False):  # before the LM probes and --out: an unreachable store is quick to tell
        from programs.tracking import check_mlflow

        check_mlflow(args.mlflow)
    try:
        # probe: GET /models on each endpoint; the local model answers once in a child process.
        check_lm_config(args.lm, args.api_base, temperature=args.temperature, concurrency=args.concurrency,
                        probe=True, structured=args.structured, max_tokens=args.max_tokens,
                        settings=backend_settings(args), reasoning_effort=args.reasoning_effort)
        for kind in ("prompt", "reflection"):
            _check_instruction_lm(args, kind)
    except LMConfigError as exc:
        raise ConfigError(_flagged(str(exc))) from None
    out = Path(args.out)
    if out.suffix != ".json":
        raise ConfigError(f"--out={args.out!r} must end in .json (the program is saved as DSPy JSON)")
    summary_path = out.with_name(out.stem + ".summary.json")
    replace = args.overwrite or _same_study(args, summary_path)
    if not getattr(args, "dry_run", False):  # a dry run writes nothing, so it may name any --out
        check_out_file(out, "--out", overwrite=replace)
        check_out_file(summary_path, "--out's summary", overwrite=replace)
    cfg = Config(args, econ, sit, DemoSettings(args.max_demos, args.max_labeled_demos, args.demo_threshold),
                 seeds["train-seeds"], seeds["val-seeds"], seeds["heldout-seeds"], seeds["tune-seeds"], out,
                 summary_path, workers=workers)
    if args.tune:
        _resolve_tune(cfg)
    else:
        if args.storage is not None or args.program is not None:
            raise ConfigError("--storage and --program are tuning settings: add --tune")
        _resolve_budget(cfg)
    return cfg


def _check_instruction_lm(args: argparse.Namespace, kind: str) -> None:
    """``--prompt-lm``/``--reflection-lm`` and their ``--*-api-base``: only for an optimizer that uses them."""
    from optimize.optimizers import OPTIMIZERS, optimizer_class
    from programs.lm import check_lm_config

    lm, bases = getattr(args, f"{kind}_lm"), getattr(args, f"{kind}_api_base")
    users = [n for n, cls in OPTIMIZERS.items() if cls.instruction_lm == kind]
    if lm is None:
        if bases:
            raise ConfigError(f"--{kind}-api-base needs --{kind}-lm")
        return
    if args.tune:
        raise ConfigError(f"--{kind}-lm writes instructions when compiling; --tune does not use it")
    if optimizer_class(args.optimizer).instruction_lm != kind:
        raise ConfigError(f"--{kind}-lm is for {', '.join(users)}; --optimizer {args.optimizer} does not use it")
    if lm.strip() != "offline":
        check_lm_config(lm, bases, temperature=1.0, probe=bool(bases))
    elif bases:
        raise ConfigError(f"--{kind}-api-base is for a served --{kind}-lm, not the offline writer")


def _same_study(args: argparse.Namespace, summary_path: Path) -> bool:
    """--tune processes sharing one study (same --storage and --study-name) write the same --out in turn."""
    if not (args.tune and args.storage) or not summary_path.is_file():
        return False
    try:
        old = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(old, dict) and old.get("mode") == "tune" and old.get("storage") == redact(args.storage)
            and (old.get("study") or {}).get("study_name") == args.study_name)


def _flagged(msg: str) -> str:
    """A library message with its setting spelled as the flag (``agents=0`` -> ``--agents=0``)."""
    for name in ("agents", "brackets", "swf", "kappa", "skill_floor", "years", "steps_per_year", "history_len", "best_k",
                 "oracle_trials", "oracle_refine", "temperature", "concurrency", "api_base", "lm", "workers"):
        if msg.startswith(name + "=") or msg.startswith(name + " "):
            return "--" + name.replace("_", "-") + msg[len(name):]
    return msg


def _resolve_budget(cfg: Config) -> None:
    from optimize.budget import BudgetError, minimum_budget, plan_budget

    a = cfg.args
    per_seed = cfg.sit.years - 1
    n_train, n_val = len(cfg.train_seeds) * per_seed, len(cfg.val_seeds) * per_seed
    n_held = len(cfg.heldout_seeds) * per_seed
    e = 1 + (cfg.econ.agents * a.steps_per_year if cfg.workers == "llm" else 0)
    budget = a.budget if a.budget is not None else DEFAULT_BUDGET
    # --budget bounds the whole run: scoring before and after (held-out and validation) is paid first.
    cfg.eval_calls = evaluation_calls(n_held, n_val, e)
    try:
        cfg.plan = plan_budget(a.optimizer, budget - cfg.eval_calls, n_train, n_val, e)
    except BudgetError:
        need = minimum_budget(a.optimizer, n_train, n_val, e) + cfg.eval_calls
        raise ConfigError(f"--budget {budget} is too small for {a.optimizer} on {n_train} training and {n_val} "
                          f"validation situations: scoring before and after takes {cfg.eval_calls} LM calls "
                          f"({n_held} held-out + {n_val} validation situations, twice), and the whole run needs at "
                          f"least {need}") from None


def evaluation_calls(n_held: int, n_val: int, calls_per_eval: int) -> int:
    """LM calls of scoring the uncompiled and the compiled planner on the held-out and validation situations."""
    return 2 * (n_held + n_val) * calls_per_eval


def _resolve_tune(cfg: Config) -> None:
    from optimize.tune import TuneSettings, check_storage, max_calls_per_trial

    a = cfg.args
    workers = a.workers if getattr(a, "_explicit_workers", False) else "llm"
    most = max_calls_per_trial(TuneSettings(econ=cfg.econ, seeds=cfg.tune_seeds, years=cfg.sit.years, workers=workers))
    if a.budget is not None and most > a.budget:
        raise ConfigError(f"--budget {a.budget} is too small for one tuning trial, which can make up to {most} LM calls")
    if a.storage is not None:
        try:
            check_storage(a.storage)
        except ValueError as exc:
            raise ConfigError(str(exc).replace("storage=", "--storage=", 1)) from None
    if not a.study_name.strip():
        raise ConfigError("--study-name must not be empty")
    if a.program is not None:
        check_program_file(a.program, "--program")
        try:
            from programs.agents.tax_planner import PlannerAgent

            agent = PlannerAgent.load(a.program)
        except Exception as exc:  # a broken file: say which and why, in one line
            raise ConfigError(f"--program={a.program!r} does not load: {' '.join(str(exc).split())[:200]}") from None
        if [float(c) for c in agent.cutoffs] != cfg.econ.cutoffs:
            raise ConfigError(f"--program was compiled for brackets {agent.cutoffs} but --brackets "
                              f"{a.brackets!r} has {cfg.econ.cutoffs}")

