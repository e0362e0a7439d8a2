"""llama.cpp's AMX crash and the project's way round it, on this machine's CPU
(``programs.lm.llama_load``). Each load runs in a child process: on a CPU with AMX the unprotected
load is expected to die with SIGSEGV (ggml-org/llama.cpp#20824)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from programs.lm.llama_load import cpu_flags_text, has_amx
from tests.realmodel.conftest import ROOT

pytestmark = pytest.mark.realmodel

CHILD = """
import sys
from programs.lm.llama_load import LoadSettings, load_llama
path, how = sys.argv[1], sys.argv[2]
if how == "bare":
    from llama_cpp import Llama
    m = Llama(model_path=path, n_ctx=256, n_threads=1, verbose=False)
else:
    m = load_llama(path, LoadSettings(n_ctx=256, n_threads=1, repack=how))
out = m.create_chat_completion(messages=[{"role": "user", "content": "Say hi."}], max_tokens=4, seed=0)
print("ANSWERED", out["usage"]["completion_tokens"])
"""


def _child(gguf: str, how: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, gguf, how], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_default_load_answers_on_this_cpu_and_bare_llama_crashes_only_on_amx(gguf):
    ours = _child(gguf, "auto")
    assert ours.returncode == 0 and "ANSWERED" in ours.stdout, ours.stderr[-2000:]
    bare = _child(gguf, "bare")
    if has_amx(cpu_flags_text()):
        # The bug this works round: if llama.cpp fixes it, this fails and the default can be revisited.
        assert bare.returncode == -signal.SIGSEGV, (bare.returncode, bare.stdout, bare.stderr[-500:])
    else:
        assert bare.returncode == 0 and "ANSWERED" in bare.stdout


def test_launcher_serves_an_answer_with_the_repacking_choice(served, tmp_path_factory):
    """``programs.lm.llama_server`` (the ``served`` fixture) answers a chat completion on this CPU, and
    says which repacking choice it loaded with."""
    import json
    import urllib.request

    from tests.realmodel.conftest import MODEL_ALIAS

    # A schema forces tokens out of the model (unconstrained, this base model may stop at once).
    schema = {"type": "object", "properties": {"hours": {"type": "integer", "enum": [0, 20, 40]}}, "required": ["hours"]}
    body = json.dumps({"model": MODEL_ALIAS, "messages": [{"role": "user", "content": "Weekly hours?"}],
                       "max_tokens": 16, "seed": 0, "response_format": {"type": "json_object", "schema": schema}}).encode()
    req = urllib.request.Request(served + "/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        out = json.loads(r.read())
    assert json.loads(out["choices"][0]["message"]["content"])["hours"] in (0, 20, 40)
    assert out["usage"]["completion_tokens"] >= 3
    log = next(tmp_path_factory.getbasetemp().glob("server*/server.log")).read_text()
    expected = "off" if has_amx(cpu_flags_text()) else "on"
    assert f"llama_server: weight repacking {expected} (" in log


def test_forced_repack_on_amx_crashes_in_the_probe_child_and_is_one_line(gguf, tmp_path):
    """The run's own process survives: the probe's child dies, the CLI names the cause and remedy, exit 2."""
    from tests.realmodel.conftest import run_cli

    if not has_amx(cpu_flags_text()):
        pytest.skip("no AMX on this CPU: repacking does not crash here (the faked crash is in tests/programs/lm)")
    out = tmp_path / "run"
    r = run_cli("programs.simulate", "--lm", "local", "--repack", "on", "--agents", "2", "--years", "1",
                "--steps-per-year", "1", "--no-progress", "--out", str(out))
    assert r.returncode == 2, (r.stdout[-500:], r.stderr[-1500:])
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "crashed llama.cpp (SIGSEGV)" in err and "--repack off" in err
    assert not out.exists()


def test_a_prompt_longer_than_the_window_is_a_counted_fallback(gguf, tmp_path):
    import json

    from tests.realmodel.conftest import run_cli

    out = tmp_path / "run"
    r = run_cli("programs.simulate", "--lm", "local", "--n-ctx", "256", "--agents", "2", "--years", "1",
                "--steps-per-year", "1", "--no-progress", "--out", str(out))
    assert r.returncode == 0, r.stderr[-1500:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fallbacks"] == {"context_overflow": 2}  # both workers' prompts exceed 256 tokens
    backend = json.loads((out / "config.json").read_text())["lm_settings"]["backend"]
    assert backend["n_ctx"] == 256 and backend["repack"] is (not has_amx(cpu_flags_text()))
