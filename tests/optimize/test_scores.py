"""Held-out score intervals: paired per seed and per situation, by hand, and the verdict's words."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from optimize.scores import paired_scores, verdict


def test_per_seed_interval_by_hand():
    # Two seeds x two situations; differences 0.1, 0.3 (seed 1) and -0.1, 0.1 (seed 2).
    before = [0.5, 0.5, 0.5, 0.5]
    after = [0.6, 0.8, 0.4, 0.6]
    out = paired_scores(before, after, [1, 1, 2, 2])
    seed = out["per_seed"]
    # Per-seed mean differences 0.2 and 0.0: mean 0.1, sd 0.1414, half = t(0.975, 1) * sd / sqrt(2).
    half = stats.t.ppf(0.975, 1) * math.sqrt(0.02) / math.sqrt(2)
    assert seed["n"] == 2 and seed["delta_mean"] == pytest.approx(0.1)
    assert seed["half_width"] == pytest.approx(half, abs=1e-6)
    assert seed["low"] == pytest.approx(0.1 - half, abs=1e-6) and seed["high"] == pytest.approx(0.1 + half, abs=1e-6)
    sit = out["per_situation"]
    d = [0.1, 0.3, -0.1, 0.1]
    sd = stats.tstd(d)
    assert sit["n"] == 4 and sit["delta_mean"] == pytest.approx(0.1)
    assert sit["half_width"] == pytest.approx(stats.t.ppf(0.975, 3) * sd / 2, abs=1e-6)
    assert sit["p_value"] == pytest.approx(stats.ttest_rel(after, before).pvalue, abs=1e-6)


def test_verdict_reads_noise_as_noise():
    within = paired_scores([0.4, 0.4, 0.4], [0.9, 0.1, 0.5], [1, 2, 3])["per_seed"]
    assert within["low"] < 0 < within["high"] and verdict(within).endswith("within noise")
    gain = paired_scores([0.1, 0.2, 0.3], [0.5, 0.61, 0.69], [1, 2, 3])["per_seed"]
    assert gain["low"] > 0 and verdict(gain).endswith("gain beyond noise")
    loss = paired_scores([0.5, 0.61, 0.69], [0.1, 0.2, 0.3], [1, 2, 3])["per_seed"]
    assert verdict(loss).endswith("loss beyond noise")
    one = paired_scores([0.1, 0.2], [0.3, 0.5], [7, 7])["per_seed"]  # one seed: no interval, said so
    assert one["half_width"] is None and "no interval" in verdict(one)


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="one before, after and seed per situation"):
        paired_scores([0.1, 0.2], [0.3], [1, 2])


def test_readme_table_row_from_a_summary():
    from optimize.report import table

    before, after, seeds = [0.4, 0.5, 0.3, 0.6], [0.5, 0.7, 0.3, 0.8], [1, 1, 2, 2]
    s = {"optimizer": "bootstrap", "elapsed_seconds": 12.4,
         "heldout": {"before": {"mean": 0.45}, "after": {"mean": 0.575}, "paired": paired_scores(before, after, seeds)},
         "budget": {"total_calls": 20, "limit": 24, "refused_calls": 1},
         "usage": {"total": {"prompt_tokens": 1234, "completion_tokens": 56}},
         "failures": {"lm_errors": {"compile": {"server_error": 2}},
                      "unusable_answers": {"planner": {"evaluate": {"parse_error": 3}}}},
         "program": {"demos": 2, "instructions_changed": False}}
    row = table([s]).splitlines()[-1]
    # Seed means of the differences: 0.15 and 0.1; mean 0.125.
    assert "| bootstrap | 20 / 24 | 1,234 + 56 | 12 s | 0.450 → 0.575 | +0.125 [" in row
    assert "2 LM errors, 3 unusable answers, 1 refused | 2 demos, instructions unchanged |" in row
