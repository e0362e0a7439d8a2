"""Language models: model strings and set-up, the served-endpoint client, the offline engine, the
rule-based instruction writer and an OpenAI-protocol server for the offline engine.

- ``models``: ``build_lms``, ``check_lm_config``, ``probe_lm``, ``describe_lm``/``lm_label`` (what reports print),
  dispatching to ``backends``: the registered LM backends (offline, local, endpoint), one class each.
- ``endpoint``: ``EndpointLM``, bounded concurrency and counted retries against a served model.
- ``offline``: the offline engine, a deterministic numeric stand-in (**not a language model**).
- ``local``: ``--lm local``, a GGUF language model run in-process by llama.cpp (the ``local`` extra);
  ``llama_load``: how it is loaded (window, threads, GPU layers, no AMX repacking on AMX CPUs);
  ``llama_server``: llama-cpp-python's server loaded the same way.
- ``structured``: structured outputs (each answer's JSON schema as ``response_format``) and token budgets.
- ``prompts``: reading DSPy's prompts back (one parser for the engine, the writer and the server).
- ``writer``: the offline instruction writer that DSPy's instruction optimizers call.
- ``server``: ``python -m programs.serve``, the offline engine behind the OpenAI protocol.
- ``compat``: the only module that touches DSPy internals.
"""

from programs.errors import ConfigError
from programs.lm.endpoint import ERROR_KINDS, EndpointLM, RequestStats, error_kind, provider_of, stats_delta, stats_sum
from programs.lm.models import (
    HOSTED_KEYS,
    LOCAL_PROVIDERS,
    OFFLINE,
    build_lms,
    check_endpoints,
    check_lm_config,
    describe_lm,
    in_process,
    known_provider,
    lm_label,
    lm_record,
    probe_lm,
    request_stats,
)
from programs.lm.offline import MODEL_NAME, OFFLINE_LABEL, offline_lm

__all__ = ["ConfigError", "ERROR_KINDS", "EndpointLM", "RequestStats", "error_kind", "provider_of",
           "stats_delta", "stats_sum", "HOSTED_KEYS", "LOCAL_PROVIDERS", "OFFLINE", "build_lms", "check_endpoints",
           "check_lm_config", "describe_lm", "in_process", "known_provider", "lm_label", "lm_record", "probe_lm", "request_stats",
           "MODEL_NAME", "OFFLINE_LABEL", "offline_lm"]
