"""No silent hours of fallbacks: stop a run whose LM calls keep failing (issue 10).

``FallbackGuard`` watches each live step: the LM answers it asked for (``Simulation.last_calls``, counted
by ``programs.lm.usage.UsageMeter`` whatever the engine) and the fallbacks it logged (any kind). When more than
``max_rate`` of a step's calls fell back for ``patience`` consecutive steps, ``observe`` raises
``FallbackStop``. The loop raises it only after the step's record is in the run log, so the log stays
resumable (every logged step is whole) and ``--resume`` continues from the next step. Steps without an
LM call (rational workers between tax years) neither count nor break a streak.

The CLIs turn ``FallbackStop`` into exit status 3 (``programs.cli.EXIT_FALLBACKS``) and one line:
``FallbackStop.line(command)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

__all__ = ["FallbackGuard", "FallbackStop", "make_guard", "DEFAULT_MAX_RATE", "DEFAULT_PATIENCE"]

#: Default share of a step's LM calls that may fall back before the step counts as failed.
DEFAULT_MAX_RATE = 0.5
#: Default number of consecutive failed steps that stop a run.
DEFAULT_PATIENCE = 3


class FallbackStop(RuntimeError):
    """Most LM calls fell back for ``patience`` consecutive steps; the steps up to ``t`` are logged."""

    def __init__(self, t: int, steps: int, calls: int, causes: Mapping[str, int], max_rate: float) -> None:
        self.t, self.steps, self.calls, self.max_rate = t, steps, calls, max_rate
        self.causes = dict(sorted(causes.items(), key=lambda kv: (-kv[1], kv[0])))
        super().__init__(self.line())

    def __reduce__(self):  # raised in a worker process of eval.parallel, re-raised in the parent
        return (type(self), (self.t, self.steps, self.calls, self.causes, self.max_rate))

    def line(self, command: str | None = None, how: str = "the log is saved, continue with") -> str:
        """One line: the cause(s) by count and, given the resume command, how to continue (``how``)."""
        fell = sum(self.causes.values())
        causes = ", ".join(f"{k} {v}" for k, v in self.causes.items()) or "none"
        text = (f"stopped: more than {self.max_rate:.0%} of the LM calls fell back for {self.steps} consecutive "
                f"steps (up to step {self.t}; {fell} of {self.calls} calls: {causes})")
        return text + (f"; {how}: {command}" if command else "")


class FallbackGuard:
    """Counts consecutive steps in which more than ``max_rate`` of the LM calls fell back.

    Parameters
    ----------
    max_rate : a share in [0, 1]; 1 never stops a run.
    patience : consecutive failed steps that stop it (>= 1).
    """

    def __init__(self, max_rate: float = DEFAULT_MAX_RATE, patience: int = DEFAULT_PATIENCE) -> None:
        if isinstance(max_rate, bool) or not isinstance(max_rate, (int, float)) or not 0.0 <= max_rate <= 1.0:
            raise ValueError(f"max_fallback_rate={max_rate!r} must be a share in [0, 1]")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"fallback_patience={patience!r} must be an integer >= 1")
        self.max_rate = float(max_rate)
        self.patience = patience
        self.reset()

    def reset(self) -> None:
        self.streak = 0
        self.calls = 0
        self.causes: Counter[str] = Counter()

    def observe(self, t: int, calls: int, fallbacks: Mapping[str, int]) -> None:
        """Record step ``t`` (its LM calls and fallbacks by kind); raise ``FallbackStop`` at the limit."""
        if calls <= 0:
            return
        fell = sum(int(v) for v in fallbacks.values())
        if fell / calls <= self.max_rate:
            self.reset()
            return
        self.streak += 1
        self.calls += calls
        self.causes.update({k: int(v) for k, v in fallbacks.items() if v})
        if self.streak >= self.patience:
            raise FallbackStop(t, self.streak, self.calls, self.causes, self.max_rate)


def make_guard(args: Any) -> FallbackGuard:
    """The guard of a CLI's ``--max-fallback-rate``/``--fallback-patience``; ``ConfigError`` names a bad one."""
    from programs.errors import ConfigError

    try:
        return FallbackGuard(args.max_fallback_rate, args.fallback_patience)
    except ValueError as exc:
        raise ConfigError(str(exc).replace("max_fallback_rate=", "--max-fallback-rate=")
                          .replace("fallback_patience=", "--fallback-patience=")) from None
