"""The simulation loop: workers every step, the planner every tax year (``docs/design.md`` §5.1).

``Simulation(config, lms).reset()``, then ``step()`` runs one worker step and returns its typed record
(``StepRecord``); ``run()`` steps to the end and returns a ``RunSummary``. At the first step of each tax
year the scenario's ``year_start`` hook sets the schedule (year 0: the configured initial rates;
afterwards the planner's proposal, or an election); at the last step its ``year_end`` hook may ask the
workers something (satisfaction) and its ``reward`` hook gives the welfare the planner learns from. The
loop knows no scenario by name: they are classes registered in ``programs.simulation.scenarios``.
For reinforcement learning over tax years, ``programs.simulation.env.PlannerEnv`` is a Gymnasium
environment on this loop.

Workers are LLM agents (``WorkerAgent``, all workers of a step in one concurrent batch) or rational
(``economy.best_response``). The world maths is ``economy.world.outcome`` (pure numpy).

Resumability: every LM decision of a step (the year-start event, the hours, the year-end decision) is
in the step's record, and every LM input depends only on state rebuilt from earlier records, with
per-event random draws seeded by (seed, year). ``replay(records)`` re-applies a log without any LM
call, so a resumed run continues exactly where an unbroken one would be.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import dspy
import numpy as np
from numpy.typing import NDArray

from economy.constants import HOURS_REF, MAX_HOURS, resolve_kappa
from economy.labor import best_response
from economy.population import Population
from economy.tax import to_percent
from economy.world import Outcome, outcome
from programs.agents.batch import BatchRunner, batch_threads
from programs.agents.electorate import Electorate, ElectionResult
from programs.agents.persona import PersonaSet, PersonaWriter
from programs.agents.satisfaction import SatisfactionRater
from programs.agents.tax_planner import Planner, PlannerAgent, Proposal, planner_year
from programs.agents.worker import WorkerAgent, WorkerMemory, worker_step
from programs.errors import ConfigError
from programs.lm import EndpointLM, lm_label, request_stats, stats_delta, stats_sum
from programs.lm.compat import quiet_history
from programs.simulation.config import SimulationConfig
from programs.lm.usage import UsageMeter, usage_source, usage_sum
from programs.simulation.guard import FallbackGuard
from programs.simulation.records import (
    FinalState,
    usage_summary,
    RunSummary,
    StepRecord,
    YearEnd,
    YearEvent,
    YearRecord,
    merge_counts,
)
from programs.simulation.scenarios import Scenario, scenario_class
from signatures import Schedule, WorkerStep

__all__ = ["Simulation"]


def _move_rule(max_move: float | None, grid: float | None) -> str:
    """The sentence that tells the planner the world's limits on its moves (the reference's DELTA rule)."""
    parts = []
    if max_move is not None:
        parts.append(f"each rate can change by at most {max_move:g} percentage points per year")
    if grid is not None:
        parts.append(f"changes are rounded to multiples of {grid:g} points")
    return ("Rules of this economy: " + "; ".join(parts) + "; a larger change is cut to the limit, and rates stay "
            "within 0-100%.")


class Simulation:
    """One economy of workers and a planner.

    Parameters
    ----------
    config : SimulationConfig
    lms : the LMs agents talk to (spread round-robin), built by the caller: ``programs.lm.build_lms``
        (a model string, the offline engine, a local model) or any ``dspy.BaseLM``.
    planner : a ``PlannerAgent`` (e.g. a compiled one, ``PlannerAgent.load(path)``) or any ``Planner``;
        default a fresh ``PlannerAgent`` on the configured brackets.
    population : default ``Population.sample(config.agents, seed=config.seed, ...)``.
    scenario : default an instance of the scenario registered as ``config.scenario``.
    personas : with ``config.personas == "lm"``, the run's stored ``PersonaSet`` (a resumed run's);
        default: written now by the LM (``programs.agents.persona``), one batch before step 0, kept in
        ``persona_set`` for the caller to store with the run. Its answers and tokens count in the usage.
    """

    def __init__(self, config: SimulationConfig, lms: Sequence[dspy.BaseLM], planner: Planner | None = None,
                 population: Population | None = None, scenario: Scenario | None = None,
                 personas: PersonaSet | None = None) -> None:
        self.config = c = config
        self.lms = list(lms)
        if not self.lms:
            raise ConfigError("lms: give at least one LM (programs.lm.build_lms builds them from a model string)")
        self.population = population if population is not None else Population.sample(
            c.agents, seed=c.seed, stratified=c.stratified, utility_mix=c.utility_mix)
        if self.population.n != c.agents:
            raise ConfigError(f"population has {self.population.n} agents but agents={c.agents}")
        self.kappa = resolve_kappa(c.kappa)
        self.initial_schedule = c.initial_tax_schedule()
        self.planner: Planner = planner if planner is not None else PlannerAgent(
            self.initial_schedule, module_type=c.module_type, history_len=c.history_len, best_k=c.best_k)
        self.scenario: Scenario = scenario if scenario is not None else scenario_class(c.scenario)()
        self.worker = WorkerAgent(module_type=c.module_type, hours_grid=c.hours_grid)
        if isinstance(self.planner, PlannerAgent) and (c.max_rate_move is not None or c.rate_grid is not None):
            self.planner.move_rule = _move_rule(c.max_rate_move, c.rate_grid)
        self.electorate = Electorate(module_type=c.module_type, method=c.voting)
        self.rater = SatisfactionRater(module_type=c.module_type)
        self.runner = BatchRunner(batch_threads(self.lms, c.concurrency))
        self.skill = np.asarray(self.population.skill, dtype=np.float64)
        self.persona_set: PersonaSet | None = None
        if c.personas == "lm":
            self.persona_set = personas if personas is not None else self._write_personas()
            if len(self.persona_set.personas) != c.agents:
                raise ConfigError(f"personas: {len(self.persona_set.personas)} stored personas but agents={c.agents}")
        elif personas is not None:
            raise ConfigError("personas: stored personas need personas='lm' in the configuration")
        self.personas = list(self.persona_set.personas if self.persona_set else self.population.persona)
        self.reset()

    def _write_personas(self) -> PersonaSet:
        usage = UsageMeter()
        with quiet_history(), usage.installed():
            personas, fallbacks = PersonaWriter(self.config.module_type).write_batch(
                self.population, lms=self.lms, runner=self.runner, seed=self.config.seed)
        return PersonaSet(personas=personas, fallbacks={f"persona_{k}": v for k, v in fallbacks.items()},
                          usage=usage.take())

    # ------------------------------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------------------------------
    def reset(self) -> dict[str, Any]:
        """Back to step 0 (fresh memories, the initial schedule); returns the first observation."""
        c = self.config
        self.t = 0
        self.schedule = self.initial_schedule
        self.memories = [WorkerMemory(i, self.personas[i], HOURS_REF * float(self.skill[i]), c.history_len, c.best_k)
                         for i in range(c.agents)]
        self.hours: NDArray[np.float64] | None = None
        self.last_rebate = 0.0
        self.planner.reset_memory()
        self.scenario.reset()
        self.years: list[YearRecord] = []  # one per finished (or running) tax year
        self.fallback_totals: Counter[str] = Counter()
        self.clamped_total = 0
        self.move_limited_total = 0
        # Per endpoint: requests, retries and errors summed over the logged steps (None: in-process LM).
        self.request_totals: list[dict[str, Any]] | None = None
        self._best_response: tuple[int, NDArray[np.float64]] | None = None
        self._last: StepRecord | None = None
        #: LM answers asked for in the last live step (0 after replay): what ``FallbackGuard`` divides by.
        self.last_calls = 0
        #: Answers and tokens by role summed over the logged steps (``StepRecord.usage``), and the personas'.
        self.usage_totals: dict[str, dict[str, int]] = dict(self.persona_set.usage) if self.persona_set else {}
        if self.persona_set:
            self.fallback_totals.update(self.persona_set.fallbacks)
        return self.observation()

    @property
    def done(self) -> bool:
        return self.t >= self.config.total_steps

    @property
    def year(self) -> int:
        return self.t // self.config.steps_per_year

    @property
    def leader(self):
        """The elected leader (democratic scenario), else None."""
        return self.scenario.leader

    def observation(self) -> dict[str, Any]:
        return {"t": self.t, "year": self.year, "rates": self.schedule.rates.tolist(),
                "hours": None if self.hours is None else self.hours.tolist()}

    def best_response(self) -> NDArray[np.float64]:
        """Rational hours under the schedule in force, shape (n,) (cached per tax year)."""
        key = hash(self.schedule)
        if self._best_response is None or self._best_response[0] != key:
            grid = None
            if self.config.hours_grid is not None:
                grid = np.arange(0.0, MAX_HOURS + 1e-9, self.config.hours_grid)
            self._best_response = (key, best_response(self.skill, self.schedule, kappa=self.kappa, grid=grid))
        return self._best_response[1]

    def limit_moves(self, proposal: Proposal) -> Proposal:
        """A planner's proposal under the configured move limit and rate grid (the one place they apply)."""
        c = self.config
        return proposal.limited(to_percent(self.schedule.rates), c.max_rate_move, c.rate_grid)

    def worker_rows(self, out: Outcome) -> list[WorkerStep]:
        """Each worker's record of a step's outcome, as its prompts show it."""
        obj = out.objective
        return [worker_step(self.t, out.hours[i], out.income[i], out.tax[i], out.rebate, out.consumption[i], obj[i])
                for i in range(self.config.agents)]

    # ------------------------------------------------------------------------------------------
    # the workers' decision (the scenario's hooks make the others)
    # ------------------------------------------------------------------------------------------
    def _decide_hours(self) -> tuple[list[float], dict[str, int]]:
        c = self.config
        if c.workers == "rational":
            return self.best_response().tolist(), {}
        sched = Schedule(cutoffs=self.schedule.cutoffs.tolist(), rates_percent=to_percent(self.schedule.rates))
        d = self.worker.decide_batch(self.memories, sched, self.last_rebate, lms=self.lms, runner=self.runner,
                                     seed=c.seed, step=self.t)
        return d.hours.tolist(), d.counts()

    # ------------------------------------------------------------------------------------------
    # applying decisions (shared by live steps and replay)
    # ------------------------------------------------------------------------------------------
    def _apply_year_start(self, event: YearEvent) -> None:
        self.schedule = self.initial_schedule.with_rates(event.rates)
        self._count(event.fallbacks)
        self.clamped_total += event.clamped
        self.move_limited_total += event.move_limited
        self.scenario.apply_year_start(self, event)
        election = None
        if event.election is not None:
            res = ElectionResult.from_dict(event.election)
            election = {"winner": res.winner, "agent_id": res.winner_agent, "method": res.method,
                        "rounds": res.rounds, "tie_break": res.tie_break}
        self.years.append(YearRecord(year=self.year, kind=event.kind, rates_percent=to_percent(self.schedule.rates),
                                     election=election, clamped=event.clamped,
                                     move_limited=event.move_limited))

    def _outcome(self, hours: NDArray[np.float64]) -> Outcome:
        return outcome(self.population, self.schedule, hours, self.config.swf, kappa=self.kappa,
                       skill_floor=self.config.skill_floor)

    def _apply_step(self, rec: StepRecord, out: Outcome | None = None) -> StepRecord:
        """Apply one step's decisions (hours, year-end decision) and fill the record's derived fields."""
        c = self.config
        hours = np.asarray(rec.hours, dtype=np.float64)
        if out is None:
            out = self._outcome(hours)
        self._count(rec.fallbacks)
        self._count_requests(rec.requests)
        if rec.usage:
            self.usage_totals = usage_sum([self.usage_totals, rec.usage])
        year_end = rec.k == c.steps_per_year - 1
        rows = self.worker_rows(out)
        welfare = float(out.welfare)
        if year_end:
            # The planner is rewarded with what the scenario says; worker histories keep the economic
            # utility their hours produced.
            welfare = self.scenario.reward(self, out, rec.year_end)
        if rec.year_end is not None:
            self._count(rec.year_end.fallbacks)
            self.scenario.apply_year_end(self, rec.year_end)
        for m, row in zip(self.memories, rows):
            m.record(row)
            if year_end:
                m.year_end.append(row)
        self.hours = hours
        self.last_rebate = float(out.rebate)
        gap = float(np.median(np.abs(hours - self.best_response())))
        yr = self.years[-1]
        if rec.k == 0:
            yr.gap_median_first = gap
        if year_end:
            self.planner.record_year(planner_year(rec.year, self.schedule, welfare, out.revenue,
                                                  out.mean_hours, out.income))
            yr.welfare, yr.revenue, yr.mean_hours = welfare, float(out.revenue), float(out.mean_hours)
            yr.gini, yr.gap_median_last = float(out.gini), gap
            yr.rational_welfare = float(self._outcome(self.best_response()).welfare)
            if rec.year_end is not None:
                yr.year_end_share = float(np.mean(np.asarray(rec.year_end.values, dtype=float)))
        yr.fallbacks = merge_counts(yr.fallbacks, rec.fallbacks, rec.event.fallbacks if rec.event else None,
                                    rec.year_end.fallbacks if rec.year_end else None)
        self.t += 1
        self._last = rec.model_copy(update=dict(
            rates=self.schedule.rates.tolist(), welfare=welfare, revenue=float(out.revenue),
            mean_hours=float(out.mean_hours), rebate=float(out.rebate), gap_median=gap,
            utility=out.objective.tolist()))
        return self._last

    def _count(self, counts: dict[str, int] | None) -> None:
        for k, v in (counts or {}).items():
            self.fallback_totals[k] += int(v)

    def _count_requests(self, per_endpoint: list[dict[str, Any]] | None) -> None:
        if not per_endpoint:
            return
        totals = self.request_totals or []
        out = []
        for i in range(max(len(totals), len(per_endpoint))):
            parts = [x[i] for x in (totals, per_endpoint) if i < len(x)]
            row = stats_sum(parts)
            row["max_in_flight"] = max(int(x.get("max_in_flight", 0)) for x in parts)
            out.append(row)
        self.request_totals = out

    # ------------------------------------------------------------------------------------------
    # the public loop
    # ------------------------------------------------------------------------------------------
    def step(self) -> StepRecord:
        """One worker step (the scenario's year start first, at the start of a tax year).

        Returns the step's record: the decisions (``event``, ``hours``, ``fallbacks``, ``year_end``)
        and derived values (``rates``, ``welfare``, ``utility``, ``gap_median``, ...).
        """
        if self.done:
            raise RuntimeError(f"the episode is over ({self.config.total_steps} steps); call reset()")
        c = self.config
        year, k = divmod(self.t, c.steps_per_year)
        usage = UsageMeter()
        with quiet_history(), _RequestMeter(self.lms) as meter, usage.installed():
            event = None
            if k == 0:
                event = self.scenario.year_start(self, year)
                self._apply_year_start(event)
            hours, fb = self._decide_hours()
            out = None
            decision: YearEnd | None = None
            if k == c.steps_per_year - 1:
                out = self._outcome(np.asarray(hours, dtype=np.float64))
                decision = self.scenario.year_end(self, out, year)
            by_role = usage.take()
            rec = StepRecord(t=self.t, year=year, k=k, event=event, hours=hours, fallbacks=fb, year_end=decision,
                             # What the step cost on the wire (per endpoint): logged, so a resumed run's totals agree.
                             requests=meter.read() if meter.active else None,
                             # Answers and tokens by role, as the LM responses reported them: logged, so a
                             # resumed run's totals agree.
                             usage=by_role or None)
            self.last_calls = sum(row["calls"] for row in by_role.values())
            return self._apply_step(rec, out)

    def replay(self, records: Sequence[StepRecord | dict[str, Any]]) -> None:
        """Rebuild the state from logged records (no LM call): memories, planner history, leader, counters.

        Raises ValueError if a record does not follow on (wrong step) or recomputes to another welfare
        (the log was written by a different configuration or code).
        """
        for raw in records:
            rec = raw if isinstance(raw, StepRecord) else StepRecord.model_validate(raw)
            if rec.t != self.t:
                raise ValueError(f"run log record t={rec.t} does not follow step {self.t}")
            if rec.k == 0:
                if rec.event is None:
                    raise ValueError(f"run log step {rec.t}: a tax year's first step has no year-start event")
                self._apply_year_start(rec.event)
            new = self._apply_step(rec.decisions())
            if rec.welfare is not None and new.welfare != rec.welfare:
                raise ValueError(f"run log step {rec.t}: welfare recomputes to {new.welfare!r}, "
                                 f"the log says {rec.welfare!r}; it was written by another configuration or version")

    def run(self, progress: bool = True, log: Any = None, guard: FallbackGuard | None = None) -> RunSummary:
        """Step to the end of the episode, appending each record to ``log`` (a ``RunLog``) if given.

        Returns the summary (``summary()``); also written to the log directory when there is one.
        With a ``guard``, raises ``FallbackStop`` once most LM calls fell back for its patience of steps;
        the step that tripped it is logged first and the summary so far written, so the log resumes.
        """
        from programs.simulation.guard import FallbackStop
        from tqdm.auto import tqdm

        bar = tqdm(total=self.config.total_steps, initial=self.t, disable=not progress, unit="step",
                   dynamic_ncols=True)
        try:
            while not self.done:
                rec = self.step()
                if log is not None:
                    log.append(rec)
                bar.update(1)
                if guard is not None:
                    try:
                        guard.observe(rec.t, self.last_calls, self.step_fallbacks(rec))
                    except FallbackStop:
                        if log is not None:
                            log.write_summary(self.summary())
                        raise
                bar.set_postfix(year=rec.year, welfare=f"{rec.welfare:.4g}", refresh=False)
        finally:
            bar.close()
        summary = self.summary()
        if log is not None:
            log.write_summary(summary)
        return summary

    @staticmethod
    def step_fallbacks(rec: StepRecord) -> dict[str, int]:
        """All fallbacks of one step by kind (workers, the year-start event, the year-end decision)."""
        return merge_counts(rec.fallbacks, rec.event.fallbacks if rec.event else None,
                            rec.year_end.fallbacks if rec.year_end else None)

    def summary(self) -> RunSummary:
        """Results so far, a pure function of the steps taken (a resumed run gives the same summary)."""
        c = self.config
        finished = [y for y in self.years if y.finished]
        last = self._last
        hours = self.hours if self.hours is not None else np.zeros(c.agents)
        return RunSummary(
            config=c.model_dump(),
            lm=lm_label(self.lms[0]) + (f" (x{len(self.lms)} endpoints)" if len(self.lms) > 1 else ""),
            steps=self.t,
            years_finished=len(finished),
            welfare_by_year=[y.welfare for y in finished],
            rates_percent_by_year=[y.rates_percent for y in self.years],
            gap_median_first_by_year=[y.gap_median_first for y in self.years],
            gap_median_last_by_year=[y.gap_median_last for y in finished],
            years=[y.model_copy() for y in self.years],
            final=FinalState(rates_percent=to_percent(self.schedule.rates), welfare=last.welfare if last else None,
                             mean_hours=float(np.mean(hours)), median_hours=float(np.median(hours)),
                             rebate=self.last_rebate, gap_median=last.gap_median if last else None),
            fallbacks=dict(sorted(self.fallback_totals.items())),
            clamped=self.clamped_total,
            move_limited=self.move_limited_total,
            requests=self._request_summary(),
            leader=self.leader,
            usage=usage_summary(self.usage_totals, usage_source(self.lms)),
        )

    def _request_summary(self) -> dict[str, Any] | None:
        """Requests, retries, failures and errors by kind over the run, in total and per endpoint.

        None when no LM is served over the network (the in-process engines)."""
        if self.request_totals is None:
            return None
        labels = [getattr(lm, "endpoint", lm_label(lm)) for lm in self.lms]
        endpoints = [{"endpoint": labels[i] if i < len(labels) else f"endpoint {i}", **row}
                     for i, row in enumerate(self.request_totals)]
        total = stats_sum(self.request_totals)
        total["max_in_flight"] = max((r["max_in_flight"] for r in self.request_totals), default=0)
        return {**total, "endpoints": endpoints}

    def close(self) -> None:
        self.runner.close()


class _RequestMeter:
    """Per-endpoint request counts of the ``EndpointLM`` objects during one step."""

    def __init__(self, lms: Sequence[dspy.BaseLM]) -> None:
        self.lms = list(lms)
        self.active = any(isinstance(lm, EndpointLM) for lm in self.lms)

    def __enter__(self) -> "_RequestMeter":
        if self.active:
            self.before = request_stats(self.lms)
            for lm in self.lms:
                if isinstance(lm, EndpointLM):
                    lm.stats.take_max()  # the peak below is this step's
        return self

    def read(self) -> list[dict[str, Any]]:
        after = request_stats(self.lms) or []
        out = []
        for lm, b, a in zip(self.lms, self.before or [], after):
            d = stats_delta(b, a)
            d["max_in_flight"] = lm.stats.take_max() if isinstance(lm, EndpointLM) else 0
            out.append(d)
        return out

    def __exit__(self, *exc: object) -> None:
        return None
