"""What the examples' command lines share: the LM flags, building the LMs, and saying which LM ran.

``--lm`` goes to ``programs.lm.build_lms`` unchanged, so every model string the project accepts works
here (``offline``, ``provider/model`` with ``--api-base``, and ``local`` where it is available). A bad
setting is one line on stderr and exit status 2, as in every CLI of the project.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import dspy

from programs.agents.batch import batch_threads
from programs.cli import EXIT_CONFIG, OneLineParser, lm_interrupted
from programs.errors import ConfigError
from programs.lm import OFFLINE_LABEL, build_lms, check_lm_config, lm_label
from programs.lm.backends import add_backend_args, backend_settings
from programs.lm.models import probe_lm

__all__ = ["example_parser", "build_example_lms", "lm_banner", "lm_name", "threads_for", "fail"]


def example_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A one-line-error parser with the LM flags every example takes."""
    p = OneLineParser(prog=prog, description=description,
                      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--lm", default="offline",
                   help="'offline' (the offline engine, not a language model), 'local', or a model string "
                        "provider/model as programs.lm.build_lms accepts")
    p.add_argument("--api-base", action="append", default=None,
                   help="OpenAI-compatible base URL of a served model (repeatable)")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature in [0, 2]")
    p.add_argument("--seed", type=int, default=0, help="population, engine and rollout seed")
    p.add_argument("--module-type", choices=("predict", "cot"), default="predict",
                   help="dspy.Predict or dspy.ChainOfThought around the signature")
    add_backend_args(p)  # --lm local's --n-ctx, --n-threads, --n-gpu-layers, --repack
    return p


def fail(prog: str, message: str) -> None:
    """Report a bad setting as one line and exit with status 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)


def build_example_lms(args: argparse.Namespace, prog: str) -> list[dspy.BaseLM]:
    """``programs.lm.build_lms`` from the parsed flags, after the backend's pre-flight (``probe_lm``); a
    ``ConfigError`` is one line and exit 2, Ctrl-C one line and exit 130."""
    settings = backend_settings(args)
    try:
        check_lm_config(args.lm, args.api_base, temperature=args.temperature, settings=settings)
        probe_lm(args.lm, args.api_base, settings=settings)
        return build_lms(args.lm, args.api_base, temperature=args.temperature, seed=args.seed, settings=settings)
    except ConfigError as exc:
        fail(prog, str(exc))
        raise  # unreachable
    except KeyboardInterrupt:
        raise SystemExit(lm_interrupted()) from None


def lm_name(lms: Sequence[dspy.BaseLM]) -> str:
    """The LM's label (``offline engine (not a language model)`` for the offline engine)."""
    return lm_label(lms[0]) + (f" (x{len(lms)} endpoints)" if len(lms) > 1 else "")


def lm_banner(lms: Sequence[dspy.BaseLM]) -> str:
    """Which LM answers, said plainly (the offline engine is named as not a language model)."""
    label = lm_name(lms)
    if label == OFFLINE_LABEL:
        return (f"LM: {OFFLINE_LABEL}. Its answers are a deterministic numeric stand-in, NOT a language "
                "model's: they test the plumbing, not how language models behave. Pass --lm for a model.")
    return f"LM: {label}"


def threads_for(lms: Sequence[dspy.BaseLM], concurrency: int = 8) -> int:
    """Batch threads for the examples' LMs (``programs.agents.batch.batch_threads``, the one rule)."""
    return batch_threads(lms, concurrency)
