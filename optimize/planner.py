"""``python -m optimize.planner``: compile the planner's prompts and demonstrations against simulated welfare.

Compile (default)::

    python -m optimize.planner --optimizer bootstrap --budget 300 --out compiled/planner.json

draws planner situations from short simulations on the training, validation and held-out population
seeds, scores the uncompiled planner on the held-out situations, compiles it with the chosen DSPy
optimizer (bootstrap | mipro | gepa | copro | simba) within ``--budget`` LM calls, scores the compiled
planner on the same held-out situations, and writes the program (DSPy JSON, loadable by ``PlannerAgent.load`` and
``python -m eval.compare --planner-program``) and ``<out>.summary.json`` beside it; the summary is
also printed.

Tune::

    python -m optimize.planner --tune --trials 20 --storage sqlite:///tune.db --study-name planner

runs an Optuna study over the numeric knobs (history length, tax-year length, temperature, number of
demonstrations) against the end-to-end welfare of short simulations (``optimize.tune``); processes that
share ``--storage`` and ``--study-name`` add their trials to one study. It writes the planner with the
best knobs to ``--out`` and the study summary beside it, with held-out end-to-end scores of the given
knobs and of the best ones.

The default LM is the offline engine, a numeric stand-in that is not a language model; mipro, copro,
simba and gepa then get their instructions from the rule-based offline instruction writer (``programs.lm.writer``),
also not a language model. A bad setting exits with status 2 and one line naming it, before any LM call.
API keys are read from the environment only and never written.

The code is split by concern (``docs/design.md`` §7): ``optimize.args`` (flags), ``optimize.config``
(validation), ``optimize.run_compile`` and ``optimize.run_tune`` (the two jobs), ``optimize.report`` (the
printout), ``optimize.dryrun``, ``optimize.quiet``; the optimizers are registered
classes in ``optimize.optimizers`` (one module each). The names below are re-exported so existing imports keep working.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from optimize.args import DEFAULT_BUDGET, PROG, parser  # noqa: E402
from optimize.cli import main  # noqa: E402
from optimize.config import Config, evaluation_calls, resolve  # noqa: E402
from optimize.dryrun import dry_run_calls, dry_run_lines  # noqa: E402
from optimize.outputs import AllCallsFailed, save_program  # noqa: E402
from optimize.report import format_summary  # noqa: E402
from optimize.run_compile import run_compile  # noqa: E402
from optimize.run_tune import clean_program_demos, run_tune  # noqa: E402

__all__ = ["PROG", "DEFAULT_BUDGET", "parser", "main", "Config", "resolve", "evaluation_calls", "dry_run_calls",
           "dry_run_lines", "AllCallsFailed", "save_program", "format_summary", "run_compile", "run_tune",
           "clean_program_demos"]

if __name__ == "__main__":
    sys.exit(main())
