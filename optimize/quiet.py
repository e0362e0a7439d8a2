"""DSPy's, optuna's and GEPA's INFO logs off for ``optimize.planner`` (``--verbose`` keeps them).

The progress bars are turned off for the run only, by ``programs.lm.compat.quiet_progress`` in
``optimize.cli.main`` (DSPy's private surface lives in ``compat``).
"""

from __future__ import annotations

__all__ = ["quiet_libraries"]


def quiet_libraries() -> None:
    """Lower the libraries' loggers to WARNING (``--verbose`` keeps them)."""
    import logging

    import dspy  # noqa: F401  (dspy sets its loggers' levels on import: lower them after)

    for name in ("dspy", "optuna", "gepa"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # MIPROv2's proposer passes inputs its own signatures do not declare (a DSPy 3.4.1 quirk, harmless).
    logging.getLogger("dspy.predict.predict").setLevel(logging.ERROR)
