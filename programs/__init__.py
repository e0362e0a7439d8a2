"""DSPy programs: the agents (worker, planner, electorate), the simulation loop, LM set-up, offline engine."""

import os

# LiteLLM otherwise fetches its model-cost map over the network at import time.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
