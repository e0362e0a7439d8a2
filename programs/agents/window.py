"""What an agent's prompt shows of its past (``docs/design.md`` §4.2): the recent window, then the best rows
it does not already hold.

A row in both would be shown twice, and the ``best`` list, re-ranked as rows arrive, would change the prompt
ahead of the window's newest row. Leaving the window's rows out of it keeps what the prompt tells the
same (every row once) and keeps ``best`` short, so a model that reuses an evaluated prompt prefix pays for
little more than the new row (§6.6).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

__all__ = ["best_beyond"]

Row = TypeVar("Row")


def best_beyond(best: Sequence[Row], recent: Sequence[Row], key: Callable[[Row], Hashable]) -> list[Row]:
    """The rows of ``best`` (in its order) whose ``key`` (a step or a year) is not among ``recent``'s."""
    shown = {key(r) for r in recent}
    return [r for r in best if key(r) not in shown]
