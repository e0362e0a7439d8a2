"""Issue 19: ``--mlflow URI`` against a real ``mlflow server`` (SQLite backend, a temporary artifact directory)
that the tests start once and stop:

- ``optimize.planner``: the compile is a run with its held-out scores, interval, budget and the program as
  artifacts (DSPy's autologging adds its own runs);
- ``optimize.planner --tune``: a parent run for the study with the best trial, one child run per trial;
- ``eval.compare --jobs 2``: one run with the configuration, every planner x seed's metrics equal to
  ``summary.csv``'s, the table's means and intervals, fallbacks by cause, tokens by role, the small output
  files, and tags saying the offline engine ran and is not a language model;

and no key or URL credential from the environment or the command line reaches MLflow's store or artifacts."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import _stop, cli_env, free_port, run_cli, serve

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                 reason="needs the mlflow extra: pip install -e \".[mlflow]\"")]

SECRET = "sk-planted-SECRET-19"
PASSWORD = "PW-gateway-19"
TINY = ["--agents", "10", "--years", "2", "--train-seeds", "0-1", "--val-seeds", "2", "--heldout-seeds", "100-101",
        "--oracle-trials", "10", "--oracle-refine", "0", "--quiet", "--budget", "40"]


@dataclass
class Tracker:
    uri: str
    store: Path
    artifacts: Path

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.uri)

    def runs(self, experiment: str) -> list:
        client = self.client()
        exp = client.get_experiment_by_name(experiment)
        assert exp is not None, f"no experiment {experiment!r}"
        return client.search_runs([exp.experiment_id], max_results=1000)

    def assert_no_secret(self, *secrets: str) -> None:
        """Nothing secret in MLflow's store (params, tags, metrics, traces) or its artifacts."""
        files = [self.store, *self.artifacts.rglob("*")]
        for path in files:
            if path.is_file():
                data = path.read_bytes()
                for s in secrets:
                    assert s.encode() not in data, f"{s} leaked into {path}"


@pytest.fixture(scope="module")
def tracker(tmp_path_factory) -> Iterator[Tracker]:
    """``mlflow server`` on a free port of 127.0.0.1, a SQLite store and artifact directory of its own."""
    tmp = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    store, artifacts = tmp / "mlflow.db", tmp / "artifacts"
    log = open(tmp / "mlflow.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{store}", "--artifacts-destination", str(artifacts),
                             "--workers", "1"], cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
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
            assert proc.poll() is None and time.monotonic() < deadline, (tmp / "mlflow.log").read_text()[-2000:]
            time.sleep(0.5)
        yield Tracker(uri, store, artifacts)
    finally:
        _stop(proc)
        log.close()


def test_compile_is_tracked_in_a_real_mlflow_server(tracker, tmp_path):
    out = tmp_path / "p.json"
    env = cli_env(tmp_path, OPENAI_API_KEY=SECRET)
    r = run_cli("optimize.planner", [*TINY, "--mlflow", tracker.uri, "--mlflow-experiment", "issue19", "--out", str(out)],
                env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    parent = next(run for run in tracker.runs("issue19") if run.info.run_name == "compile-bootstrap")
    m = parent.data.metrics
    assert {"heldout_before", "heldout_after", "heldout_delta", "lm_calls"} <= set(m)
    assert m["lm_calls"] <= 40
    summary = json.loads((tmp_path / "p.summary.json").read_text())
    assert m["heldout_after"] == pytest.approx(summary["heldout"]["after"]["mean"])
    assert parent.data.params["optimizer"] == "bootstrap" and "offline" in parent.data.params["lm"]
    assert parent.data.tags["language_model"].startswith("NO:")
    files = {f.path for f in tracker.client().list_artifacts(parent.info.run_id, "program")}
    assert {"program/p.json", "program/p.summary.json"} <= files
    tracker.assert_no_secret(SECRET)


def test_tune_is_a_parent_run_with_a_child_run_per_trial(tracker, tmp_path):
    out = tmp_path / "t.json"
    trials = 3
    r = run_cli("optimize.planner", ["--tune", "--trials", str(trials), "--agents", "6", "--years", "2",
                                     "--tune-seeds", "0", "--train-seeds", "0", "--heldout-seeds", "100",
                                     "--oracle-trials", "10", "--oracle-refine", "0", "--quiet",
                                     "--mlflow", tracker.uri, "--mlflow-experiment", "tune19", "--out", str(out)],
                cli_env(tmp_path, OPENAI_API_KEY=SECRET), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "t.summary.json").read_text())
    runs = tracker.runs("tune19")
    parent = next(run for run in runs if run.info.run_name == "tune-planner")
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == trials == summary["study"]["trials"]
    by_trial = {int(c.data.tags["optuna.trial"]): c for c in children}
    assert sorted(by_trial) == list(range(trials))
    assert all(c.data.tags["optuna.state"] == "COMPLETE" and c.info.status == "FINISHED" for c in children)
    assert set(children[0].data.params) == {"history_len", "steps_per_year", "temperature", "n_demos"}
    # The best trial's knobs and score on the parent, the same as its own child run and the summary's.
    best = summary["study"]["best"]
    p = parent.data
    assert p.params["best.trial"] == str(best["number"]) and p.metrics["best_score"] == pytest.approx(best["score"])
    assert {k: p.params[f"best.{k}"] for k in best["knobs"]} == {k: str(v) for k, v in best["knobs"].items()}
    assert by_trial[best["number"]].data.metrics["score"] == pytest.approx(best["score"])
    assert p.metrics["trials/complete"] == trials and p.params["mode"] == "tune"
    assert p.metrics["heldout_after"] == pytest.approx(summary["heldout"]["after"]["mean"])
    tracker.assert_no_secret(SECRET)


def test_comparison_is_one_run_whose_metrics_are_its_own_outputs(tracker, tmp_path):
    import pandas as pd

    out = tmp_path / "cmp"
    env = cli_env(tmp_path, OPENAI_API_KEY=SECRET)
    with serve(tmp_path / "srv", "--fail-rate", "0.2", "--faults", "out_of_range", "--seed", "3", env=env) as server:
        gateway = server.url.replace("http://", f"http://gw-user:{PASSWORD}@")
        r = run_cli("eval.compare", ["--planners", "llm,saez,oracle,none", "--agents", "6", "--seeds", "0-1",
                                     "--years", "2", "--steps-per-year", "1", "--oracle-trials", "5",
                                     "--oracle-refine", "0", "--no-progress", "--lm", "openai/offline",
                                     "--api-base", gateway, "--jobs", "2", "--out", str(out),
                                     "--mlflow", tracker.uri, "--mlflow-experiment", "compare19"],
                    env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    [run] = tracker.runs("compare19")
    assert run.info.status == "FINISHED" and run.info.run_name == "compare-llm-oracle-saez-none"  # planners in canonical order
    params, tags, m = run.data.params, run.data.tags, run.data.metrics
    # The resolved configuration, redacted (config.json's content), the command without the password.
    config = json.loads((out / "config.json").read_text())
    assert params["agents"] == "6" and params["seeds"] == "[0, 1]" and params["lm"] == "openai/offline"
    assert params["api_base"] == str(config["api_base"]) and "gw-user:***@" in params["api_base"]
    assert "--jobs 2" not in params["command"] and "gw-user:***@" in params["command"]
    # An endpoint serving the offline engine: tagged as the stand-in, never as a language model.
    assert tags["backend"] == "endpoint" and tags["language_model"].startswith("NO:")
    assert "NOT a language model" in tags["mlflow.note.content"]
    # Every planner x seed value is summary.csv's; the summary is its mean and interval.
    df = pd.read_csv(out / "summary.csv")
    assert len(df) == 8
    for row in df.itertuples():
        for metric in ("welfare", "pct_oracle_gain", "gini"):
            assert m[f"{row.planner}/seed{row.seed}/{metric}"] == pytest.approx(getattr(row, metric)), (row, metric)
    from eval.report import aggregate

    agg = aggregate(df).set_index("planner")
    for planner in ("llm", "saez", "oracle", "none"):
        assert m[f"{planner}/pct_oracle_gain"] == pytest.approx(agg.loc[planner, "pct_oracle_gain"])
        assert m[f"{planner}/welfare_ci95"] == pytest.approx(agg.loc[planner, "welfare_ci"])
        assert m[f"{planner}/n_seeds"] == 2
    # Fallbacks by planner and cause (the served faults), summing to summary.csv's for the LM planner.
    llm_fallbacks = {k: v for k, v in m.items() if k.startswith("fallbacks/llm/")}
    assert sum(llm_fallbacks.values()) == df.loc[df.planner == "llm", "fallbacks"].sum() > 0
    assert m["fallbacks/total"] == sum(v for k, v in m.items() if k.startswith("fallbacks/") and k != "fallbacks/total")
    assert m["lm/planner/calls"] > 0 and m["lm/worker/calls"] > 0 and m["lm/total/prompt_tokens"] > 0
    # The small output files, the big one (report.html's script) left out.
    files = {f.path for f in tracker.client().list_artifacts(run.info.run_id)}
    assert {"summary.csv", "config.json", "report.md", "report.html", "table.txt", "weights.csv"} <= files
    assert "plotly.min.js" not in files
    tracker.assert_no_secret(SECRET, PASSWORD)
    assert SECRET not in r.stdout + r.stderr and PASSWORD not in r.stdout + r.stderr
