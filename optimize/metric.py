"""The compile metric: welfare of the proposed schedule once workers respond, as a share of the oracle's gain.

``score = (W - W_none) / (W_oracle - W_none)`` clipped to [0, 1], where ``W`` is the welfare of the
proposed schedule on the situation's population after the workers respond, ``W_none`` the welfare with no
tax and ``W_oracle`` the oracle's (both under rational workers, ``optimize.situations.Economy``).

Workers respond rationally by default (``economy.best_response``, exact and free). With
``workers="llm"`` they are LLM workers (``programs.agents.worker.WorkerAgent``) living one tax year of
``steps_per_year`` steps under the proposal, and ``W`` is the welfare at the end of that year: this costs
``agents * steps_per_year`` LM calls per metric call, counted like every other call.

The metric follows GEPA's five-argument form ``(gold, pred, trace, pred_name, pred_trace)`` and returns
``dspy.Prediction(score=..., feedback=...)``; the feedback says how far the proposal got, and which
brackets' rates were furthest from the best schedule known for that economy, in which direction.
``WelfareMetric.as_float`` is the same metric returning a bare float (for optimizers that sum scores).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import dspy
import numpy as np

from economy.tax import TaxSchedule, to_fraction
from optimize.situations import Economy, EconomySpec, economy_for

__all__ = ["WelfareMetric", "format_rates"]


def format_rates(rates_percent: Sequence[float]) -> str:
    return "[" + ", ".join(f"{float(r):.1f}" for r in rates_percent) + "]"


class WelfareMetric:
    """Score a planner's proposal on the population its situation came from.

    Parameters
    ----------
    econ : EconomySpec of the situations (population size, brackets, SWF, kappa, oracle budget).
    workers : "rational" (default) or "llm".
    lms : LMs answering the LLM workers (default: the LM configured in DSPy at call time).
    steps_per_year : steps of the LLM workers' tax year.
    temperature : temperature of those workers' simulation (offline engine noise).

    Attributes
    ----------
    calls : int -- metric evaluations so far.
    fallbacks : Counter -- planner answers scored as unusable (the rates in force kept), by kind.
    lm_calls_per_call : int -- LM calls one metric call makes (0 with rational workers).
    """

    def __init__(self, econ: EconomySpec, *, workers: str = "rational", lms: Sequence[dspy.BaseLM] | None = None,
                 steps_per_year: int = 5, temperature: float = 0.7) -> None:
        if workers not in ("rational", "llm"):
            raise ValueError(f"workers={workers!r} must be 'rational' or 'llm'")
        if isinstance(steps_per_year, bool) or not isinstance(steps_per_year, int) or steps_per_year < 1:
            raise ValueError(f"steps_per_year={steps_per_year!r} must be an integer >= 1")
        self.econ = econ
        self.workers = workers
        self.lms = list(lms) if lms else None
        self.steps_per_year = steps_per_year
        self.temperature = float(temperature)
        self.calls = 0
        #: Planner answers the metric scored as unusable, by kind (``validate_rates``'s or the agent's fallback).
        self.fallbacks: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def lm_calls_per_call(self) -> int:
        return 0 if self.workers == "rational" else self.econ.agents * self.steps_per_year

    def describe(self) -> str:
        if self.workers == "rational":
            return ("welfare after rational best responses, (W - W_none) / (W_oracle - W_none) clipped to [0, 1]")
        return (f"welfare after one tax year of {self.steps_per_year} steps of LLM workers, "
                "(W - W_none) / (W_oracle - W_none) clipped to [0, 1]")

    # ------------------------------------------------------------------------------------------
    def welfare(self, econ: Economy, rates_percent: Sequence[float]) -> float:
        """``W``: the welfare of these rates on ``econ``'s population after the workers respond."""
        schedule = TaxSchedule(self.econ.cutoffs, np.clip(to_fraction(rates_percent), 0.0, 1.0))
        if self.workers == "rational":
            return econ.rational_welfare(schedule, self.econ.swf)
        return self._llm_welfare(econ, schedule)

    def _llm_welfare(self, econ: Economy, schedule: TaxSchedule) -> float:
        from programs.agents.tax_planner import FixedPlanner
        from programs.simulation import Simulation, load_config

        cfg = load_config(agents=self.econ.agents, years=1, steps_per_year=self.steps_per_year, workers="llm",
                          brackets=self.econ.brackets, swf=self.econ.swf, kappa=self.econ.kappa, seed=econ.seed,
                          skill_floor=self.econ.skill_floor,
                          initial_rates=[100.0 * float(r) for r in schedule.rates], temperature=self.temperature,
                          stratified=self.econ.stratified)
        lms = self.lms or [dspy.settings.lm]
        sim = Simulation(cfg, lms=lms, planner=FixedPlanner(schedule), population=econ.population)
        try:
            summary = sim.run(progress=False)
        finally:
            sim.close()
        return float(summary.welfare_by_year[-1])

    # ------------------------------------------------------------------------------------------
    def __call__(self, gold: Any, pred: Any, trace: Any = None, pred_name: str | None = None,
                 pred_trace: Any = None) -> dspy.Prediction:
        """GEPA-style metric: ``dspy.Prediction(score, feedback)`` for one situation and one proposal."""
        from programs.agents.tax_planner import validate_rates

        with self._lock:
            self.calls += 1
        econ = economy_for(int(gold.seed), self.econ)
        k = len(self.econ.cutoffs)
        raw = getattr(pred, "rates_percent", None) if pred is not None else None
        rates, kind = validate_rates(raw, k)
        notes = []
        fallback = getattr(pred, "fallback", None) if pred is not None else None
        if kind is not None:
            # Not a usable schedule: score the rates in force (what the planner falls back to).
            rates = [float(r) for r in gold.current_rates_percent]
            notes.append(f"The answer was not {k} numbers in [0, 100] ({kind}); the rates in force were kept.")
        elif fallback:
            notes.append(f"The LM's answer was unusable ({fallback}); the planner kept the rates in force.")
        if kind or fallback:
            with self._lock:
                self.fallbacks[str(fallback or kind)] += 1
        w = self.welfare(econ, rates)
        score = econ.score(w)
        return dspy.Prediction(score=score, feedback=self.feedback(econ, rates, w, score, notes))

    def as_float(self, gold: Any, pred: Any, trace: Any = None) -> float:
        """The same metric as a bare float (what Evaluate, BootstrapFewShot, MIPROv2 and COPRO sum)."""
        return float(self(gold, pred, trace).score)

    def feedback(self, econ: Economy, rates: Sequence[float], welfare: float, score: float,
                 notes: Sequence[str] = ()) -> str:
        """Text for GEPA's reflection: how far the proposal got and where it differs most from the oracle."""
        best = econ.oracle_rates_percent()
        share = (welfare - econ.w_none) / econ.gain if math.isfinite(welfare) else float("nan")
        lines = [f"Welfare {welfare:.6g}: {100 * share:.0f}% of the best-known schedule's welfare gain over no tax "
                 f"(score {score:.3f})."]
        lines += list(notes)
        lines.append(f"Your rates (percent per bracket): {format_rates(rates)}.")
        lines.append(f"Best-known rates for this economy (percent per bracket): {format_rates(best)}.")
        gaps = np.asarray(best, float) - np.asarray(rates, float)
        order = [int(j) for j in np.argsort(-np.abs(gaps)) if abs(gaps[j]) >= 5.0][:3]
        if order:
            parts = []
            for j in order:
                lo = self.econ.cutoffs[j]
                parts.append(f"{'raise' if gaps[j] > 0 else 'lower'} bracket {j + 1} (from ${lo:,.0f}) by about "
                             f"{abs(gaps[j]):.0f} points")
            lines.append("Largest differences: " + "; ".join(parts) + ".")
        else:
            lines.append("Every rate is within 5 points of the best-known schedule.")
        return " ".join(lines)
