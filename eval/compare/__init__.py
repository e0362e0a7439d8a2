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

The package is split by concern, as ``programs.simulation`` is: :mod:`~eval.compare.config` (planners, presets,
defaults, :class:`CompareConfig` and its resolution), :mod:`~eval.compare.run` (the runs),
:mod:`~eval.compare.outputs` (``--out``: its check and every file written), :mod:`~eval.compare.dryrun`
(``--dry-run``) and :mod:`~eval.compare.cli` (the parser and ``main``).
"""

from eval.compare.config import (BASELINES, DEFAULT_RUN_TIME, DEFAULTS, LEARNING, OUTPUT_FILES, PAPER_PRESET,
                                 PAPER_V1_PRESET, PLANNERS, SCENARIOS, WORKERS, CompareConfig, resolve_config)
from eval.compare.outputs import check_output
from eval.compare.dryrun import dry_run_calls, dry_run_lines
from eval.compare.run import run_comparison
from eval.compare.cli import build_parser, main

__all__ = ["BASELINES", "DEFAULT_RUN_TIME", "DEFAULTS", "LEARNING", "OUTPUT_FILES", "PAPER_PRESET", "PAPER_V1_PRESET",
           "PLANNERS", "SCENARIOS", "WORKERS", "CompareConfig", "build_parser", "check_output", "dry_run_calls",
           "dry_run_lines", "main", "resolve_config", "run_comparison"]
