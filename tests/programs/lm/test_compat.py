"""``programs.lm.compat``: the DSPy surface its shims rely on, and the shims' behaviour (issue 18).

These tests fail when DSPy changes a private name, hook or signature a shim reaches into, so an upgrade
shows up here (one module to fix) rather than as a silently wrong count or an unscoped progress bar.
"""

from __future__ import annotations

import ast
import inspect
import re
import threading

import dspy
import pytest
from dspy.lm15 import Message, Request, Response, TextPart, Usage

from programs.lm import compat


class _Capture:
    """An engine answering a fixed JSON text with fixed usage, remembering every request's config."""

    def __init__(self, text: str = '{"answer": "yes"}') -> None:
        self.text = text
        self.configs: list = []

    def complete(self, request: Request) -> Response:
        self.configs.append(request.config)
        return Response(id=None, model="fake", message=Message.assistant([TextPart(self.text)]),
                        finish_reason="stop", usage=Usage(input_tokens=50, output_tokens=3))


def _lm(engine: _Capture) -> dspy.LM:
    return dspy.LM("fake/compat", engine=engine, cache=False, num_retries=0)


class _SchemaLM(dspy.LM):
    """Says it takes a ``response_format`` schema, as a served OpenAI-compatible model does."""

    @property
    def supported_params(self) -> set[str]:
        return {"response_format"}

    @property
    def supports_response_schema(self) -> bool:
        return True


# ───────────────────────────── the private surface ─────────────────────────────


def test_dspy_version_is_one_the_shims_were_verified_against():
    assert compat.DSPY_VERSION in compat.SUPPORTED, (
        f"DSPy {dspy.__version__}: re-check every shim in programs/lm/compat.py, then add it to SUPPORTED")


def test_the_private_modules_the_shims_import_exist():
    from dspy.clients.base_lm import LM_CLASS_STATE_KEY
    from dspy.dsp.utils.settings import main_thread_config, thread_local_overrides

    assert compat._overrides is thread_local_overrides and compat._main_config is main_thread_config
    assert isinstance(thread_local_overrides.get(), dict)
    assert compat.LM_CLASS_STATE_KEY == LM_CLASS_STATE_KEY
    assert "anthropic" in compat.litellm_prefixes()  # empty when the router module moves


def test_model_metadata_lookup_has_the_signature_the_memo_wraps():
    import dspy.clients.model_metadata as metadata

    f = getattr(metadata.model_info, "__wrapped__", metadata.model_info)
    params = inspect.signature(f).parameters
    assert list(params)[:2] == ["provider", "model"]
    assert params["namespaces"].kind is inspect.Parameter.KEYWORD_ONLY


def test_json_adapter_hook_has_the_overridden_signature():
    hook = dspy.JSONAdapter._prepare_response_format
    assert list(inspect.signature(hook).parameters) == ["self", "lm", "lm_kwargs", "signature"]
    assert compat.CallerFormatJSONAdapter._prepare_response_format is not hook


# ───────────────────────────── behaviour ─────────────────────────────


class _YesNo(dspy.Signature):
    """Answer yes or no."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField()


_OURS = {"type": "json_schema", "json_schema": {"name": "ours", "schema": {"type": "object"}}}


def test_caller_format_json_adapter_sends_the_callers_response_format():
    eng = _Capture()
    lm = _SchemaLM("fake/compat", engine=eng, cache=False, num_retries=0)
    out = compat.CallerFormatJSONAdapter()(lm, {"response_format": _OURS}, _YesNo, [], {"question": "q"})
    assert out[0]["answer"] == "yes"
    assert eng.configs[-1].response_format["name"] == "ours"
    # Plain JSONAdapter replaces it in the hook: the override above is what keeps ours.
    dspy.JSONAdapter()(lm, {"response_format": _OURS}, _YesNo, [], {"question": "q"})
    assert eng.configs[-1].response_format.get("name") != "ours"


def test_tracking_usage_receives_every_uncached_responses_usage():
    log = compat.UsageLog()
    assert compat.active_usage_tracker() is None
    with compat.tracking_usage(log):
        assert compat.active_usage_tracker() is log
        for _ in range(2):
            dspy.Predict(_YesNo)(question="q", lm=_lm(_Capture("[[ ## answer ## ]]\nyes\n\n[[ ## completed ## ]]")))
    assert compat.active_usage_tracker() is None
    assert [m for m, _ in log.entries] == ["fake/compat", "fake/compat"]
    assert log.total("prompt_tokens") == 100 and log.total("completion_tokens") == 6
    assert log.total("no_such_key") is None


def test_quiet_progress_is_scoped_to_the_block_and_its_dspy_threads():
    from tqdm import tqdm
    from tqdm.auto import tqdm as auto_tqdm

    def disabled(cls=tqdm) -> bool:
        bar = cls(total=1)
        try:
            return bar.disable
        finally:
            bar.close()

    other: list[bool] = []
    started, release = threading.Event(), threading.Event()

    def unrelated_thread() -> None:
        started.set()
        release.wait(10)
        other.append(disabled())

    t = threading.Thread(target=unrelated_thread)
    t.start()
    started.wait(10)
    with compat.quiet_progress():
        assert disabled() and disabled(auto_tqdm)
        release.set()
        t.join(10)
        # A thread the block starts through DSPy (or carry_context) is quiet too.
        inner = dspy.Parallel(num_threads=2, max_errors=10, timeout=0, disable_progress_bar=True)(
            [(lambda _: disabled(), (i,)) for i in range(2)])
        assert inner == [True, True]
    assert other == [False]  # another thread's bar, drawn while the block ran, is untouched
    assert not disabled()
    with compat.quiet_progress():  # installs once: nesting and re-entry do not stack wrappers
        import tqdm.std

        assert not getattr(tqdm.std.tqdm.__init__.__wrapped__, "_quiet_gate", False)


def test_the_optimizer_cli_silences_only_its_own_bars(monkeypatch):
    """``optimize.planner`` used to patch tqdm for the whole process while it ran."""
    import optimize.cli as cli  # optimize.planner's main and the _main it runs
    from tqdm import tqdm

    seen: dict[str, bool] = {}

    def fake_main(args) -> int:
        bar = tqdm(total=1)
        seen["own"] = bar.disable
        bar.close()

        def elsewhere() -> None:
            b = tqdm(total=1)
            seen["other thread"] = b.disable
            b.close()

        t = threading.Thread(target=elsewhere)
        t.start()
        t.join(10)
        return 0

    monkeypatch.setattr(cli, "_main", fake_main)
    assert cli.main(["--quiet"]) == 0
    assert seen == {"own": True, "other thread": False}


def _touches(tree: ast.AST) -> set[str]:
    """The shimmed internals a module's code (not its prose) uses."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "_prepare_response_format":
            found.add("overrides _prepare_response_format")
        elif isinstance(node, ast.Attribute) and node.attr in ("usage_tracker", "UsageTracker"):
            found.add(f"reads .{node.attr}")
        elif isinstance(node, ast.Attribute) and node.attr == "std" and getattr(node.value, "id", "") == "tqdm":
            found.add("patches tqdm.std")
        elif isinstance(node, ast.keyword) and node.arg == "usage_tracker":
            found.add("sets usage_tracker=")
        elif isinstance(node, ast.Name) and node.id == "UsageTracker":
            found.add("uses UsageTracker")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(a.name == "UsageTracker" for a in node.names):
                found.add("uses UsageTracker")
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for name in names:
                if name.startswith(("dspy.dsp", "dspy._vendor", "dspy.clients", "dspy.utils.usage_tracker",
                                    "tqdm.std")):
                    found.add(f"imports {name}")
    return found


def test_the_source_scan_sees_what_it_looks_for():
    code = ("import tqdm.std\nfrom dspy.utils.usage_tracker import UsageTracker\n"
            "class A:\n    def _prepare_response_format(self): x = dspy.settings.usage_tracker\n"
            "with dspy.context(usage_tracker=t): pass\ntqdm.std.tqdm.__init__ = f\n")
    assert len(_touches(ast.parse(code))) == 7, _touches(ast.parse(code))


@pytest.mark.parametrize("module", ["programs.lm.structured", "programs.lm.usage", "optimize.planner",
                                    "optimize.cli", "optimize.quiet", "optimize.run_compile"])
def test_no_module_outside_compat_touches_the_shimmed_internals(module):
    import importlib

    found = _touches(ast.parse(inspect.getsource(importlib.import_module(module))))
    assert not found, f"{module} {sorted(found)}: move it behind a shim in programs/lm/compat.py"


# ───────────────────────────── field values, parsing, callback dispatch ─────────────────────────────


def test_the_dspy_helpers_the_fast_paths_stand_in_for_keep_their_signatures():
    from dspy.adapters import utils
    from dspy.utils.callback import BaseCallback

    assert list(inspect.signature(utils.format_field_value).parameters)[:2] == ["field_info", "value"]
    assert list(inspect.signature(utils.parse_value).parameters) == ["value", "annotation"]
    assert list(inspect.signature(utils.serialize_for_json).parameters) == ["value"]
    # What serialize_for_json does, which _serialize_for_json repeats with a cached adapter.
    assert "TypeAdapter(type(value)).dump_python(value, mode=\"json\", fallback=str)" in inspect.getsource(
        utils.serialize_for_json)
    # DSPy's with_callbacks wrappers share one code object (what _is_callback_wrapper recognises).
    assert compat._is_callback_wrapper(dspy.JSONAdapter.format) and compat._is_callback_wrapper(dspy.LM.__call__)
    assert not compat._is_callback_wrapper(compat._innermost(dspy.JSONAdapter.format))
    hooks = {n for n in dir(BaseCallback) if n.startswith("on_")}
    assert {"on_module_start", "on_module_end", "on_lm_start", "on_adapter_format_start",
            "on_adapter_parse_start", "on_tool_start"} <= hooks


def _signatures() -> list[type[dspy.Signature]]:
    import signatures

    sigs = [getattr(signatures, n) for n in signatures.__all__]
    sigs = [s for s in sigs if isinstance(s, type) and issubclass(s, dspy.Signature)]
    assert len(sigs) == 5
    return sigs + [dspy.ChainOfThought(s).predict.signature for s in sigs]


def _inputs_for(signature: type[dspy.Signature]) -> list[dict]:
    """Several input sets per signature: empty and long histories, subsidies, None, unicode, odd numbers."""
    import numpy as np

    from signatures import Platform, PlannerYear, Schedule, WorkerStep

    row = WorkerStep(step=3, hours=41.25, pretax_income=52_000.5, tax=-12.0, rebate=0.0, consumption=1e6,
                     utility=-0.0001)
    rows = [row, WorkerStep(step=4, hours=0.0, pretax_income=0.0, tax=0.0, rebate=3.0, consumption=3.0, utility=2.5)]
    year = PlannerYear(year=0, rates_percent=[10.0, 12.5], welfare=1.5e3, revenue=2.0, mean_hours=40.0,
                       agents_per_bracket=[3, 0])
    values = {
        "persona": ["worker 7, a nurse — aged 30 («quoted» \"text\")", ""],
        "skill": [52000.0, 7, np.float64(3.25)],
        "schedule": [Schedule(cutoffs=[0.0, 11600.0], rates_percent=[10.0, 12.0]),
                     Schedule(cutoffs=[0.0], rates_percent=[-20.0], min_rate_percent=-50.0)],
        "history": [[], rows, [year]],
        "best": [[], rows[:1], [year]],
        "last_rebate": [0.0, 1234.56, float("inf")],
        "cutoffs": [[0.0, 11600.0, 47150.0], []],
        "current_rates_percent": [[10.0, 12.0, 22.0]],
        "candidates": [[Platform(candidate="Ada", rates_percent=[10.0], pitch="low"),
                        Platform(candidate="Bo", rates_percent=[90.0])]],
        "this_year": [row],
        "last_year": [None, rows[1]],
        "demographics": ["age: 34; sex: female; occupation: nurse"],
    }
    names = list(signature.input_fields)
    out = []
    for i in range(3):
        out.append({n: values[n][i % len(values[n])] for n in names})
    out.append({n: values[n][0] for n in names[:-1]})  # a field left out
    return out


def test_json_adapter_messages_are_dspys_for_every_signature():
    ours, theirs = compat.CallerFormatJSONAdapter(), dspy.JSONAdapter()
    for sig in _signatures():
        for inputs in _inputs_for(sig):
            demo = {**inputs, **{k: "x" for k in sig.output_fields}}
            for demos in ([], [demo]):
                assert ours.format(sig, demos, inputs) == theirs.format(sig, demos, inputs), sig.__name__


def test_a_value_pydantic_cannot_render_falls_back_as_dspy_does():
    from dspy.adapters.utils import format_field_value as dspy_format

    class Odd:
        def __str__(self) -> str:
            return "odd!"

    field = dspy.InputField()
    for value in (Odd(), {"a": Odd(), "b": [1, 2]}, [Odd()], ["a", "b"], object):
        assert compat.format_field_value(field, value) == dspy_format(field, value)
    texts = dspy.InputField()
    texts.annotation = str
    assert compat.format_field_value(texts, ["a", "b"]) == dspy_format(texts, ["a", "b"])  # numbered list


@pytest.mark.parametrize("completion", [
    '{"answer": "yes"}', '{"answer": "yes", "extra": 1}', '{"answer": 3}', '```json\n{"answer": "no"}\n```',
    'Sure: {"answer": "maybe"} done', '{"answer": "yes"', '{"other": "x"}', "[1, 2]", "plain text", ""])
def test_parse_is_dspys_for_answers_of_every_shape(completion):
    class Typed(dspy.Signature):
        """Typed answers."""

        question: str = dspy.InputField()
        answer: str = dspy.OutputField()
        n: float = dspy.OutputField()
        flag: bool = dspy.OutputField()

    cases = [(_YesNo, completion), (Typed, completion.replace('"answer"', '"n": 2, "flag": true, "answer"')),
             (Typed, '{"answer": "a", "n": "4.5", "flag": "yes"}'), (Typed, '{"answer": "a", "n": [1], "flag": 1}')]
    for sig, text in cases:
        def run(adapter):
            try:
                return adapter.parse(sig, text)
            except Exception as exc:  # the same error type and message (which names the adapter's class)
                return (type(exc).__name__, re.sub(r"\w*JSONAdapter", "<adapter>", str(exc)))

        assert run(compat.CallerFormatJSONAdapter()) == run(dspy.JSONAdapter()), text


class _Counting(dspy.utils.callback.BaseCallback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_adapter_format_start(self, call_id, instance, inputs):
        self.events.append("format")

    def on_adapter_parse_start(self, call_id, instance, inputs):
        self.events.append("parse")

    def on_lm_start(self, call_id, instance, inputs):
        self.events.append("lm")


class _ModulesOnly(dspy.utils.callback.BaseCallback):
    def __init__(self) -> None:
        self.modules: list[str] = []
        self.callbacks_inside: list = []

    def on_module_start(self, call_id, instance, inputs):
        self.modules.append(type(instance).__name__)


def test_adapter_callbacks_are_dispatched_once_per_format_and_parse():
    from programs.lm.structured import StructuredAdapter

    counting = _Counting()
    lm = _SchemaLM("fake/compat", engine=_Capture(), cache=False, num_retries=0)
    with dspy.context(callbacks=[counting]):
        StructuredAdapter()(lm, {}, _YesNo, [], {"question": "q"})
    assert counting.events == ["format", "lm", "parse"]


def test_module_only_callbacks_are_paused_inside_an_adapter_call_and_others_are_not():
    from programs.lm.usage import UsageMeter

    assert compat._module_events_only(UsageMeter()) and compat._module_events_only(_ModulesOnly())
    assert not compat._module_events_only(_Counting()) and not compat._module_events_only(object())
    modules, counting = _ModulesOnly(), _Counting()
    with dspy.context(callbacks=[modules]):
        with compat.module_callbacks_paused():
            assert dspy.settings.callbacks == []
        assert dspy.settings.callbacks == [modules]
        with dspy.context(adapter=compat.CallerFormatJSONAdapter()):
            dspy.Predict(_YesNo)(question="q", lm=_lm(_Capture()))
    assert modules.modules == ["Predict"]  # the module events still arrive
    with dspy.context(callbacks=[modules, counting]):
        with compat.module_callbacks_paused():
            assert dspy.settings.callbacks == [modules, counting]  # an LM-event callback keeps every event
