"""The one rule for name-keyed registries of small classes (scenarios, optimizers): a class is
selectable by its ``name`` attribute, and a second class may not take a name already taken."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["register_named"]

C = TypeVar("C", bound=type)


def register_named(registry: dict[str, C], cls: C, kind: str) -> C:
    """Add ``cls`` to ``registry`` under ``cls.name`` (re-registering the same class is a no-op)."""
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a class attribute `name`")
    if name in registry and registry[name] is not cls:
        raise ValueError(f"{kind} {name!r} is already registered by {registry[name].__name__}")
    registry[name] = cls
    return cls
