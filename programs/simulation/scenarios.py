"""Scenarios: what happens at the start and end of each tax year, and what the planner is rewarded with.

A scenario is a small class with three named hooks the loop calls (``docs/design.md`` §5.2):

- ``year_start(sim, year) -> YearEvent``: choose the year's schedule (LM calls allowed: a planner's
  proposal, an election). Its result is logged; ``apply_year_start`` applies it (also on replay).
- ``year_end(sim, out, year) -> YearEnd | None``: a decision at the end of the year (LM calls allowed,
  e.g. each worker's satisfaction), logged; ``apply_year_end`` applies it (also on replay).
- ``reward(sim, out, year_end) -> float``: the welfare the planner is rewarded with for the year.

Scenarios are registered by name (``@register_scenario``) and chosen with ``SimulationConfig.scenario``,
so a new one is added without touching ``Simulation``::

    @register_scenario
    class Austerity(RationalScenario):
        name = "austerity"
        def year_start(self, sim, year):
            event = super().year_start(sim, year)
            return event.model_copy(update={"rates": [max(r, 0.2) for r in event.rates]})

Each class also states, from the configuration alone, what it needs (the loop and the CLIs name no
scenario): ``lm_calls(config)``, the LM answers its hooks ask for in one run by role (``--dry-run``
counts them; the workers' answers are the loop's); ``calls_at_least(config)``, whether that count is a
lower bound; ``check_config(config)``, its own settings' checks (``SimulationConfig`` calls it).

Hooks may call ``sim``'s public surface: ``schedule``, ``initial_schedule``, ``planner``, ``lms``,
``runner``, ``memories``, ``personas``, ``config``, ``worker_rows(out)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from economy.tax import to_fraction, to_percent
from economy.welfare import social_welfare
from programs.simulation.records import Leader, YearEnd, YearEvent

if TYPE_CHECKING:  # pragma: no cover
    from economy.world import Outcome
    from programs.agents.tax_planner import Proposal
    from programs.simulation.loop import Simulation

__all__ = ["Scenario", "RationalScenario", "BoundedScenario", "DemocraticScenario", "SCENARIOS",
           "register_scenario", "scenario_class"]

#: Registered scenarios by name.
SCENARIOS: dict[str, type["Scenario"]] = {}


def register_scenario(cls: type["Scenario"]) -> type["Scenario"]:
    """Class decorator: make ``cls`` selectable as ``SimulationConfig(scenario=cls.name)``."""
    from programs.registry import register_named

    return register_named(SCENARIOS, cls, "scenario")


def scenario_class(name: str) -> type["Scenario"]:
    """The scenario registered as ``name`` (ValueError naming the choices otherwise)."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose one of {sorted(SCENARIOS)}") from None


class Scenario:
    """Base class: the initial schedule in year 0, then the planner's proposal each year; plain welfare.

    One instance per ``Simulation``; ``reset`` clears its state. Subclasses override hooks.
    """

    name: ClassVar[str] = ""
    #: Whether the year-0 schedule also comes from the planner (else the configured initial rates).
    plan_first_year: ClassVar[bool] = False

    def __init__(self) -> None:
        self.leader: Leader | None = None

    # -- what the scenario needs, from the configuration alone ----------------------------------
    @classmethod
    def lm_calls(cls, config: Any, *, planner_calls: bool = True) -> dict[str, int]:
        """LM answers of the scenario's hooks in one run of ``config``, by role (``programs.lm.usage.ROLES``).

        ``planner_calls=False``: the schedule comes from elsewhere (a black-box planner on ``PlannerEnv``).
        The default: one planner proposal a year from year 1 (from year 0 with ``plan_first_year``).
        """
        years = config.years if cls.plan_first_year else max(config.years - 1, 0)
        return {"planner": years if planner_calls else 0}

    @classmethod
    def calls_at_least(cls, config: Any) -> bool:
        """Whether ``lm_calls`` is a lower bound (answers asked for only as the run unfolds)."""
        return False

    @classmethod
    def check_config(cls, config: Any) -> None:
        """Raise ValueError (one line naming the setting) for settings this scenario cannot run with."""

    def reset(self) -> None:
        self.leader = None

    # -- year start -----------------------------------------------------------------------------
    def year_start(self, sim: "Simulation", year: int) -> YearEvent:
        if year == 0 and not self.plan_first_year:
            return YearEvent(kind="initial", rates=sim.initial_schedule.rates.tolist())
        from programs.agents.batch import rollout_id  # the agents load DSPy: kept out of the configuration's imports

        persona = self.leader.persona if self.leader else None
        prop = sim.planner.plan(sim.schedule, lm=sim.lms[0], persona=persona,
                                   rollout_id=rollout_id(sim.config.seed, "plan", year))
        prop = sim.limit_moves(prop)
        return YearEvent(kind="planner", rates=prop.schedule(sim.schedule).rates.tolist(), fallbacks=prop.counts(),
                         clamped=prop.clamped, move_limited=prop.move_limited)

    def apply_year_start(self, sim: "Simulation", event: YearEvent) -> None:
        """State changes a year-start event implies (beyond the schedule, which the loop sets)."""

    # -- year end -------------------------------------------------------------------------------
    def year_end(self, sim: "Simulation", out: "Outcome", year: int) -> YearEnd | None:
        return None

    def apply_year_end(self, sim: "Simulation", decision: YearEnd) -> None:
        """State changes a year-end decision implies."""

    def reward(self, sim: "Simulation", out: "Outcome", decision: YearEnd | None) -> float:
        """The welfare the planner is rewarded with for the year that ends with ``out``."""
        return float(out.welfare)


@register_scenario
class RationalScenario(Scenario):
    """The paper's base case: the planner's reward is the social welfare of the workers' utilities."""

    name = "rational"


@register_scenario
class BoundedScenario(Scenario):
    """Bounded rationality: each worker's year-end satisfaction scales its utility in the reward.

    Satisfied workers count 1.0, unsatisfied 0.5 (``programs.agents.satisfaction``); worker histories keep
    the economic utility their hours produced.
    """

    name = "bounded"

    @classmethod
    def lm_calls(cls, config: Any, *, planner_calls: bool = True) -> dict[str, int]:
        return {**super().lm_calls(config, planner_calls=planner_calls), "satisfaction": config.agents * config.years}

    def year_end(self, sim: "Simulation", out: "Outcome", year: int) -> YearEnd:
        sat, fb = sim.rater.rate_batch(sim.memories, sim.worker_rows(out), lms=sim.lms, runner=sim.runner,
                                       seed=sim.config.seed, year=year)
        return YearEnd(kind="satisfaction", values=[bool(s) for s in sat], fallbacks=fb)

    def apply_year_end(self, sim: "Simulation", decision: YearEnd) -> None:
        for m, s in zip(sim.memories, decision.values):
            m.last_satisfied = bool(s)

    def reward(self, sim: "Simulation", out: "Outcome", decision: YearEnd | None) -> float:
        if decision is None:
            return float(out.welfare)
        from programs.agents.satisfaction import utility_scale

        return float(social_welfare(out.utility * utility_scale(decision.values), skill=sim.skill,
                                    income=out.income, swf=sim.config.swf, skill_floor=sim.config.skill_floor))


@register_scenario
class DemocraticScenario(Scenario):
    """Elections every ``election_every`` years pick the leader, in whose persona the planner proposes.

    Candidates campaign on platforms the planner program writes in their persona; the winner's platform
    is that year's schedule.
    """

    name = "democratic"

    @classmethod
    def lm_calls(cls, config: Any, *, planner_calls: bool = True) -> dict[str, int]:
        # An election year asks for one platform per candidate and one ballot per worker (the platforms
        # are written even when a black-box planner sets the other years' schedules).
        elections = len(range(0, config.years, config.election_every))
        others = config.years - elections if planner_calls else 0  # year 0 is an election year
        return {"planner": elections * config.n_candidates + others, "voter": elections * config.agents}

    @classmethod
    def calls_at_least(cls, config: Any) -> bool:
        return config.voting == "irv"  # later rounds ask the eliminated candidates' voters again

    @classmethod
    def check_config(cls, config: Any) -> None:
        if config.n_candidates > config.agents:
            raise ValueError(f"n_candidates={config.n_candidates} exceeds agents={config.agents}")

    def year_start(self, sim: "Simulation", year: int) -> YearEvent:
        if year % sim.config.election_every == 0:
            return self._election(sim, year)
        return super().year_start(sim, year)

    def _election(self, sim: "Simulation", year: int) -> YearEvent:
        from programs.agents.batch import rollout_id, round_robin
        from programs.agents.electorate import draw_candidates
        from programs.agents.tax_planner import PlannerAgent, Proposal
        from signatures import Platform

        c = sim.config
        rng = np.random.default_rng([c.seed, year, 1])
        cands = draw_candidates(sim.personas, c.n_candidates, rng)
        planner, current = sim.planner, sim.schedule

        def platform(cand: Any) -> Proposal:
            if isinstance(planner, PlannerAgent):
                pred = planner(cutoffs=current.cutoffs.tolist(), current_rates_percent=to_percent(current.rates),
                               history=planner.prompt_history(), best=planner.prompt_best(),
                               lm=round_robin(sim.lms, cand.agent_id), persona=cand.persona,
                               rollout_id=rollout_id(c.seed, "platform", year, cand.agent_id))
                return sim.limit_moves(Proposal(list(pred.rates_percent), pred.fallback))
            return sim.limit_moves(planner.plan(current, persona=cand.persona))

        fallbacks: dict[str, int] = {}
        clamped = limited = 0
        platforms = []
        for cand, res in zip(cands, sim.runner.map(platform, cands)):
            if isinstance(res, BaseException):  # bug guard: the planner catches its own errors
                res = Proposal(to_percent(current.rates), "lm_error")
            for k, v in res.counts().items():
                fallbacks[k] = fallbacks.get(k, 0) + v
            clamped += res.clamped
            limited += res.move_limited
            platforms.append(Platform(candidate=cand.name, rates_percent=res.rates_percent, pitch=_pitch(cand.persona)))
        result = sim.electorate.elect(sim.memories, current.cutoffs.tolist(), platforms,
                                      [cand.agent_id for cand in cands], lms=sim.lms, runner=sim.runner,
                                      rng=rng, seed=c.seed, key=(year,))
        for k, v in result.fallbacks.items():
            fallbacks[f"vote_{k}"] = fallbacks.get(f"vote_{k}", 0) + v
        return YearEvent(kind="election", rates=to_fraction(result.winner_platform.rates_percent).tolist(),
                         election=result.to_dict(), fallbacks=dict(sorted(fallbacks.items())), clamped=clamped,
                         move_limited=limited)

    def apply_year_start(self, sim: "Simulation", event: YearEvent) -> None:
        if event.kind != "election" or event.election is None:
            return
        from programs.agents.electorate import ElectionResult

        res = ElectionResult.from_dict(event.election)
        aid = res.winner_agent
        self.leader = Leader(name=res.winner, agent_id=aid, persona=sim.personas[aid])
        for m, v in zip(sim.memories, res.votes):
            if v is not None:
                m.last_vote = v


def _pitch(persona: str, limit: int = 160) -> str:
    p = " ".join(persona.split())
    return p if len(p) <= limit else p[: limit - 1].rstrip() + "…"
