"""``--dry-run``: the LM answers and tokens a configuration will spend, before anything is built or called.

Answers are counted by hand from the loop's rules (``docs/design.md`` §5.1):

- ``worker``: every worker every step, with ``--workers llm`` (``agents x years x steps_per_year``);
- ``persona``: every worker once before step 0, with ``--personas lm``;
- everything else as the scenario states it (``Scenario.lm_calls``): by default one planner proposal at
  the start of each tax year after year 0; the democratic scenario's platforms and ballots (a lower
  bound under ``irv``, ``Scenario.calls_at_least``), the bounded scenario's satisfaction answers, a
  registered scenario's own (the household example's savings answers, role ``other``).

Tokens are a documented per-signature estimate, not a tokenizer's count: ``PROMPT_TOKENS`` is the prompt
of one answer with full histories (``--history-len 5 --best-k 3``, 7 brackets), measured as characters / 4
on DSPy's chat-format prompts (the offline engine's own estimate, ``programs.lm.offline``); fewer brackets
or a shorter history give shorter prompts, a real tokenizer differs by tens of percent. Completion tokens
are each signature's budget (``programs.lm.structured.token_budget``, or ``--max-tokens``): an upper bound.
A reasoning model (``programs.lm.reasoning``) also writes reasoning tokens, which no bound predicts
usefully (each answer may spend ``REASONING_ROOM`` of them): the estimate adds an *assumed*
``ASSUMED_REASONING_TOKENS`` per answer for the effort, says so, and counts them in the completion
tokens the cost is estimated on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from programs.lm.reasoning import ReasoningPlan
from programs.lm.usage import ROLES

__all__ = ["PROMPT_TOKENS", "calls_by_role", "DryRun", "dry_run", "add_calls"]

#: Prompt tokens of one answer per role (see the module docstring for how they were measured).
PROMPT_TOKENS: dict[str, int] = {"worker": 920, "planner": 900, "voter": 800, "satisfaction": 420}


def calls_by_role(config: Any, *, planner_calls: bool = True) -> dict[str, int]:
    """LM answers of one simulation of ``config`` (a ``SimulationConfig``) by role (zero roles left out).

    ``planner_calls=False``: the schedule comes from elsewhere (a black-box planner on ``PlannerEnv``).
    """
    from programs.simulation.scenarios import scenario_class

    c = config
    calls = dict.fromkeys(ROLES, 0)
    if c.workers == "llm":
        calls["worker"] = c.agents * c.years * c.steps_per_year
    if c.personas == "lm":
        calls["persona"] = c.agents  # written once, before step 0
    for role, n in scenario_class(c.scenario).lm_calls(c, planner_calls=planner_calls).items():
        calls[role] += int(n)
    return {r: n for r, n in calls.items() if n}


def add_calls(*items: Mapping[str, int]) -> dict[str, int]:
    out = dict.fromkeys(ROLES, 0)
    for d in items:
        for r, n in d.items():
            out[r] += int(n)
    return {r: n for r, n in out.items() if n}


def _signature(role: str) -> Any:
    from signatures import ChooseLabor, ProposeTaxSchedule, RateSatisfaction, Vote

    return {"worker": ChooseLabor, "planner": ProposeTaxSchedule, "voter": Vote, "satisfaction": RateSatisfaction}[role]


@dataclass
class DryRun:
    """What a configuration will ask of its LMs."""

    calls: dict[str, int]
    prompt_tokens: dict[str, int] = field(default_factory=dict)
    completion_max: dict[str, int] = field(default_factory=dict)
    #: The counts are lower bounds (``Scenario.calls_at_least``, e.g. instant-runoff's later rounds).
    at_least: bool = False
    #: Assumed reasoning tokens by role (a reasoning model only; ``reasoning`` says on what assumption).
    reasoning_tokens: dict[str, int] = field(default_factory=dict)
    reasoning: ReasoningPlan = field(default_factory=ReasoningPlan)
    #: The answers' own budgets by role (without a reasoning model's room to reason).
    answer_max: dict[str, int] = field(default_factory=dict)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def lines(self, what: str) -> list[str]:
        per = ", ".join(f"{r} {n}" for r, n in self.calls.items()) or "none"
        bound = " at least" if self.at_least else ""
        p, c = sum(self.prompt_tokens.values()), sum(self.completion_max.values())
        unknown = [r for r in self.calls if r not in PROMPT_TOKENS]
        out = [f"dry run of {what}: {self.total_calls}{bound} LM answers ({per})",
                f"estimated tokens: ~{p:,} prompt (per answer: "
                + ", ".join(f"{r} ~{PROMPT_TOKENS[r]}" for r in self.calls if r in PROMPT_TOKENS)
                + f"), at most {c:,} completion (the answers' token budgets)"
                + (f"; not estimated for {', '.join(unknown)} (a scenario's own signature)" if unknown else "")
                + "; nothing was built or called"]
        if self.reasoning.reasons:
            from programs.lm.reasoning import REASONING_ROOM

            out.append(f"reasoning tokens: ~{sum(self.reasoning_tokens.values()):,} on the ASSUMPTION of "
                       f"{self.reasoning.assumed_tokens():,} per answer at effort "
                       f"{self.reasoning.effort or 'default (medium)'} (not measured: a reasoning model reports its "
                       f"own; each answer may spend up to {REASONING_ROOM:,}, included in the budgets above); "
                       "billed as completion tokens")
        return out


    def cost_line(self, lm: str, api_base: Any = None, price_in: float | None = None,
                  price_out: float | None = None) -> str:
        """The estimated cost of these tokens (``programs.lm.cost``: given prices, LiteLLM's map, or unknown)."""
        from programs.lm.cost import estimate_cost, format_cost

        # A reasoning model's budgets are mostly room to reason: its cost is estimated on the answers' own
        # budgets plus the assumed reasoning tokens, not on the room.
        total = {"prompt_tokens": sum(self.prompt_tokens.values()),
                 "completion_tokens": sum(self.answer_max.values()) + sum(self.reasoning_tokens.values())}
        cost = estimate_cost(total, lm, api_base or None, price_in=price_in, price_out=price_out)
        basis = (" (on the estimated tokens, with the ASSUMED reasoning tokens): " if self.reasoning.reasons
                 else " (at most, on the estimated tokens): ")
        return "estimated cost" + (basis if cost["usd"] is not None else ": ") + format_cost(cost)


def dry_run(calls: Mapping[str, int], *, module_type: str = "predict", max_tokens: int | None = None,
            n_brackets: int = 7, at_least: bool = False, reasoning: ReasoningPlan | None = None) -> DryRun:
    """Token estimates for ``calls`` by role (``PROMPT_TOKENS``; completion budgets as the adapter sets them;
    for a reasoning model, ``reasoning``, the assumed reasoning tokens); a role without an estimate (a
    scenario's own signature) is counted, not estimated."""
    import dspy

    from programs.lm.structured import token_budget

    plan = reasoning or ReasoningPlan()
    out = DryRun(calls=dict(calls), at_least=at_least, reasoning=plan)
    for role, n in calls.items():
        if role not in PROMPT_TOKENS:
            continue
        sig = _signature(role)
        if module_type in ("cot", "chain_of_thought"):
            sig = dspy.ChainOfThought(sig).predict.signature
        answer = token_budget(sig, {"cutoffs": [0.0] * n_brackets})
        budget = max_tokens or plan.budget(answer)
        out.prompt_tokens[role] = n * PROMPT_TOKENS[role]
        out.completion_max[role] = n * budget
        out.answer_max[role] = n * min(answer, budget)
        if plan.reasons:
            out.reasoning_tokens[role] = n * plan.assumed_tokens()
    return out
