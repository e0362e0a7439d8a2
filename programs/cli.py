"""What every command line shares: the one-line argument parser and the seed-list grammar.

Every CLI (``programs.simulate``, ``programs.serve``, ``eval.compare``, ``eval.calibration``,
``optimize.planner``) reports a bad flag as one line and exit status 2, before any work.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Sequence
from typing import NoReturn

from programs.errors import ConfigError

__all__ = ["command_line", "OneLineParser", "parse_seeds", "add_answer_args", "lm_interrupted", "SEEDS_HELP", "EXIT_CONFIG", "EXIT_FALLBACKS",
           "EXIT_INTERRUPTED", "check_out_dir", "check_out_file", "OVERWRITE_HELP", "DefaultsOnceFormatter",
           "YEARS_NOTE", "check_program_file", "add_fallback_args", "add_price_args", "usage_line"]

#: How tax years are numbered in every output (printed lines, run logs, reports, CSVs, plots).
YEARS_NOTE = ("tax years are numbered from 0: year 0 runs the initial schedule, the planner first moves at the "
              "start of year 1")

#: Exit statuses shared by the CLIs.
EXIT_CONFIG = 2          # a bad setting, reported in one line before any work
EXIT_FALLBACKS = 3       # most LM calls failed for several steps in a row (the run log stays resumable)
EXIT_INTERRUPTED = 130   # Ctrl-C: what was saved and the command that resumes are printed

#: The seed grammar, for ``--help`` texts.
SEEDS_HELP = "seeds: a list and/or ranges, e.g. '0-4' (seeds 0..4), '0,5,7', '0-2,10'; '3' is seed 3"

def add_answer_args(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--structured``, ``--max-tokens`` and ``--reasoning-effort``, the same on every CLI that calls a
    language model (``programs.lm.structured``, ``programs.lm.reasoning``; validated by
    ``programs.lm.check_lm_config``), and every LM backend's own flags (``programs.lm.backends``:
    ``--n-ctx``, ``--n-threads``, ``--n-gpu-layers``, ``--repack`` of ``--lm local``; read back with
    ``backend_settings(args)``)."""
    from programs.lm.backends import add_backend_args

    group.add_argument("--structured", default="auto", metavar="{auto,on,off}",
                       help="send each answer's JSON schema as response_format (grammar-constrained decoding on "
                            "llama.cpp, vLLM, SGLang, Ollama, OpenAI): auto backs off to plain prompts, counted, when "
                            "a server rejects it; on never backs off; off never sends it. Not used by the offline "
                            "engine")
    group.add_argument("--max-tokens", type=int, default=None, metavar="N",
                       help="token budget of every LM answer (default: one per signature, sized to its answer, "
                            "larger for --module cot, 16000 more for a reasoning model); an answer cut off at it "
                            "is a 'truncated' fallback")
    group.add_argument("--reasoning-effort", default=None, metavar="{low,medium,high}",
                       help="reasoning effort passed to a reasoning model (gpt-5, o-series, ...; detected by name; "
                            "for a self-hosted model behind --api-base, giving it declares one); recorded in "
                            "config.json. Reasoning models also run at temperature 1.0 with room to reason in "
                            "every answer's budget")
    add_backend_args(group)


def command_line(prog: str, argv: Sequence[str] | None) -> str:
    """The command as typed (``prog`` and its arguments, shell-quoted), through the one redaction: what the
    reports record and the stop lines print as "run again with".

    >>> command_line("python -m eval.compare", ["--api-base", "http://u:pw@h/v1", "--out", "my dir"])
    "python -m eval.compare --api-base http://u:***@h/v1 --out 'my dir'"
    """
    from programs.redact import redact

    return redact(prog + (" " + shlex.join(argv) if argv else ""))


def lm_interrupted(what: str = "setting up the LM") -> int:
    """Ctrl-C before a run has written anything: one line, exit 130 (no traceback)."""
    print(f"\ninterrupted while {what}; nothing was written", file=sys.stderr)
    return EXIT_INTERRUPTED


def add_fallback_args(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--max-fallback-rate`` and ``--fallback-patience`` (``programs.simulation.guard.FallbackGuard``)."""
    group.add_argument("--max-fallback-rate", type=float, default=0.5, metavar="SHARE",
                       help="stop (exit 3, the log resumable) when more than this share of a step's LM calls fall "
                            "back (time-outs, parse errors, refusals, out-of-range answers) for --fallback-patience "
                            "consecutive steps; 1 never stops (default: 0.5)")
    group.add_argument("--fallback-patience", type=int, default=3, metavar="STEPS",
                       help="consecutive steps over --max-fallback-rate that stop the run (default: 3)")


def add_price_args(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--price-in`` and ``--price-out`` (``programs.lm.cost``; checked by ``check_prices``)."""
    group.add_argument("--price-in", type=float, default=None, metavar="USD",
                       help="dollars per million prompt tokens, for the run's estimated cost (default: LiteLLM's "
                            "cost map when it lists the model, else the cost is reported as unknown)")
    group.add_argument("--price-out", type=float, default=None, metavar="USD",
                       help="dollars per million completion tokens (with --price-in)")


def usage_line(usage: dict | None) -> str | None:
    """One line of a run's tokens by role and its cost (a ``UsageSummary`` dumped), or None without usage.

    Reasoning tokens (part of the completion tokens) and answers replayed from DSPy's cache are shown
    where there are any."""
    if not usage or not usage.get("by_role"):
        return None
    from programs.lm.cost import format_cost

    how = ("estimated by the offline engine, characters / 4" if usage.get("source") == "estimated"
           else "reported by the LM")

    def extra(u: dict) -> str:
        bits = [f"{u['reasoning_tokens']} reasoning"] if u.get("reasoning_tokens") else []
        bits += [f"{u['cached']} replayed from cache"] if u.get("cached") else []
        return f" [{', '.join(bits)}]" if bits else ""

    def reused(u: dict) -> str:  # prompt tokens a prefix cache served, when any were
        n = int(u.get("reused_prompt_tokens") or 0)
        return f" ({n} reused, {u['prompt_tokens'] - n} evaluated)" if n else ""

    parts = [f"{role} {u['prompt_tokens']} prompt{reused(u)} + {u['completion_tokens']} completion{extra(u)} "
             f"({u['calls']} answers)" for role, u in usage["by_role"].items()]
    t = usage["total"]
    return (f"tokens ({how}): {'; '.join(parts)}; total {t['prompt_tokens']}{reused(t)} + "
            f"{t['completion_tokens']}{extra(t)}; cost: {format_cost(usage.get('cost'))}")


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-|\.\.)\s*(\d+)\s*$")


class DefaultsOnceFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to an option's help once: not when the help already states its default, and
    not for options without a meaningful default (None, or a store_true flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if ("default" in text or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS or action.nargs == 0):
            return text
        return super()._get_help_string(action)


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


#: The overwrite rule, for ``--help`` texts and the README.
OVERWRITE_HELP = ("a run never replaces another run's files: an --out that already holds other files is refused "
                  "unless you pass --overwrite")


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _probe_writable(directory: str, flag: str, path: str) -> None:
    """Create (and remove) a file in ``directory``: the only test that also holds for root and /proc."""
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".write-test.")
    except OSError as exc:
        raise ConfigError(f"{flag}={path!r}: cannot write in {directory!r} ({_reason(exc)})") from None
    os.close(fd)
    os.unlink(probe)


def _check_parents(path: str, flag: str) -> None:
    """No ancestor of ``path`` may be an existing non-directory (``afile/sub``)."""
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        if os.path.lexists(parent):
            if not os.path.isdir(parent):
                raise ConfigError(f"{flag}={path!r}: {parent!r} is a file, not a directory")
            return
        up = os.path.dirname(parent)
        if up == parent:
            return
        parent = up


def check_out_dir(path: str | os.PathLike, flag: str = "--out", *, overwrite: bool = False,
                  allowed: Sequence[str] = (), create: bool = True) -> list[str]:
    """Validate an output directory before any work; raise ``ConfigError`` (one line) when it cannot be used.

    Refused: ``path`` is an existing file; an ancestor is a file (``afile/sub``); the directory cannot be
    created or written (``/proc/x``, read-only mounts; tested by creating it and a probe file in it, which is
    the only test that also holds for root). A directory that already holds files is refused unless
    ``overwrite`` or every file in it is one of ``allowed`` (the caller's own files, e.g. a re-run of the same
    job); this is the one overwrite rule of every CLI (``OVERWRITE_HELP``).

    Returns the names of the files already in the directory (empty for a new one). ``create=False`` checks
    the same without leaving the directory behind when it did not exist.
    """
    path = os.fspath(path)
    if not path.strip():
        raise ConfigError(f"{flag} is empty; give a directory")
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ConfigError(f"{flag}={path!r} is an existing file, not a directory")
    _check_parents(path, flag)
    existed = os.path.isdir(path)
    made: list[str] = []  # the directories this check creates, deepest first (removed again if not create)
    d = os.path.abspath(path)
    while not os.path.lexists(d) and os.path.dirname(d) != d:
        made.append(d)
        d = os.path.dirname(d)
    if not existed:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{flag}={path!r}: cannot create the directory ({_reason(exc)})") from None
    try:
        _probe_writable(path, flag, path)
    finally:
        if not existed and not create:
            for d in made:
                try:
                    os.rmdir(d)
                except OSError:
                    break
    present = sorted(n for n in os.listdir(path) if not n.startswith(".")) if existed else []
    others = [n for n in present if n not in set(allowed)]
    if others and not overwrite:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise ConfigError(f"{flag}={path!r} already holds files of another run ({shown}); choose another {flag} "
                          "or pass --overwrite to replace them")
    return present


def check_out_file(path: str | os.PathLike, flag: str = "--out", *, overwrite: bool = False) -> None:
    """Validate an output file before any work (one line, ``ConfigError``): not a directory, no ancestor
    that is a file, a writable (creatable) parent, and no existing file unless ``overwrite``."""
    path = os.fspath(path)
    if not path.strip():
        raise ConfigError(f"{flag} is empty; give a file name")
    if os.path.isdir(path):
        raise ConfigError(f"{flag}={path!r} is a directory, not a file")
    _check_parents(path, flag)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{flag}={path!r}: cannot create {parent!r} ({_reason(exc)})") from None
    _probe_writable(parent, flag, path)
    if os.path.lexists(path) and not overwrite:
        raise ConfigError(f"{flag}={path!r} already exists (another run's output); choose another {flag} or "
                          "pass --overwrite to replace it")


def check_program_file(path: str | os.PathLike, flag: str) -> None:
    """A compiled planner program (DSPy JSON from ``python -m optimize.planner``), checked before any work:
    a missing file, text that is not JSON or JSON that is not a saved DSPy program is one line naming it."""
    import json

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"{flag}={path!r}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{flag}={path!r} is not a JSON file ({' '.join(str(exc).split())[:120]})") from None
    if not isinstance(state, dict) or "metadata" not in state:
        raise ConfigError(f"{flag}={path!r} is not a saved planner program (DSPy JSON with a 'metadata' entry, "
                          "as `python -m optimize.planner` writes)")
