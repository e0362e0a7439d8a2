"""The simulation: its configuration, the loop, scenarios, typed records, the run log, the CLI and the
Gymnasium environment for planners (``docs/design.md`` §5)."""

from typing import Any

from programs.simulation.config import RESUMABLE_CHANGES, SimulationConfig, config_error_line, load_config

__all__ = ["RESUMABLE_CHANGES", "SimulationConfig", "config_error_line", "load_config", "Simulation"]


def __getattr__(name: str) -> Any:
    # The loop loads DSPy and every agent (~1.4 s): only when asked for, so a configuration stays light.
    if name == "Simulation":
        from programs.simulation.loop import Simulation

        return Simulation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
