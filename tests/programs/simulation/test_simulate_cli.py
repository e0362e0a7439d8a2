"""`python -m programs.simulate`: bad settings exit 2 with one line before any LM call; run and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from programs.simulation import cli as simulate
from programs.lm import OFFLINE_LABEL

ROOT = Path(__file__).resolve().parents[3]
BASE = ["--agents", "10", "--steps-per-year", "3", "--brackets", "three", "--no-progress"]


@pytest.fixture
def no_lm_calls(monkeypatch):
    """Fail the test if the CLI builds an LM (bad settings must be refused before)."""
    def refuse(*a, **k):
        raise AssertionError("an LM was built before the settings were checked")
    monkeypatch.setattr(simulate, "build_lms", refuse)


@pytest.mark.parametrize("argv, message", [
    (["--agents", "0"], "agents=0"),
    (["--scenario", "utopia"], "scenario='utopia'"),
    (["--workers", "robots"], "workers='robots'"),
    (["--steps-per-year", "0"], "steps_per_year=0"),
    (["--temperature", "-1"], "temperature=-1.0"),
    (["--concurrency", "0"], "concurrency=0"),
    (["--lm", "gpt-4o-mini"], "provider/model"),
    (["--lm", "openai/gpt-4o-mini"], "OPENAI_API_KEY"),
    (["--lm", "hosted_vllm/llama"], "--api-base"),
    (["--api-base", "http://127.0.0.1:9/v1"], "offline engine runs in-process"),
    (["--lm", "openai/x", "--api-base", "ftp://host"], "api_base[0]"),
    (["--planner", "missing.json"], "planner='missing.json'"),
])
def test_bad_settings_exit_2_with_one_line(argv, message, tmp_path, capsys, monkeypatch, no_lm_calls):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code = simulate.main(argv + ["--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run" / "steps.jsonl").exists()


def test_existing_run_needs_resume(tmp_path, capsys, no_lm_calls):
    (tmp_path / "steps.jsonl").write_text('{"t": 0}\n')
    assert simulate.main(BASE + ["--out", str(tmp_path)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_run_then_resume_equals_an_unbroken_run(tmp_path, capsys):
    assert simulate.main(BASE + ["--years", "3", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert f"LM: {OFFLINE_LABEL}" in out and "welfare by tax year" in out
    assert simulate.main(BASE + ["--years", "1", "--out", str(tmp_path / "b")]) == 0
    assert simulate.main(BASE + ["--years", "3", "--out", str(tmp_path / "b"), "--resume", "--concurrency", "2"]) == 0
    assert "resumed at step 3 of 9" in capsys.readouterr().out
    a = json.loads((tmp_path / "a" / "summary.json").read_text())
    b = json.loads((tmp_path / "b" / "summary.json").read_text())
    a["config"].pop("concurrency"), b["config"].pop("concurrency")
    assert a == b
    lines = (tmp_path / "b" / "steps.jsonl").read_text().splitlines()
    assert [json.loads(x)["t"] for x in lines] == list(range(9))
    first = json.loads(lines[0])
    assert {"hours", "utility", "welfare", "rates", "fallbacks"} <= set(first) and len(first["hours"]) == 10
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["config"]["years"] == 3 and config["lm"] == OFFLINE_LABEL


def test_resume_with_changed_settings_exits_2(tmp_path, capsys):
    assert simulate.main(BASE + ["--years", "1", "--out", str(tmp_path)]) == 0
    assert simulate.main(BASE + ["--years", "2", "--seed", "4", "--out", str(tmp_path), "--resume"]) == 2
    assert "seed=4 differs" in capsys.readouterr().err


def test_keys_never_reach_the_run_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET")
    assert simulate.main(BASE + ["--years", "1", "--out", str(tmp_path)]) == 0
    for f in tmp_path.iterdir():
        assert "SECRET" not in f.read_text()


def test_module_entry_point_exit_status():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "programs.simulate", "--agents", "-5", "--out", "unused"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: agents=-5")


def test_resume_uses_the_lm_the_run_started_with(tmp_path, capsys, monkeypatch):
    # Issue 11 item 3: a resume without --lm continues on the run's LM (read from config.json), a different
    # LM needs --switch-lm and is recorded, and a directory with nothing to resume is refused.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "run"
    small = ["--agents", "4", "--steps-per-year", "1", "--brackets", "three", "--no-progress", "--out", str(out)]
    assert simulate.main(small + ["--years", "1"]) == 0
    doc = json.loads((out / "config.json").read_text())
    assert doc["lm_settings"] == {"lm": "offline", "api_base": None, "temperature": 0.7}
    built = []
    real = simulate.build_lms
    monkeypatch.setattr(simulate, "build_lms", lambda lm, *a, **k: built.append(lm) or real(lm, *a, **k))
    assert simulate.main(small + ["--years", "2", "--resume"]) == 0
    assert built == ["offline"]
    capsys.readouterr()
    code = simulate.main(small + ["--years", "3", "--resume", "--lm", "openai/other", "--api-base",
                                  "http://127.0.0.1:9/v1"])
    err = capsys.readouterr().err
    assert code == 2 and "--switch-lm" in err and err.count("\n") == 1 and built == ["offline"]
    assert "lm_switches" not in json.loads((out / "config.json").read_text())
    for bad, needle in ((tmp_path / "missing", "does not exist"), (tmp_path, "holds no run")):
        assert simulate.main([*small[:-1], str(bad), "--years", "2", "--resume"]) == 2
        assert needle in capsys.readouterr().err
    compare_dir = tmp_path / "cmp"
    compare_dir.mkdir()
    (compare_dir / "config.json").write_text(json.dumps({"agents": 4, "seeds": [0]}))
    assert simulate.main([*small[:-1], str(compare_dir), "--years", "2", "--resume"]) == 2
    assert "not written by programs.simulate" in capsys.readouterr().err
    assert simulate.main(small + ["--years", "2", "--switch-lm"]) == 2
    assert "--switch-lm only applies with --resume" in capsys.readouterr().err


def test_switch_lm_is_recorded(tmp_path, monkeypatch):
    out = tmp_path / "run"
    small = ["--agents", "4", "--steps-per-year", "1", "--brackets", "three", "--no-progress", "--out", str(out)]
    assert simulate.main(small + ["--years", "1"]) == 0
    # Pretend the run started on a served model (its endpoint is gone); switch to the offline engine.
    doc = json.loads((out / "config.json").read_text())
    doc["lm_settings"] = {"lm": "openai/gemma", "api_base": ["http://127.0.0.1:9/v1"], "temperature": 0.7}
    (out / "config.json").write_text(json.dumps(doc))
    assert simulate.main(small + ["--years", "2", "--resume", "--lm", "offline", "--switch-lm"]) == 0
    doc = json.loads((out / "config.json").read_text())
    assert doc["lm_settings"]["lm"] == "offline"
    assert doc["lm_switches"] == [{"from": {"lm": "openai/gemma", "api_base": ["http://127.0.0.1:9/v1"]},
                                   "to": {"lm": "offline", "api_base": []}, "at_step": 1}]
