"""The AMX repacking choice and the local model's load settings (``programs.lm.llama_load``), on faked
CPU descriptions: no model is loaded here (the real model's side is ``tests/realmodel/test_amx.py``)."""

from __future__ import annotations

import pytest

from programs.errors import ConfigError
from programs.lm.llama_load import (REPACK_ENV, THREADS_ENV, LoadSettings, has_amx, model_defaults, n_threads,
                                    repack_choice)

SAPPHIRE = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities
bugs\t\t: spectre_v1
"""
ICELAKE = SAPPHIRE.replace(" amx_bf16", "").replace(" amx_tile amx_int8", "")
#: An aarch64 /proc/cpuinfo has "Features", never "flags"; the machine name alone must rule AMX out.
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics\nCPU implementer\t: 0x41\n"


def test_amx_detected_from_flags_only_on_x86():
    assert has_amx(SAPPHIRE, "x86_64")
    assert not has_amx(ICELAKE, "x86_64")
    assert not has_amx(ARM, "aarch64")
    assert not has_amx(SAPPHIRE, "aarch64")  # flags text of another machine: the architecture decides
    assert not has_amx("", "x86_64")  # no /proc/cpuinfo: nothing detected
    # A flag that merely contains "amx" elsewhere in the line, or a "bugs" line, is not an AMX flag.
    assert not has_amx("flags\t: fpu notamx\nbugs\t: amx_int8\n", "x86_64")


def test_repack_off_on_amx_on_elsewhere_and_overrides_win():
    on_amx = repack_choice("auto", environ={}, cpuinfo=SAPPHIRE, machine="x86_64")
    assert on_amx.repack is False and "AMX" in on_amx.reason
    assert repack_choice("auto", environ={}, cpuinfo=ICELAKE, machine="x86_64").repack is True
    assert repack_choice("auto", environ={}, cpuinfo=ARM, machine="aarch64").repack is True
    # The environment turns repacking back on (llama.cpp fixed), the flag beats the environment.
    env_on = repack_choice("auto", environ={REPACK_ENV: "1"}, cpuinfo=SAPPHIRE, machine="x86_64")
    assert env_on.repack is True and REPACK_ENV in env_on.reason
    assert repack_choice("auto", environ={REPACK_ENV: "off"}, cpuinfo=ICELAKE, machine="x86_64").repack is False
    assert repack_choice("off", environ={REPACK_ENV: "1"}, cpuinfo=ICELAKE, machine="x86_64").repack is False
    assert repack_choice("on", environ={REPACK_ENV: "0"}, cpuinfo=SAPPHIRE, machine="x86_64").reason == "--repack on"


@pytest.mark.parametrize("flag, env, needle", [("maybe", {}, "repack='maybe'"), ("auto", {REPACK_ENV: "2"}, REPACK_ENV)])
def test_bad_repack_values_are_one_line(flag, env, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        repack_choice(flag, environ=env, cpuinfo="", machine="x86_64")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("settings, needle", [
    (LoadSettings(n_ctx=8), "n_ctx=8 must be an integer in [16"),
    (LoadSettings(n_ctx=True), "n_ctx=True"),
    (LoadSettings(n_threads=0), "n_threads=0 must be an integer in [1, 1024]"),
    (LoadSettings(n_gpu_layers=-2), "n_gpu_layers=-2 must be an integer >= -1"),
    (LoadSettings(repack="yes"), "repack='yes'"),
])
def test_load_settings_checked_in_one_line(settings, needle):
    with pytest.raises(ConfigError) as err:
        settings.check()
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_resolved_settings_name_the_machine_choice(monkeypatch):
    monkeypatch.setenv(REPACK_ENV, "0")
    monkeypatch.setenv(THREADS_ENV, "3")
    r = LoadSettings(n_ctx=512, n_gpu_layers=0).resolved()
    assert r == {"n_ctx": 512, "n_threads": 3, "n_gpu_layers": 0, "repack": False,
                 "repack_reason": f"{REPACK_ENV}=0"}
    assert LoadSettings(n_threads=2).resolved()["n_threads"] == 2  # the flag beats the environment
    monkeypatch.setenv(THREADS_ENV, "zero")
    with pytest.raises(ConfigError, match=THREADS_ENV):
        LoadSettings().check()
    assert n_threads({}) >= 1


def test_model_defaults_sets_use_extra_bufts_only_inside_the_block():
    C = pytest.importorskip("llama_cpp.llama_cpp")
    before = C.llama_model_default_params
    assert C.llama_model_default_params().use_extra_bufts is True  # llama.cpp's default: repack
    with model_defaults(False):
        assert C.llama_model_default_params().use_extra_bufts is False
    assert C.llama_model_default_params is before
    with pytest.raises(RuntimeError), model_defaults(False):
        raise RuntimeError("a failed load restores the defaults too")
    assert C.llama_model_default_params is before
