"""Reasoning models: which models reason, and what they need (``docs/design.md`` §6.8).

A reasoning model (OpenAI's o-series and gpt-5, DeepSeek's reasoner, Gemini 2.5, ...) writes hidden
reasoning tokens before its answer, billed as completion tokens and drawn from the same ``max_tokens``.
Three things follow, and this module is their one home:

- **Which models.** ``ReasoningPlan.of`` decides once per ``--lm``: DSPy's own rule for OpenAI's
  reasoning families (``compat.dspy_reasoning_rule``: the rule DSPy enforces when it builds the LM), then,
  for a hosted model (no ``--api-base``), LiteLLM's ``supports_reasoning``; a model behind ``--api-base``
  is known by its name only, so ``--reasoning-effort`` declares a self-hosted one (Qwen3, DeepSeek-R1 on
  vLLM) a reasoning model.
- **Sampling.** Under DSPy's rule the API takes no temperature but 1.0 and DSPy refuses a budget under
  ``MIN_BUDGET`` when the LM is built: such a model runs at temperature 1.0 whatever ``--temperature``
  says (recorded in ``config.json``), and ``--max-tokens`` below ``MIN_BUDGET`` is refused in one line.
  ``--reasoning-effort low|medium|high`` is passed to the model as ``reasoning_effort``.
- **Budgets.** Each answer's budget is its signature's (``programs.lm.structured.token_budget``) plus
  ``REASONING_ROOM`` tokens to reason in. An answer whose reasoning used the whole budget comes back with
  ``finish_reason == "length"`` and no answer: a counted ``truncated`` fallback, never a parse error.

Reasoning tokens are counted apart, by role (``programs.lm.usage``: ``reasoning_tokens``, read from the
responses' ``completion_tokens_details``; they are part of ``completion_tokens`` too, as billed).
``--dry-run`` cannot know them: it assumes ``ASSUMED_REASONING_TOKENS`` per answer for the effort and says
so (``programs.simulation.dryrun``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from programs.errors import ConfigError

__all__ = ["EFFORTS", "MIN_BUDGET", "REASONING_ROOM", "ASSUMED_REASONING_TOKENS", "ReasoningPlan",
           "reasoning_plan", "plan_of", "check_effort"]

#: Values of ``--reasoning-effort`` (OpenAI's ``reasoning_effort``; LiteLLM maps them for other providers).
EFFORTS = ("low", "medium", "high")
#: The least ``max_tokens`` DSPy lets an OpenAI reasoning model be built with (OpenAI's own advice is to
#: leave room for thousands of reasoning tokens).
MIN_BUDGET = 16_000
#: Completion tokens added to every answer's budget for the model's reasoning (so a budget is never
#: below ``MIN_BUDGET``).
REASONING_ROOM = 16_000
#: ``--dry-run``'s assumption of reasoning tokens per answer, by effort (None: the provider's default,
#: medium). A stated assumption, not a measurement: a one-number answer to a short prompt reasons little
#: at low effort; real counts vary by model and prompt, and are reported per run.
ASSUMED_REASONING_TOKENS: dict[str | None, int] = {"low": 256, "medium": 1024, "high": 4096, None: 1024}

#: Attribute under which ``ReasoningPlan.apply`` stores an LM's plan.
_ATTR = "reasoning_plan"


def check_effort(effort: str | None) -> None:
    """``ConfigError`` unless ``effort`` is None or one of ``EFFORTS``."""
    if effort is not None and effort not in EFFORTS:
        raise ConfigError(f"reasoning_effort={effort!r} must be one of {', '.join(EFFORTS)} (or unset)")


def _litellm_reasons(model: str) -> bool:
    try:
        import litellm
    except ImportError:  # pragma: no cover - a dependency of DSPy
        return False
    try:
        return bool(litellm.supports_reasoning(model=model))
    except Exception:  # an unmapped model: LiteLLM does not know, so neither do we
        return False


@dataclass(frozen=True)
class ReasoningPlan:
    """What one ``--lm`` needs as a reasoning model.

    ``reasons``: it reasons (budgets with room, reasoning tokens expected); ``fixed_sampling``: DSPy's
    OpenAI rule applies (temperature 1.0, budgets >= ``MIN_BUDGET``); ``effort``: ``--reasoning-effort``;
    ``source``: why it counts as a reasoning model (``dspy``, ``litellm``, ``--reasoning-effort``, or ``""``).
    """

    reasons: bool = False
    fixed_sampling: bool = False
    effort: str | None = None
    source: str = ""

    @classmethod
    def of(cls, lm: str, api_base: None | str | Sequence[str] = None, effort: str | None = None) -> "ReasoningPlan":
        """The plan of model string ``lm`` (``offline`` and ``local`` never reason). Raises ``ConfigError``
        for an effort outside ``EFFORTS``."""
        check_effort(effort)
        name = lm.strip() if isinstance(lm, str) else ""
        if not name or name == "offline" or name == "local" or name.startswith("local:") or "/" not in name:
            if effort is not None:
                raise ConfigError(f"reasoning_effort={effort!r} is for a reasoning model; lm={name!r} is not one")
            return cls()
        from programs.lm.compat import dspy_reasoning_rule

        if dspy_reasoning_rule(name):
            return cls(True, True, effort, "dspy")
        if not api_base and _litellm_reasons(name):
            return cls(True, False, effort, "litellm")
        if effort is not None:
            return cls(True, False, effort, "--reasoning-effort")
        return cls()

    # -- what the LM is built with ---------------------------------------------------------------------
    def temperature(self, temperature: float) -> float:
        """The temperature the model is built with (1.0 under DSPy's OpenAI rule)."""
        return 1.0 if self.fixed_sampling else temperature

    def lm_kwargs(self) -> dict[str, Any]:
        """Extra ``dspy.LM`` settings: ``reasoning_effort`` when given."""
        return {"reasoning_effort": self.effort} if self.effort is not None else {}

    def check_max_tokens(self, max_tokens: int | None) -> None:
        """A ``--max-tokens`` override the model accepts (``ConfigError`` naming the floor otherwise)."""
        if self.fixed_sampling and max_tokens is not None and max_tokens < MIN_BUDGET:
            raise ConfigError(f"max_tokens={max_tokens} is below {MIN_BUDGET}, the least DSPy allows a reasoning "
                              f"model (its reasoning shares the budget); give at least {MIN_BUDGET} or leave it unset")

    def budget(self, answer_tokens: int) -> int:
        """``max_tokens`` of one answer: its own budget, plus ``REASONING_ROOM`` for a reasoning model."""
        return answer_tokens + REASONING_ROOM if self.reasons else answer_tokens

    def assumed_tokens(self) -> int:
        """``--dry-run``'s assumed reasoning tokens per answer (0 for a model that does not reason)."""
        return ASSUMED_REASONING_TOKENS[self.effort] if self.reasons else 0

    def to_dict(self) -> dict[str, Any] | None:
        """For ``config.json`` (None for a model that does not reason)."""
        if not self.reasons:
            return None
        return {"effort": self.effort, "detected_by": self.source, "temperature_fixed": self.fixed_sampling,
                "reasoning_room": REASONING_ROOM}

    def describe(self) -> str:
        """A short phrase for the ``LM:`` line ("" for a model that does not reason)."""
        if not self.reasons:
            return ""
        return f"reasoning model (effort {self.effort or 'default'}, +{REASONING_ROOM} tokens to reason per answer)"

    def apply(self, lm: Any) -> Any:
        """Attach this plan to a built LM (read back by ``plan_of``)."""
        setattr(lm, _ATTR, self)
        return lm


def reasoning_plan(lm: str, api_base: None | str | Sequence[str] = None,
                   effort: str | None = None) -> ReasoningPlan:
    """``ReasoningPlan.of``."""
    return ReasoningPlan.of(lm, api_base, effort)


def plan_of(lm: Any) -> ReasoningPlan:
    """The plan attached to a built LM (a model that does not reason when none is)."""
    plan = getattr(lm, _ATTR, None)
    return plan if isinstance(plan, ReasoningPlan) else ReasoningPlan()
