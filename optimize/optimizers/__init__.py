"""DSPy optimizers as registered classes, one per module, the way ``dspy.teleprompt`` is laid out.

An optimizer class says what it costs and how it runs (``docs/design.md`` §7):

- ``name`` (the ``--optimizer`` value) and ``instruction_lm`` (``None``, ``"prompt"`` for an LM that
  proposes instructions, ``"reflection"`` for GEPA's reflection LM);
- ``bound`` (the formula, in the summary) and ``cost(knobs, T, V, e)``, an upper bound of its LM calls
  (``T``/``V``: training/validation situations, ``e``: LM calls per evaluation of one situation),
  following the optimizer's code in DSPy 3.4.1;
- ``plan(budget, T, V, e, max_candidates)``: the knobs that fit ``budget`` (``None`` if none fit) and
  ``minimum(T, V, e)``: the smallest budget it runs on;
- ``build(...)``: the DSPy teleprompter; ``compile(teleprompter, student, trainset, valset, ...)``.

A new optimizer is one module with one ``@register_optimizer`` class, imported below.
"""

from __future__ import annotations

from typing import Any, ClassVar, TextIO

__all__ = ["Optimizer", "OPTIMIZERS", "register_optimizer", "optimizer_class", "names"]

#: Registered optimizers by name, in registration order (the order of ``--optimizer``'s help).
OPTIMIZERS: dict[str, type["Optimizer"]] = {}


def register_optimizer(cls: type["Optimizer"]) -> type["Optimizer"]:
    """Class decorator: make ``cls`` selectable as ``--optimizer cls.name``."""
    from programs.registry import register_named

    return register_named(OPTIMIZERS, cls, "optimizer")


def names() -> tuple[str, ...]:
    return tuple(OPTIMIZERS)


def optimizer_class(name: str) -> type["Optimizer"]:
    """The optimizer registered as ``name`` (ValueError naming the choices otherwise)."""
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"optimizer={name!r} must be one of {', '.join(OPTIMIZERS)}") from None


class Optimizer:
    """Base class; subclasses set the class attributes and implement the four methods."""

    name: ClassVar[str] = ""
    #: Which extra LM it asks for: None, "prompt" (instruction proposals) or "reflection" (GEPA).
    instruction_lm: ClassVar[str | None] = None
    #: The cost bound as a formula (written to the summary).
    bound: ClassVar[str] = ""

    def cost(self, knobs: dict[str, Any], T: int, V: int, e: int) -> int:
        raise NotImplementedError

    def plan(self, budget: int, T: int, V: int, e: int, max_candidates: int) -> dict[str, Any] | None:
        raise NotImplementedError

    def minimum(self, T: int, V: int, e: int) -> int:
        raise NotImplementedError

    def build(self, knobs: dict[str, Any], metric: Any, *, demos: Any, prompt_lm: Any, task_lm: Any,
              num_threads: int, seed: int, log: TextIO | None) -> Any:
        raise NotImplementedError

    def compile(self, teleprompter: Any, student: Any, trainset: list, valset: list, *, knobs: dict[str, Any],
                num_threads: int, seed: int) -> Any:
        return teleprompter.compile(student, trainset=trainset, valset=valset)


# Registration order is the order users see.
from optimize.optimizers import bootstrap, mipro, gepa, copro, simba  # noqa: E402,F401
