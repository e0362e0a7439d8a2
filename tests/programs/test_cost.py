"""Estimated cost (issue 10): given prices, LiteLLM's cost map when it lists the model, else unknown."""

from __future__ import annotations

import json

import pytest

from programs.errors import ConfigError
from programs.lm.cost import check_prices, estimate_cost, lookup_price

TOTAL = {"prompt_tokens": 2_000_000, "completion_tokens": 500_000}


def test_given_prices_are_dollars_per_million_tokens():
    c = estimate_cost(TOTAL, "openai/x", ["http://127.0.0.1:8000/v1"], price_in=0.5, price_out=2.0)
    assert c["usd"] == pytest.approx(2 * 0.5 + 0.5 * 2.0) and "--price-in 0.5" in c["basis"]


def test_litellm_cost_map_for_a_listed_hosted_model():
    import litellm

    e = litellm.model_cost["gpt-4o-mini"]
    assert lookup_price("openai/gpt-4o-mini")[2] == "gpt-4o-mini"  # same provider: found under its name
    c = estimate_cost(TOTAL, "openai/gpt-4o-mini")
    assert c["usd"] == pytest.approx(2e6 * e["input_cost_per_token"] + 5e5 * e["output_cost_per_token"])
    assert c["basis"].startswith("LiteLLM cost map (gpt-4o-mini")


@pytest.mark.parametrize("lm, api_base, estimated, why", [
    ("openai/gpt-4o-mini", ["http://127.0.0.1:8000/v1"], False, "self-hosted"),  # a local server's weights
    ("hosted_vllm/my-model", None, False, "no price for hosted_vllm/my-model"),
    ("anthropic/gpt-4o-mini", None, False, "no price"),  # the name is listed, but as another provider's
    ("offline", None, True, "no price for offline"),
])
def test_unknown_is_never_a_made_up_number(lm, api_base, estimated, why):
    c = estimate_cost(TOTAL, lm, api_base, tokens_estimated=estimated)
    assert c["usd"] is None and c["basis"].startswith("unknown") and why in c["basis"]


@pytest.mark.parametrize("p_in, p_out, flag", [(1.0, None, "go together"), (-1.0, 1.0, "--price-in"),
                                               (1.0, float("nan"), "--price-out")])
def test_bad_prices(p_in, p_out, flag):
    with pytest.raises(ConfigError, match=flag):
        check_prices(p_in, p_out)


def test_simulate_writes_the_cost_of_given_prices(tmp_path, capsys):
    from programs.simulation import cli as simulate

    base = ["--agents", "3", "--years", "1", "--steps-per-year", "2", "--brackets", "three", "--no-progress",
            "--out", str(tmp_path / "r")]
    assert simulate.main(base + ["--price-in", "1", "--price-out", "4"]) == 0
    usage = json.loads((tmp_path / "r" / "summary.json").read_text())["usage"]
    t = usage["total"]
    assert usage["cost"]["usd"] == pytest.approx(t["prompt_tokens"] / 1e6 + 4 * t["completion_tokens"] / 1e6)
    assert "(on estimated tokens)" in usage["cost"]["basis"]
    assert "cost: $" in capsys.readouterr().out
    assert simulate.main(base + ["--overwrite", "--price-in", "1"]) == 2
