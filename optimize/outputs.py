"""What both jobs of ``optimize.planner`` share: progress lines, score blocks, the saved program, the
summary's common part, and the all-calls-failed check."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimize.args import PROG
from programs.cli import command_line
from programs.simulation.runlog import replace_atomic

if TYPE_CHECKING:  # pragma: no cover
    from optimize.config import Config

__all__ = ["AllCallsFailed", "check_not_all_failed", "say", "scores_block", "save_program", "common"]


class AllCallsFailed(RuntimeError):
    """Every LM call of a phase failed: the results would be the fallbacks', so nothing is saved."""


def check_not_all_failed(counter: Any, phase: str, what: str) -> None:
    calls, failed = counter.in_phase(phase), counter.failed_in_phase(phase)
    if calls and failed >= calls:
        raise AllCallsFailed(f"every LM call failed while {what} ({failed} of {calls}; first error: "
                             f"{counter.first_error}); nothing was saved. Check --lm/--api-base")


def say(cfg: "Config", msg: str) -> None:
    if not cfg.args.quiet:
        print(f"[optimize.planner] {msg}", file=sys.stderr, flush=True)


def scores_block(scores: Sequence[float]) -> dict[str, Any]:
    import numpy as np

    arr = np.asarray(scores, dtype=float)
    return {"mean": round(float(arr.mean()), 6), "min": round(float(arr.min()), 6),
            "max": round(float(arr.max()), 6), "n": int(arr.size)}


def save_program(program: Any, path: Path) -> None:
    """Save as DSPy JSON atomically (processes sharing a study may write the same path)."""
    replace_atomic(path, program.save, suffix=".json")


def common(cfg: "Config") -> dict[str, Any]:
    a = cfg.args
    return {
        "economy": cfg.econ.to_dict(),
        "planner": {"module": a.module_type, "history_len": a.history_len, "best_k": a.best_k},
        "seeds": {"train": cfg.train_seeds, "validation": cfg.val_seeds, "heldout": cfg.heldout_seeds},
        "command": command_line(PROG, getattr(a, "_argv", None)),
    }
