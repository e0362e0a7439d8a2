"""The one error type for bad settings, shared by every command line and the programs they drive.

In its own module because ``python -m eval.compare`` (and the other CLIs) run their module as
``__main__``: a class defined there would exist twice, and ``main()`` would not catch the copy raised
elsewhere.
"""

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A bad setting; the message is one line naming the setting and its allowed range.

    Every CLI reports it as that one line and exits with status 2, before any LM call.
    """
