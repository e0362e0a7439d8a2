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
