"""The one error type of the eval commands, in its own module.

Kept apart from ``eval.compare`` because ``python -m eval.compare`` runs that module as ``__main__``: a
class defined there would exist twice, and ``main()`` would not catch the copy raised by ``eval.learning``.
"""


class ConfigError(ValueError):
    """A bad flag value; reported as one line and exit status 2, before any LM call."""
