"""DSPy optimizers by name, run on planner situations under a call budget (``docs/design.md`` §7).

The optimizers are registered classes in ``optimize.optimizers`` (one module each, as in
``dspy.teleprompt``): ``bootstrap`` = BootstrapFewShotWithRandomSearch, ``mipro`` = MIPROv2 (Optuna over
instruction and demonstration candidates), ``gepa`` = GEPA (reflective instruction evolution), ``copro`` =
COPRO (instruction search), ``simba`` = SIMBA (rules and demonstrations by mini-batch ascent). Every optimizer scores candidates with ``optimize.metric.WelfareMetric`` on the
validation situations and keeps the uncompiled program among its candidates, so what it returns scored
at least as well as the uncompiled program *on validation*; held-out situations judge it afterwards.

``mipro``, ``copro``, ``simba`` and ``gepa`` need an LM that writes instructions (``prompt_lm``). Without one the
caller passes ``programs.lm.writer.writer_lm()``, the rule-based offline instruction writer.

The compiled program is cleaned before it is saved: demonstrations keep only the signature's fields
(situations carry bookkeeping such as the population seed) and no predictor carries an LM (so no
endpoint or key can end up in the JSON).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import dspy

from optimize.budget import BudgetPlan
from optimize.metric import WelfareMetric


def _instruction_lm(name: str) -> str | None:
    from optimize.optimizers import optimizer_class

    return optimizer_class(name).instruction_lm

__all__ = ["OPTIMIZERS", "INSTRUCTION_OPTIMIZERS", "DemoSettings", "build_optimizer", "compile_planner",
           "evaluate_program", "clean_program"]

def _names() -> tuple[str, ...]:
    from optimize.optimizers import names

    return names()


#: Optimizer names (``optimize.optimizers``' registry, in registration order).
OPTIMIZERS: tuple[str, ...] = _names()
#: Optimizers that ask an LM to write instructions (a prompt LM, or GEPA's reflection LM).
INSTRUCTION_OPTIMIZERS: tuple[str, ...] = tuple(n for n in OPTIMIZERS if _instruction_lm(n))


@dataclass(frozen=True)
class DemoSettings:
    """Demonstration knobs (bootstrap, mipro, simba).

    Attributes
    ----------
    max_bootstrapped : most demonstrations bootstrapped from the program's own runs.
    max_labeled : most labeled demonstrations (situations with the oracle's rates as the answer).
    threshold : a bootstrapped run becomes a demonstration when its score is >= this (in (0, 1]).
    """

    max_bootstrapped: int = 4
    max_labeled: int = 4
    threshold: float = 0.5


def build_optimizer(name: str, plan: BudgetPlan, metric: WelfareMetric, *, demos: DemoSettings,
                    prompt_lm: dspy.BaseLM | None = None, task_lm: dspy.BaseLM | None = None,
                    num_threads: int = 1, seed: int = 0, log: TextIO | None = None) -> Any:
    """The DSPy teleprompter ``name`` with the knobs of ``plan`` (``log`` receives what it prints)."""
    from optimize.optimizers import optimizer_class

    return optimizer_class(name)().build(plan.knobs, metric, demos=demos, prompt_lm=prompt_lm, task_lm=task_lm,
                                         num_threads=num_threads, seed=seed, log=log)


def compile_planner(student: dspy.Module, name: str, plan: BudgetPlan, trainset: Sequence[dspy.Example],
                    valset: Sequence[dspy.Example], metric: WelfareMetric, *, task_lm: dspy.BaseLM,
                    prompt_lm: dspy.BaseLM | None = None, demos: DemoSettings = DemoSettings(),
                    num_threads: int = 1, seed: int = 0, log: TextIO | None = None) -> dspy.Module:
    """Compile ``student`` (a PlannerAgent) with optimizer ``name``; returns a cleaned copy.

    What the optimizers print goes to ``log`` (default stderr), so stdout carries only the caller's report.
    A real ``prompt_lm`` answers the optimizers' own prompts through ``WritingAdapter`` (structured outputs,
    bounded text); the planner's calls keep theirs (``use_structured``).
    """
    from optimize.optimizers import optimizer_class
    from programs.lm.structured import writing_adapter

    optimizer = optimizer_class(name)()
    opt = optimizer.build(plan.knobs, metric, demos=demos, prompt_lm=prompt_lm, task_lm=task_lm,
                          num_threads=num_threads, seed=seed, log=log)
    writing = writing_adapter(prompt_lm)
    with (dspy.context(lm=task_lm, **({"adapter": writing} if writing is not None else {})),
          contextlib.redirect_stdout(log or sys.stderr)):
        out = optimizer.compile(opt, student, list(trainset), list(valset), knobs=plan.knobs,
                                num_threads=num_threads, seed=seed)
    restore_unusable_instructions(out, student)
    return clean_program(out)


#: Shortest instruction taken as written by an LM; anything shorter ("N/A", "") is an unusable answer.
MIN_INSTRUCTION_CHARS = 40


def restore_unusable_instructions(program: dspy.Module, original: dspy.Module) -> list[str]:
    """Put back the original instructions of predictors whose new ones are unusable; returns their names.

    A model that cannot write instructions (say the offline engine served over HTTP, which answers "N/A")
    could otherwise leave "N/A" as the planner's instruction when it happened to score well.
    """
    before = dict(original.named_predictors())
    restored = []
    for name, pred in program.named_predictors():
        text = (pred.signature.instructions or "").strip()
        if len(text) < MIN_INSTRUCTION_CHARS and name in before:
            pred.signature = pred.signature.with_instructions(before[name].signature.instructions)
            restored.append(name)
    return restored


def clean_program(program: dspy.Module) -> dspy.Module:
    """Keep only signature fields in demonstrations and drop per-predictor LMs (in place; returned)."""
    for _, pred in program.named_predictors():
        names = set(pred.signature.fields)
        cleaned = []
        for d in pred.demos:
            keep = {k: v for k, v in (d.items() if hasattr(d, "items") else dict(d).items())
                    if k in names or k == "augmented"}
            ex = dspy.Example(**keep)
            cleaned.append(ex.with_inputs(*[k for k in keep if k in pred.signature.input_fields]))
        pred.demos = cleaned
        pred.lm = None
    for attr in ("candidate_programs", "mb_candidate_programs", "trial_logs", "detailed_results"):
        if attr in program.__dict__:
            delattr(program, attr)
    return program


def evaluate_program(program: dspy.Module, examples: Sequence[dspy.Example], metric: WelfareMetric, *,
                     lm: dspy.BaseLM, num_threads: int = 1) -> list[float]:
    """Score ``program`` on each situation (one planner call each); returns scores in input order."""
    evaluate = dspy.Evaluate(devset=list(examples), metric=metric.as_float, num_threads=num_threads,
                             display_progress=False, display_table=False, max_errors=len(examples) + 1)
    with dspy.context(lm=lm), contextlib.redirect_stdout(sys.stderr):
        result = evaluate(program)
    return [float(score) for _, _, score in result.results]
