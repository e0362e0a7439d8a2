"""Bad configuration exits with status 2 and one line naming the problem, before any LM call is spent.

Each case runs the CLI as a subprocess against a live `programs.serve` (where a model endpoint is involved),
whose request counter shows that no chat request was ever sent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, closed_port, serve

SIM_BASE = ["--agents", "4", "--years", "1", "--steps-per-year", "2", "--brackets", "three", "--no-progress"]
CMP_BASE = ["--agents", "4", "--years", "1", "--steps-per-year", "2", "--seeds", "1", "--no-plots", "--no-progress",
            "--planners", "llm,saez"]

# (argv, expected fragment of the one error line); LIVE is replaced by the live server's URL.
SIM_CASES = {
    "scenario": (["--scenario", "utopia", "--lm", "openai/offline", "--api-base", "LIVE"], "scenario='utopia'"),
    "brackets": (["--brackets", "nope", "--lm", "openai/offline", "--api-base", "LIVE"], "brackets='nope'"),
    "swf": (["--swf", "happiest", "--lm", "openai/offline", "--api-base", "LIVE"], "swf='happiest'"),
    "lm_no_provider": (["--lm", "gpt-4o-mini"], "provider/model"),
    "lm_unknown_provider": (["--lm", "nosuchprovider/model-x", "--api-base", "LIVE"], "unknown provider 'nosuchprovider'"),
    "missing_key": (["--lm", "openai/gpt-4o-mini"], "OPENAI_API_KEY"),
    "agents_zero": (["--agents", "0", "--lm", "openai/offline", "--api-base", "LIVE"], "agents=0"),
    "unreachable": (["--lm", "openai/offline", "--api-base", "CLOSED", "--timeout", "2"], "is unreachable"),
    "second_unreachable": (["--lm", "openai/offline", "--api-base", "LIVE", "--api-base", "CLOSED"],
                           "api_base[1]="),
}
CMP_CASES = {
    "scenario": (["--scenario", "utopia", "--lm", "openai/offline", "--api-base", "LIVE"], "--scenario 'utopia'"),
    "brackets": (["--brackets", "nope", "--lm", "openai/offline", "--api-base", "LIVE"], "--brackets"),
    "swf": (["--swf", "happiest", "--lm", "openai/offline", "--api-base", "LIVE"], "--swf 'happiest'"),
    "agents_zero": (["--agents", "0", "--lm", "openai/offline", "--api-base", "LIVE"], "--agents=0"),
}
# LM settings are checked by eval.learning (raising eval.errors.ConfigError, one class even when eval.compare
# runs as __main__), with a pre-flight GET of each endpoint's /models.
CMP_LM_CASES = {
    "lm_no_provider": (["--lm", "gpt-4o-mini"], "provider/model"),
    "lm_unknown_provider": (["--lm", "nosuchprovider/model-x", "--api-base", "LIVE"], "unknown provider 'nosuchprovider'"),
    "missing_key": (["--lm", "openai/gpt-4o-mini"], "OPENAI_API_KEY"),
    "unreachable": (["--lm", "openai/offline", "--api-base", "CLOSED", "--timeout", "2"], "is unreachable"),
    "bad_concurrency": (["--concurrency", "0"], "--concurrency=0 must be >= 1"),
}


def run_all(module: str, base: list[str], cases: dict, tmp: Path, env: dict[str, str], live: str) -> dict:
    """Start every case at once (they are independent), then collect (code, stdout, stderr)."""
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    procs = {}
    for name, (argv, _) in cases.items():
        argv = [live if a == "LIVE" else dead if a == "CLOSED" else a for a in argv]
        procs[name] = subprocess.Popen([sys.executable, "-m", module, *base, *argv, "--out", str(tmp / name)],
                                       cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=120)
        out[name] = (p.returncode, stdout, stderr)
    return out


def check(results: dict, cases: dict, tmp: Path) -> None:
    for name, (code, stdout, stderr) in results.items():
        lines = stderr.strip().splitlines()
        fragment = cases[name][1]
        assert code == 2, f"{name}: exit {code}; stderr: {stderr[-1500:]}"
        assert len(lines) == 1 and fragment in lines[0], f"{name}: {stderr!r}"
        assert "Traceback" not in stderr and not (tmp / name / "steps.jsonl").exists(), name


@pytest.mark.slow
def test_simulate_refuses_bad_configuration(tmp_path: Path, env: dict[str, str]):
    with serve(tmp_path / "srv") as server:
        results = run_all("programs.simulate", SIM_BASE, SIM_CASES, tmp_path, env, server.url)
        seen = server.stats()
    check(results, SIM_CASES, tmp_path)
    assert seen["requests"] == 0  # no LM call was spent on any of them
    assert all(not out for _, out, _ in results.values())


@pytest.mark.slow
def test_eval_compare_refuses_bad_configuration(tmp_path: Path, env: dict[str, str]):
    with serve(tmp_path / "srv") as server:
        results = run_all("eval.compare", CMP_BASE, CMP_CASES, tmp_path, env, server.url)
        seen = server.stats()
    check(results, CMP_CASES, tmp_path)
    assert seen["requests"] == 0


def test_eval_compare_refuses_bad_lm_settings(tmp_path: Path, env: dict[str, str]):
    with serve(tmp_path / "srv") as server:
        results = run_all("eval.compare", CMP_BASE, CMP_LM_CASES, tmp_path, env, server.url)
        seen = server.stats()
    assert seen["requests"] == 0  # refused before any LM call, whatever the exit status
    check(results, CMP_LM_CASES, tmp_path)
