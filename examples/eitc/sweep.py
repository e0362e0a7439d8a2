"""The sweep: the unchanged ``ChooseLabor`` worker (``WorkerAgent``) under each credit rate, against the
economy's exact best response.

For each credit rate a fresh economy of the same workers runs ``steps`` steps: all workers choose their
hours in one batch (``WorkerAgent.decide_batch``), the world step (``economy.world.outcome``) prices them
under the credit schedule and rebates the revenue left, and each worker's history row (``worker_step``,
a negative tax when the credit exceeds the tax) goes back into its memory. The yardstick is
``economy.best_response`` under the same schedule: hours and welfare of fully rational workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import dspy
import numpy as np

from economy import Population, best_response, outcome
from economy.constants import HOURS_REF
from examples.eitc.mechanism import GROUPS, eitc_schedule, group_of, phase_out_rate, PHASE_IN_END
from programs.agents import BatchRunner, WorkerAgent, WorkerMemory
from programs.agents.worker import worker_step
from signatures import Schedule

__all__ = ["SweepRow", "run_sweep", "format_table"]


@dataclass
class SweepRow:
    """One credit rate: the LM workers' last-step hours and welfare beside the exact best response."""

    credit_rate: float
    phase_out_rate: float
    max_credit: float
    rates_percent: list[float]
    hours_lm: dict[str, float]  # mean hours by group, plus "all"
    hours_br: dict[str, float]
    gap_median: float  # median |hours - best response| over workers, last step
    welfare_lm: float
    welfare_br: float
    rebate_lm: float
    rebate_br: float
    fallbacks: dict[str, int] = field(default_factory=dict)


def _by_group(hours: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    out = {"all": float(hours.mean())}
    for g in GROUPS:
        sel = groups == g
        out[g] = float(hours[sel].mean()) if sel.any() else float("nan")
    return out


def run_sweep(lms: Sequence[dspy.BaseLM], credit_rates: Sequence[float], *, tax_rate: float = 0.20,
              agents: int = 40, steps: int = 6, seed: int = 0, module_type: str = "predict",
              threads: int = 1, history_len: int = 5, best_k: int = 3) -> list[SweepRow]:
    """One ``SweepRow`` per credit rate (fractions), same population and seed for each."""
    pop = Population.sample(agents, seed=seed)
    potential = HOURS_REF * np.asarray(pop.skill)
    groups = np.array([group_of(z) for z in potential])
    rows = []
    with BatchRunner(threads) as runner:
        for s in credit_rates:
            sched = eitc_schedule(s, tax_rate)
            shown = Schedule.from_tax_schedule(sched)  # what the LM reads: rates in percent, negative allowed
            worker = WorkerAgent(module_type=module_type)  # one per economy: its fallbacks are this row's
            memories = [WorkerMemory(i, pop.persona[i], float(potential[i]), history_len, best_k)
                        for i in range(agents)]
            rebate = 0.0
            out = None
            for t in range(steps):
                d = worker.decide_batch(memories, shown, rebate, lms=lms, runner=runner, seed=seed, step=t)
                out = outcome(pop, sched, d.hours)
                for i, m in enumerate(memories):
                    m.record(worker_step(t, out.hours[i], out.income[i], out.tax[i], out.rebate,
                                         out.consumption[i], out.objective[i]))
                rebate = float(out.rebate)
            br = best_response(pop.skill, sched)
            out_br = outcome(pop, sched, br)
            rows.append(SweepRow(
                credit_rate=s, phase_out_rate=phase_out_rate(s), max_credit=s * PHASE_IN_END,
                rates_percent=shown.rates_percent, hours_lm=_by_group(out.hours, groups),
                hours_br=_by_group(br, groups), gap_median=float(np.median(np.abs(out.hours - br))),
                welfare_lm=float(out.welfare), welfare_br=float(out_br.welfare), rebate_lm=float(out.rebate),
                rebate_br=float(out_br.rebate), fallbacks=worker.fallbacks.snapshot()))
    return rows


def format_table(rows: Sequence[SweepRow], groups: Sequence[str] = ("all", "phase-in", "phase-out")) -> str:
    """A plain-text table: hours (LM / best response) by group, welfare (LM / best response), rebate."""
    head = ["credit %", "phase-out %", "net rates %"] + [f"hours {g} LM/BR" for g in groups] + \
           ["|gap| h", "welfare LM / BR", "rebate BR $", "fallbacks"]
    body = []
    for r in rows:
        body.append([f"{100 * r.credit_rate:.0f}", f"{100 * r.phase_out_rate:.2f}",
                     " ".join(f"{x:g}" for x in (round(v, 2) for v in r.rates_percent))]
                    + [f"{r.hours_lm[g]:.1f} / {r.hours_br[g]:.1f}" for g in groups]
                    + [f"{r.gap_median:.2f}", f"{r.welfare_lm:,.0f} / {r.welfare_br:,.0f}", f"{r.rebate_br:,.0f}",
                       ", ".join(f"{k} {v}" for k, v in r.fallbacks.items()) or "0"])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(head), "  ".join("-" * w for w in widths)] + [line(b) for b in body])
