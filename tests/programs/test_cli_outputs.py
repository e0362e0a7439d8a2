"""What a careful new user hit (issue 11), for every CLI: output paths checked before any work (item 1),
no silent overwrites (7), Ctrl-C stops cleanly (4), ``programs.serve`` bad ports (5), messages that say
what is wrong (10), ``--help`` texts (11) and one file mode for every output (12)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import eval.compare as compare
import optimize.planner as planner
from programs.cli import check_out_dir, check_out_file
from programs.errors import ConfigError
from programs.simulation import cli as simulate

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def _boom(*a, **k):
    raise AssertionError("ran past validation")


@pytest.fixture
def no_work(monkeypatch):
    """Any work past validation fails the test (no comparison, no compile, no simulation, no LM)."""
    monkeypatch.setattr(compare, "run_comparison", _boom)
    import optimize.cli  # where optimize.planner's main looks its jobs up

    monkeypatch.setattr(optimize.cli, "run_compile", _boom)
    monkeypatch.setattr(optimize.cli, "run_tune", _boom)
    monkeypatch.setattr(simulate, "build_lms", _boom)


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _run(main, argv, capsys) -> tuple[int, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    return rc, capsys.readouterr().err


# ── item 1: every output path is checked before any work ───────────────────────────────────────────

def test_check_out_dir_refuses_files_unwritable_paths_and_file_parents(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="is an existing file, not a directory"):
        check_out_dir(afile)
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        check_out_dir(afile / "sub")
    with pytest.raises(ConfigError, match="cannot create the directory"):
        check_out_dir("/proc/x")
    new = tmp_path / "a" / "b"
    assert check_out_dir(new, create=False) == [] and not (tmp_path / "a").exists()
    assert check_out_dir(new) == [] and new.is_dir()
    with pytest.raises(ConfigError, match="is a directory, not a file"):
        check_out_file(tmp_path)
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        check_out_file(afile / "p.json")


def _bad_outs(tmp_path: Path) -> list[tuple[str, str]]:
    results = tmp_path / "results.txt"
    results.write_text("mine")
    return [(str(results), "is an existing file"), ("/proc/x", "cannot create"),
            (str(results / "sub"), "is a file, not a directory")]


@pytest.mark.parametrize("which", ["compare", "simulate"])
def test_directory_outs_are_checked_before_any_work(which, tmp_path, capsys, no_work):
    main = compare.main if which == "compare" else simulate.main
    extra = ["--agents", "5"] if which == "compare" else ["--agents", "5", "--no-progress"]
    for out, needle in _bad_outs(tmp_path):
        rc, err = _run(main, extra + ["--out", out], capsys)
        assert rc == 2, (out, err)
        assert needle in _one_line(err), err
    assert (tmp_path / "results.txt").read_text() == "mine"


def test_planner_out_is_checked_before_any_work(tmp_path, capsys, no_work):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, needle in [(str(afile / "p.json"), "is a file, not a directory"), ("/proc/x/p.json", "cannot"),
                        (str(tmp_path), "must end in .json")]:
        rc, err = _run(planner.main, ["--out", out, "--quiet"], capsys)
        assert rc == 2 and needle in _one_line(err), err


# ── item 7: a run never overwrites another run's files without --overwrite ─────────────────────────

def test_compare_refuses_a_directory_holding_another_run(tmp_path, capsys, no_work):
    out = tmp_path / "results"
    out.mkdir()
    (out / "summary.csv").write_text("planner,seed\n")
    (out / "config.json").write_text(json.dumps({"agents": 100, "planners": ["saez"]}))
    rc, err = _run(compare.main, ["--planners", "saez,oracle", "--out", str(out)], capsys)
    assert rc == 2 and "already holds files of another run" in _one_line(err) and "--overwrite" in err
    # --overwrite lets it through (to the work, which no_work stops).
    with pytest.raises(AssertionError, match="ran past validation"):
        compare.main(["--planners", "saez,oracle", "--out", str(out), "--overwrite"])


def test_compare_may_rerun_the_same_settings_into_its_own_directory(tmp_path, monkeypatch):
    out = tmp_path / "r"
    argv = ["--planners", "saez,oracle", "--agents", "8", "--seeds", "0", "--oracle-trials", "5",
            "--oracle-refine", "0", "--no-plots", "--no-progress", "--out", str(out)]
    assert compare.main(argv) == 0
    assert compare.main(argv) == 0  # the same command again replaces its own files
    rc = None
    try:
        rc = compare.main([*argv[:5], "9", *argv[6:]])  # other settings: another run
    except SystemExit as exc:
        rc = exc.code
    assert rc == 2


def test_simulate_refuses_to_write_into_an_eval_compare_directory(tmp_path, capsys, no_work):
    out = tmp_path / "cmp"
    out.mkdir()
    cfg = {"agents": 100, "planners": ["saez"], "command": "python -m eval.compare"}
    (out / "config.json").write_text(json.dumps(cfg))
    rc, err = _run(simulate.main, ["--agents", "5", "--no-progress", "--out", str(out)], capsys)
    assert rc == 2 and "already holds files of another run" in _one_line(err)
    assert json.loads((out / "config.json").read_text()) == cfg
    # item 10: --resume on it says what it is, not "unreadable run config ('config')".
    rc, err = _run(simulate.main, ["--agents", "5", "--no-progress", "--out", str(out), "--resume"], capsys)
    assert rc == 2
    line = _one_line(err)
    assert "not written by programs.simulate" in line and "eval.compare" in line and "'config'" not in line


def test_simulate_overwrite_replaces_a_finished_run(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--agents", "4", "--years", "1", "--steps-per-year", "1", "--workers", "rational", "--no-progress",
            "--out", str(out)]
    assert simulate.main(argv) == 0
    rc, err = _run(simulate.main, argv, capsys)
    assert rc == 2 and "--overwrite" in _one_line(err)
    assert simulate.main(argv + ["--overwrite"]) == 0


def test_planner_refuses_an_existing_program_without_overwrite(tmp_path, capsys, no_work):
    out = tmp_path / "p.json"
    out.write_text("{}")
    rc, err = _run(planner.main, ["--out", str(out), "--quiet"], capsys)
    assert rc == 2 and "already exists" in _one_line(err) and "--overwrite" in err
    rc, err = _run(planner.main, ["--out", str(out), "--quiet", "--overwrite"], capsys)
    assert rc == 1 and "ran past validation" in err  # the planner's main reports the stub's failure


# ── item 4: Ctrl-C prints one line (what was saved, the command that resumes), exit 130 ─────────────

def test_ctrl_c_in_compare_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(compare, "run_comparison", interrupt)
    rc, err = _run(compare.main, ["--planners", "saez", "--out", str(tmp_path / "r")], capsys)
    assert rc == 130
    line = _one_line(err)
    assert "interrupted" in line and "python -m eval.compare --planners saez --out" in line


def test_ctrl_c_in_simulate_says_what_was_saved_and_how_to_resume(tmp_path, capsys, monkeypatch):
    from programs.simulation import Simulation

    def interrupt(self, *a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(Simulation, "run", interrupt)
    out = tmp_path / "run"
    rc, err = _run(simulate.main, ["--agents", "4", "--no-progress", "--out", str(out)], capsys)
    assert rc == 130
    line = _one_line(err)
    assert "steps are saved in" in line and f"--out {out} --resume" in line


# ── item 5: programs.serve on a bad port ────────────────────────────────────────────────────────────

def test_serve_bad_port_is_one_line_exit_2():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        for port in ("99999", str(busy)):
            r = subprocess.run([sys.executable, "-m", "programs.serve", "--port", port], cwd=ROOT, env=ENV,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 2, r.stderr
            assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


# ── item 10: messages that say what is wrong ────────────────────────────────────────────────────────

def test_messages_name_the_real_problem(tmp_path, capsys, no_work):
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    cases = [
        (compare.main, ["--planners", "compiled", "--planner-program", str(empty)], "is not a saved planner program"),
        (simulate.main, ["--planner", str(empty)], "is not a saved planner program"),
        (planner.main, ["--tune", "--program", str(empty)], "is not a saved planner program"),
        (compare.main, ["--seeds", "0,0"], "repeats seed 0"),
        (compare.main, ["--brackets", "0,abc,100000"], "'abc' is not a number"),
        (compare.main, ["--api-base", "http://127.0.0.1:9/v1"], "--lm openai/offline-engine"),
    ]
    for main, argv, needle in cases:
        rc, err = _run(main, argv + ["--out", str(tmp_path / "o")] if main is not planner.main else argv, capsys)
        assert rc == 2 and needle in _one_line(err), (argv, err)
        assert "does not load: 'metadata'" not in err
    from eval.calibration import main as calibration
    rc, err = _run(calibration, ["--agents", "0"], capsys)
    assert rc == 2 and "--agents=0" in _one_line(err)


# ── item 11: --help texts ───────────────────────────────────────────────────────────────────────────

def _help(main) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        main(["--help"])
    return " ".join(buf.getvalue().split())


def test_help_texts_explain_every_option_and_print_defaults_once():
    from eval.calibration import main as calibration
    from programs.lm.server import main as serve

    s = _help(serve)
    for needle in ("--port PORT TCP port", "(default: 8000)", "--host HOST address", "--seed SEED seed",
                   "(default: 30.0)"):
        assert needle in s, needle
    c = _help(calibration)
    for needle in ("--agents AGENTS agents", "--seed SEED population seed", "--brackets BRACKETS bracket preset:",
                   "--swf SWF social welfare function:"):
        assert needle in c, needle
    m = _help(simulate.main)
    for needle in ("--seed SEED seed", "--temperature TEMPERATURE LM sampling", "us_federal_2023, us_federal_2024",
                   "inverse_skill, paper, utilitarian", "--overwrite"):
        assert needle in m, needle
    for text in (s, c, m, _help(planner.main), _help(compare.main)):
        assert "(default: None)" not in text and "(default: False)" not in text
        assert text.count("(default: the preset's) (default") == 0


def test_planner_shows_no_progress_bars_without_verbose(tmp_path):
    argv = ["--agents", "10", "--years", "2", "--train-seeds", "0-1", "--val-seeds", "2", "--heldout-seeds", "100",
            "--oracle-trials", "10", "--oracle-refine", "0", "--optimizer", "mipro", "--out", str(tmp_path / "p.json")]
    r = subprocess.run([sys.executable, "-m", "optimize.planner", *argv], cwd=ROOT, env=ENV, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "it/s" not in r.stderr and "%|" not in r.stderr, r.stderr[-2000:]


# ── item 12: one file mode for every output ─────────────────────────────────────────────────────────

def test_every_output_has_the_same_mode(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert simulate.main(["--agents", "4", "--years", "1", "--steps-per-year", "1", "--workers", "rational",
                              "--no-progress", "--out", str(out)]) == 0
        cmp = tmp_path / "cmp"
        assert compare.main(["--planners", "saez,oracle", "--agents", "8", "--seeds", "0", "--oracle-trials", "5",
                             "--oracle-refine", "0", "--no-progress", "--out", str(cmp)]) == 0
    finally:
        os.umask(old)
    files = [p for d in (out, cmp) for p in d.iterdir() if p.is_file()]
    assert {"config.json", "summary.json", "summary.csv", "report.md", "schedules.png"} <= {p.name for p in files}
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {0o644}, modes
