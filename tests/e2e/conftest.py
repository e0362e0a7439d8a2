"""End-to-end helpers: `python -m programs.serve` on a free port as a subprocess, CLIs as subprocesses.

Every subprocess gets a clean environment: no API key unless a test plants one, LiteLLM's cost map from
the package (no network look-up), a DSPy disk cache inside the test's tmp directory, and the repository on
PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (bound then released; good enough for a refused connection)."""
    return free_port()


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS and not k.endswith("_API_KEY")}
    env.update(PYTHONPATH=str(ROOT), LITELLM_LOCAL_MODEL_COST_MAP="True", MPLBACKEND="Agg",
               DSPY_CACHEDIR=str(tmp / "dspy_cache"), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@dataclass
class Server:
    """A running `programs.serve` subprocess."""

    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/stats", timeout=5) as r:
            return json.loads(r.read())


@contextlib.contextmanager
def serve(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start `python -m programs.serve --port P ARGS` and wait until GET /v1/models answers; always stop it."""
    tmp.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        log = tmp / f"serve-{port}.log"
        fh = open(log, "w")
        proc = subprocess.Popen([sys.executable, "-m", "programs.serve", "--host", "127.0.0.1", "--port", str(port),
                                 *args], cwd=ROOT, env=env or cli_env(tmp), stdout=fh, stderr=subprocess.STDOUT)
        fh.close()
        server = Server(proc, port, log)
        deadline = time.monotonic() + 60
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(server.url + "/models", timeout=1) as r:
                    ready = r.status == 200
                break
            except OSError:
                time.sleep(0.1)
        if ready:
            break
        _stop(proc)
        if attempt == 2:
            raise RuntimeError(f"programs.serve did not start: {log.read_text()[-2000:]}")
    try:
        yield server
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def run_cli(module: str, args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def read_steps(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path)
