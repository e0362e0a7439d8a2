"""`python -m optimize.planner --dry-run` (issue 10): the most LM calls by role, nothing built or written."""

from __future__ import annotations

import pytest

from optimize.planner import main


@pytest.fixture
def no_lm(monkeypatch):
    import programs.lm

    def refuse(*a, **k):
        raise AssertionError("--dry-run built an LM")
    monkeypatch.setattr(programs.lm, "build_lms", refuse)


def test_compile_dry_run_counts_scoring_and_the_optimizers_bound(tmp_path, capsys, no_lm):
    out = tmp_path / "sub" / "p.json"
    assert main(["--out", str(out), "--dry-run", "--years", "3", "--train-seeds", "0-1", "--val-seeds", "2",
                 "--heldout-seeds", "3-4", "--budget", "100"]) == 0
    first, second = capsys.readouterr().out.strip().splitlines()
    # 2 planner situations per seed (years 1 and 2): scoring before and after = 2 x (4 held-out + 2 val) = 12
    # planner calls (rational workers: 1 call per evaluation); the optimizer may use the rest of the budget.
    assert "scoring before and after 12 + bootstrap at most " in first
    total = int(first.split("at most): ")[1].split(" LM answers")[0])
    assert 12 < total <= 100 and f"(planner {total})" in first
    assert f"~{total * 900:,} prompt" in second and "nothing was built or called" in second
    assert not (tmp_path / "sub").exists()


def test_llm_workers_split_each_evaluation(tmp_path, capsys, no_lm):
    assert main(["--out", str(tmp_path / "p.json"), "--dry-run", "--years", "2", "--train-seeds", "0-1",
                 "--val-seeds", "2", "--heldout-seeds", "3", "--workers", "llm", "--agents", "3",
                 "--steps-per-year", "2", "--budget", "1000"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    # e = 1 planner + 3 x 2 worker calls per evaluation; scoring = 2 x (1 + 1) x 7 = 28 calls.
    assert "scoring before and after 28 + " in first
    import re

    workers, planners = map(int, re.search(r"\(worker (\d+), planner (\d+)\)", first).groups())
    assert workers >= 6 * 4 and planners >= 4 and abs(workers - 6 * planners) <= 6
