"""Held-out score uncompiled → compiled with paired 95% intervals, so a gain within noise reads as such.

Two pairings of the same scores (``eval.stats.paired_ci``, the project's one paired interval):

- *per situation*: ``after[i] - before[i]`` over held-out situations. Situations drawn from one population
  (the starts of years 1..years-1) are not independent, so this interval is optimistic;
- *per seed*: the situations' differences averaged within each held-out population seed first, then the
  interval over seeds. This is the honest one (fewer, independent units) and the one the printout leads with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from eval.stats import paired_ci

__all__ = ["paired_scores", "verdict"]


def _block(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    r = paired_ci(a, b)
    half = None if math.isnan(r.half_width) else round(r.half_width, 6)
    return {"delta_mean": round(r.mean, 6), "half_width": half,
            "low": None if half is None else round(r.mean - r.half_width, 6),
            "high": None if half is None else round(r.mean + r.half_width, 6),
            "p_value": None if math.isnan(r.p_value) else round(r.p_value, 6), "n": r.n}


def paired_scores(before: Sequence[float], after: Sequence[float], seeds: Sequence[int]) -> dict[str, Any]:
    """Paired intervals of ``after - before`` per situation and per population seed (``seeds[i]`` is the
    seed of situation ``i``); each block: delta_mean, half_width, low, high, p_value, n."""
    x, y = np.asarray(after, dtype=float), np.asarray(before, dtype=float)
    s = np.asarray(seeds)
    if not (x.shape == y.shape == s.shape):
        raise ValueError(f"paired_scores needs one before, after and seed per situation, got {y.size}, {x.size}, "
                         f"{s.size}")
    keys = list(dict.fromkeys(s.tolist()))
    after_by_seed = [float(x[s == k].mean()) for k in keys]
    before_by_seed = [float(y[s == k].mean()) for k in keys]
    return {"level": 0.95, "per_seed": _block(after_by_seed, before_by_seed),
            "per_situation": _block(x, y)}


def verdict(block: dict[str, Any]) -> str:
    """``+0.0175 ± 0.0400 (95% CI -0.0225..+0.0575): within noise`` and the like."""
    d, half = block["delta_mean"], block["half_width"]
    if half is None:
        return f"{d:+.4f} (n={block['n']}: no interval)"
    if block["low"] > 0:
        word = "gain beyond noise"
    elif block["high"] < 0:
        word = "loss beyond noise"
    else:
        word = "within noise"
    return f"{d:+.4f} ± {half:.4f} (95% CI {block['low']:+.4f}..{block['high']:+.4f}, n={block['n']}): {word}"
