"""``python -m optimize.planner``: bad settings exit 2 with one line before any LM call; a tiny offline
compile writes a program eval.compare loads and a summary with both held-out figures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import optimize.planner as cli
from programs.agents.tax_planner import PlannerAgent

TINY = ["--agents", "12", "--years", "3", "--train-seeds", "0-2", "--val-seeds", "3-4", "--heldout-seeds", "100-103",
        "--oracle-trials", "20", "--oracle-refine", "100", "--quiet"]


@pytest.fixture
def no_run(monkeypatch):
    """Fail the test if anything past validation runs (no LM built, no situation drawn)."""
    import optimize.situations
    import programs.lm

    def boom(*a, **k):
        raise AssertionError("ran past validation")

    import optimize.cli

    for mod, name in ((optimize.cli, "run_compile"), (optimize.cli, "run_tune"), (programs.lm, "build_lms"),
                      (optimize.situations, "draw_situations")):
        monkeypatch.setattr(mod, name, boom)


@pytest.mark.parametrize("argv, needle", [
    (["--optimizer", "annealing"], "--optimizer='annealing' must be one of bootstrap, mipro, gepa, copro, simba"),
    (["--budget", "0"], "--budget=0 must be >= 1"),
    (["--budget", "10"], "--budget 10 is too small for bootstrap on 18 training and 9 validation situations"),
    (["--optimizer", "gepa", "--budget", "20"], "too small for gepa"),
    (["--agents", "0"], "--agents=0 must be an integer in [1, 100000]"),
    (["--agents", "abc"], "argument --agents: invalid int value: 'abc'"),
    (["--brackets", "nope"], "--brackets='nope': not a preset"),
    (["--years", "1"], "--years=1 must be an integer in [2, 200]"),
    (["--train-seeds", "0-3", "--heldout-seeds", "3-5"], "--train-seeds and --heldout-seeds share seed(s) [3]"),
    (["--val-seeds", "x"], "--val-seeds='x': 'x' is not a seed"),
    (["--lm", "gpt4"], "lm='gpt4' must be 'offline' or 'provider/model'"),
    (["--lm", "openai/gpt-4o-mini"], "needs OPENAI_API_KEY set in the environment"),
    (["--temperature", "3"], "temperature=3.0 is outside [0, 2]"),
    (["--reflection-lm", "offline"], "--optimizer bootstrap does not use it"),
    (["--optimizer", "gepa", "--reflection-lm", "hosted_vllm/llama"], "give its URL with --api-base"),
    (["--optimizer", "gepa", "--prompt-lm", "offline"], "--prompt-lm is for mipro, copro, simba; --optimizer gepa does"),
    (["--optimizer", "mipro", "--reflection-lm", "offline"], "--reflection-lm is for gepa; --optimizer mipro does not"),
    (["--optimizer", "simba", "--prompt-api-base", "http://127.0.0.1:1/v1"], "--prompt-api-base needs --prompt-lm"),
    (["--out", "planner.txt"], "--out='planner.txt' must end in .json"),
    (["--demo-threshold", "0"], "--demo-threshold=0.0 must be in (0, 1]"),
    (["--module", "react"], "--module='react' must be predict or cot"),
    (["--storage", "sqlite:///x.db"], "--storage and --program are tuning settings: add --tune"),
    (["--tune", "--storage", "not a url"], "--storage='not a url' is not a database URL"),
    (["--tune", "--storage", "redis://localhost/0"], "backend 'redis' is not supported"),
    (["--tune", "--storage", "sqlite://"], "names no file"),
    (["--tune", "--trials", "0"], "--trials=0 must be >= 1"),
    (["--tune", "--program", "missing.json"], "--program='missing.json': no such file"),
])
def test_bad_settings_exit_2_with_one_line(argv, needle, capsys, monkeypatch, no_run, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("python -m optimize.planner: error: ")
    assert needle in err


def test_program_for_other_brackets_is_refused(tmp_path, capsys, no_run):
    prog = tmp_path / "three.json"
    PlannerAgent("three").save(str(prog))
    assert cli.main(["--tune", "--program", str(prog), "--out", str(tmp_path / "p.json")]) == 2
    assert "was compiled for brackets [0.0, 90000.0, 159100.0]" in capsys.readouterr().err


def test_module_entry_point_exits_2_in_a_subprocess():
    r = subprocess.run([sys.executable, "-m", "optimize.planner", "--optimizer", "annealing"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "python -m optimize.planner: error: --optimizer='annealing' must be one of bootstrap, mipro, gepa, copro, simba"]


def test_tiny_offline_compile_end_to_end(tmp_path, capsys):
    out = tmp_path / "compiled" / "planner.json"
    assert cli.main([*TINY, "--budget", "120", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "compiled" / "planner.summary.json").read_text())
    h = summary["heldout"]
    # Both figures, printed and saved; the compiled planner is not below the uncompiled one.
    assert f"held-out mean score: uncompiled {h['before']['mean']:.4f} -> compiled {h['after']['mean']:.4f}" in printed
    assert h["after"]["mean"] >= h["before"]["mean"]
    assert len(h["per_situation"]) == 8 and h["per_situation"][0]["situation"] == "seed100/year1"
    assert summary["optimizer"] == "bootstrap"
    assert summary["lm"] == "offline engine (not a language model)"
    assert summary["budget"]["compile_calls"] <= summary["budget"]["plan"]["max_calls"] <= 120
    assert summary["budget"]["by_lm"] == {"offline engine (not a language model)":
                                          summary["budget"]["compile_calls"] + summary["budget"]["evaluation_calls"]}
    assert summary["instruction_lm"] is None and summary["program"]["demos"] >= 1
    # The program loads as a PlannerAgent, passes eval.compare's --planner-program check, and plans a simulation
    # the way eval.compare's 'compiled' planner does (planner=PlannerAgent.load(path)).
    agent = PlannerAgent.load(out)
    assert agent.history_len == 5 and agent.best_k == 3 and len(agent.propose.demos) == summary["program"]["demos"]
    from eval.compare import build_parser, resolve_config
    from eval.learning import check_learning_config
    from programs.lm import build_lms
    from programs.simulation import Simulation, load_config

    cfg = resolve_config(build_parser().parse_args(["--planners", "compiled", "--planner-program", str(out)]))
    check_learning_config(cfg)
    cfg = load_config(agents=12, years=3, steps_per_year=1, workers="rational", seed=200)
    sim = Simulation(cfg, build_lms("offline", seed=cfg.seed), planner=PlannerAgent.load(out))
    res = sim.run(progress=False)
    assert res.fallbacks == {} and len(res.welfare_by_year) == 3
    # Year 1 starts from the compiled program's first demonstration (the offline engine's policy).
    assert res.rates_percent_by_year[1] == pytest.approx(
        [r / 1.0 for r in agent.propose.demos[0]["rates_percent"]], abs=0.051)


def test_keys_are_never_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-123")
    out = tmp_path / "p.json"
    assert cli.main([*TINY, "--budget", "60", "--out", str(out)]) == 0
    capsys.readouterr()
    for f in (out, tmp_path / "p.summary.json"):
        assert "SECRET" not in f.read_text()


def test_command_line_in_the_summary_hides_credentials(monkeypatch):
    monkeypatch.setattr("programs.lm.models.check_endpoints", lambda *a, **k: None)  # no server at h:8000
    argv = ["--tune", "--storage", "sqlite:///x.db", "--lm", "openai/m", "--api-base=http://u:pw@h:8000/v1"]
    args = cli.parser().parse_args(argv)
    args._argv = argv
    from optimize.outputs import common

    command = common(cli.resolve(args))["command"]
    assert command == ("python -m optimize.planner --tune --storage sqlite:///x.db --lm openai/m "
                       "--api-base=http://u:***@h:8000/v1")


def test_tune_budget_below_one_trial_is_refused_before_anything_runs(capsys, no_run):
    # 50 agents x 10 steps x 4 years + 4 planner calls, for each of 3 tuning seeds = 6012 calls at most.
    assert cli.main(["--tune", "--budget", "100"]) == 2
    assert "--budget 100 is too small for one tuning trial, which can make up to 6012 LM calls" in capsys.readouterr().err


@pytest.mark.parametrize("extra, budget", [
    ([], None), (["--max-tokens", "300"], 300),
    (["--prompt-lm", "openai/writer", "--prompt-api-base", "http://h:9/v1"], None),
    (["--optimizer", "gepa", "--reflection-lm", "openai/writer", "--reflection-api-base", "http://h:9/v1"], None),
])
def test_a_real_instruction_lm_has_a_token_budget_on_every_answer(monkeypatch, tmp_path, extra, budget):
    # DSPy's proposers send no max_tokens: without one, the local model wrote to the end of its window.
    from optimize.run_compile import instruction_lm
    from programs.lm.structured import INSTRUCTION_TOKENS, options_of

    monkeypatch.setattr("programs.lm.models.check_endpoints", lambda *a, **k: None)  # no server at h:9
    argv = ["--lm", "openai/m", "--api-base", "http://h:9/v1", "--optimizer", "mipro", "--budget", "400",
            "--out", str(tmp_path / "p.json"), *extra]
    lm, label = instruction_lm(cli.resolve(cli.parser().parse_args(argv)))
    assert lm.kwargs["max_tokens"] == (budget or INSTRUCTION_TOKENS) and options_of(lm) is not None
    assert ("writer" in label) == ("openai/writer" in extra)
