"""``--jobs`` (issue 21): units in worker processes give byte-identical outputs, Ctrl-C stops every worker."""

from __future__ import annotations

import math
import operator
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.parallel import Unit, resolve_jobs, run_units, usable_cores, without_jobs
from programs.errors import ConfigError
from programs.simulation.guard import FallbackStop

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def _units() -> list[Unit]:
    # b waits for a and takes its result; c is independent; d waits for b and c.
    return [Unit("a", operator.mul, (6, 7)),
            Unit("b", operator.add, lambda r: (r["a"], 1), after=("a",)),
            Unit("c", math.factorial, (10,)),
            Unit("d", operator.sub, lambda r: (r["b"], r["c"]), after=("b", "c"))]


@pytest.mark.parametrize("jobs", [1, 2])
def test_units_wait_for_their_inputs_and_give_the_same_results_in_any_number_of_processes(jobs):
    done: list[str] = []
    r = run_units(_units(), jobs, progress=False, on_done=lambda u, _: done.append(u.key))
    assert r == {"a": 42, "b": 43, "c": 3628800, "d": 43 - 3628800}
    assert sorted(done) == ["a", "b", "c", "d"] and done.index("a") < done.index("b") < done.index("d")


def test_a_unit_listed_before_its_input_or_waiting_for_an_unknown_unit_is_refused():
    with pytest.raises(ValueError, match="listed before"):
        run_units([Unit("b", operator.neg, lambda r: (r["a"],), after=("a",)), Unit("a", abs, (1,))], 1,
                  progress=False)
    with pytest.raises(ValueError, match="unknown unit"):
        run_units([Unit("b", abs, (1,), after=("zz",))], 2, progress=False)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_unit_raises_its_own_error_in_the_caller(jobs):
    with pytest.raises(ValueError, match="math domain error"):
        run_units([Unit("ok", abs, (-1,)), Unit("bad", math.sqrt, (-1.0,))], jobs, progress=False)


def test_a_fallback_stop_survives_the_trip_from_a_worker_process():
    stop = FallbackStop(t=7, steps=3, calls=40, causes={"parse": 30, "lm_error": 2}, max_rate=0.5)
    back = pickle.loads(pickle.dumps(stop))
    assert type(back) is FallbackStop and back.line("cmd") == stop.line("cmd") and back.t == 7


def test_jobs_default_is_the_usable_cores_and_one_for_a_local_model():
    assert resolve_jobs(None, "offline") == usable_cores() == len(os.sched_getaffinity(0))
    assert resolve_jobs(None, "local") == 1 and resolve_jobs(3, "local") == 3
    with pytest.raises(ConfigError, match=r"--jobs=0 must be >= 1"):
        resolve_jobs(0)


def test_the_recorded_command_leaves_jobs_out():
    assert without_jobs(["--agents", "4", "--jobs", "2", "--jobs=3", "--out", "r"]) == ["--agents", "4", "--out", "r"]


def _compare(cwd: Path, jobs: int) -> subprocess.CompletedProcess:
    cwd.mkdir()
    argv = [sys.executable, "-m", "eval.compare", "--agents", "12", "--seeds", "0-1", "--years", "2",
            "--steps-per-year", "2", "--no-progress", "--out", "r", "--jobs", str(jobs)]
    return subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_compare_writes_byte_identical_files_with_one_and_two_jobs(tmp_path):
    """Every planner (LM planners and LM workers on the offline engine, black-box planners, oracles, the SWF
    matrix, the Saez robustness runs) in one process and in two: every file written is the same, byte for byte
    (PNG plots included); the files hold no wall time."""
    one, two = _compare(tmp_path / "one", 1), _compare(tmp_path / "two", 2)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    files = sorted(p.name for p in (tmp_path / "one" / "r").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "two" / "r").iterdir())
    assert {"summary.csv", "swf_matrix.csv", "saez_robustness.csv", "trajectory.csv", "report.md",
            "config.json", "schedules.png"} <= set(files)
    for name in files:
        assert (tmp_path / "one" / "r" / name).read_bytes() == (tmp_path / "two" / "r" / name).read_bytes(), name
    report = (tmp_path / "one" / "r" / "report.md").read_text()
    assert "--jobs" not in report and "Wall time" not in report


@pytest.mark.slow
def test_calibration_table_is_the_same_in_two_processes():
    from eval.calibration import calibration_table

    one = calibration_table(agents=60, seed=2, jobs=1)
    two = calibration_table(agents=60, seed=2, jobs=2)
    assert one.to_csv() == two.to_csv()


def _children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(x) for x in text.split()}


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_with_one_line_and_exit_130(tmp_path):
    argv = [sys.executable, "-m", "eval.compare", "--agents", "100", "--seeds", "0-3", "--no-progress",
            "--no-plots", "--out", str(tmp_path / "r"), "--jobs", "2"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers: set[int] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(workers) < 2:  # the pool's processes are running units
        workers = {c for c in _children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()
                   .replace("\0", " ")} if proc.poll() is None else set()
        time.sleep(0.5)
    assert len(workers) >= 2, "no worker processes appeared"
    time.sleep(3)  # inside the units
    proc.send_signal(signal.SIGINT)  # the parent only, as `kill -INT`; a terminal's Ctrl-C reaches the group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in err, err
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(), pid
    assert not (tmp_path / "r" / "summary.csv").exists()


@pytest.mark.slow
def test_replicate_writes_byte_identical_files_with_one_and_two_jobs(tmp_path):
    """Both comparisons' units share one pool: replication.md/.csv and each comparison's files are the same."""
    runs = {}
    for jobs in (1, 2):
        cwd = tmp_path / f"j{jobs}"
        cwd.mkdir()
        r = subprocess.run([sys.executable, "-m", "eval.replicate", "--agents", "8", "--years", "2",
                            "--steps-per-year", "1", "--seeds", "0-1", "--oracle-trials", "5", "--no-progress",
                            "--out", "rep", "--jobs", str(jobs)], cwd=cwd, env=ENV, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr
        runs[jobs] = {p.relative_to(cwd / "rep"): p.read_bytes() for p in sorted((cwd / "rep").rglob("*"))
                      if p.is_file()}
    assert runs[1].keys() == runs[2].keys() and Path("replication.md") in runs[1]
    assert Path("corrected/summary.csv") in runs[1]
    for name in runs[1]:
        assert runs[1][name] == runs[2][name], name
