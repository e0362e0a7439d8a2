"""Usage per role per step (issue 10): answers and tokens read from the LM responses, logged per step,
summed in summary.json, the same after a resume."""

from __future__ import annotations

import json

from programs.lm.usage import role_of
from programs.simulation import cli as simulate
from programs.simulation import load_config
from signatures import ChooseLabor, ProposeTaxSchedule, RateSatisfaction, Vote, WritePersona
from tests.programs.fakes import lm, offline_counting_engine, simulation

SMALL = dict(agents=4, years=2, steps_per_year=3, brackets="three", workers="llm", seed=0)


def test_roles_of_the_signatures():
    import dspy

    assert [role_of(s) for s in (ChooseLabor, ProposeTaxSchedule, WritePersona, Vote, RateSatisfaction)] == [
        "worker", "planner", "persona", "voter", "satisfaction"]
    assert role_of(dspy.ChainOfThought(ChooseLabor).predict.signature) == "worker"  # reasoning added, same role
    assert role_of(dspy.Signature("question -> answer")) == "other"


def test_usage_per_role_per_step_is_what_the_engine_reported():
    # The fake engine reports 1 prompt and 1 completion token per request: the logged tokens are exactly
    # the requests it answered (usage is read from the responses, not estimated here).
    cfg = load_config(**SMALL, scenario="bounded")
    engine = offline_counting_engine()
    sim = simulation(cfg, lms=[lm(engine)])
    recs = [sim.step() for _ in range(cfg.total_steps)]
    per_step = [{r: u.calls for r, u in (rec.usage or {}).items()} for rec in recs]
    # 4 workers every step; satisfaction of the 4 workers at each year's last step; the planner at t=3.
    assert per_step == [{"worker": 4}, {"worker": 4}, {"worker": 4, "satisfaction": 4},
                        {"worker": 4, "planner": 1}, {"worker": 4}, {"worker": 4, "satisfaction": 4}]
    tokens = sum(u.prompt_tokens for rec in recs for u in rec.usage.values())
    assert tokens == engine.calls == sum(u.completion_tokens for rec in recs for u in rec.usage.values())
    s = sim.summary().usage
    assert s.source == "reported"
    assert {r: u.calls for r, u in s.by_role.items()} == {"worker": 24, "planner": 1, "satisfaction": 8}
    assert s.total.calls == 33 and s.total.prompt_tokens == engine.calls


def test_democratic_run_counts_voters_and_candidates():
    cfg = load_config(**SMALL, scenario="democratic", election_every=1, n_candidates=2)
    sim = simulation(cfg)
    sim.run(progress=False)
    s = sim.summary().usage
    assert s.source == "estimated"  # the offline engine: characters / 4
    assert s.by_role["voter"].calls == 4 * 2  # every worker votes in each of the 2 elections
    assert s.by_role["worker"].calls == 24 and s.by_role["planner"].calls >= 2
    assert all(u.prompt_tokens > 0 and u.completion_tokens > 0 for u in s.by_role.values())


def test_steps_log_usage_and_a_resumed_run_totals_the_same(tmp_path, capsys):
    base = ["--agents", "4", "--steps-per-year", "2", "--brackets", "three", "--no-progress"]
    assert simulate.main(base + ["--years", "2", "--out", str(tmp_path / "a")]) == 0
    assert simulate.main(base + ["--years", "1", "--out", str(tmp_path / "b")]) == 0
    assert simulate.main(base + ["--years", "2", "--out", str(tmp_path / "b"), "--resume"]) == 0
    a = json.loads((tmp_path / "a" / "summary.json").read_text())["usage"]
    b = json.loads((tmp_path / "b" / "summary.json").read_text())["usage"]
    assert a == b and a["source"] == "estimated" and a["total"]["calls"] == 4 * 4 + 1
    steps = [json.loads(x) for x in (tmp_path / "b" / "steps.jsonl").read_text().splitlines()]
    assert sum(s["usage"]["worker"]["prompt_tokens"] for s in steps) == a["by_role"]["worker"]["prompt_tokens"]
    out = capsys.readouterr().out
    assert "tokens (estimated by the offline engine, characters / 4):" in out


def test_reused_prompt_tokens_are_read_from_the_responses_details():
    # A prefix cache's share of the prompt arrives as prompt_tokens_details.cached_tokens (--lm local, vLLM,
    # OpenAI); a response without details counts none; the CLI line shows reused and evaluated.
    from programs.cli import usage_line
    from programs.lm.usage import UsageMeter, usage_total

    meter = UsageMeter()
    meter.add_usage("m", {"prompt_tokens": 100, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 60}})
    meter.add_usage("m", {"prompt_tokens": 50, "completion_tokens": 2, "prompt_tokens_details": None})
    row = meter.take()["other"]
    assert (row["prompt_tokens"], row["reused_prompt_tokens"], row["completion_tokens"]) == (150, 60, 5)
    line = usage_line({"source": "reported", "by_role": {"other": row}, "total": usage_total({"other": row})})
    assert "150 prompt (60 reused, 90 evaluated) + 5 completion" in line
    assert "reused" not in usage_line({"source": "reported", "by_role": {"other": dict(row, reused_prompt_tokens=0)},
                                       "total": usage_total({"other": dict(row, reused_prompt_tokens=0)})})
