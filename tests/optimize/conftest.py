"""Small economies shared by the optimize tests (cheap oracle searches, a few populations)."""

from __future__ import annotations

import pytest

from optimize.situations import EconomySpec, SituationSpec, draw_situations

#: 16 agents and a short oracle search: each economy builds in ~0.1 s.
SMALL = EconomySpec(agents=16, oracle_trials=20, oracle_refine=100)
SIT = SituationSpec(years=3, history_len=5, best_k=3)


@pytest.fixture(scope="session")
def small_sets():
    """(train, val, held-out) situations: 3 / 2 / 4 populations, 2 decision points each."""
    return (draw_situations([0, 1, 2], SMALL, SIT), draw_situations([3, 4], SMALL, SIT),
            draw_situations([100, 101, 102, 103], SMALL, SIT))
