"""A reasoning model's name against `programs.serve` (issue 17), and DSPy's cache and --resume in the run's
one token total (issue 18).

`programs.serve --reasoning-tokens N` reports N reasoning tokens per answer, drawn from the answer's budget
first, as a hosted reasoning model does; addressed as `--lm openai/gpt-5-mini`, the client goes through
DSPy's reasoning-model rule (temperature 1.0, budgets of 16000 tokens or more).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import cli_env, read_steps, run_cli, serve

REASONER = ["--lm", "openai/gpt-5-mini"]
SIM = ["--agents", "3", "--years", "2", "--steps-per-year", "2", "--brackets", "three", "--seed", "4",
       "--no-progress"]
#: Reasoning tokens per answer: inside every default budget (answer + 16000), over a --max-tokens 16000 one.
REASONING = 16010
#: LM answers of SIM: 3 workers x 4 steps, and the planner's year-1 proposal.
ANSWERS = 3 * 4 + 1


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def _tokens(usage: dict) -> dict:
    """The token counts of a usage total (what an uninterrupted run and a replayed one must agree on)."""
    return {k: v for k, v in usage["total"].items() if k != "cached"}


@pytest.mark.slow
def test_simulate_and_compare_run_with_a_reasoning_model(tmp_path: Path, env: dict[str, str]):
    with serve(tmp_path, "--reasoning-tokens", "100") as server:
        r = run_cli("programs.simulate", SIM + REASONER + ["--api-base", server.url, "--reasoning-effort", "low",
                                                          "--out", str(tmp_path / "run")], env)
        c = run_cli("eval.compare", ["--agents", "4", "--years", "2", "--steps-per-year", "1", "--seeds", "1",
                                     "--planners", "llm,saez", "--oracle-trials", "5", "--oracle-refine", "0",
                                     *REASONER, "--api-base", server.url, "--reasoning-effort", "high",
                                     "--no-plots", "--no-progress", "--out", str(tmp_path / "cmp")], env, timeout=150)
        seen = server.stats()
    assert r.returncode == 0, r.stderr[-3000:]
    assert c.returncode == 0, c.stderr[-3000:]
    s = _summary(tmp_path / "run")
    assert s["fallbacks"] == {}
    usage = s["usage"]
    assert usage["total"]["calls"] == ANSWERS
    assert usage["total"]["reasoning_tokens"] == 100 * ANSWERS  # counted apart ...
    assert usage["by_role"]["planner"]["reasoning_tokens"] == 100  # ... by role
    assert usage["total"]["completion_tokens"] > usage["total"]["reasoning_tokens"]  # ... and inside completion
    settings = json.loads((tmp_path / "run" / "config.json").read_text())["lm_settings"]
    assert settings["temperature"] == 1.0 and settings["reasoning"]["effort"] == "low"
    assert "reasoning model (effort low" in r.stdout and "reasoning" in r.stdout.split("tokens (reported")[1]
    # The effort reached the wire, on every request of both runs.
    assert seen["reasoning_effort"] == {"low": ANSWERS, "high": seen["requests"] - ANSWERS}
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "reasoning model (effort high" in report and " reasoning" in report.split("LM usage")[1]
    printed = [line for line in c.stdout.splitlines() if line.startswith("tokens (")]
    assert len(printed) == 1 and " reasoning" in printed[0]  # printed too
    assert json.loads((tmp_path / "cmp" / "config.json").read_text())["reasoning_effort"] == "high"


@pytest.mark.slow
def test_a_refused_reasoning_model_is_one_line_and_writes_nothing(tmp_path: Path, env: dict[str, str]):
    out = tmp_path / "r"
    for extra in (["--max-tokens", "100", "--api-base", "http://127.0.0.1:9/v1"], []):  # budget; no key
        r = run_cli("programs.simulate", SIM + REASONER + extra + ["--out", str(out)], env)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr and not out.exists()
    assert "max_tokens=100 is below 16000" in run_cli(
        "programs.simulate", SIM + REASONER + ["--max-tokens", "100", "--dry-run", "--api-base", "http://127.0.0.1:9/v1"],
        env).stderr


@pytest.mark.slow
def test_cache_hits_keep_tokens_and_truncation(tmp_path: Path):
    # Two runs against one DSPy cache directory: the second is answered from the cache. Before, its usage
    # was empty and its truncated answers (reasoning that used the budget up: no answer) were parse errors.
    env = cli_env(tmp_path)  # one DSPY_CACHEDIR for every run below
    with serve(tmp_path, "--reasoning-tokens", str(REASONING)) as server:
        runs = {}
        for name, extra in (("a", []), ("b", []), ("cut_a", ["--max-tokens", "16000"]),
                            ("cut_b", ["--max-tokens", "16000"])):
            r = run_cli("programs.simulate", SIM + REASONER + extra + ["--api-base", server.url,
                                                                     "--max-fallback-rate", "1",
                                                                     "--out", str(tmp_path / name)], env)
            assert r.returncode == 0, r.stderr[-3000:]
            runs[name] = _summary(tmp_path / name)
        seen = server.stats()
    assert seen["requests"] == 2 * ANSWERS  # one request per answer; the second of each pair was cached
    a, b = runs["a"]["usage"], runs["b"]["usage"]
    assert a["total"]["cached"] == 0 and b["total"]["cached"] == ANSWERS
    assert _tokens(a) == _tokens(b) and a["total"]["reasoning_tokens"] == REASONING * ANSWERS
    assert runs["b"]["fallbacks"] == {} and runs["b"]["answers"]["cached"] == ANSWERS
    for name in ("cut_a", "cut_b"):
        assert runs[name]["fallbacks"] == {"truncated": ANSWERS}, name
        assert runs[name]["answers"]["truncated"] == ANSWERS
    assert _tokens(runs["cut_a"]["usage"]) == _tokens(runs["cut_b"]["usage"])
    assert runs["cut_b"]["usage"]["total"]["completion_tokens"] == 16000 * ANSWERS


@pytest.mark.slow
def test_one_token_total_across_resume(tmp_path: Path):
    # summary.json has one token total, `usage`, over the whole run; a resumed run totals what an
    # uninterrupted one does, also when the step that was in flight is replayed from DSPy's cache.
    with serve(tmp_path, "--reasoning-tokens", "50") as server:
        def simulate(name: str, *extra: str, cache: str = "cache") -> dict:
            r = run_cli("programs.simulate", SIM + REASONER + ["--api-base", server.url, "--out", str(tmp_path / name),
                                                              *extra], cli_env(tmp_path / cache))
            assert r.returncode == 0, r.stderr[-3000:]
            return _summary(tmp_path / name)

        whole = simulate("whole", cache="c1")
        simulate("resumed", "--years", "1", cache="c2")
        resumed = simulate("resumed", "--years", "2", "--resume", cache="c2")
        simulate("crashed", cache="c3")
        # The process stopped after the last step's answers were cached but before its line was written.
        steps = (tmp_path / "crashed" / "steps.jsonl").read_text().splitlines()
        (tmp_path / "crashed" / "steps.jsonl").write_text("\n".join(steps[:-1]) + "\n")
        (tmp_path / "crashed" / "summary.json").unlink()
        crashed = simulate("crashed", "--resume", cache="c3")
    for s in (whole, resumed, crashed):
        assert set(s["answers"]) & {"prompt_tokens", "completion_tokens"} == set()  # no second token total
        assert s["usage"]["total"]["calls"] == ANSWERS
        assert _tokens(s["usage"]) == _tokens(whole["usage"])
        assert sum(step["usage"]["worker"]["prompt_tokens"] for step in read_steps(tmp_path / "whole")) \
            == s["usage"]["by_role"]["worker"]["prompt_tokens"]
    assert resumed["answers"]["calls"] < ANSWERS  # this process's answers only
    assert crashed["usage"]["total"]["cached"] == 3  # the replayed step: three workers
