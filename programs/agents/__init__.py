"""The agents: DSPy modules around the signatures, each answering a whole batch with counted fallbacks.

- ``worker``: ``WorkerAgent`` (hours per step) and each worker's ``WorkerMemory``.
- ``tax_planner``: ``PlannerAgent`` (next year's rates) and fixed planners.
- ``electorate``: candidates, platforms, votes and counting rules (democratic scenario).
- ``satisfaction``: year-end satisfaction (bounded scenario).
- ``batch``: the batch runner, fallback counter, rollout ids and predictor factory they share.
"""

from programs.agents.batch import BatchRunner, FallbackCounter, make_predictor, rollout_id
from programs.agents.electorate import Electorate, ElectionResult
from programs.agents.satisfaction import SatisfactionRater
from programs.agents.tax_planner import FixedPlanner, Planner, PlannerAgent
from programs.agents.worker import WorkerAgent, WorkerMemory

__all__ = ["BatchRunner", "FallbackCounter", "make_predictor", "rollout_id", "Electorate", "ElectionResult",
           "SatisfactionRater", "FixedPlanner", "Planner", "PlannerAgent", "WorkerAgent", "WorkerMemory"]
