"""``python -m optimize.planner``: compile the planner's prompts and demonstrations against simulated welfare.

Compile (default)::

    python -m optimize.planner --optimizer bootstrap --budget 300 --out compiled/planner.json

draws planner situations from short simulations on the training, validation and held-out population
seeds, scores the uncompiled planner on the held-out situations, compiles it with the chosen DSPy
optimizer (bootstrap | mipro | gepa | copro) within ``--budget`` LM calls, scores the compiled planner on
the same held-out situations, and writes the program (DSPy JSON, loadable by ``PlannerAgent.load`` and
``python -m eval.compare --planner-program``) and ``<out>.summary.json`` beside it; the summary is
also printed.

Tune::

    python -m optimize.planner --tune --trials 20 --storage sqlite:///tune.db --study-name planner

runs an Optuna study over the numeric knobs (history length, tax-year length, temperature, number of
demonstrations) against the end-to-end welfare of short simulations (``optimize.tune``); processes that
share ``--storage`` and ``--study-name`` add their trials to one study. It writes the planner with the
best knobs to ``--out`` and the study summary beside it, with held-out end-to-end scores of the given
knobs and of the best ones.

The default LM is the offline engine, a numeric stand-in that is not a language model; mipro, copro and
gepa then get their instructions from the rule-based offline instruction writer (``programs.lm.writer``),
also not a language model. A bad setting exits with status 2 and one line naming it, before any LM call.
API keys are read from the environment only and never written.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from economy import parse_kappa  # noqa: E402
from economy.constants import resolve_skill_floor  # noqa: E402
from programs.cli import (EXIT_FALLBACKS, SEEDS_HELP, DefaultsOnceFormatter, OneLineParser, add_answer_args, lm_interrupted,  # noqa: E402
                          check_out_file, check_program_file, parse_seeds)
from programs.errors import ConfigError  # noqa: E402
from programs.lm.backends import backend_settings  # noqa: E402
from programs.redact import redact, redact_logs  # noqa: E402
from programs.simulation.runlog import replace_atomic, write_atomic  # noqa: E402

PROG = "python -m optimize.planner"
#: The default --budget bounds every LM call of a compile: the optimizer's (300 with the default seeds) plus
#: scoring the uncompiled and compiled planner on the held-out and validation situations (2 x (24 + 9) = 66).
DEFAULT_BUDGET = 366


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0],
                formatter_class=DefaultsOnceFormatter)
    o = p.add_argument_group("optimizer")
    o.add_argument("--optimizer", default="bootstrap", help="bootstrap | mipro | gepa | copro")
    o.add_argument("--budget", type=int, default=None,
                   help=f"most LM calls of the whole run, every LM counted (compile: default {DEFAULT_BUDGET}; "
                        "scoring the uncompiled and the compiled planner on the held-out and validation situations "
                        "is taken off first, the optimizer gets the rest; with --tune: no trial starts that "
                        "could exceed it, and the held-out scoring after the study is not bounded by it; default "
                        "unlimited)")
    o.add_argument("--max-demos", type=int, default=4, help="most bootstrapped demonstrations (and --tune's cap)")
    o.add_argument("--max-labeled-demos", type=int, default=4,
                   help="most labeled demonstrations (a training situation answered with its oracle rates)")
    o.add_argument("--demo-threshold", type=float, default=0.5,
                   help="a bootstrapped run becomes a demonstration when its score is at least this")
    o.add_argument("--no-labels", action="store_true",
                   help="no oracle labels on training situations: demonstrations come only from the planner's "
                        "own high-scoring runs")
    m = p.add_argument_group("language models")
    m.add_argument("--lm", default="offline", help="planner LM: offline | local | local:PATH.gguf | provider/model")
    m.add_argument("--api-base", action="append", default=None, metavar="URL",
                   help="OpenAI-compatible endpoint(s) for --lm (repeat for several)")
    m.add_argument("--temperature", type=float, default=0.7, help="planner (and LLM workers') temperature")
    m.add_argument("--reflection-lm", default=None,
                   help="LM that writes instructions for mipro/copro/gepa: provider/model, or offline = the "
                        "rule-based offline instruction writer (default: offline when --lm is offline, else --lm)")
    m.add_argument("--reflection-api-base", action="append", default=None, metavar="URL")
    m.add_argument("--concurrency", type=int, default=8, help="parallel evaluations with a served LM")
    add_answer_args(m)
    a = p.add_argument_group("planner")
    a.add_argument("--module", dest="module_type", default="predict", help="predict | cot")
    a.add_argument("--history-len", type=int, default=5, help="recent tax years in the planner's prompt")
    a.add_argument("--best-k", type=int, default=3, help="best past years in the planner's prompt")
    s = p.add_argument_group("situations and metric")
    s.add_argument("--agents", type=int, default=50, help="workers per population")
    s.add_argument("--brackets", default="us_federal_2024",
                   help="a bracket preset (us_federal_2023/2024/2025, three, flat) or cut-offs such as 0,50000,200000")
    s.add_argument("--swf", default="inverse_skill", help="social welfare function")
    s.add_argument("--kappa", type=parse_kappa, default="calibrated", help="labor cost: calibrated | paper | number")
    s.add_argument("--skill-floor", default="min_wage", metavar="V",
                   help="floor on the skill in the inverse_skill/paper welfare weights, dollars per year per weekly "
                        "hour: a number >= 0 or min_wage (default: the full-time federal minimum wage, FLSA $7.25/h "
                        "= 377, i.e. $15,080 a year) or none (= 0, raw weights, the behaviour before the floor)")
    s.add_argument("--years", type=int, default=4,
                   help="tax years simulated per population; situations are the starts of years 1..years-1")
    s.add_argument("--train-seeds", default="0-5", help="population seeds of the training situations; " + SEEDS_HELP)
    s.add_argument("--val-seeds", default="6-8", help="population seeds the optimizer selects on")
    s.add_argument("--heldout-seeds", default="100-107", help="population seeds of the held-out situations")
    s.add_argument("--workers", default="rational",
                   help="how workers respond to a proposal in the metric: rational | llm (compile); "
                        "the workers of --tune's simulations: llm | rational (tune default llm)")
    s.add_argument("--steps-per-year", type=int, default=5, help="tax-year length of LLM workers")
    s.add_argument("--oracle-trials", type=int, default=None, help="oracle search trials (economy default)")
    s.add_argument("--oracle-refine", type=int, default=None, help="oracle refinement budget (economy default)")
    t = p.add_argument_group("tuning (Optuna)")
    t.add_argument("--tune", action="store_true", help="run the Optuna study over the numeric knobs")
    t.add_argument("--trials", type=int, default=20, help="trials this process adds to the study")
    t.add_argument("--storage", default=None, help="Optuna RDB URL: sqlite:///tune.db or postgresql://...")
    t.add_argument("--study-name", default="planner", help="study to create or resume")
    t.add_argument("--tune-seeds", default="0-2", help="population seeds of the tuning simulations")
    t.add_argument("--program", default=None, metavar="JSON",
                   help="with --tune: a compiled program whose instructions and demonstrations are tuned")
    out = p.add_argument_group("output")
    out.add_argument("--out", default="compiled/planner.json",
                     help="compiled program (DSPy JSON); <out>.summary.json is written beside it")
    out.add_argument("--overwrite", action="store_true",
                     help="replace an existing --out and its summary (without it they are refused; --tune runs "
                          "that share --storage and --study-name may replace each other's)")
    out.add_argument("--seed", type=int, default=0, help="seed of the LM and the optimizer")
    out.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    out.add_argument("--dry-run", action="store_true", help="print the most LM calls of this run by role and their "
                     "estimated tokens, then exit 0 without building or calling any LM or writing anything")
    out.add_argument("--verbose", action="store_true", help="show the DSPy optimizers' own logs and progress bars")
    return p


# ──────────────────────────────────────────────────────────────────────────────────────────────
# configuration
# ──────────────────────────────────────────────────────────────────────────────────────────────


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
    from optimize.compile import INSTRUCTION_OPTIMIZERS, OPTIMIZERS, DemoSettings
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
    try:
        # probe: GET /models on each endpoint; the local model answers once in a child process.
        check_lm_config(args.lm, args.api_base, temperature=args.temperature, concurrency=args.concurrency,
                        probe=True, structured=args.structured, max_tokens=args.max_tokens,
                        settings=backend_settings(args), reasoning_effort=args.reasoning_effort)
        if args.reflection_lm is not None:
            if args.tune:
                raise ConfigError("--reflection-lm writes instructions when compiling; --tune does not use it")
            if args.optimizer not in INSTRUCTION_OPTIMIZERS:
                raise ConfigError(f"--reflection-lm writes instructions for {', '.join(INSTRUCTION_OPTIMIZERS)}; "
                                  f"--optimizer {args.optimizer} does not use it")
            if args.reflection_lm.strip() != "offline":
                check_lm_config(args.reflection_lm, args.reflection_api_base, temperature=1.0,
                                probe=bool(args.reflection_api_base))
            elif args.reflection_api_base:
                raise ConfigError("--reflection-api-base is for a served --reflection-lm, not the offline writer")
        elif args.reflection_api_base:
            raise ConfigError("--reflection-api-base needs --reflection-lm")
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


# ──────────────────────────────────────────────────────────────────────────────────────────────
# running
# ──────────────────────────────────────────────────────────────────────────────────────────────


class AllCallsFailed(RuntimeError):
    """Every LM call of a phase failed: the results would be the fallbacks', so nothing is saved."""


def _check_not_all_failed(counter: Any, phase: str, what: str) -> None:
    calls, failed = counter.in_phase(phase), counter.failed_in_phase(phase)
    if calls and failed >= calls:
        raise AllCallsFailed(f"every LM call failed while {what} ({failed} of {calls}; first error: "
                             f"{counter.first_error}); nothing was saved. Check --lm/--api-base")


def _say(cfg: Config, msg: str) -> None:
    if not cfg.args.quiet:
        print(f"[optimize.planner] {msg}", file=sys.stderr, flush=True)


def _lm_record(a: argparse.Namespace) -> dict[str, Any] | None:
    """The LM backend's own settings as this machine resolved them (``--lm local``), for the summary."""
    from programs.lm.models import lm_record

    return lm_record(a.lm, backend_settings(a))


def _task_lms(cfg: Config, temperature: float | None = None) -> list:
    from programs.lm import build_lms

    a = cfg.args
    return build_lms(a.lm, a.api_base, temperature=a.temperature if temperature is None else temperature,
                     seed=a.seed, concurrency=a.concurrency, structured=a.structured, max_tokens=a.max_tokens,
                     settings=backend_settings(a), reasoning_effort=a.reasoning_effort)


def _prompt_lm(cfg: Config) -> tuple[Any, str | None]:
    """The LM that writes instructions (mipro/copro/gepa) and its label; (None, None) for bootstrap."""
    from optimize.compile import INSTRUCTION_OPTIMIZERS
    from programs.lm.writer import WRITER_LABEL, writer_lm
    from programs.lm import build_lms, describe_lm

    a = cfg.args
    if a.optimizer not in INSTRUCTION_OPTIMIZERS:
        return None, None
    name = a.reflection_lm if a.reflection_lm is not None else ("offline" if cfg.in_process else a.lm)
    if name.strip() == "offline":
        return writer_lm(seed=a.seed), WRITER_LABEL
    bases = a.reflection_api_base if a.reflection_lm is not None else a.api_base
    return build_lms(name, bases, temperature=1.0, seed=a.seed)[0], describe_lm(name, bases, temperature=1.0)


def _scores_block(scores: Sequence[float]) -> dict[str, Any]:
    import numpy as np

    arr = np.asarray(scores, dtype=float)
    return {"mean": round(float(arr.mean()), 6), "min": round(float(arr.min()), 6),
            "max": round(float(arr.max()), 6), "n": int(arr.size)}


def save_program(program: Any, path: Path) -> None:
    """Save as DSPy JSON atomically (processes sharing a study may write the same path)."""
    replace_atomic(path, program.save, suffix=".json")


def _common(cfg: Config) -> dict[str, Any]:
    a = cfg.args
    return {
        "economy": cfg.econ.to_dict(),
        "planner": {"module": a.module_type, "history_len": a.history_len, "best_k": a.best_k},
        "seeds": {"train": cfg.train_seeds, "validation": cfg.val_seeds, "heldout": cfg.heldout_seeds},
        "command": redact(" ".join([PROG, shlex.join(getattr(cfg.args, "_argv", None) or [])]).rstrip()),
    }


def run_compile(cfg: Config) -> dict[str, Any]:
    """Draw situations, score before, compile, score after, save; returns the summary."""
    import dspy
    import numpy as np

    from optimize.budget import CallCounter
    from optimize.compile import compile_planner, evaluate_program
    from optimize.metric import WelfareMetric
    from optimize.situations import draw_situations
    from programs.lm import describe_lm
    from programs.agents.batch import batch_threads
    from programs.agents.tax_planner import PlannerAgent

    a = cfg.args
    t0 = time.time()
    lms = _task_lms(cfg)
    threads = batch_threads(lms, a.concurrency)
    prompt_lm, prompt_label = _prompt_lm(cfg)
    _say(cfg, f"drawing situations (oracle search per population): train {len(cfg.train_seeds)}, "
              f"validation {len(cfg.val_seeds)}, held-out {len(cfg.heldout_seeds)} populations of {a.agents}")
    train = draw_situations(cfg.train_seeds, cfg.econ, cfg.sit)
    val = draw_situations(cfg.val_seeds, cfg.econ, cfg.sit)
    held = draw_situations(cfg.heldout_seeds, cfg.econ, cfg.sit)
    metric = WelfareMetric(cfg.econ, workers=cfg.workers, lms=lms, steps_per_year=a.steps_per_year,
                           temperature=a.temperature)
    student = PlannerAgent(a.brackets, module_type=a.module_type, history_len=a.history_len, best_k=a.best_k)
    counter = CallCounter()
    with dspy.context(callbacks=[counter]):
        counter.phase("evaluate")
        _say(cfg, f"scoring the uncompiled planner on {len(held)} held-out situations")
        before = evaluate_program(student, held, metric, lm=lms[0], num_threads=threads)
        _check_not_all_failed(counter, "evaluate", "scoring the uncompiled planner")
        counter.phase("compile")
        _say(cfg, f"compiling with {a.optimizer} ({', '.join(f'{k}={v}' for k, v in cfg.plan.knobs.items())}; "
                  f"at most {cfg.plan.max_calls} of {cfg.plan.budget} LM calls)")
        with open(os.devnull, "w") as devnull:
            compiled = compile_planner(student, a.optimizer, cfg.plan, train, val, metric, task_lm=lms[0],
                                       prompt_lm=prompt_lm, demos=cfg.demos, num_threads=threads, seed=a.seed,
                                       log=sys.stderr if a.verbose else devnull)
        compile_calls = counter.in_phase("compile")
        _check_not_all_failed(counter, "compile", f"compiling with {a.optimizer}")
        counter.phase("evaluate")
        _say(cfg, "scoring the compiled planner on the held-out situations")
        after = evaluate_program(compiled, held, metric, lm=lms[0], num_threads=threads)
        val_before = evaluate_program(student, val, metric, lm=lms[0], num_threads=threads)
        val_after = evaluate_program(compiled, val, metric, lm=lms[0], num_threads=threads)
        _check_not_all_failed(counter, "evaluate", "scoring the planners")
    save_program(compiled, cfg.out)
    pred = compiled.propose if a.module_type == "predict" else compiled.propose.predict
    base_instr = (student.propose if a.module_type == "predict" else student.propose.predict).signature.instructions
    notes = []
    if cfg.in_process:
        notes.append("The offline engine is a numeric stand-in, not a language model: its planner starts from its "
                     "first demonstration in a situation's first years and otherwise searches numerically; it does "
                     "not read instructions, so offline only demonstrations can change its score.")
    if prompt_label and "not a language model" in prompt_label:
        notes.append("Instructions were written by the rule-based offline instruction writer (a fixed bank of "
                     "hand-written strategies, and for GEPA a rule-based summary of the metric's feedback); "
                     "with the offline engine, instruction search only reshuffles the engine's noise. Pass "
                     "--lm/--reflection-lm for instruction search that can matter.")
    if not cfg.sit.labels:
        notes.append("No oracle labels: demonstrations are the planner's own runs that scored at least "
                     f"{cfg.demos.threshold}.")
    else:
        notes.append("Training situations carry their population's oracle rates as labels (labeled "
                     "demonstrations); validation and held-out populations are different seeds.")
    summary = {
        "mode": "compile",
        "optimizer": a.optimizer,
        "lm": describe_lm(a.lm, a.api_base, temperature=a.temperature),
        "lm_backend": _lm_record(a),
        "instruction_lm": prompt_label,
        "metric": metric.describe(),
        "budget": {"limit": cfg.plan.budget + cfg.eval_calls, "plan": cfg.plan.to_dict(),
                   "evaluation_bound": cfg.eval_calls, "compile_calls": compile_calls,
                   "evaluation_calls": counter.in_phase("evaluate"), "total_calls": counter.total,
                   "failed_calls": counter.snapshot()["failed"], "by_lm": counter.snapshot()["by_lm"],
                   "note": "situations are drawn with the offline engine and are not counted"},
        "situations": {"spec": cfg.sit.to_dict(), "train": len(train), "validation": len(val),
                       "heldout": len(held)},
        "heldout": {
            "before": _scores_block(before), "after": _scores_block(after),
            "delta_mean": round(float(np.mean(after) - np.mean(before)), 6),
            "per_situation": [{"situation": e.situation, "before": round(b, 6), "after": round(c, 6)}
                              for e, b, c in zip(held, before, after)],
        },
        "validation": {"before": _scores_block(val_before), "after": _scores_block(val_after)},
        "program": {"path": str(cfg.out), "demos": len(pred.demos),
                    "instructions_changed": pred.signature.instructions != base_instr,
                    "instructions": pred.signature.instructions},
        "notes": notes,
        "elapsed_seconds": round(time.time() - t0, 2),
        **_common(cfg),
    }
    write_atomic(cfg.summary_path, json.dumps(summary, indent=2) + "\n")
    return summary


def run_tune(cfg: Config) -> dict[str, Any]:
    """Run (or join) the Optuna study; write the best planner and the study summary."""
    import dspy
    import numpy as np

    from optimize.budget import CallCounter
    from optimize.compile import clean_program
    from optimize.situations import draw_situations
    from optimize.tune import Knobs, TuneSettings, heldout_scores, knobs_of, planner_with, run_study, study_summary
    from programs.lm import describe_lm

    a = cfg.args
    t0 = time.time()
    workers = a.workers if getattr(a, "_explicit_workers", False) else "llm"
    pool: list = []
    if a.program:
        from programs.agents.tax_planner import PlannerAgent

        prog = PlannerAgent.load(a.program)
        pool = list(next(iter(prog.named_predictors()))[1].demos)
    elif not a.no_labels:
        _say(cfg, f"labeled demonstrations from {len(cfg.train_seeds)} training populations")
        sit = draw_situations(cfg.train_seeds, cfg.econ, cfg.sit)
        sit.sort(key=lambda e: e.year)  # first-year situations first: those are where demos are used
        pool = clean_program_demos(sit)
    settings = TuneSettings(econ=cfg.econ, seeds=cfg.tune_seeds, years=cfg.sit.years, workers=workers,
                            best_k=a.best_k, module_type=a.module_type, lm=a.lm, api_base=a.api_base,
                            structured=a.structured, max_tokens=a.max_tokens, backend_settings=backend_settings(a),
                            reasoning_effort=a.reasoning_effort,
                            demo_pool=pool, base_program=a.program, max_demos=a.max_demos)
    counter = CallCounter()
    _say(cfg, f"study {a.study_name!r}: adding {a.trials} trial(s)"
              + (f" to {redact(a.storage)}" if a.storage else " (in memory)"))
    with dspy.context(callbacks=[counter]):
        counter.phase("tune")
        study = run_study(settings, trials=a.trials, storage=a.storage, study_name=a.study_name, seed=a.seed,
                          counter=counter, budget=a.budget)
        info = study_summary(study)
        if "best" not in info:
            raise RuntimeError(f"study {a.study_name!r} has no complete trial")
        best = knobs_of(info["best"]["knobs"])
        given = Knobs(history_len=max(a.history_len, 1), steps_per_year=a.steps_per_year,
                      temperature=a.temperature, n_demos=min(len(pool), a.max_demos) if a.program else 0)
        counter.phase("evaluate")
        _say(cfg, f"held-out end-to-end scores: given knobs {given.to_dict()} vs best {best.to_dict()}")
        before = heldout_scores(settings, given, cfg.heldout_seeds)
        after = heldout_scores(settings, best, cfg.heldout_seeds)
    agent = clean_program(planner_with(settings, best.history_len, best.n_demos))
    save_program(agent, cfg.out)
    summary = {
        "mode": "tune",
        "lm": describe_lm(a.lm, a.api_base),
        "lm_backend": _lm_record(a),
        "workers": workers,
        "storage": redact(a.storage) if a.storage else None,
        "study": info,
        "trials_added_by_this_process": a.trials,
        "score": ("end-to-end: mean over tax years 1.. of (W_t - W_none) / (W_oracle - W_none) clipped to [0, 1], "
                  "mean over seeds"),
        "tune_seeds": cfg.tune_seeds,
        "demo_pool": len(pool),
        "heldout": {
            "before": {"knobs": given.to_dict(), **_scores_block(before)},
            "after": {"knobs": best.to_dict(), **_scores_block(after)},
            "delta_mean": round(float(np.mean(after) - np.mean(before)), 6),
            "per_seed": [{"seed": s, "before": round(b, 6), "after": round(c, 6)}
                         for s, b, c in zip(cfg.heldout_seeds, before, after)],
        },
        "budget": {"limit": a.budget, "calls": counter.snapshot()},
        "program": {"path": str(cfg.out), "history_len": best.history_len, "demos": best.n_demos,
                    "simulation_settings": {"steps_per_year": best.steps_per_year,
                                            "temperature": best.temperature}},
        "notes": ["steps_per_year and temperature are simulation settings, not part of the program: pass them "
                  "to eval.compare / programs.simulate (--steps-per-year, --temperature)."],
        "elapsed_seconds": round(time.time() - t0, 2),
        **_common(cfg),
    }
    write_atomic(cfg.summary_path, json.dumps(summary, indent=2) + "\n")
    return summary


def clean_program_demos(examples: Sequence[Any]) -> list:
    """Situations as demonstrations of ``ProposeTaxSchedule`` (inputs and the label only)."""
    import dspy

    from optimize.situations import INPUTS

    out = []
    for e in examples:
        if "rates_percent" not in e:
            continue
        out.append(dspy.Example(**{k: e[k] for k in (*INPUTS, "rates_percent")}).with_inputs(*INPUTS))
    return out


# ──────────────────────────────────────────────────────────────────────────────────────────────
# report
# ──────────────────────────────────────────────────────────────────────────────────────────────


def format_summary(s: dict[str, Any]) -> str:
    """The printed summary (the JSON file holds the same and more)."""
    h = s["heldout"]
    lines = []
    if s["mode"] == "compile":
        b = s["budget"]
        lines += [
            f"optimizer: {s['optimizer']}",
            f"LM: {s['lm']}" + (f"; instructions by: {s['instruction_lm']}" if s.get("instruction_lm") else ""),
            f"metric: {s['metric']}",
            f"budget: {b['limit']} LM calls for the whole run; used {b.get('total_calls', '?')}: compile "
            f"{b['compile_calls']} (bound {b['plan']['max_calls']}, knobs {b['plan']['knobs']}), scoring "
            f"{b['evaluation_calls']} (bound {b.get('evaluation_bound', '?')})"
            + (f"; {b['failed_calls']} failed" if b.get("failed_calls") else ""),
            f"situations: {s['situations']['train']} train, {s['situations']['validation']} validation, "
            f"{s['situations']['heldout']} held-out (seeds {_seed_text(s['seeds']['heldout'])})",
            f"held-out mean score: uncompiled {h['before']['mean']:.4f} -> compiled {h['after']['mean']:.4f} "
            f"({h['delta_mean']:+.4f})",
            f"validation mean score: uncompiled {s['validation']['before']['mean']:.4f} -> compiled "
            f"{s['validation']['after']['mean']:.4f}",
            "per held-out situation (before -> after):",
        ]
        for row in h["per_situation"]:
            lines.append(f"  {row['situation']:<16} {row['before']:.4f} -> {row['after']:.4f}")
        p = s["program"]
        lines.append(f"program: {p['path']} ({p['demos']} demos, instructions "
                     f"{'changed' if p['instructions_changed'] else 'unchanged'})")
    else:
        st = s["study"]
        lines += [
            f"study {st['study_name']!r}: {st['trials']} trials {st['by_state']}"
            + (f" in {s['storage']}" if s.get("storage") else ""),
            f"LM: {s['lm']}; workers: {s['workers']}",
            f"best trial #{st['best']['number']}: score {st['best']['score']:.4f} with {st['best']['knobs']}",
            f"held-out end-to-end mean score: given knobs {h['before']['mean']:.4f} -> best knobs "
            f"{h['after']['mean']:.4f} ({h['delta_mean']:+.4f})",
        ]
        for row in h["per_seed"]:
            lines.append(f"  seed {row['seed']:<6} {row['before']:.4f} -> {row['after']:.4f}")
        lines.append(f"LM calls: {s['budget']['calls']['total']}" +
                     (f" of budget {s['budget']['limit']}" if s['budget']['limit'] else ""))
        lines.append(f"program: {s['program']['path']} (history_len {s['program']['history_len']}, "
                     f"{s['program']['demos']} demos)")
    lines += [f"note: {n}" for n in s.get("notes", [])]
    return "\n".join(lines)


def _seed_text(seeds: Sequence[int]) -> str:
    if seeds and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    return ",".join(map(str, seeds))


def _quiet_libraries() -> None:
    """DSPy's, optuna's and GEPA's INFO logs off (``--verbose`` keeps them); the progress bars are turned
    off for the run only, by ``programs.lm.compat.quiet_progress`` in ``main``."""
    import logging

    import dspy  # noqa: F401  (dspy sets its loggers' levels on import: lower them after)

    for name in ("dspy", "optuna", "gepa"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # MIPROv2's proposer passes inputs its own signatures do not declare (a DSPy 3.4.1 quirk, harmless).
    logging.getLogger("dspy.predict.predict").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    from contextlib import nullcontext

    from programs.lm.compat import quiet_progress

    argv = list(sys.argv[1:] if argv is None else argv)
    redact_logs()
    args = parser().parse_args(argv)
    args._argv = argv
    args._explicit_workers = any(t == "--workers" or t.startswith("--workers=") for t in argv)
    if not args.verbose:
        _quiet_libraries()
    with nullcontext() if args.verbose else quiet_progress():
        return _main(args)


def dry_run_calls(cfg: Config) -> tuple[dict[str, int], str]:
    """The most LM calls of the run by role, and how they were bounded.

    Compile: scoring before and after (``evaluation_calls``) plus the optimizer's bound (``optimize.budget``);
    each evaluation of a situation is 1 planner call plus, with LM workers, ``agents x steps_per_year``
    worker calls, and the optimizer's bound is split in that ratio (its few instruction-proposal or
    reflection calls are counted with the planner's). Tune: ``--trials`` x ``max_calls_per_trial`` (the held-out scoring of the
    knobs after the study is not counted).
    """
    a = cfg.args
    if a.tune:
        from optimize.tune import TuneSettings, max_calls_per_trial

        workers = a.workers if getattr(a, "_explicit_workers", False) else "llm"
        settings = TuneSettings(econ=cfg.econ, seeds=cfg.tune_seeds, years=cfg.sit.years, workers=workers)
        most = a.trials * max_calls_per_trial(settings)
        per_trial_planner = len(cfg.tune_seeds) * cfg.sit.years
        planner = a.trials * per_trial_planner
        return {"worker": most - planner, "planner": planner}, (
            f"--tune: {a.trials} trials x at most {max_calls_per_trial(settings)} calls; the held-out scoring after "
            "the study is not counted")
    w = cfg.econ.agents * a.steps_per_year if cfg.workers == "llm" else 0
    e = 1 + w
    evals = cfg.eval_calls // e
    opt = cfg.plan.max_calls
    opt_workers = round(opt * w / e)
    calls = {"worker": evals * w + opt_workers, "planner": evals + opt - opt_workers}
    return {r: n for r, n in calls.items() if n}, (
        f"scoring before and after {cfg.eval_calls} + {a.optimizer} at most {opt} ({cfg.plan.formula})")


def dry_run_lines(cfg: Config) -> list[str]:
    from programs.simulation.dryrun import dry_run

    calls, how = dry_run_calls(cfg)
    from programs.lm.reasoning import reasoning_plan

    a = cfg.args
    plan = dry_run(calls, module_type=a.module_type, n_brackets=len(cfg.econ.cutoffs), max_tokens=a.max_tokens,
                   reasoning=reasoning_plan(a.lm, a.api_base, a.reasoning_effort))
    lines = plan.lines(f"{PROG} ({'--tune' if a.tune else a.optimizer}; at most)")
    return [lines[0] + f" [{how}]", *lines[1:]]


def _main(args: argparse.Namespace) -> int:
    try:
        cfg = resolve(args)
    except ConfigError as exc:
        print(f"{PROG}: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while the LMs are checked and probed: nothing written yet
        return lm_interrupted("checking and probing the LM")
    if args.dry_run:
        for line in dry_run_lines(cfg):
            print(line)
        return 0
    try:
        summary = run_tune(cfg) if args.tune else run_compile(cfg)
    except ConfigError as exc:
        print(f"{PROG}: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except AllCallsFailed as exc:
        print(f"{PROG}: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FALLBACKS
    except Exception as exc:
        print(f"{PROG}: failed: {type(exc).__name__}: {redact(' '.join(str(exc).split()))[:300]}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    print(f"wrote {cfg.out} and {cfg.summary_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
