"""Electorate: matching answers, plurality with seeded ties, instant-runoff, fallbacks, democratic runs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from programs.agents.batch import BatchRunner
from programs.agents.electorate import ElectionResult, Electorate, draw_candidates, match_candidate
from programs.simulation import load_config
from programs.agents.worker import WorkerMemory
from signatures import Platform
from tests.programs.fakes import simulation, FunctionEngine, lm

NAMES = ["Candidate A", "Candidate B", "Candidate C"]
PLATFORMS = [Platform(candidate=n, rates_percent=[10.0 * (i + 1)] * 3) for i, n in enumerate(NAMES)]
CUTOFFS = [0.0, 90_000.0, 159_100.0]


def ranked_voter_engine() -> FunctionEngine:
    """A voter that reads its ranking from its persona ("ranking: C>B>A") and names the first running."""
    def fn(request):
        chat = request.messages[-1].text
        ranking = re.search(r"ranking: ([A-Z>]+)", chat).group(1).split(">")
        running = [c["candidate"] for c in json.loads(chat.split("[[ ## candidates ## ]]")[1].split("\n\n")[0])]
        choice = next(f"Candidate {x}" for x in ranking if f"Candidate {x}" in running)
        return f"[[ ## candidate ## ]]\n{choice}\n\n[[ ## completed ## ]]"
    return FunctionEngine(fn)


def voters(rankings: list[str]) -> list[WorkerMemory]:
    return [WorkerMemory(i, f"You are voter {i}; ranking: {r}", 40_000.0) for i, r in enumerate(rankings)]


@pytest.mark.parametrize("answer, expected", [
    ("Candidate B", "Candidate B"), ("  candidate b. ", "Candidate B"), ("I vote for Candidate C", "Candidate C"),
    ("B", "Candidate B"), ("Candidate D", None), ("Candidate A or Candidate B", None), (None, None), (3, None),
])
def test_match_candidate(answer, expected):
    assert match_candidate(answer, NAMES) == expected


def test_plurality_and_irv_disagree_as_theory_says():
    # 4 voters A>B>C, 3 voters B>A>C, 2 voters C>B>A: A leads the first round (4 of 9, no majority);
    # instant-runoff drops C, whose voters move to B, and B wins 5-4.
    rankings = ["A>B>C"] * 4 + ["B>A>C"] * 3 + ["C>B>A"] * 2
    engine = ranked_voter_engine()
    kw = dict(lms=[lm(engine)], runner=BatchRunner(3), rng=np.random.default_rng(0))
    plural = Electorate(method="plurality").elect(voters(rankings), CUTOFFS, PLATFORMS, [0, 1, 2], **kw)
    assert plural.winner == "Candidate A" and plural.rounds == [{"Candidate A": 4, "Candidate B": 3, "Candidate C": 2}]
    calls = engine.calls
    irv = Electorate(method="irv").elect(voters(rankings), CUTOFFS, PLATFORMS, [0, 1, 2], **kw)
    assert irv.winner == "Candidate B"
    assert irv.rounds == [{"Candidate A": 4, "Candidate B": 3, "Candidate C": 2}, {"Candidate A": 4, "Candidate B": 5}]
    assert engine.calls - calls == 9 + 2  # only C's two voters were asked again
    assert irv.votes == plural.votes and irv.winner_agent == 1


def test_plurality_ties_are_broken_by_the_seeded_draw():
    rankings = ["A>B>C"] * 2 + ["B>A>C"] * 2
    engine = ranked_voter_engine()
    winners = []
    for seed in range(12):
        r = Electorate().elect(voters(rankings), CUTOFFS, PLATFORMS, [0, 1, 2], lms=[lm(engine)], runner=BatchRunner(1),
                               rng=np.random.default_rng(seed))
        again = Electorate().elect(voters(rankings), CUTOFFS, PLATFORMS, [0, 1, 2], lms=[lm(engine)],
                                   runner=BatchRunner(1), rng=np.random.default_rng(seed))
        assert r.tie_break and r.winner == again.winner
        winners.append(r.winner)
    assert set(winners) == {"Candidate A", "Candidate B"}


def test_bad_ballots_fall_back_to_the_last_vote_or_abstain():
    garbage = FunctionEngine(lambda r: "[[ ## candidate ## ]]\nnobody\n\n[[ ## completed ## ]]")
    vs = voters(["A>B>C"] * 3)
    vs[0].last_vote = "Candidate C"
    vs[1].last_vote = "Candidate Z"  # not running: abstain
    e = Electorate()
    r = e.elect(vs, CUTOFFS, PLATFORMS, [0, 1, 2], lms=[lm(garbage)], runner=BatchRunner(2), rng=np.random.default_rng(0))
    assert r.votes == ["Candidate C", None, None] and r.winner == "Candidate C"
    # Three failed ballots are three fallbacks, counted once by cause (the fallback guard sums these, so
    # a second "abstain" count would put the fallback share above the true rate); abstaining is an outcome.
    assert r.fallbacks == {"invalid": 3} and r.abstentions == 2
    assert e.fallbacks.snapshot() == {"invalid": 3}
    assert sum(r.fallbacks.values()) <= len(vs)
    assert ElectionResult.from_dict(r.to_dict()) == r


def test_draw_candidates_is_seeded_and_distinct():
    personas = [f"p{i}" for i in range(30)]
    a = draw_candidates(personas, 4, np.random.default_rng(5))
    b = draw_candidates(personas, 4, np.random.default_rng(5))
    assert a == b and len({c.agent_id for c in a}) == 4
    assert [c.name for c in a] == ["Candidate A", "Candidate B", "Candidate C", "Candidate D"]
    with pytest.raises(ValueError, match="n_candidates"):
        draw_candidates(personas[:2], 3, np.random.default_rng(0))


@pytest.mark.parametrize("voting", ["plurality", "irv"])
def test_democratic_run_elects_leaders_every_e_years(voting):
    cfg = load_config(agents=15, years=4, steps_per_year=2, scenario="democratic", election_every=2, voting=voting,
                      brackets="three", workers="rational")
    sim = simulation(cfg)
    records = [sim.step() for _ in range(cfg.total_steps)]
    s = sim.summary()
    kinds = [y.kind for y in s.years]
    assert kinds == ["election", "planner", "election", "planner"]
    for rec in (records[0], records[4]):
        e = rec.event.election
        assert e["method"] == voting and sum(e["rounds"][0].values()) <= 15
        assert e["winner"] in e["rounds"][-1]
        # The elected platform is the schedule of the election year.
        platform = next(p for p in e["platforms"] if p["candidate"] == e["winner"])
        assert np.allclose(rec.rates, np.asarray(platform["rates_percent"]) / 100)
    assert s.leader.name == records[4].event.election["winner"]
    assert s.leader.persona == sim.personas[s.leader.agent_id]
