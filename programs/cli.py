"""What every command line shares: the one-line argument parser and the seed-list grammar.

Every CLI (``programs.simulate``, ``programs.serve``, ``eval.compare``, ``eval.calibration``,
``optimize.planner``) reports a bad flag as one line and exit status 2, before any work.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import NoReturn

from programs.errors import ConfigError

__all__ = ["OneLineParser", "parse_seeds", "add_answer_args", "SEEDS_HELP", "EXIT_CONFIG", "EXIT_FALLBACKS",
           "EXIT_INTERRUPTED"]

#: Exit statuses shared by the CLIs.
EXIT_CONFIG = 2          # a bad setting, reported in one line before any work
EXIT_FALLBACKS = 3       # most LM calls failed for several steps in a row (the run log stays resumable)
EXIT_INTERRUPTED = 130   # Ctrl-C: what was saved and the command that resumes are printed

#: The seed grammar, for ``--help`` texts.
SEEDS_HELP = "seeds: a list and/or ranges, e.g. '0-4' (seeds 0..4), '0,5,7', '0-2,10'; '3' is seed 3"

def add_answer_args(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--structured`` and ``--max-tokens``, the same on every CLI that calls a language model
    (``programs.lm.structured``; validated by ``programs.lm.check_lm_config``)."""
    group.add_argument("--structured", default="auto", metavar="{auto,on,off}",
                       help="send each answer's JSON schema as response_format (grammar-constrained decoding on "
                            "llama.cpp, vLLM, SGLang, Ollama, OpenAI): auto backs off to plain prompts, counted, when "
                            "a server rejects it; on never backs off; off never sends it. Not used by the offline "
                            "engine")
    group.add_argument("--max-tokens", type=int, default=None, metavar="N",
                       help="token budget of every LM answer (default: one per signature, sized to its answer, "
                            "larger for --module cot); an answer that uses it all is a 'truncated' fallback")


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-|\.\.)\s*(\d+)\s*$")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports an error as one line (and exit status 2) instead of usage + message."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message}\n")


def parse_seeds(text: str | int | Sequence[int], name: str = "--seeds") -> list[int]:
    """Seeds from ``"0-4"``, ``"0..4"``, ``"1,4,9"`` or a mix (``"0-2,10"``); ``"3"`` is seed 3.

    One grammar for every CLI. A sequence of ints passes through the same checks. Raises
    ``ConfigError`` (a ValueError) naming ``name`` on an empty, non-numeric, negative, reversed or
    repeated list.
    """
    if isinstance(text, int):
        text = str(text)
    if not isinstance(text, str):
        seeds = [int(s) for s in text]
    else:
        seeds = []
        for part in text.split(","):
            if not part.strip():
                continue
            m = _RANGE.match(part)
            if m:
                a, b = int(m.group(1)), int(m.group(2))
                if b < a:
                    raise ConfigError(f"{name}={text!r}: range {a}-{b} is reversed (write {b}-{a})")
                seeds.extend(range(a, b + 1))
                continue
            try:
                seeds.append(int(part))
            except ValueError:
                raise ConfigError(f"{name}={text!r}: {part.strip()!r} is not a seed; "
                                  "give seeds like '0-4' or '1,4,9'") from None
    if not seeds:
        raise ConfigError(f"{name} is empty; give seeds like '0-4' or '1,4,9'")
    if any(s < 0 or s > 2**32 - 1 for s in seeds):
        raise ConfigError(f"{name}={text!r}: seeds must be in [0, 2**32-1]")
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise ConfigError(f"{name}={text!r} repeats seed {', '.join(map(str, dup))}")
    return seeds
