"""``PlannerEnv``: the economy as a Gymnasium environment for a tax planner (``docs/design.md`` §5.4).

One environment step is one tax year. The action is next year's marginal rates (fractions in [0, 1],
one per bracket); the observation is what ``ProposeTaxSchedule`` shows an LM planner, as arrays (the
cut-offs, the rates in force, the last ``history_len`` years and the ``best_k`` best years, each with
rates, welfare, revenue, mean hours and agents per bracket; masks mark padding); the reward is the year's
social welfare as the scenario defines it; ``info["year"]`` is the typed ``YearRecord``.

So an RL library (Stable-Baselines3's ``MultiInputPolicy``, RLlib) can train a planner on the same
economy, workers and welfare as the LM planner, and a black-box optimizer can be given exactly the LM's
feedback. The same seed replays exactly. Workers default to rational (exact best responses, fast);
``workers="llm"`` needs ``lms``.

>>> env = PlannerEnv(load_config(agents=50, years=4, steps_per_year=1, workers="rational"))
>>> obs, info = env.reset(seed=0)
>>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import dspy
import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from economy.tax import TaxSchedule, to_fraction, to_percent
from programs.agents.tax_planner import Proposal, best_years, recent_years
from programs.errors import ConfigError
from programs.simulation.config import SimulationConfig, load_config
from programs.simulation.loop import Simulation
from programs.simulation.scenarios import Scenario, scenario_class
from signatures import PlannerYear

__all__ = ["PlannerEnv", "ActionPlanner", "observe"]


class ActionPlanner:
    """A ``Planner`` whose next proposal is whatever action it was last given (the RL agent's)."""

    def __init__(self) -> None:
        self.years: list[PlannerYear] = []
        self.action: NDArray[np.float64] | None = None

    def plan(self, current: TaxSchedule, *, lm: dspy.BaseLM | None = None, rollout_id: int | None = None,
             persona: str | None = None) -> Proposal:
        if self.action is None:
            return Proposal(to_percent(current.rates))
        raw = np.asarray(self.action, dtype=np.float64)
        clipped = np.clip(raw, 0.0, 1.0)
        return Proposal(to_percent(clipped), None, int(np.count_nonzero(clipped != raw)))

    def record_year(self, year: PlannerYear) -> None:
        self.years.append(year)

    def reset_memory(self) -> None:
        self.years = []
        self.action = None


def _action_scenario(base: type[Scenario]) -> Scenario:
    """The configured scenario, with the year-0 schedule also taken from the action."""

    class FromAction(base):  # type: ignore[misc, valid-type]
        plan_first_year: ClassVar[bool] = True

    return FromAction()


def observe(cutoffs: NDArray[np.float64], rates: NDArray[np.float64], years: Sequence[PlannerYear],
            history_len: int, best_k: int) -> dict[str, NDArray[np.float64]]:
    """The planner's prompt as arrays: shapes (k,), (k,), then (H, k) / (H,) and (B, k) / (B,)."""
    k = len(cutoffs)
    obs: dict[str, NDArray[np.float64]] = {"cutoffs": np.asarray(cutoffs, dtype=np.float64),
                                           "rates": np.asarray(rates, dtype=np.float64)}
    for prefix, rows, n in (("history", recent_years(years, history_len), history_len),
                            ("best", best_years(years, best_k), best_k)):
        r = np.zeros((n, k))
        w, rev, hrs, mask = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        agents = np.zeros((n, k))
        for i, y in enumerate(rows):
            r[i] = to_fraction(y.rates_percent)
            w[i], rev[i], hrs[i], mask[i] = y.welfare, y.revenue, y.mean_hours, 1.0
            agents[i] = y.agents_per_bracket
        obs.update({f"{prefix}_rates": r, f"{prefix}_welfare": w, f"{prefix}_revenue": rev,
                    f"{prefix}_mean_hours": hrs, f"{prefix}_agents": agents, f"{prefix}_mask": mask})
    return obs


class PlannerEnv(gym.Env):
    """One tax year per step; see the module docstring.

    Parameters
    ----------
    config : SimulationConfig; default 100 rational workers, 8 tax years of one step each. Its
        ``history_len``/``best_k`` size the observation as they size the LM planner's prompt.
    lms : LMs for LLM workers (``config.workers == "llm"``) or LM-driven scenario hooks.
    population : the workers (e.g. a comparison's shared population); default sampled from each reset's seed.
    guard : a ``programs.simulation.guard.FallbackGuard``: ``step`` raises ``FallbackStop`` once most LM
        answers fell back for its patience of worker steps (reset with each episode).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, config: SimulationConfig | None = None, lms: Sequence[dspy.BaseLM] | None = None,
                 population: Any = None, guard: Any = None) -> None:
        super().__init__()
        self._population = population
        self.guard = guard
        self.config = config if config is not None else load_config(agents=100, years=8, steps_per_year=1,
                                                                    workers="rational")
        if self.config.workers == "llm" and not lms:
            raise ConfigError("lms: LLM workers need LMs (programs.lm.build_lms), or use workers='rational'")
        # Rational workers with the rational scenario call no LM; the offline engine fills the slot.
        self._lms = list(lms) if lms else None
        self._scenario_cls = scenario_class(self.config.scenario)
        k = self.config.initial_tax_schedule().n_brackets
        H, B = self.config.history_len, self.config.best_k
        box = lambda shape, lo=-np.inf, hi=np.inf: spaces.Box(lo, hi, shape, np.float64)  # noqa: E731
        self.action_space = spaces.Box(0.0, 1.0, (k,), np.float32)
        obs = {"cutoffs": box((k,), 0.0), "rates": box((k,), 0.0, 1.0)}
        for prefix, n in (("history", H), ("best", B)):
            obs.update({f"{prefix}_rates": box((n, k), 0.0, 1.0), f"{prefix}_welfare": box((n,)),
                        f"{prefix}_revenue": box((n,)), f"{prefix}_mean_hours": box((n,), 0.0, 100.0),
                        f"{prefix}_agents": box((n, k), 0.0), f"{prefix}_mask": box((n,), 0.0, 1.0)})
        self.observation_space = spaces.Dict(obs)
        self.sim: Simulation | None = None

    def _build(self, seed: int) -> Simulation:
        cfg = self.config.model_copy(update={"seed": int(seed)})
        if self._lms is not None:
            lms = self._lms
        else:
            from programs.lm import build_lms

            lms = build_lms("offline", seed=cfg.seed, temperature=cfg.temperature)
        if self.sim is not None:
            self.sim.close()
        return Simulation(cfg, lms, planner=ActionPlanner(), scenario=_action_scenario(self._scenario_cls),
                          population=self._population)

    def _obs(self) -> dict[str, NDArray[np.float64]]:
        s = self.sim
        return observe(s.schedule.cutoffs, s.schedule.rates, s.planner.years, self.config.history_len,
                       self.config.best_k)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """A fresh episode; ``seed`` fixes the population and every draw (default: the config's seed)."""
        super().reset(seed=seed)
        self.sim = self._build(self.config.seed if seed is None else seed)
        if self.guard is not None:
            self.guard.reset()
        return self._obs(), {}

    def step(self, action: Any):
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        if self.sim.done:
            raise RuntimeError("the episode is over; call reset()")
        self.sim.planner.action = np.asarray(action, dtype=np.float64).reshape(-1)
        for _ in range(self.config.steps_per_year):
            rec = self.sim.step()
            if self.guard is not None:
                self.guard.observe(rec.t, self.sim.last_calls, self.sim.step_fallbacks(rec))
        year = self.sim.years[-1]
        reward = float(year.welfare)
        return self._obs(), reward, self.sim.done, False, {"year": year}

    def close(self) -> None:
        if self.sim is not None:
            self.sim.close()
            self.sim = None
