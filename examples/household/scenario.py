"""The household plugged into the simulation as a registered scenario (``@register_scenario``).

``Simulation`` is not touched. Workers choose their hours every step as in the ``rational`` scenario; at
the end of each tax year the ``year_end`` hook asks every household (one per worker) how much of its cash
on hand to consume, as one batch on the simulation's LMs and runner. Its ``YearEnd`` (kind ``saving``,
the percents consumed, fallbacks counted as ``saving_<kind>``) goes into the run log; ``apply_year_end``
keeps the percents, also on replay, so a resumed run rebuilds the households exactly.

The household's state is a pure function of the log: its disposable income each year is the worker's
year-end row (``sim.memories[i].year_end``, consumption = pre-tax income − tax + rebate, $/year), and its
savings follow from those incomes and the logged percents (``economics.simulate_paths``). Utility is
quasi-linear in the labor model (no income effects), so the saving decision never feeds back into hours;
the planner's reward is the welfare, as in ``rational``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from examples.household.agent import HouseholdAgent, HouseholdInput
from examples.household.economics import check_preferences, simulate_paths
from examples.household.signature import HouseholdYear
from programs.simulation.records import YearEnd
from programs.simulation.scenarios import RationalScenario, register_scenario

if TYPE_CHECKING:  # pragma: no cover
    from economy.world import Outcome
    from programs.simulation.loop import Simulation

__all__ = ["HouseholdScenario"]


@register_scenario
class HouseholdScenario(RationalScenario):
    """Workers by step, households by year: each year's disposable income is split into consumption and saving.

    Parameters
    ----------
    interest_rate : fraction earned on savings per year (default 0.05).
    discount_factor : the households' patience beta (default 0.99); beta*(1+r) must be >= 1.
    module_type : "predict" or "cot" for the household's predictor.
    """

    name = "household"

    def __init__(self, interest_rate: float = 0.05, discount_factor: float = 0.99, module_type: str = "predict"):
        super().__init__()
        check_preferences(interest_rate, discount_factor)
        self.interest_rate = float(interest_rate)
        self.discount_factor = float(discount_factor)
        self.agent = HouseholdAgent(module_type=module_type)
        self.percents: list[list[float]] = []  # one list per finished year: percent consumed per household

    def reset(self) -> None:
        super().reset()
        self.percents = []

    @classmethod
    def lm_calls(cls, config, *, planner_calls: bool = True) -> dict[str, int]:
        # One saving answer per household at the end of every tax year (role "other": not a project role).
        return {**super().lm_calls(config, planner_calls=planner_calls), "other": config.agents * config.years}

    # -- state: a pure function of the logged years ---------------------------------------------
    def incomes(self, sim: "Simulation", years: int | None = None) -> np.ndarray:
        """Disposable incomes of the finished years, shape (years, n), from the workers' year-end rows."""
        t = len(sim.memories[0].year_end) if years is None else years
        return np.array([[max(m.year_end[y].consumption, 0.0) for m in sim.memories] for y in range(t)]
                        ).reshape(t, len(sim.memories))

    def paths(self, sim: "Simulation") -> dict[str, np.ndarray]:
        """The households' cash, consumption, savings and shares over the finished years, shape (T, n)."""
        t = min(len(self.percents), len(sim.memories[0].year_end))
        n = len(sim.memories)
        return simulate_paths(self.incomes(sim, t), np.asarray(self.percents[:t], dtype=float).reshape(t, n) / 100.0,
                              self.interest_rate)

    # -- hooks ----------------------------------------------------------------------------------
    def year_end(self, sim: "Simulation", out: "Outcome", year: int) -> YearEnd:
        rows = sim.worker_rows(out)  # exactly the rows the workers' memories will record
        income = np.array([max(r.consumption, 0.0) for r in rows])
        past = self.paths(sim)
        carried = past["saving"][-1] if len(past["saving"]) else np.zeros(income.size)
        cash = (1.0 + self.interest_rate) * carried + income
        keep = sim.config.history_len
        households = []
        for i, m in enumerate(sim.memories):
            hist = tuple(HouseholdYear(year=y, income=round(past["income"][y, i], 2), cash_on_hand=round(past["cash"][y, i], 2),
                                       consumption=round(past["consumption"][y, i], 2),
                                       saving=round(past["saving"][y, i], 2))
                         for y in range(len(past["cash"])))[-keep:] if keep else ()
            households.append(HouseholdInput(
                agent_id=m.agent_id, persona=m.persona, years_left=sim.config.years - year,
                interest_rate_percent=round(100 * self.interest_rate, 6), discount_factor=self.discount_factor,
                income=float(income[i]), cash_on_hand=float(cash[i]), history=hist,
                fallback_percent=self.percents[-1][i] if self.percents else None))
        percent, kinds = self.agent.decide_batch(households, lms=sim.lms, runner=sim.runner,
                                                 seed=sim.config.seed, year=year)
        fallbacks: dict[str, int] = {}
        for k in kinds:
            if k is not None:
                fallbacks[f"saving_{k}"] = fallbacks.get(f"saving_{k}", 0) + 1
        return YearEnd(kind="saving", values=[float(p) for p in percent], fallbacks=dict(sorted(fallbacks.items())))

    def apply_year_end(self, sim: "Simulation", decision: YearEnd) -> None:
        self.percents.append([float(v) for v in decision.values])
