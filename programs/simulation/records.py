"""Typed records of a run: what each step decided and produced, each tax year, and the run's summary.

They are pydantic models because they are also the run log's format: ``StepRecord.model_dump()`` is one
line of ``steps.jsonl`` and ``StepRecord.model_validate(line)`` reads it back for ``Simulation.replay``.
Decisions (the LM's answers) and derived values (recomputed from them on replay) are kept apart in the
docstrings below, so a reader knows which fields a resumed run re-derives (``docs/design.md`` §5.3).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["YearEvent", "YearEnd", "StepRecord", "YearRecord", "FinalState", "Leader", "RunSummary",
           "merge_counts", "RoleUsage", "UsageSummary", "usage_summary"]

_RECORD = ConfigDict(extra="forbid")


def merge_counts(*counts: dict[str, int] | None) -> dict[str, int]:
    """Sum count dicts (fallbacks by kind), keys sorted."""
    out: dict[str, int] = {}
    for d in counts:
        for k, v in (d or {}).items():
            out[k] = out.get(k, 0) + int(v)
    return dict(sorted(out.items()))


class RoleUsage(BaseModel):
    """One role's LM answers and tokens (``programs.lm.usage``): ``reasoning_tokens`` are part of
    ``completion_tokens``; ``cached`` counts LM calls replayed from DSPy's cache (their tokens included)."""

    model_config = _RECORD
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached: int = 0
    #: Of ``prompt_tokens``, those served from a prefix cache rather than evaluated (``programs.lm.usage``).
    reused_prompt_tokens: int = 0


class UsageSummary(BaseModel):
    """Tokens of a run by role (``worker``, ``planner``, ``voter``, ``satisfaction``, ``other``) and in total.

    ``source``: ``reported`` by the LM's responses, or ``estimated`` (the offline engine counts characters
    / 4; it is not a language model and spends nothing). ``cost``: set by the CLIs where a price is known
    (``programs.lm.cost``).
    """

    model_config = _RECORD
    source: str
    by_role: dict[str, RoleUsage] = Field(default_factory=dict)
    total: RoleUsage = Field(default_factory=RoleUsage)
    cost: dict[str, Any] | None = None


def usage_summary(by_role: dict[str, dict[str, int]], source: str) -> UsageSummary:
    """A ``UsageSummary`` of summed by-role counts."""
    rows = {r: RoleUsage(**v) for r, v in by_role.items()}
    total = RoleUsage(**{k: sum(getattr(r, k) for r in rows.values()) for k in RoleUsage.model_fields})
    return UsageSummary(source=source, by_role=rows, total=total)


class YearEvent(BaseModel):
    """Decision at the start of a tax year: the schedule in force and how it was chosen.

    ``kind`` names the source (``initial``, ``planner``, ``election`` or a custom scenario's); ``rates`` are
    fractions per bracket; ``election`` is an ``ElectionResult.to_dict()`` when there was one.
    """

    model_config = _RECORD
    kind: str
    rates: list[float]
    fallbacks: dict[str, int] = Field(default_factory=dict)
    #: Rates a non-LM planner gave out of range and that were clamped (an LM's are fallbacks).
    clamped: int = 0
    #: Rates the world's move limit (``max_rate_move``) cut, whatever the planner.
    move_limited: int = 0
    election: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None


class YearEnd(BaseModel):
    """Decision at the end of a tax year by the scenario (e.g. each worker's satisfaction).

    ``values`` has one entry per worker; the scenario's ``reward`` hook turns it into the planner's reward.
    """

    model_config = _RECORD
    kind: str
    values: list[Any]
    fallbacks: dict[str, int] = Field(default_factory=dict)


class StepRecord(BaseModel):
    """One worker step. Decisions: ``event``, ``hours``, ``fallbacks``, ``year_end``,
    ``requests``; the rest is derived from them (and checked against the log on replay)."""

    model_config = _RECORD
    t: int
    year: int
    k: int
    event: YearEvent | None = None
    hours: list[float]
    fallbacks: dict[str, int] = Field(default_factory=dict)
    year_end: YearEnd | None = None
    #: Per endpoint: requests, retries and errors this step cost (served LMs only).
    requests: list[dict[str, Any]] | None = None
    #: LM answers and prompt/completion tokens by role this step (None: no LM call), read from the
    #: responses (estimated by the offline engine; ``RunSummary.usage.source`` says which).
    usage: dict[str, RoleUsage] | None = None
    # derived
    rates: list[float] = Field(default_factory=list)
    welfare: float | None = None
    revenue: float | None = None
    mean_hours: float | None = None
    rebate: float | None = None
    gap_median: float | None = None
    utility: list[float] = Field(default_factory=list)

    def decisions(self) -> "StepRecord":
        """The record with only its decisions (what replay re-applies)."""
        return StepRecord(t=self.t, year=self.year, k=self.k, event=self.event, hours=self.hours,
                          fallbacks=self.fallbacks, year_end=self.year_end,
                          requests=self.requests, usage=self.usage)

    def log_line(self) -> dict[str, Any]:
        """The JSON object written to ``steps.jsonl`` (unset optional decisions left out)."""
        return self.model_dump(exclude_none=True)


class YearRecord(BaseModel):
    """One tax year (1-based ``year`` in reports is ``year + 1``; here the 0-based index the loop uses)."""

    model_config = _RECORD
    year: int
    kind: str
    rates_percent: list[float]
    election: dict[str, Any] | None = None
    welfare: float | None = None
    revenue: float | None = None
    mean_hours: float | None = None
    gini: float | None = None
    gap_median_first: float | None = None
    gap_median_last: float | None = None
    rational_welfare: float | None = None
    year_end_share: float | None = None
    fallbacks: dict[str, int] = Field(default_factory=dict)
    clamped: int = 0
    move_limited: int = 0

    @property
    def finished(self) -> bool:
        return self.welfare is not None


class FinalState(BaseModel):
    model_config = _RECORD
    rates_percent: list[float]
    welfare: float | None = None
    mean_hours: float
    median_hours: float
    rebate: float
    gap_median: float | None = None


class Leader(BaseModel):
    """The elected planner (democratic scenario)."""

    model_config = _RECORD
    name: str
    agent_id: int
    persona: str


class RunSummary(BaseModel):
    """Results so far: a pure function of the steps taken, so a resumed run gives the same summary."""

    model_config = _RECORD
    config: dict[str, Any]
    lm: str
    steps: int
    years_finished: int
    welfare_by_year: list[float]
    rates_percent_by_year: list[list[float]]
    gap_median_first_by_year: list[float | None]
    gap_median_last_by_year: list[float | None]
    years: list[YearRecord]
    final: FinalState
    fallbacks: dict[str, int]
    clamped: int = 0
    #: Proposed rates the world's move limit cut (a world rule, not a fallback or a clamp).
    move_limited: int = 0
    requests: dict[str, Any] | None = None
    leader: Leader | None = None
    #: The run's one token total: answers and tokens by role over every logged step, across ``--resume``
    #: (a resumed run totals what an uninterrupted one does).
    usage: UsageSummary | None = None
    #: How a real model's answers came back in this process (``programs.lm.structured.structured_summary``:
    #: structured or plain, truncated, replayed from cache; no tokens, which are ``usage``'s); None for the
    #: offline engine. Set by the CLI, not by replay.
    answers: dict[str, Any] | None = None
