"""``optimize.planner``'s entry point: parse, resolve (exit 2 on a bad setting), dry-run or run, print."""

from __future__ import annotations

import argparse
import shlex
import sys
from contextlib import nullcontext
from collections.abc import Sequence
from typing import Any

from optimize.args import PROG, parser
from optimize.config import resolve
from optimize.dryrun import dry_run_lines
from optimize.outputs import AllCallsFailed
from optimize.quiet import quiet_libraries
from optimize.report import format_summary
from optimize.run_compile import run_compile
from optimize.run_tune import run_tune
from optimize.tracking import log_compile, tracking
from programs.cli import EXIT_FALLBACKS, lm_interrupted
from programs.errors import ConfigError
from programs.lm.compat import quiet_progress
from programs.redact import redact, redact_logs

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    redact_logs()
    args = parser().parse_args(argv)
    args._argv = argv
    args._explicit_workers = any(t == "--workers" or t.startswith("--workers=") for t in argv)
    if not args.verbose:
        quiet_libraries()
    with nullcontext() if args.verbose else quiet_progress():  # the bars off for this run, not the process
        return _main(args)


def tracking_params(cfg: Any) -> dict[str, Any]:
    """What MLflow records about the run: resolved settings, endpoint URLs and the command redacted."""
    from programs.lm import describe_lm

    a = cfg.args
    return {"optimizer": a.optimizer, "lm": describe_lm(a.lm, a.api_base, temperature=a.temperature),
            "budget": cfg.plan.budget + cfg.eval_calls, "knobs": cfg.plan.knobs, "workers": cfg.workers,
            "agents": a.agents, "brackets": a.brackets, "swf": a.swf, "seed": a.seed,
            "train_seeds": cfg.train_seeds, "val_seeds": cfg.val_seeds, "heldout_seeds": cfg.heldout_seeds,
            "command": redacted_command(a)}


def redacted_command(a: argparse.Namespace) -> str:
    """The command line as run, through the one redaction (``programs.redact``)."""
    return redact(" ".join([PROG, shlex.join(getattr(a, "_argv", None) or [])]).rstrip())


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
        if args.tune:
            summary = run_tune(cfg)
        else:
            with tracking(args.mlflow, experiment=args.mlflow_experiment, run_name=f"compile-{args.optimizer}",
                          params=tracking_params(cfg)):
                summary = run_compile(cfg)
                if args.mlflow is not None:
                    log_compile(summary, cfg.out, cfg.summary_path)
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
    return EXIT_FALLBACKS if (summary.get("failures") or {}).get("compile_aborted") else 0

