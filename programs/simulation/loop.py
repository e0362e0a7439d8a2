"""The simulation loop: workers every step, the planner every tax year (DESIGN.md §3–§4).

A Gymnasium-like surface: ``Simulation(config).reset()``, then ``step()`` runs one worker step and
returns its record (a JSON-ready dict); ``run()`` steps to the end. At the first step of each tax year
the schedule is set: year 0 runs the configured initial rates; afterwards the planner proposes from
the years it has seen (its reward is the social welfare at the end of each tax year, after the workers
have responded). In the ``democratic`` scenario an election every ``election_every`` years picks the
leader, whose platform is that year's schedule and in whose persona the planner proposes until the next
election. In ``bounded``, each worker's year-end satisfaction scales its utility (1.0 or 0.5) in the
welfare the planner is rewarded with.

Workers are LLM agents (``WorkerAgent``, all workers of a step in one concurrent batch) or rational
(``economy.best_response``). The world maths is ``economy.world.outcome`` (pure numpy).

Resumability: every LM decision of a step (the year-start event, the hours, year-end satisfaction) is
in the step's record, and every LM input depends only on state rebuilt from earlier records, with
per-event random draws seeded by (seed, year). ``replay(records)`` re-applies a log without any LM
call, so a resumed run continues exactly where an unbroken one would be.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import dspy
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from economy.constants import resolve_kappa
from economy.labor import best_response
from economy.population import UTILITY_TYPES, Population
from economy.constants import HOURS_REF
from economy.tax import PRESETS, TaxSchedule, to_fraction, to_percent
from economy.welfare import SWFS, social_welfare
from economy.world import Outcome, outcome
from programs.agents.batch import BatchRunner, FallbackCounter, lm_config, rollout_id, round_robin
from programs.agents.electorate import METHODS, Electorate, ElectionResult, draw_candidates
from programs.errors import ConfigError
from programs.lm.compat import quiet_history
from programs.lm import EndpointLM, build_lms, in_process, lm_label, request_stats, stats_delta, stats_sum
from programs.agents.tax_planner import Planner, PlannerAgent, planner_year
from programs.agents.satisfaction import SatisfactionRater, utility_scale
from programs.agents.worker import WorkerAgent, WorkerMemory, worker_step
from signatures import Platform, Schedule

from programs.simulation.config import SimulationConfig

__all__ = ["Simulation"]

class Simulation:
    """One economy of workers and a planner.

    Parameters
    ----------
    config : SimulationConfig
    lms : list of dspy.LM (agents spread round-robin); default the offline engine seeded by ``config.seed``.
    planner : a ``PlannerAgent`` (e.g. a compiled one, ``PlannerAgent.load(path)``) or any ``Planner``;
        default a fresh ``PlannerAgent`` on the configured brackets.
    population : default ``Population.sample(config.agents, seed=config.seed, ...)``.
    """

    def __init__(self, config: SimulationConfig, lms: Sequence[dspy.BaseLM] | None = None,
                 planner: Planner | None = None, population: Population | None = None) -> None:
        self.config = config
        c = config
        self.lms = list(lms) if lms else build_lms("offline", temperature=c.temperature, seed=c.seed)
        self.population = population if population is not None else Population.sample(
            c.agents, seed=c.seed, stratified=c.stratified, utility_mix=c.utility_mix)
        if self.population.n != c.agents:
            raise ConfigError(f"population has {self.population.n} agents but agents={c.agents}")
        self.kappa = resolve_kappa(c.kappa)
        rates = None if c.initial_rates is None else to_fraction(c.initial_rates)
        self.initial_schedule = TaxSchedule.preset(c.brackets, rates=rates)
        self.planner: Planner = planner if planner is not None else PlannerAgent(
            self.initial_schedule, module_type=c.module_type, history_len=c.history_len, best_k=c.best_k)
        self.worker = WorkerAgent(module_type=c.module_type)
        self.electorate = Electorate(module_type=c.module_type, method=c.voting)
        self.rater = SatisfactionRater(module_type=c.module_type)
        # The in-process offline engine is CPU-bound Python: threads would only contend for the GIL
        # (measured ~1.8x slower at 4 threads on 2 cores), so its batches run inline. Served LMs get
        # `concurrency` threads per endpoint; each EndpointLM bounds its own requests in flight.
        threads = 1 if all(in_process(lm) for lm in self.lms) else min(1024, c.concurrency * len(self.lms))
        self.runner = BatchRunner(threads)
        self.skill = np.asarray(self.population.skill, dtype=np.float64)
        self.personas = list(self.population.persona)
        self.reset()

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
        self.leader: dict[str, Any] | None = None
        self.planner.reset_memory()
        self.years: list[dict[str, Any]] = []  # one summary per finished (or running) tax year
        self.fallback_totals: Counter[str] = Counter()
        # Per endpoint: requests, retries and errors summed over the logged steps (None: in-process LM).
        self.request_totals: list[dict[str, Any]] | None = None
        self._best_response: tuple[int, NDArray[np.float64]] | None = None
        self._last: dict[str, Any] | None = None
        return self.observation()

    @property
    def done(self) -> bool:
        return self.t >= self.config.total_steps

    @property
    def year(self) -> int:
        return self.t // self.config.steps_per_year

    def observation(self) -> dict[str, Any]:
        return {"t": self.t, "year": self.year, "rates": self.schedule.rates.tolist(),
                "hours": None if self.hours is None else self.hours.tolist()}

    def best_response(self) -> NDArray[np.float64]:
        """Rational hours under the schedule in force, shape (n,) (cached per tax year)."""
        key = hash(self.schedule)
        if self._best_response is None or self._best_response[0] != key:
            self._best_response = (key, best_response(self.skill, self.schedule, kappa=self.kappa))
        return self._best_response[1]

    # ------------------------------------------------------------------------------------------
    # decisions (the only LM calls)
    # ------------------------------------------------------------------------------------------
    def _decide_year_start(self, year: int) -> dict[str, Any]:
        c = self.config
        if c.scenario == "democratic" and year % c.election_every == 0:
            return self._decide_election(year)
        if year == 0:
            return {"kind": "initial", "rates": self.initial_schedule.rates.tolist()}
        persona = self.leader["persona"] if self.leader else None
        counter = getattr(self.planner, "fallbacks", None)
        before = counter.snapshot() if isinstance(counter, FallbackCounter) else {}
        new, fb = self.planner.propose_schedule(self.schedule, lm=self.lms[0], persona=persona,
                                                rollout_id=rollout_id(c.seed, "plan", year))
        fallbacks = {fb: 1} if fb else {}
        # An out-of-range rate the planner clamped is logged like a worker's clamped hours.
        after = counter.snapshot() if isinstance(counter, FallbackCounter) else {}
        clamped = after.get("clamped", 0) - before.get("clamped", 0)
        if clamped > 0:
            fallbacks["clamped"] = clamped
        return {"kind": "planner", "rates": new.rates.tolist(), "fallbacks": fallbacks}

    def _decide_election(self, year: int) -> dict[str, Any]:
        c = self.config
        rng = np.random.default_rng([c.seed, year, 1])
        cands = draw_candidates(self.personas, c.n_candidates, rng)
        planner = self.planner
        current = self.schedule

        def platform(cand: Any) -> tuple[list[float], str | None, int]:
            if isinstance(planner, PlannerAgent):
                pred = planner(cutoffs=current.cutoffs.tolist(), current_rates_percent=to_percent(current.rates),
                               history=planner.prompt_history(), best=planner.prompt_best(),
                               lm=round_robin(self.lms, cand.agent_id), persona=cand.persona,
                               rollout_id=rollout_id(c.seed, "platform", year, cand.agent_id))
                return list(pred.rates_percent), pred.fallback, int(getattr(pred, "clamped", 0) or 0)
            sched, fb = planner.propose_schedule(current, persona=cand.persona)
            return to_percent(sched.rates), fb, 0

        fallbacks: Counter[str] = Counter()
        platforms = []
        for cand, res in zip(cands, self.runner.map(platform, cands)):
            if isinstance(res, BaseException):  # bug guard: the planner catches its own errors
                res = (to_percent(current.rates), "lm_error", 0)
            rates, fb, clamped = res
            if fb:
                fallbacks[fb] += 1
            if clamped:
                fallbacks["clamped"] += clamped
            platforms.append(Platform(candidate=cand.name, rates_percent=rates, pitch=_pitch(cand.persona)))
        result = self.electorate.elect(self.memories, current.cutoffs.tolist(), platforms,
                                       [cand.agent_id for cand in cands], lms=self.lms, runner=self.runner,
                                       rng=rng, seed=c.seed, key=(year,))
        fallbacks.update({f"vote_{k}": v for k, v in result.fallbacks.items()})
        rates = to_fraction(result.winner_platform.rates_percent).tolist()
        return {"kind": "election", "rates": rates, "election": result.to_dict(),
                "fallbacks": dict(sorted(fallbacks.items()))}

    def _decide_hours(self) -> tuple[list[float], dict[str, int]]:
        c = self.config
        if c.workers == "rational":
            return self.best_response().tolist(), {}
        sched = Schedule(cutoffs=self.schedule.cutoffs.tolist(), rates_percent=to_percent(self.schedule.rates))
        d = self.worker.decide_batch(self.memories, sched, self.last_rebate, lms=self.lms, runner=self.runner,
                                     seed=c.seed, step=self.t)
        return d.hours.tolist(), d.counts()

    def _decide_satisfaction(self, out: Outcome, year: int) -> tuple[list[bool], dict[str, int]]:
        rows = self._rows(out)
        return self.rater.rate_batch(self.memories, rows, lms=self.lms, runner=self.runner,
                                     seed=self.config.seed, year=year)

    # ------------------------------------------------------------------------------------------
    # applying decisions (shared by live steps and replay)
    # ------------------------------------------------------------------------------------------
    def _apply_year_start(self, event: dict[str, Any]) -> None:
        self.schedule = self.initial_schedule.with_rates(event["rates"])
        self._count(event.get("fallbacks") or {})
        year_rec: dict[str, Any] = {"year": self.year, "kind": event["kind"],
                                    "rates_percent": to_percent(self.schedule.rates)}
        if event["kind"] == "election":
            res = ElectionResult.from_dict(event["election"])
            aid = res.winner_agent
            self.leader = {"name": res.winner, "agent_id": aid, "persona": self.personas[aid]}
            for m, v in zip(self.memories, res.votes):
                if v is not None:
                    m.last_vote = v
            year_rec["election"] = {"winner": res.winner, "agent_id": aid, "method": res.method,
                                    "rounds": res.rounds, "tie_break": res.tie_break}
        self.years.append(year_rec)

    def _outcome(self, hours: NDArray[np.float64]) -> Outcome:
        return outcome(self.population, self.schedule, hours, self.config.swf, kappa=self.kappa)

    def _rows(self, out: Outcome) -> list:
        obj = out.objective
        return [worker_step(self.t, out.hours[i], out.income[i], out.tax[i], out.rebate, out.consumption[i], obj[i])
                for i in range(self.config.agents)]

    def _apply_step(self, rec: dict[str, Any], out: Outcome | None = None) -> dict[str, Any]:
        """Apply one step's decisions (hours, satisfaction) and fill the record's derived fields."""
        c = self.config
        hours = np.asarray(rec["hours"], dtype=np.float64)
        if out is None:
            out = self._outcome(hours)
        self._count(rec.get("fallbacks") or {})
        self._count_requests(rec.get("requests"))
        welfare = float(out.welfare)
        year_end = rec["k"] == c.steps_per_year - 1
        rows = self._rows(out)
        if rec.get("satisfaction") is not None:
            self._count(rec.get("satisfaction_fallbacks") or {})
            sat = rec["satisfaction"]
            # The planner is rewarded with the welfare of satisfaction-scaled utilities; worker histories
            # keep the economic utility their hours produced.
            welfare = float(social_welfare(out.utility * utility_scale(sat), skill=self.skill, income=out.income,
                                           swf=c.swf))
            for m, row, s in zip(self.memories, rows, sat):
                m.last_satisfied = bool(s)
        for m, row in zip(self.memories, rows):
            m.record(row)
            if year_end:
                m.year_end.append(row)
        self.hours = hours
        self.last_rebate = float(out.rebate)
        gap = float(np.median(np.abs(hours - self.best_response())))
        yr = self.years[-1]
        if rec["k"] == 0:
            yr["gap_median_first"] = gap
        if year_end:
            self.planner.record_year(planner_year(rec["year"], self.schedule, welfare, out.revenue,
                                                  out.mean_hours, out.income))
            yr.update(welfare=welfare, revenue=float(out.revenue), mean_hours=float(out.mean_hours),
                      gini=float(out.gini), gap_median_last=gap,
                      rational_welfare=float(self._outcome(self.best_response()).welfare))
            if rec.get("satisfaction") is not None:
                yr["satisfied_share"] = float(np.mean(rec["satisfaction"]))
        yr["fallbacks"] = _merge(yr.get("fallbacks", {}), rec.get("fallbacks") or {},
                                 (rec.get("event") or {}).get("fallbacks") or {}, rec.get("satisfaction_fallbacks") or {})
        self.t += 1
        derived = {"rates": self.schedule.rates.tolist(), "welfare": welfare, "revenue": float(out.revenue),
                   "mean_hours": float(out.mean_hours), "rebate": float(out.rebate), "gap_median": gap,
                   "utility": out.objective.tolist()}
        self._last = {**rec, **derived}
        return self._last

    def _count(self, counts: dict[str, int]) -> None:
        for k, v in counts.items():
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

    def _measure_requests(self) -> "_RequestMeter":
        return _RequestMeter(self.lms)

    # ------------------------------------------------------------------------------------------
    # the public loop
    # ------------------------------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        """One worker step (the planner or an election first, at the start of a tax year).

        Returns the step's record: the decisions (``event``, ``hours``, ``fallbacks``, ``satisfaction``)
        and derived values (``rates``, ``welfare``, ``utility``, ``gap_median``, ...).
        """
        if self.done:
            raise RuntimeError(f"the episode is over ({self.config.total_steps} steps); call reset()")
        c = self.config
        year, k = divmod(self.t, c.steps_per_year)
        with quiet_history(), self._measure_requests() as meter:
            rec: dict[str, Any] = {"t": self.t, "year": year, "k": k, "event": None}
            if k == 0:
                rec["event"] = self._decide_year_start(year)
                self._apply_year_start(rec["event"])
            hours, fb = self._decide_hours()
            rec["hours"] = hours
            rec["fallbacks"] = fb
            rec["satisfaction"] = None
            out = None
            if c.scenario == "bounded" and k == c.steps_per_year - 1:
                out = self._outcome(np.asarray(hours, dtype=np.float64))
                sat, sfb = self._decide_satisfaction(out, year)
                rec["satisfaction"] = sat
                rec["satisfaction_fallbacks"] = sfb
            if meter.active:
                # What the step cost on the wire (per endpoint): logged, so a resumed run's totals agree.
                rec["requests"] = meter.read()
            return self._apply_step(rec, out)

    def replay(self, records: Sequence[dict[str, Any]]) -> None:
        """Rebuild the state from logged records (no LM call): memories, planner history, leader, counters.

        Raises ValueError if a record does not follow on (wrong step) or recomputes to another welfare
        (the log was written by a different configuration or code).
        """
        for rec in records:
            if rec.get("t") != self.t:
                raise ValueError(f"run log record t={rec.get('t')} does not follow step {self.t}")
            if rec["k"] == 0:
                self._apply_year_start(rec["event"])
            logged = rec.get("welfare")
            new = self._apply_step({key: rec.get(key) for key in
                                    ("t", "year", "k", "event", "hours", "fallbacks", "satisfaction",
                                     "satisfaction_fallbacks", "requests")})
            if logged is not None and new["welfare"] != logged:
                raise ValueError(f"run log step {rec['t']}: welfare recomputes to {new['welfare']!r}, "
                                 f"the log says {logged!r}; it was written by another configuration or version")

    def run(self, progress: bool = True, log: Any = None) -> dict[str, Any]:
        """Step to the end of the episode, appending each record to ``log`` (a ``RunLog``) if given.

        Returns the summary (``summary()``); also written to the log directory when there is one.
        """
        from tqdm.auto import tqdm

        bar = tqdm(total=self.config.total_steps, initial=self.t, disable=not progress, unit="step",
                   dynamic_ncols=True)
        try:
            while not self.done:
                rec = self.step()
                if log is not None:
                    log.append(rec)
                bar.update(1)
                bar.set_postfix(year=rec["year"], welfare=f"{rec['welfare']:.4g}", refresh=False)
        finally:
            bar.close()
        summary = self.summary()
        if log is not None:
            log.write_summary(summary)
        return summary

    def summary(self) -> dict[str, Any]:
        """Results so far, a pure function of the steps taken (a resumed run gives the same summary)."""
        c = self.config
        finished = [y for y in self.years if "welfare" in y]
        last = self._last or {}
        hours = self.hours if self.hours is not None else np.zeros(c.agents)
        return {
            "config": c.model_dump(),
            "lm": lm_label(self.lms[0]) + (f" (x{len(self.lms)} endpoints)" if len(self.lms) > 1 else ""),
            "steps": self.t,
            "years_finished": len(finished),
            "welfare_by_year": [y["welfare"] for y in finished],
            "rates_percent_by_year": [y["rates_percent"] for y in self.years],
            "gap_median_first_by_year": [y.get("gap_median_first") for y in self.years],
            "gap_median_last_by_year": [y.get("gap_median_last") for y in finished],
            "years": self.years,
            "final": {"rates_percent": to_percent(self.schedule.rates), "welfare": last.get("welfare"),
                      "mean_hours": float(np.mean(hours)), "median_hours": float(np.median(hours)),
                      "rebate": self.last_rebate, "gap_median": last.get("gap_median")},
            "fallbacks": dict(sorted(self.fallback_totals.items())),
            "requests": self._request_summary(),
            "leader": self.leader,
        }

    def _request_summary(self) -> dict[str, Any] | None:
        """Requests, retries, failures and errors by kind over the run, in total and per endpoint.

        None when no LM is served over the network (the in-process offline engine)."""
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


def _pitch(persona: str, limit: int = 160) -> str:
    p = " ".join(persona.split())
    return p if len(p) <= limit else p[: limit - 1].rstrip() + "…"


def _merge(*counts: dict[str, int]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for d in counts:
        for k, v in d.items():
            out[k] += int(v)
    return dict(sorted(out.items()))


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
