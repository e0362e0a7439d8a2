"""``python -m programs.lm.llama_server``: llama-cpp-python's own OpenAI-compatible server, loaded the way
``--lm local`` loads (``docs/design.md`` §6.6).

A thin launcher: it takes llama-cpp-python's server options unchanged (``--model``, ``--model_alias``,
``--host``, ``--port``, ``--n_ctx``, ``--n_threads``, ``--n_gpu_layers``, ...; see ``--help``) plus one of
its own, ``--repack auto|on|off``, and runs ``llama_cpp.server`` with the weight-repacking choice of
``programs.lm.llama_load`` applied to every model it loads: off on a CPU with AMX, where
``python -m llama_cpp.server`` dies with SIGSEGV on its first request (ggml-org/llama.cpp#20824).
``LLM_ECONOMIST_LLAMA_REPACK=1`` turns repacking back on, as for ``--lm local``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from programs.errors import ConfigError
from programs.lm.llama_load import REPACK_CHOICES, model_defaults, repack_choice

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours = argparse.ArgumentParser(add_help=False)
    ours.add_argument("--repack", default="auto", choices=REPACK_CHOICES)
    known, rest = ours.parse_known_args(argv)
    try:
        choice = repack_choice(known.repack)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        from llama_cpp.server.__main__ import main as serve
    except ImportError:
        print('error: the server needs llama-cpp-python[server]: pip install -e ".[local]"', file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in rest):
        print("programs.lm.llama_server: llama_cpp.server's options below, plus --repack auto|on|off (weight "
              "repacking into llama.cpp's extra/AMX buffers; auto: off on a CPU with AMX)\n")
    print(f"llama_server: weight repacking {'on' if choice.repack else 'off'} ({choice.reason})", file=sys.stderr)
    sys.argv = ["python -m programs.lm.llama_server", *rest]
    # The server process only serves: every model it loads (the first in create_app, any other on a
    # request naming it) is built with the choice.
    with model_defaults(choice.repack):
        serve()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
