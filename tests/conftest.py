"""Test-wide settings: no network look-ups by LiteLLM and a memory-only DSPy cache."""

import os
import signal

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MPLBACKEND", "Agg")

import dspy  # noqa: E402  (after the environment is set)

dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=True)

# pytest-xdist's workers ignore SIGINT, and an ignored signal stays ignored across exec in every process they
# start: the Ctrl-C tests (and the servers and viewers tests stop with SIGINT) need Python's default back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
