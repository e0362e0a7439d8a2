"""The same worker in a different mechanism: ``ChooseLabor`` and ``WorkerAgent``, unchanged, under an
earned-income credit with a phase-in (a negative marginal rate) and a phase-out, financed by a flat tax.

``mechanism`` builds the schedule; ``sweep`` runs the workers per credit rate beside the exact best
response; ``python -m examples.eitc`` prints the table (README.md beside this file).
"""

from examples.eitc.mechanism import eitc_schedule, phase_out_rate
from examples.eitc.sweep import SweepRow, format_table, run_sweep

__all__ = ["eitc_schedule", "phase_out_rate", "SweepRow", "run_sweep", "format_table"]
