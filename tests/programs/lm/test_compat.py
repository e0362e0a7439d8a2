"""``programs.lm.compat``: the DSPy surface its shims rely on, and the shims' behaviour (issue 18).

These tests fail when DSPy changes a private name, hook or signature a shim reaches into, so an upgrade
shows up here (one module to fix) rather than as a silently wrong count or an unscoped progress bar.
"""

from __future__ import annotations

import ast
import inspect
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
