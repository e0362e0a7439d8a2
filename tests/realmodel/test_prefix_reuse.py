"""Prefix reuse on the real model (``programs.lm.llama_prefix``): reusing evaluated prefixes and supplying the
answer's fixed JSON prefix change what is computed, never the answers. Two workers' prompts over two
steps, interleaved as a simulation step sends them, answered by the same ``Llama`` with reuse and with
every prompt evaluated in full."""

from __future__ import annotations

import json

import pytest

from signatures import ChooseLabor

pytestmark = pytest.mark.realmodel

SYSTEM = ChooseLabor.instructions.split("\n\n")[0] + " Answer with a JSON object with the field `hours`."


def _prompts() -> list[list[dict[str, str]]]:
    """Worker-like prompts, agent-major within each step: each agent's second prompt extends its first."""
    out = []
    for step in range(2):
        for job, skill in (("nurse", 52000), ("cook", 31000)):
            rows = "\n".join(f"step {s}: {30 + 5 * s} hours, utility {100 + 7 * s}" for s in range(step + 1))
            out.append([{"role": "system", "content": SYSTEM},
                        {"role": "user", "content": f"persona: You are a {job}.\nskill: {skill}\n"
                                                    f"history:\n{rows}\nlast_rebate: {1500 + 250 * step}"}])
    return out


@pytest.fixture(scope="module")
def llama(gguf):
    from programs.lm import local

    return local._llama(gguf, local.N_CTX)[0]  # noqa: SLF001 - the loader the engine uses


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_answers_with_reuse_equal_answers_without(llama, temperature):
    from programs.lm.llama_prefix import PrefixRunner
    from programs.lm.structured import output_schema

    schema = output_schema(ChooseLabor)
    fresh = PrefixRunner(llama, max_bytes=0)  # every prompt evaluated in full
    reusing = PrefixRunner(llama, max_bytes=64 << 20)
    got = {"fresh": [], "reusing": []}
    reused = []
    for i, messages in enumerate(_prompts()):
        kw = dict(messages=messages, schema=schema, temperature=temperature, seed=1000 + i, max_tokens=12)
        for name, runner in (("reusing", reusing), ("fresh", fresh)):  # alternating: reuse must restore
            r = runner.chat(**kw)
            got[name].append(r.completion["choices"][0]["message"]["content"])
            if name == "reusing":
                reused.append(r.reused)
            else:
                assert r.reused == 0
    assert got["reusing"] == got["fresh"]
    assert all(0 <= json.loads(a)["hours"] <= 100 for a in got["fresh"])  # the schema held
    # Each prompt shares the instructions with the one before; each agent's second prompt shares more.
    assert all(n > 0 for n in reused[1:])
    assert reused[2] > reused[1] and reused[3] > reused[1], reused


def _grammar_allowed(llama, grammar: str, tokens: list[int]):
    """The token ids llama.cpp's own grammar sampler leaves after ``tokens`` (all others set to -inf)."""
    import ctypes

    import llama_cpp
    import numpy as np
    from llama_cpp import LlamaGrammar, _internals

    smpl = _internals.LlamaSampler()
    smpl.add_grammar(llama._model, LlamaGrammar.from_string(grammar, verbose=False))  # noqa: SLF001
    for t in tokens:
        smpl.accept(t)
    n = llama.n_vocab()
    data = (llama_cpp.llama_token_data * n)()
    view = np.frombuffer(data, dtype=np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)]))
    view["id"] = np.arange(n)
    arr = llama_cpp.llama_token_data_array(data=data, size=n, selected=-1, sorted=False)
    llama_cpp.llama_sampler_apply(smpl.sampler, ctypes.byref(arr))
    kept = view[: arr.size]
    return sorted(kept["id"][np.isfinite(kept["logit"])].tolist())


def _schemas():
    from programs.lm.structured import output_schema
    from signatures import ProposeTaxSchedule, RateSatisfaction, Vote

    return {"hours": output_schema(ChooseLabor),
            "rates": output_schema(ProposeTaxSchedule, {"cutoffs": [0, 1, 2]}),  # 3 brackets: the grammar is slow
            "satisfied": output_schema(RateSatisfaction),
            "vote": output_schema(Vote, {"candidates": [{"candidate": "Ann Lee"}, {"candidate": "Bo"}]})}


@pytest.mark.parametrize("field", ["hours", "rates", "satisfied", "vote"])
def test_slot_mask_allows_exactly_the_grammar_samplers_tokens(llama, field):
    """Random walks through the answer language: at every state the mask leaves the tokens the grammar does."""
    import random

    from programs.lm.llama_prefix import PrefixRunner, answer_plan

    plan = answer_plan(_schemas()[field])
    assert plan is not None and plan.slots is not None
    mask = PrefixRunner(llama, max_bytes=0).mask(plan)
    rng = random.Random(0)
    states = 0
    for _ in range(3):
        tokens: list[int] = []
        while True:
            want = _grammar_allowed(llama, plan.grammar, tokens)
            generated = llama.detokenize(tokens, special=True).decode()
            assert mask.allowed(generated).tolist() == want, generated
            states += 1
            text_tokens = [t for t in want if not llama_cpp_is_eog(llama, t)]
            if not text_tokens:
                break
            tokens.append(rng.choice(text_tokens))
        assert generated.endswith("}")
    assert states >= 8


def llama_cpp_is_eog(llama, token: int) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(llama._model.model), token))  # noqa: SLF001


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_answers_with_the_mask_equal_answers_with_the_grammar(llama, temperature):
    """The mask changes how the allowed tokens are found, not the draw: same prompts and seeds, same answers."""
    from programs.lm.llama_prefix import PrefixRunner

    schemas = _schemas()
    # Both evaluate every prompt in full, so their logits are the same bits (a prefix restored on one side and
    # evaluated in other chunks on the other can move a near tie).
    masked = PrefixRunner(llama, max_bytes=0)
    grammar = PrefixRunner(llama, max_bytes=0, fast_mask=False)
    got = {"masked": [], "grammar": []}
    for i, messages in enumerate(_prompts()[1:3]):  # two agents, one with a history row
        for field in ("hours", "rates"):
            kw = dict(messages=messages, schema=schemas[field], temperature=temperature, seed=2000 + i,
                      max_tokens=40)
            for name, runner in (("masked", masked), ("grammar", grammar)):
                got[name].append(runner.chat(**kw).completion["choices"][0]["message"]["content"])
    assert got["masked"] == got["grammar"]
    rates = [json.loads(a)["rates_percent"] for a in got["masked"][1::2]]
    assert all(len(r) == 3 and all(0 <= x <= 100 for x in r) for r in rates)  # the schema held
