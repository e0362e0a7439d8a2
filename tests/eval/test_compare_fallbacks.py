"""`python -m eval.compare` stops a comparison whose LM calls keep failing (issue 10): exit 3, one line."""

from __future__ import annotations

import os

import pytest

from eval.compare import main
from tests.programs.fakes import FunctionEngine, lm

# --jobs 1: the fake engines below are patched into this process, which a worker process would not see.
TINY = ["--agents", "4", "--seeds", "0", "--years", "2", "--steps-per-year", "2", "--planners", "llm",
        "--oracle-trials", "5", "--oracle-refine", "10", "--no-progress", "--no-plots", "--jobs", "1"]


def test_always_failing_lm_exits_3_with_one_line(tmp_path, capsys, monkeypatch):
    import programs.lm

    engine = FunctionEngine(lambda request: "Sorry, I would rather not say.")
    monkeypatch.setattr(programs.lm, "build_lms", lambda *a, **k: [lm(engine)])
    argv = TINY + ["--out", str(tmp_path / "c"), "--fallback-patience", "2"]
    assert main(argv) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("eval.compare: stopped: more than 50% of the LM calls fell back for 2 consecutive steps")
    assert "parse_error 8" in err[0]  # 4 LM workers x 2 steps, every answer a parse failure
    assert err[0].endswith("nothing was saved; run again with: python -m eval.compare " + " ".join(argv))
    assert not os.path.exists(tmp_path / "c" / "summary.csv")


@pytest.mark.parametrize("flag, value", [("--max-fallback-rate", "-1"), ("--fallback-patience", "0")])
def test_bad_guard_flags_exit_2(flag, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(TINY + ["--out", str(tmp_path / "c"), flag, value])
    assert info.value.code == 2 and flag in capsys.readouterr().err


def test_report_totals_tokens_by_role_and_the_cost_of_given_prices(tmp_path):
    out = tmp_path / "c"
    assert main(TINY + ["--out", str(out), "--price-in", "2", "--price-out", "8"]) == 0
    report = (out / "report.md").read_text()
    [line] = [x for x in report.splitlines() if "LM usage" in x]
    # --planners llm, 1 seed, 4 LM workers x 2 years x 2 steps = 16 worker answers and 1 planner answer
    # (year 1), plus 16 worker answers of the empirical Saez elasticity (a 2-year simulation).
    assert "tokens (estimated by the offline engine, characters / 4): worker " in line
    assert "(32 answers); planner " in line and "(1 answers); total " in line
    assert "cost: $" in line and "--price-in 2 / --price-out 8" in line and "(on estimated tokens)" in line


def test_compare_dry_run_counts_by_hand_and_builds_nothing(tmp_path, capsys, monkeypatch):
    import programs.lm

    def refuse(*a, **k):
        raise AssertionError("--dry-run built an LM")
    monkeypatch.setattr(programs.lm, "build_lms", refuse)
    out = tmp_path / "c"
    argv = ["--agents", "3", "--seeds", "0-1", "--years", "2", "--steps-per-year", "2", "--out", str(out), "--dry-run"]
    assert main(argv + ["--planners", "llm"]) == 0
    first = capsys.readouterr().out.strip().splitlines()[0]
    # per seed: llm 3 x 2 x 2 = 12 worker answers + 1 planner; the empirical Saez elasticity 12 workers.
    assert first.endswith(": 50 LM answers (worker 48, planner 2)")
    assert main(argv + ["--planners", "llm,democratic,es"]) == 0
    first = capsys.readouterr().out.strip().splitlines()[0]
    # + democratic per seed: 12 workers, an election in year 0 (3 platforms, 3 votes), the planner in year 1;
    # + es: 12 workers (its schedules are not an LM's). 2 seeds x (4 x 12) = 96 workers.
    assert first.endswith(": 112 LM answers (worker 96, planner 10, voter 6)")
    assert not out.exists()


def test_compare_dry_run_is_what_the_comparison_asks(tmp_path, capsys):
    import re

    argv = ["--agents", "3", "--seeds", "0", "--years", "2", "--steps-per-year", "2", "--planners",
            "llm,democratic,es", "--oracle-trials", "5", "--oracle-refine", "10", "--no-progress", "--no-plots"]
    assert main(argv + ["--out", str(tmp_path / "dry"), "--dry-run"]) == 0
    planned = dict(re.findall(r"(\w+) (\d+)", capsys.readouterr().out.splitlines()[0].split("answers (")[1]))
    assert main(argv + ["--out", str(tmp_path / "c")]) == 0
    [line] = [x for x in (tmp_path / "c" / "report.md").read_text().splitlines() if "LM usage" in x]
    asked = dict(re.findall(r"(\w+) \d+ prompt \+ \d+ completion \((\d+) answers\)", line))
    assert asked == planned == {"worker": "48", "planner": "5", "voter": "3"}


def test_a_black_box_planners_lm_workers_are_guarded_too(tmp_path, capsys, monkeypatch):
    import programs.lm

    engine = FunctionEngine(lambda request: "Sorry, I would rather not say.")
    monkeypatch.setattr(programs.lm, "build_lms", lambda *a, **k: [lm(engine)])
    argv = ["--agents", "4", "--seeds", "0", "--years", "2", "--steps-per-year", "2", "--planners", "es",
            "--oracle-trials", "5", "--oracle-refine", "10", "--no-progress", "--no-plots",
            "--out", str(tmp_path / "c"), "--fallback-patience", "2", "--jobs", "1"]
    assert main(argv) == 3
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "fell back for 2 consecutive steps" in line and "parse_error 8" in line
