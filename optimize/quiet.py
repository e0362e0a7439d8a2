"""DSPy's INFO logs and tqdm progress bars off for ``optimize.planner`` (``--verbose`` keeps them)."""

from __future__ import annotations

from typing import Any

__all__ = ["quiet_libraries"]


def quiet_libraries() -> Any:
    """DSPy's INFO logs and progress bars off (``--verbose`` keeps them); returns the undo for the bars.

    tqdm reads ``TQDM_DISABLE`` only when it is first imported, which DSPy has done by now, so the bars
    are turned off at their root (``tqdm.std.tqdm``, which every tqdm flavour DSPy uses derives from).
    """
    import logging

    import tqdm.std

    import dspy  # noqa: F401  (dspy sets its loggers' levels on import: lower them after)

    original = tqdm.std.tqdm.__init__

    def quiet_init(self, *args, **kwargs):
        kwargs["disable"] = True
        original(self, *args, **kwargs)

    tqdm.std.tqdm.__init__ = quiet_init

    for name in ("dspy", "optuna", "gepa"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # MIPROv2's proposer passes inputs its own signatures do not declare (a DSPy 3.4.1 quirk, harmless).
    logging.getLogger("dspy.predict.predict").setLevel(logging.ERROR)

    def undo() -> None:
        tqdm.std.tqdm.__init__ = original

    return undo

