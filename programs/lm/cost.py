"""An estimated cost of a run's tokens, where a price is known (issue 10); never a made-up number.

Prices, in this order:

1. ``--price-in`` / ``--price-out``: dollars per million prompt / completion tokens, given by the user.
2. LiteLLM's cost map (``litellm.model_cost``, the copy bundled with LiteLLM: ``programs`` keeps it off
   the network) when the model is listed there: ``provider/name`` is looked up as given, then as ``name``
   if that entry is the same provider's. Not for a model behind ``--api-base``: a self-hosted server
   may serve any weights under a hosted model's name, and bills nothing per token.
3. Otherwise the cost is ``unknown`` (``usd`` is None), and the reason says how to give a price.

The offline engine's tokens are estimates (characters / 4) and it is not a language model: its cost is
unknown unless prices are given, and then labelled an estimate on estimated tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from programs.errors import ConfigError

__all__ = ["lookup_price", "estimate_cost", "check_prices", "format_cost"]


def check_prices(price_in: float | None, price_out: float | None) -> None:
    """Both or neither, each a finite number >= 0 (``ConfigError`` naming the flag)."""
    import math

    if (price_in is None) != (price_out is None):
        raise ConfigError("--price-in and --price-out go together (dollars per million prompt / completion tokens)")
    for flag, v in (("--price-in", price_in), ("--price-out", price_out)):
        if v is not None and (not math.isfinite(v) or v < 0):
            raise ConfigError(f"{flag}={v!r} must be a number >= 0 (dollars per million tokens)")


def lookup_price(model: str) -> tuple[float, float, str] | None:
    """(dollars per prompt token, per completion token, the cost-map key) from LiteLLM's map, or None."""
    try:
        import litellm
    except ImportError:  # pragma: no cover - a dependency of DSPy
        return None
    table = getattr(litellm, "model_cost", None) or {}
    keys = [model]
    if "/" in model:
        provider, name = model.split("/", 1)
        entry = table.get(name) or {}
        if str(entry.get("litellm_provider", "")).lower() == provider.lower():
            keys.append(name)
    for key in keys:
        e = table.get(key) or {}
        p_in, p_out = e.get("input_cost_per_token"), e.get("output_cost_per_token")
        if isinstance(p_in, (int, float)) and isinstance(p_out, (int, float)):
            return float(p_in), float(p_out), key
    return None


def estimate_cost(total: Mapping[str, Any], lm: str, api_base: Sequence[str] | None = None, *,
                  price_in: float | None = None, price_out: float | None = None,
                  tokens_estimated: bool = False) -> dict[str, Any]:
    """``{"usd": float | None, "basis": str}`` for ``total`` (``prompt_tokens``, ``completion_tokens``)."""
    n_in, n_out = int(total.get("prompt_tokens", 0)), int(total.get("completion_tokens", 0))
    note = " (on estimated tokens)" if tokens_estimated else ""
    if price_in is not None and price_out is not None:
        usd = n_in * price_in / 1e6 + n_out * price_out / 1e6
        return {"usd": usd, "basis": f"--price-in {price_in:g} / --price-out {price_out:g} $ per million tokens{note}"}
    if api_base:
        return {"usd": None, "basis": f"unknown: {lm} is self-hosted (--api-base); pass --price-in/--price-out"}
    found = None if tokens_estimated else lookup_price(lm)
    if found is None:
        return {"usd": None, "basis": f"unknown: no price for {lm} in LiteLLM's cost map; pass --price-in/--price-out"}
    p_in, p_out, key = found
    return {"usd": n_in * p_in + n_out * p_out,
            "basis": f"LiteLLM cost map ({key}: {p_in * 1e6:g} / {p_out * 1e6:g} $ per million tokens in / out)"}


def format_cost(cost: Mapping[str, Any] | None) -> str:
    """``$0.0123 (basis)`` or ``unknown (why)``."""
    if not cost:
        return "unknown"
    if cost.get("usd") is None:
        return str(cost.get("basis", "unknown"))
    return f"${cost['usd']:.4g} ({cost['basis']})"
