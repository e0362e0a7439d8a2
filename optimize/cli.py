"""``optimize.planner``'s entry point: parse, resolve (exit 2 on a bad setting), dry-run or run, print."""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from collections.abc import Sequence

from optimize.args import PROG, parser
from optimize.config import resolve
from optimize.dryrun import dry_run_lines
from optimize.outputs import AllCallsFailed
from optimize.quiet import quiet_libraries
from optimize.report import format_summary
from optimize.run_compile import run_compile
from optimize.run_tune import run_tune
from optimize.tracking import TrialRuns, log_compile, log_tune, tracking
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
        with tracking(cfg) as run:
            if args.tune:
                summary = run_tune(cfg, on_trial=TrialRuns() if run is not None else None)
            else:
                summary = run_compile(cfg)
            if run is not None:
                (log_tune if args.tune else log_compile)(summary, cfg.out, cfg.summary_path)
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

