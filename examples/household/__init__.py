"""A new agent from the same parts: a household splitting its disposable income between consumption and
saving over the tax years, plugged into the simulation as the registered scenario ``household``.

Importing this package registers the scenario (``programs.simulation.scenarios``) and the offline
engine's policy for its output field (``programs.lm.offline.register_policy``). ``python -m
examples.household`` runs it (README.md beside this file; ``docs/design.md`` §8.4 walks through it).
"""

from examples.household import offline_policy  # noqa: F401  (registers the offline engine's policy)
from examples.household.agent import HouseholdAgent, HouseholdInput
from examples.household.economics import consume_share, lifetime_utility, simulate_paths
from examples.household.scenario import HouseholdScenario
from examples.household.signature import HouseholdYear, SplitIncome

__all__ = ["HouseholdAgent", "HouseholdInput", "HouseholdScenario", "HouseholdYear", "SplitIncome",
           "consume_share", "lifetime_utility", "simulate_paths"]
