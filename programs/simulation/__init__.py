"""The simulation: its configuration, the loop, scenarios, typed records, the run log, the CLI and the
Gymnasium environment for planners (``docs/design.md`` §5)."""

from programs.simulation.config import RESUMABLE_CHANGES, SimulationConfig, config_error_line, load_config
from programs.simulation.loop import Simulation

__all__ = ["RESUMABLE_CHANGES", "SimulationConfig", "config_error_line", "load_config", "Simulation"]
