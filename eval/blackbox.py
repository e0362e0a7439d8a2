"""Equal-information black-box planners: ``es`` (CMA-ES) and ``random`` (uniform random search).

They answer the first question a referee asks of the LM planner: does its in-context learning beat a
textbook optimizer given the *same feedback*? Each runs on :class:`programs.simulation.env.PlannerEnv`
with the LM planner's configuration and sees exactly what the LM planner sees about outcomes — one
welfare figure per tax year (the scenario's reward, from the simulation's own workers) — for the same
number of tax years (``config.years``), from the same starting schedule:

- year 0 plays the configured initial rates (as the LM planner's simulation does);
- years 1 … years−2 play the optimizer's proposals (``ask``), each told the year's welfare (``tell``);
- the final year plays the optimizer's recommendation: the CMA-ES search distribution's mean for ``es``,
  the best schedule seen so far for ``random`` (its own estimate of the best schedule).

Like the LM planner's row, the row reports the schedule of the final tax year; ``best_seen`` keeps the
schedule with the highest welfare the planner was told of. Both are seeded: the same seed replays exactly.

CMA-ES uses the ``cmaes`` package (``cmaes.CMA``) on the box [0, 1]^k, started at the initial rates with
step size :data:`ES_SIGMA`; its population size is the package default (4 + ⌊3 ln k⌋) capped so that at
least two generations fit in the years available (a budget of 8 tax years allows populations of 3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["BLACKBOX", "ES_SIGMA", "BlackBoxResult", "CMAESSearch", "RandomSearch", "make_search", "run_blackbox"]

#: The black-box planners by name.
BLACKBOX: tuple[str, ...] = ("es", "random")
#: CMA-ES initial step size, in rate units (0.15 = 15 percentage points).
ES_SIGMA: float = 0.15


class CMAESSearch:
    """CMA-ES (``cmaes.CMA``) as ask/tell over rate vectors in [0, 1]^k, maximising welfare."""

    name = "es"

    def __init__(self, x0: Sequence[float], seed: int, budget: int, sigma: float = ES_SIGMA) -> None:
        from cmaes import CMA

        x0 = np.clip(np.asarray(x0, dtype=np.float64), 0.0, 1.0)
        k = x0.size
        default = 4 + int(math.floor(3 * math.log(k)))
        self.population_size = int(max(2, min(default, budget // 2)))
        bounds = np.tile([0.0, 1.0], (k, 1))
        with np.errstate(divide="ignore"):  # population 3 has one parent: cmaes divides by its zero rank-mu rate
            self._cma = CMA(mean=x0, sigma=float(sigma), bounds=bounds, seed=int(seed) % (2**31),
                            population_size=self.population_size)
        self._pending: list[tuple[NDArray[np.float64], float]] = []

    def ask(self) -> NDArray[np.float64]:
        return np.clip(np.asarray(self._cma.ask(), dtype=np.float64), 0.0, 1.0)

    def tell(self, x: NDArray[np.float64], welfare: float) -> None:
        self._pending.append((np.asarray(x, dtype=np.float64), -float(welfare)))  # cmaes minimises
        if len(self._pending) == self._cma.population_size:
            self._cma.tell(self._pending)
            self._pending = []

    def recommend(self, best: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.clip(np.asarray(self._cma.mean, dtype=np.float64), 0.0, 1.0)


class RandomSearch:
    """Uniform random rates in [0, 1]^k each year; recommends the best seen."""

    name = "random"

    def __init__(self, x0: Sequence[float], seed: int, budget: int) -> None:
        self.k = int(np.asarray(x0).size)
        self._rng = np.random.default_rng([int(seed), 0x5EED])

    def ask(self) -> NDArray[np.float64]:
        return self._rng.uniform(0.0, 1.0, self.k)

    def tell(self, x: NDArray[np.float64], welfare: float) -> None:
        pass

    def recommend(self, best: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(best, dtype=np.float64).copy()


def make_search(name: str, x0: Sequence[float], seed: int, budget: int) -> CMAESSearch | RandomSearch:
    if name == "es":
        return CMAESSearch(x0, seed, budget)
    if name == "random":
        return RandomSearch(x0, seed, budget)
    raise ValueError(f"unknown black-box planner {name!r}; choose one of {list(BLACKBOX)}")


@dataclass
class BlackBoxResult:
    """One black-box planner's episode.

    ``rates_by_year[t]`` and ``welfare_by_year[t]`` are the schedule of tax year ``t`` and the welfare the
    planner was told (the scenario's reward); ``final_rates`` = the last year's schedule; ``best_rates`` /
    ``best_welfare`` = the best year it was told of.
    """

    planner: str
    seed: int
    rates_by_year: list[list[float]] = field(default_factory=list)
    welfare_by_year: list[float] = field(default_factory=list)
    #: Fallbacks counted in the simulation (LM workers' unusable answers, clamped values), by kind.
    fallbacks: dict[str, int] = field(default_factory=dict)
    #: LM answers and tokens by role in the simulation (``programs.lm.usage``).
    usage: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def final_rates(self) -> NDArray[np.float64]:
        return np.asarray(self.rates_by_year[-1], dtype=np.float64)

    @property
    def best_index(self) -> int:
        return int(np.argmax(self.welfare_by_year))

    @property
    def best_rates(self) -> NDArray[np.float64]:
        return np.asarray(self.rates_by_year[self.best_index], dtype=np.float64)

    @property
    def best_welfare(self) -> float:
        return float(self.welfare_by_year[self.best_index])


def run_blackbox(name: str, config: Any, *, seed: int | None = None, lms: Sequence[Any] | None = None,
                 population: Any = None, guard: Any = None) -> BlackBoxResult:
    """Run black-box planner ``name`` for ``config.years`` tax years on a ``PlannerEnv``.

    Parameters
    ----------
    name : ``es`` or ``random``.
    config : SimulationConfig of the episode (the LM planner's: same years, steps, workers, scenario, SWF).
    seed : episode seed (population, workers, optimizer); default ``config.seed``.
    lms : LMs for LLM workers (``config.workers == "llm"``).
    population : the workers; default sampled from the seed.
    guard : a ``FallbackGuard`` for the LM workers (``PlannerEnv``): raises ``FallbackStop``.
    """
    from programs.simulation.env import PlannerEnv

    seed = int(config.seed if seed is None else seed)
    x0 = config.initial_tax_schedule().rates
    years = int(config.years)
    search = make_search(name, x0, seed, budget=max(years - 2, 0))
    env = PlannerEnv(config, lms=lms, population=population, guard=guard)
    res = BlackBoxResult(planner=name, seed=seed)
    try:
        env.reset(seed=seed)
        for t in range(years):
            if t == 0:
                x = np.asarray(x0, dtype=np.float64).copy()
            elif t == years - 1:
                x = search.recommend(res.best_rates)
            else:
                x = search.ask()
            _, reward, *_ = env.step(x)
            res.rates_by_year.append([float(v) for v in x])
            res.welfare_by_year.append(float(reward))
            if 0 < t < years - 1:
                search.tell(x, float(reward))
        res.fallbacks = {k: int(v) for k, v in sorted(env.sim.fallback_totals.items())}
        res.usage = {r: dict(u) for r, u in env.sim.usage_totals.items()}
    finally:
        env.close()
    return res


def best_seen_markdown(runs: Sequence[Any], labels: Any = None) -> list[str]:
    """Report section: each black-box planner's final-year schedule beside the best year it was told of.

    ``runs`` are ``eval.report.Run`` objects; black-box runs carry ``best_seen_welfare`` / ``best_seen_year``
    in ``extra`` (the best year by the welfare the planner was told, scored with rational workers).
    """
    from eval.report import _table
    from eval.stats import format_ci, mean_ci

    mine = [r for r in runs if r.planner in BLACKBOX]
    if not mine:
        return []
    head = ["planner", "final year's welfare (95% CI)", "best seen welfare (95% CI)", "best seen in tax year (per seed)"]
    body = []
    for name in BLACKBOX:
        rs = [r for r in mine if r.planner == name]
        if not rs:
            continue
        body.append([(labels or {}).get(name, name),
                     format_ci(*mean_ci([float(r.outcome.welfare) for r in rs])),
                     format_ci(*mean_ci([r.extra.get("best_seen_welfare", math.nan) for r in rs])),
                     ", ".join(str(int(r.extra.get("best_seen_year", 0))) for r in sorted(rs, key=lambda r: r.seed))])
    return ["## Black-box planners: final year and best seen", "",
            "`es` and `random` get the LM planner's feedback (one welfare figure per tax year from the simulation's "
            "own workers). Their row in the main table is the schedule of their final tax year; the best seen is the "
            "year whose reported welfare was highest, scored here like every row (rational workers). Columns "
            "`best_seen_welfare` and `best_seen_year` in `summary.csv`.", "",
            _table(head, body, markdown=True, right=range(1, len(head))), ""]
