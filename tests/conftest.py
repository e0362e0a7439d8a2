"""Test-wide settings: no network look-ups by LiteLLM and a memory-only DSPy cache."""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MPLBACKEND", "Agg")

import dspy  # noqa: E402  (after the environment is set)

dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=True)
