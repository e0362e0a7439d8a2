"""Issue 19: ``optimize.planner --mlflow URI`` against a real ``mlflow server`` (SQLite backend, a temporary
artifact directory) that the test starts and stops: the compile is a run with its held-out scores, interval,
budget and the program as artifacts, DSPy's autologging adds its own runs, and no key or credential from
the environment or the command line reaches MLflow's store."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.e2e.conftest import ROOT, _stop, cli_env, free_port, run_cli

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                 reason="needs the mlflow extra: pip install -e \".[mlflow]\"")]

SECRET = "sk-planted-SECRET-19"
TINY = ["--agents", "10", "--years", "2", "--train-seeds", "0-1", "--val-seeds", "2", "--heldout-seeds", "100-101",
        "--oracle-trials", "10", "--oracle-refine", "0", "--quiet", "--budget", "40"]


def test_compile_is_tracked_in_a_real_mlflow_server(tmp_path):
    port = free_port()
    store, artifacts = tmp_path / "mlflow.db", tmp_path / "artifacts"
    log = open(tmp_path / "mlflow.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{store}", "--artifacts-destination", str(artifacts),
                             "--workers", "1"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900  # a loaded 2-core machine migrates the SQLite store slowly
        while True:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "mlflow.log").read_text()[-2000:]
            time.sleep(0.5)
        out = tmp_path / "p.json"
        env = cli_env(tmp_path, OPENAI_API_KEY=SECRET)
        r = run_cli("optimize.planner", [*TINY, "--mlflow", uri, "--mlflow-experiment", "issue19", "--out", str(out)],
                    env, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]

        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("issue19")
        runs = client.search_runs([exp.experiment_id])
        parent = next(run for run in runs if run.info.run_name == "compile-bootstrap")
        m = parent.data.metrics
        assert {"heldout_before", "heldout_after", "heldout_delta", "lm_calls"} <= set(m)
        assert m["lm_calls"] <= 40
        assert parent.data.params["optimizer"] == "bootstrap" and "offline" in parent.data.params["lm"]
        files = {f.path for f in client.list_artifacts(parent.info.run_id, "program")}
        assert {"program/p.json", "program/p.summary.json"} <= files
    finally:
        _stop(proc)
        log.close()
    # Nothing secret in MLflow's store or artifacts.
    for path in [store, *artifacts.rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert ROOT.is_dir()
