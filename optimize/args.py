"""The command line of ``python -m optimize.planner``: every flag, its default and its help."""

from __future__ import annotations

import argparse

from economy import parse_kappa
from optimize.optimizers import names as optimizer_names
from programs.cli import SEEDS_HELP, DefaultsOnceFormatter, OneLineParser, add_answer_args
from programs.tracking import add_mlflow_args

__all__ = ["PROG", "DEFAULT_BUDGET", "parser"]


def _using(kind: str) -> list[str]:
    """Registered optimizers that ask for an LM of ``kind`` (prompt | reflection)."""
    from optimize.optimizers import OPTIMIZERS

    return [n for n, cls in OPTIMIZERS.items() if cls.instruction_lm == kind]

PROG = "python -m optimize.planner"
DESCRIPTION = ("``python -m optimize.planner``: compile the planner's prompts and demonstrations against "
               "simulated welfare.")
#: The default --budget bounds every LM call of a compile: the optimizer's (300 with the default seeds) plus
#: scoring the uncompiled and compiled planner on the held-out and validation situations (2 x (24 + 9) = 66).
DEFAULT_BUDGET = 366


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=DESCRIPTION,
                formatter_class=DefaultsOnceFormatter)
    o = p.add_argument_group("optimizer")
    o.add_argument("--optimizer", default="bootstrap", help=" | ".join(optimizer_names()))
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
    m.add_argument("--prompt-lm", default=None,
                   help="LM that proposes instructions for " + ", ".join(_using("prompt")) + ": local, "
                        "provider/model, or offline = the rule-based offline instruction writer (default: offline "
                        "when --lm is offline, else --lm)")
    m.add_argument("--prompt-api-base", action="append", default=None, metavar="URL")
    m.add_argument("--reflection-lm", default=None,
                   help="LM that reflects on the metric's feedback for " + ", ".join(_using("reflection")) +
                        " (same choices and default as --prompt-lm)")
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
    add_mlflow_args(out, what="the compile (DSPy's autologging traces it and its trials; the held-out scores, "
                              "budget and program are logged) or, with --tune, the study (each Optuna trial a child "
                              "run)", experiment="optimize.planner")
    out.add_argument("--seed", type=int, default=0, help="seed of the LM and the optimizer")
    out.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    out.add_argument("--dry-run", action="store_true", help="print the most LM calls of this run by role and their "
                     "estimated tokens, then exit 0 without building or calling any LM or writing anything")
    out.add_argument("--verbose", action="store_true", help="show the DSPy optimizers' own logs and progress bars")
    return p

