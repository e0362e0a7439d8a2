"""PlannerEnv: a real Gymnasium environment on the simulation loop."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from economy import TaxSchedule, best_response, outcome
from programs.errors import ConfigError
from programs.simulation import load_config
from programs.simulation.env import PlannerEnv
from programs.simulation.records import YearRecord

CFG = dict(agents=30, years=4, steps_per_year=1, workers="rational", brackets="three")


def test_passes_gymnasiums_env_checker():
    check_env(PlannerEnv(load_config(**CFG)), skip_render_check=True)


def test_reward_is_the_welfare_of_the_action_under_best_responses():
    env = PlannerEnv(load_config(**CFG))
    obs, _ = env.reset(seed=2)
    assert obs["history_mask"].sum() == 0 and np.allclose(obs["rates"], 0.0)  # the preset's rates
    action = np.array([0.2, 0.35, 0.5], dtype=np.float32)
    obs, reward, terminated, truncated, info = env.step(action)
    sched = TaxSchedule([0, 90_000, 159_100], action.astype(np.float64))
    pop = env.sim.population
    hours = best_response(pop.skill, sched, kappa=env.sim.kappa)
    expected = outcome(pop, sched, hours, "inverse_skill", kappa=env.sim.kappa).welfare
    assert reward == pytest.approx(float(expected), rel=1e-6)  # the action is float32, rates kept to 1e-6 %
    assert isinstance(info["year"], YearRecord) and info["year"].welfare == reward
    assert np.allclose(obs["rates"], action) and obs["history_mask"].tolist() == [1, 0, 0, 0, 0]
    assert obs["history_welfare"][0] == pytest.approx(reward, abs=1e-4) and not terminated and not truncated


def test_same_seed_replays_exactly_and_episode_ends():
    def episode(seed):
        env = PlannerEnv(load_config(**CFG))
        env.reset(seed=seed)
        rng = np.random.default_rng(0)
        out = []
        done = False
        while not done:
            obs, r, done, _, _ = env.step(rng.uniform(0, 1, 3).astype(np.float32))
            out.append(r)
        with pytest.raises(RuntimeError, match="episode is over"):
            env.step(np.zeros(3, np.float32))
        return out

    a, b, c = episode(5), episode(5), episode(6)
    assert len(a) == 4 and a == b and a != c


def test_out_of_range_actions_are_clipped_and_counted():
    env = PlannerEnv(load_config(**CFG))
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([-0.5, 0.3, 1.7], dtype=np.float32))
    assert info["year"].rates_percent == [0.0, pytest.approx(30.0), 100.0]
    assert info["year"].fallbacks == {} and info["year"].clamped == 2 and env.sim.summary().clamped == 2


def test_llm_workers_need_lms():
    with pytest.raises(ConfigError, match="lms"):
        PlannerEnv(load_config(**{**CFG, "workers": "llm"}))
