"""Elections (democratic scenario): candidates, platforms, one ``Vote`` per voter, two counting rules.

Candidates are workers drawn from the population; each campaigns on a platform, the rates it proposes
through the planner program conditioned on its persona (``PlannerAgent(..., persona=...)``). Every
voter answers ``Vote`` (persona, own history, the platforms) in one concurrent batch.

Counting rules:

- ``plurality``: most first-round votes wins; ties are broken by a seeded draw.
- ``irv`` (instant-runoff, a ranked method): while no platform holds a majority of the ballots still
  active, the one with the fewest votes is eliminated (ties: seeded draw) and only the voters whose choice
  was eliminated vote again among the remaining candidates, so each voter's successive answers are its
  ranking, elicited as needed.

An answer naming no candidate falls back to the voter's last valid vote when that candidate is running,
else the voter abstains. Each failed ballot is one fallback, counted once by its cause (``invalid``,
``parse_error``, ...); the abstentions it led to are counted apart (``ElectionResult.abstentions``), as an
outcome, not as a second fallback (the fallback guard sums fallbacks).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import dspy
import numpy as np

from programs.agents.batch import BatchRunner, FallbackCounter, classify_error, lm_config, make_predictor, rollout_id, round_robin
from programs.agents.worker import WorkerMemory
from programs.lm.structured import use_structured
from signatures import Platform, Vote, WorkerStep

__all__ = ["Candidate", "Electorate", "ElectionResult", "METHODS", "draw_candidates", "match_candidate"]

METHODS = ("plurality", "irv")


@dataclass(frozen=True)
class Candidate:
    """A worker running for planner: display name, its index in the population and its persona."""

    name: str
    agent_id: int
    persona: str


@dataclass
class ElectionResult:
    """One election, as logged: platforms, first-round ballots, tallies per round and the winner."""

    method: str
    platforms: list[dict[str, Any]]
    agent_ids: list[int]
    votes: list[str | None]
    rounds: list[dict[str, int]]
    winner: str
    tie_break: bool = False
    fallbacks: dict[str, int] = field(default_factory=dict)
    #: Failed ballots with no running earlier vote to fall back to (each is also one fallback above).
    abstentions: int = 0

    @property
    def winner_platform(self) -> Platform:
        return next(Platform(**p) for p in self.platforms if p["candidate"] == self.winner)

    @property
    def winner_agent(self) -> int:
        names = [p["candidate"] for p in self.platforms]
        return self.agent_ids[names.index(self.winner)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ElectionResult":
        return cls(**d)


def draw_candidates(personas: Sequence[str], n: int, rng: np.random.Generator) -> list[Candidate]:
    """``n`` distinct workers as candidates, named ``Candidate A``, ``Candidate B``, ..."""
    if not 1 <= n <= min(len(personas), 26):
        raise ValueError(f"n_candidates={n} is outside [1, {min(len(personas), 26)}]")
    ids = np.sort(rng.choice(len(personas), size=n, replace=False))
    return [Candidate(f"Candidate {string.ascii_uppercase[k]}", int(i), personas[int(i)]) for k, i in enumerate(ids)]


def match_candidate(answer: object, names: Sequence[str]) -> str | None:
    """The candidate an answer names: exact, then case-insensitive, then the one name it contains."""
    if not isinstance(answer, str):
        return None
    a = answer.strip().strip("\"'`.* ")
    if a in names:
        return a
    low = a.casefold()
    for n in names:
        if n.casefold() == low:
            return n
    # "Candidate B", "B" or "I vote for Candidate B": a unique match by name or by its letter.
    hits = [n for n in names if n.casefold() in low]
    if len(hits) == 1:
        return hits[0]
    letters = {n.split()[-1].casefold(): n for n in names}
    return letters.get(low)


class Electorate(dspy.Module):
    """Voters answering ``Vote``; plurality or instant-runoff counting; fallbacks counted.

    Parameters
    ----------
    module_type : "predict" or "cot".
    method : "plurality" or "irv".
    """

    def __init__(self, module_type: str = "predict", method: str = "plurality") -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method={method!r} must be one of {METHODS}")
        self.module_type = module_type
        self.method = method
        self.vote = make_predictor(Vote, module_type)
        self.fallbacks = FallbackCounter()

    def forward(self, persona: str, history: Sequence[WorkerStep], cutoffs: Sequence[float],
                candidates: Sequence[Platform], fallback: str | None = None,
                lm: dspy.BaseLM | None = None, rollout_id: int | None = None) -> dspy.Prediction:
        """One ballot. Returns ``candidate`` (a running candidate's name, or None to abstain) and
        ``fallback`` (kind or None)."""
        names = [c.candidate for c in candidates]
        extra = {"lm": lm} if lm is not None else {}
        try:
            with use_structured(lm or dspy.settings.lm):
                pred = self.vote(persona=persona, history=list(history), cutoffs=[float(c) for c in cutoffs],
                                 candidates=list(candidates), config=lm_config(lm or dspy.settings.lm, rollout_id),
                                 **extra)
            choice = match_candidate(getattr(pred, "candidate", None), names)
            kind = None if choice is not None else "invalid"
        except Exception as exc:
            choice, kind = None, classify_error(exc)
        if kind is None:
            return dspy.Prediction(candidate=choice, fallback=None)
        self.fallbacks.add(kind)
        return dspy.Prediction(candidate=fallback if fallback in names else None, fallback=kind)

    def cast(self, voters: Sequence[WorkerMemory], cutoffs: Sequence[float], platforms: Sequence[Platform], *,
             lms: Sequence[dspy.BaseLM], runner: BatchRunner, seed: int, key: Sequence[int]
             ) -> tuple[list[str | None], dict[str, int], int]:
        """One round of ballots from ``voters`` as one concurrent batch: (choices, fallback counts by cause,
        abstentions among the fallbacks)."""
        def one(i: int) -> dspy.Prediction:
            m = voters[i]
            return self(persona=m.persona, history=tuple(m.history), cutoffs=cutoffs, candidates=platforms,
                        fallback=m.last_vote, lm=round_robin(lms, m.agent_id),
                        rollout_id=rollout_id(seed, "vote", *key, m.agent_id))

        out: list[str | None] = []
        counts: dict[str, int] = {}
        abstained = 0
        for r in runner.map(one, range(len(voters))):
            if isinstance(r, BaseException):  # forward catches its own errors; a bug guard
                r = dspy.Prediction(candidate=None, fallback="lm_error")
            out.append(r.candidate)
            if r.fallback:
                counts[r.fallback] = counts.get(r.fallback, 0) + 1
                abstained += r.candidate is None
        return out, counts, abstained

    def elect(self, voters: Sequence[WorkerMemory], cutoffs: Sequence[float], platforms: Sequence[Platform],
              agent_ids: Sequence[int], *, lms: Sequence[dspy.BaseLM], runner: BatchRunner,
              rng: np.random.Generator, seed: int = 0, key: Sequence[int] = (0,),
              method: str | None = None) -> ElectionResult:
        """Run one election and return its record (voters' ``last_vote`` is not changed here)."""
        method = method or self.method
        if method not in METHODS:
            raise ValueError(f"method={method!r} must be one of {METHODS}")
        names = [p.candidate for p in platforms]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"candidates must have distinct names, got {names}")
        votes, fb, abstained = self.cast(voters, cutoffs, platforms, lms=lms, runner=runner, seed=seed,
                                         key=(*key, 0))
        tally = _tally(votes, names)
        rounds = [tally]
        tie_break = False
        if method == "plurality":
            winner, tie_break = _top(tally, rng)
        else:
            ballots = list(votes)
            running = list(names)
            while True:
                active = sum(tally[n] for n in running)
                lead, lead_tie = _top({n: tally[n] for n in running}, rng)
                if len(running) == 1 or (active and 2 * tally[lead] > active):
                    winner, tie_break = lead, tie_break or lead_tie
                    break
                low = min(tally[n] for n in running)
                losers = sorted(n for n in running if tally[n] == low)
                out_name = losers[int(rng.integers(len(losers)))] if len(losers) > 1 else losers[0]
                tie_break = tie_break or len(losers) > 1
                running.remove(out_name)
                again = [i for i, b in enumerate(ballots) if b == out_name]
                if again:
                    sub = [p for p in platforms if p.candidate in running]
                    revotes, fb2, abst2 = self.cast([voters[i] for i in again], cutoffs, sub, lms=lms, runner=runner,
                                             seed=seed, key=(*key, len(rounds)))
                    for i, r in zip(again, revotes):
                        ballots[i] = r if r in running else None
                    for k, v in fb2.items():
                        fb[k] = fb.get(k, 0) + v
                    abstained += abst2
                tally = _tally(ballots, running)
                rounds.append(tally)
        return ElectionResult(method=method, platforms=[p.model_dump() for p in platforms],
                              agent_ids=[int(a) for a in agent_ids], votes=votes, rounds=rounds, winner=winner,
                              tie_break=tie_break, fallbacks=dict(sorted(fb.items())), abstentions=abstained)


def _tally(votes: Sequence[str | None], names: Sequence[str]) -> dict[str, int]:
    t = {n: 0 for n in names}
    for v in votes:
        if v in t:
            t[v] += 1
    return t


def _top(tally: dict[str, int], rng: np.random.Generator) -> tuple[str, bool]:
    """The most-voted name; a tie is broken by a seeded draw among the tied (sorted for stability)."""
    best = max(tally.values())
    tied = sorted(n for n, v in tally.items() if v == best)
    if len(tied) == 1:
        return tied[0], False
    return tied[int(rng.integers(len(tied)))], True
