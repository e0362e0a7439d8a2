"""``programs.tracking``: the ``--mlflow`` checks before any work (the extra, the URI), and the one way a
parameter, a metric and a run are written (redacted, finite, a stopped run marked KILLED).

The real-server tests of the CLIs are in tests/e2e/test_mlflow.py."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest

from programs.errors import ConfigError
from programs.tracking import backend_tags, check_mlflow, metric_key
from tests.e2e.conftest import closed_port

needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason="needs the mlflow extra: pip install -e \".[mlflow]\"")

#: A tiny comparison (no LM planner: no LM is built or probed).
CMP = ["--planners", "saez,none", "--agents", "6", "--seeds", "0", "--oracle-trials", "3", "--oracle-refine", "0",
       "--no-plots", "--no-progress"]


def test_without_the_extra_mlflow_is_one_line_naming_it_and_nothing_is_written(monkeypatch, tmp_path, capsys):
    from eval.compare import main

    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    with pytest.raises(ConfigError, match=r"--mlflow needs the \[mlflow\] extra: pip install"):
        check_mlflow("http://127.0.0.1:5000")
    out = tmp_path / "cmp"
    with pytest.raises(SystemExit) as stop:
        main([*CMP, "--out", str(out), "--mlflow", "sqlite:///x.db"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and "[mlflow] extra" in err
    assert not out.exists() and not (tmp_path / "x.db").exists()


def test_no_uri_is_no_check_and_an_empty_one_is_refused():
    check_mlflow(None)  # tracking off: nothing to check, mlflow not imported
    with pytest.raises(ConfigError, match="--mlflow is empty"):
        check_mlflow("  ")


@needs_mlflow
def test_an_unreachable_server_is_one_line_before_any_work_its_credentials_redacted(tmp_path, capsys):
    from eval.compare import main

    out = tmp_path / "cmp"
    uri = f"http://trk-user:PW-trk-77@127.0.0.1:{closed_port()}"
    with pytest.raises(SystemExit) as stop:
        main([*CMP, "--out", str(out), "--mlflow", uri])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--mlflow=" in err and "cannot open the tracking store" in err and "trk-user:***@" in err
    assert "PW-trk-77" not in err
    assert not out.exists()


@needs_mlflow
def test_an_unknown_scheme_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"--mlflow='nope://h': cannot open the tracking store"):
        check_mlflow("nope://h")


def test_metric_keys_keep_mlflow_s_alphabet():
    assert metric_key("llm", "seed0", "welfare") == "llm/seed0/welfare"
    assert metric_key("fallbacks", "llm", "parse:error!") == "fallbacks/llm/parse_error_"
    assert metric_key("a", "", "b") == "a/b"


def test_the_offline_engine_is_tagged_as_not_a_language_model():
    off = backend_tags("offline")
    assert off["backend"] == "offline" and off["language_model"].startswith("NO:")
    assert "NOT a language model" in off["mlflow.note.content"]
    served = backend_tags("openai/offline", offline=True)  # an endpoint serving the offline engine
    assert served["backend"] == "endpoint" and served["language_model"].startswith("NO:")
    assert backend_tags("openai/gpt-4o-mini")["language_model"] == "yes"
    assert backend_tags(None)["backend"] == "none"


@needs_mlflow
@pytest.mark.slow
def test_params_are_flattened_redacted_and_metrics_finite_and_a_stopped_run_is_killed(tmp_path):
    """On a SQLite store (its creation takes ~15 s on a loaded 2-core machine)."""
    from mlflow.tracking import MlflowClient

    from programs.tracking import log_metrics, log_params, mlflow_run

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    check_mlflow(uri)
    params = {"api_base": ["http://gw:PW-1@h:8000/v1?token=TOK-2"], "lm": {"name": "openai/m", "seed": 3}}
    with mlflow_run(uri, experiment="t", run_name="ok", params=params,
                    tags={"note": "Authorization: Bearer sk-abcdefghijkl"}) as run:
        logged = log_metrics({"a": 1.5, "b": math.nan, "c": None, "d": 2})
        assert log_params({"x": "y" * 7000})["x"] == "y" * 6000  # cut to MLflow's limit
    assert logged == {"a": 1.5, "d": 2.0}
    client = MlflowClient(uri)
    done = client.get_run(run.info.run_id)
    assert done.info.status == "FINISHED"
    assert done.data.params["api_base"] == "['http://gw:***@h:8000/v1?token=***']"
    assert done.data.params["lm.name"] == "openai/m" and done.data.params["lm.seed"] == "3"
    assert done.data.tags["note"] == "Authorization: Bearer ***"
    assert done.data.metrics == {"a": 1.5, "d": 2.0}
    with pytest.raises(KeyboardInterrupt):
        with mlflow_run(uri, experiment="t", run_name="stopped") as run:
            raise KeyboardInterrupt
    assert client.get_run(run.info.run_id).info.status == "KILLED"
    db = (tmp_path / "m.db").read_bytes()
    assert b"PW-1" not in db and b"TOK-2" not in db and b"sk-abcdefghijkl" not in db
