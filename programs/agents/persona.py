"""LM-written personas (``--personas lm``): ``WritePersona`` from each worker's census attributes.

The earlier implementation asked its LM for every worker's persona from occupation, sex and age
(``create_persona_with_llm``). Here ``PersonaWriter`` answers ``WritePersona`` for every worker as one
concurrent batch, from the census attributes the population drew (age, sex, occupation, education,
potential income). An unusable answer (empty, over ``PERSONA_MAX_CHARS``, failed) falls back to the
worker's template persona (``economy.population``) and is counted by kind. The personas are written once,
before step 0, and stored with the run (``PersonaSet``), so a resumed run reuses them without a call and
their answers and tokens stay in the run's usage (role ``persona``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dspy
from pydantic import BaseModel, ConfigDict, Field

from programs.agents.batch import BatchRunner, FallbackCounter, classify_error, lm_config, make_predictor, rollout_id, round_robin
from programs.lm.structured import PERSONA_MAX_CHARS, use_structured
from signatures import WritePersona

__all__ = ["PersonaSet", "PersonaWriter", "demographics", "PERSONA_SOURCES"]

#: Values of ``SimulationConfig.personas``.
PERSONA_SOURCES = ("template", "lm")


class PersonaSet(BaseModel):
    """LM-written personas of one run, as stored with it (``personas.json``): the personas in agent order,
    the fallbacks (kind -> count, each a template persona kept) and the usage by role that wrote them."""

    model_config = ConfigDict(extra="forbid")
    personas: list[str]
    fallbacks: dict[str, int] = Field(default_factory=dict)
    usage: dict[str, dict[str, int]] = Field(default_factory=dict)


def demographics(row: Any) -> str:
    """One worker's census attributes as ``WritePersona``'s input (``age: 34; sex: female; ...``)."""
    parts = []
    for key in ("age", "sex", "occupation", "education"):
        v = row.get(key) if hasattr(row, "get") else getattr(row, key, None)
        if v is not None and str(v) not in ("", "nan", "unknown"):
            parts.append(f"{key}: {v}")
    income = row.get("potential_income") if hasattr(row, "get") else getattr(row, "potential_income", None)
    if income is not None:
        parts.append(f"potential income: ${float(income):,.0f} a year full time")
    return "; ".join(parts)


class PersonaWriter(dspy.Module):
    """Write each worker's persona with the LM; template persona on an unusable answer (counted)."""

    def __init__(self, module_type: str = "predict") -> None:
        super().__init__()
        self.write = make_predictor(WritePersona, module_type)
        self.fallbacks = FallbackCounter()

    def forward(self, demographics: str, template: str, lm: dspy.BaseLM | None = None,
                rollout_id: int | None = None) -> dspy.Prediction:
        """Returns ``persona`` (str) and ``fallback`` (kind or None)."""
        extra = {"lm": lm} if lm is not None else {}
        try:
            with use_structured(lm or dspy.settings.lm):
                pred = self.write(demographics=demographics, config=lm_config(lm or dspy.settings.lm, rollout_id),
                                  **extra)
            text = " ".join(str(getattr(pred, "persona", "") or "").split()).strip("\"' ")
            kind = None if 0 < len(text) <= PERSONA_MAX_CHARS else "invalid"
        except Exception as exc:
            text, kind = "", classify_error(exc)
        if kind is None:
            return dspy.Prediction(persona=text, fallback=None)
        self.fallbacks.add(kind)
        return dspy.Prediction(persona=template, fallback=kind)

    def write_batch(self, population: Any, *, lms: Sequence[dspy.BaseLM], runner: BatchRunner,
                    seed: int = 0) -> tuple[list[str], dict[str, int]]:
        """Every worker's persona as one batch: (personas in agent order, fallback counts by kind)."""
        frame = population.frame
        rows = frame.to_dict("records")
        templates = list(population.persona)

        def one(i: int) -> dspy.Prediction:
            return self(demographics=demographics(rows[i]), template=templates[i], lm=round_robin(lms, i),
                        rollout_id=rollout_id(seed, "persona", i))

        out: list[str] = []
        counts: dict[str, int] = {}
        for i, r in enumerate(runner.map(one, range(len(rows)))):
            if isinstance(r, BaseException):  # a bug guard: forward catches its own errors
                r = dspy.Prediction(persona=templates[i], fallback="lm_error")
            out.append(r.persona)
            if r.fallback:
                counts[r.fallback] = counts.get(r.fallback, 0) + 1
        return out, dict(sorted(counts.items()))
