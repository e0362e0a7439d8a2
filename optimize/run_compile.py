"""The compile job of ``optimize.planner``: draw situations, score before, compile, score after, save.

The summary (``<out>.summary.json``, and ``optimize.report.format_summary`` prints it) holds the
held-out scores before and after, the LM calls by phase against ``--budget``, and what changed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from typing import Any

from optimize.config import Config
from optimize.outputs import check_not_all_failed, common, save_program, say, scores_block
from programs.agents.batch import batch_threads
from programs.lm.backends import backend_settings
from programs.lm.models import lm_record
from programs.redact import redact
from programs.simulation.runlog import write_atomic

__all__ = ["run_compile", "task_lms", "instruction_lm", "compile_aborts"]


def compile_aborts() -> tuple[type[BaseException], ...]:
    """LM failures an optimizer's own code may not survive (DSPy's instruction proposers and reflection do
    not catch them all): a prompt over the window, a provider error after retries, an unparseable answer, a
    call refused at the budget's cap. Anything else is a bug and propagates."""
    from dspy.lm15 import ContextLengthError
    from dspy.utils.exceptions import AdapterParseError, LMError

    from optimize.budget import BudgetExhausted

    return (LMError, AdapterParseError, ContextLengthError, BudgetExhausted)


def task_lms(cfg: Config, temperature: float | None = None) -> list:
    from programs.lm import build_lms

    a = cfg.args
    return build_lms(a.lm, a.api_base, temperature=a.temperature if temperature is None else temperature,
                     seed=a.seed, concurrency=a.concurrency, structured=a.structured, max_tokens=a.max_tokens,
                     settings=backend_settings(a), reasoning_effort=a.reasoning_effort)


def instruction_lm(cfg: Config) -> tuple[Any, str | None]:
    """The LM that writes instructions (``--prompt-lm``, or GEPA's ``--reflection-lm``) and its label;
    (None, None) for an optimizer that writes none."""
    from optimize.optimizers import optimizer_class
    from programs.lm import build_lms, describe_lm
    from programs.lm.structured import with_writing_budget
    from programs.lm.writer import WRITER_LABEL, writer_lm

    a = cfg.args
    kind = optimizer_class(a.optimizer).instruction_lm
    if kind is None:
        return None, None
    given = getattr(a, f"{kind}_lm")
    name = given if given is not None else ("offline" if cfg.in_process else a.lm)
    if name.strip() == "offline":
        return writer_lm(seed=a.seed), WRITER_LABEL
    # Every answer gets a token budget (``with_writing_budget``): DSPy's proposers send none of their own.
    if given is None:  # the task LM's own settings: same model, same endpoints, same answer options
        return (with_writing_budget(task_lms(cfg, temperature=1.0)[0], a.max_tokens),
                describe_lm(a.lm, a.api_base, temperature=1.0))
    bases = getattr(a, f"{kind}_api_base")
    return (with_writing_budget(build_lms(name, bases, temperature=1.0, seed=a.seed)[0], a.max_tokens),
            describe_lm(name, bases, temperature=1.0))


def run_compile(cfg: Config) -> dict[str, Any]:
    """Draw situations, score before, compile, score after, save; returns the summary."""
    import dspy
    import numpy as np

    from optimize.budget import CallCap, CallCounter
    from optimize.compile import compile_planner, evaluate_program
    from optimize.metric import WelfareMetric
    from optimize.scores import paired_scores
    from optimize.situations import draw_situations
    from programs.lm import describe_lm
    from programs.lm.usage import UsageMeter, usage_source, usage_total
    from programs.agents.tax_planner import PlannerAgent

    a = cfg.args
    t0 = time.time()
    lms = task_lms(cfg)
    threads = batch_threads(lms, a.concurrency)  # the one thread-count rule
    prompt_lm, prompt_label = instruction_lm(cfg)
    say(cfg, f"drawing situations (oracle search per population): train {len(cfg.train_seeds)}, "
              f"validation {len(cfg.val_seeds)}, held-out {len(cfg.heldout_seeds)} populations of {a.agents}")
    train = draw_situations(cfg.train_seeds, cfg.econ, cfg.sit)
    val = draw_situations(cfg.val_seeds, cfg.econ, cfg.sit)
    held = draw_situations(cfg.heldout_seeds, cfg.econ, cfg.sit)
    metric = WelfareMetric(cfg.econ, workers=cfg.workers, lms=lms, steps_per_year=a.steps_per_year,
                           temperature=a.temperature)
    student = PlannerAgent(a.brackets, module_type=a.module_type, history_len=a.history_len, best_k=a.best_k)
    counter = CallCounter()
    # --budget is a hard cap on the calls the client makes (retries included): each phase may use its
    # share plus whatever the earlier phases left; the last phase's ceiling is the whole budget.
    limit = cfg.plan.budget + cfg.eval_calls
    e = 1 + metric.lm_calls_per_call
    after_share = (len(held) + 2 * len(val)) * e
    cap = CallCap(counter, limit - after_share - cfg.plan.budget)
    lms = [cap.wrap(lm) for lm in lms]
    metric.lms = lms
    prompt_lm = cap.wrap(prompt_lm) if prompt_lm is not None else None
    meter = UsageMeter()
    answers: dict[str, Counter] = {}  # unusable planner answers by phase and kind (read off the metric)

    def unusable_since(mark: Counter, phase: str) -> None:
        answers.setdefault(phase, Counter()).update(metric.fallbacks - mark)

    with dspy.context(callbacks=[counter]), meter.installed():
        counter.phase("evaluate")
        say(cfg, f"scoring the uncompiled planner on {len(held)} held-out situations")
        mark = Counter(metric.fallbacks)
        before = evaluate_program(student, held, metric, lm=lms[0], num_threads=threads)
        check_not_all_failed(counter, "evaluate", "scoring the uncompiled planner")
        unusable_since(mark, "evaluate")
        counter.phase("compile")
        cap.set_ceiling(limit - after_share)
        say(cfg, f"compiling with {a.optimizer} ({', '.join(f'{k}={v}' for k, v in cfg.plan.knobs.items())}; "
                  f"at most {cfg.plan.max_calls} of {cfg.plan.budget} LM calls)")
        mark = Counter(metric.fallbacks)
        aborted = None
        with open(os.devnull, "w") as devnull:
            try:
                compiled = compile_planner(student, a.optimizer, cfg.plan, train, val, metric, task_lm=lms[0],
                                           prompt_lm=prompt_lm, demos=cfg.demos, num_threads=threads,
                                           seed=a.seed, log=sys.stderr if a.verbose else devnull)
            except compile_aborts() as exc:
                # Counted, and the uncompiled program kept: the held-out scores already paid for are saved.
                compiled = student.deepcopy()
                aborted = {"cause": type(exc).__name__, "message": redact(" ".join(str(exc).split()))[:300]}
                say(cfg, f"the compile stopped on an LM failure ({aborted['cause']}: {aborted['message'][:160]}); "
                          "keeping the uncompiled program")
        compile_calls = counter.in_phase("compile")
        check_not_all_failed(counter, "compile", f"compiling with {a.optimizer}")
        unusable_since(mark, "compile")
        counter.phase("evaluate")
        cap.set_ceiling(limit)
        if aborted is None:
            say(cfg, "scoring the compiled planner on the held-out situations")
            mark = Counter(metric.fallbacks)
            after = evaluate_program(compiled, held, metric, lm=lms[0], num_threads=threads)
            val_before = evaluate_program(student, val, metric, lm=lms[0], num_threads=threads)
            val_after = evaluate_program(compiled, val, metric, lm=lms[0], num_threads=threads)
            check_not_all_failed(counter, "evaluate", "scoring the planners")
            unusable_since(mark, "evaluate")
        else:  # the same program: its scores are the uncompiled ones, not re-drawn
            after, val_before, val_after = list(before), None, None
    usage = meter.take()
    save_program(compiled, cfg.out)
    pred = compiled.propose if a.module_type == "predict" else compiled.propose.predict
    base_instr = (student.propose if a.module_type == "predict" else student.propose.predict).signature.instructions
    notes = []
    if cfg.in_process:
        notes.append("The offline engine is a numeric stand-in, not a language model: its planner starts from its "
                     "first demonstration in a situation's first years and otherwise searches numerically; it does "
                     "not read instructions, so offline only demonstrations can change its score.")
    if prompt_label and "not a language model" in prompt_label:
        notes.append("Instructions were written by the rule-based offline instruction writer (a fixed bank of "
                     "hand-written strategies, and for GEPA a rule-based summary of the metric's feedback); "
                     "with the offline engine, instruction search only reshuffles the engine's noise. Pass "
                     "--lm/--reflection-lm for instruction search that can matter.")
    if not cfg.sit.labels:
        notes.append("No oracle labels: demonstrations are the planner's own runs that scored at least "
                     f"{cfg.demos.threshold}.")
    else:
        notes.append("Training situations carry their population's oracle rates as labels (labeled "
                     "demonstrations); validation and held-out populations are different seeds.")
    summary = {
        "mode": "compile",
        "optimizer": a.optimizer,
        "lm": describe_lm(a.lm, a.api_base, temperature=a.temperature),
        "lm_backend": lm_record(a.lm, backend_settings(a)),
        "instruction_lm": prompt_label,
        "metric": metric.describe(),
        "budget": {"limit": limit, "refused_calls": cap.refused, "plan": cfg.plan.to_dict(),
                   "evaluation_bound": cfg.eval_calls, "compile_calls": compile_calls,
                   "evaluation_calls": counter.in_phase("evaluate"), "total_calls": counter.total,
                   "failed_calls": counter.snapshot()["failed"], "by_lm": counter.snapshot()["by_lm"],
                   "note": "situations are drawn with the offline engine and are not counted"},
        "failures": {
            "lm_errors": counter.failures(),
            **({"compile_aborted": aborted} if aborted else {}),
            "unusable_answers": {"planner": {phase: dict(sorted(c.items())) for phase, c in answers.items() if c}},
            "note": ("lm_errors: LM calls that raised after their retries, by phase and cause; unusable_answers: "
                     "planner answers the metric scored with the rates in force kept, by phase and kind"),
        },
        "usage": {"by_role": usage, "total": usage_total(usage), "source": usage_source(lms)},
        "situations": {"spec": cfg.sit.to_dict(), "train": len(train), "validation": len(val),
                       "heldout": len(held)},
        "heldout": {
            "before": scores_block(before), "after": scores_block(after),
            "delta_mean": round(float(np.mean(after) - np.mean(before)), 6),
            "paired": paired_scores(before, after, [int(e.seed) for e in held]),
            "per_situation": [{"situation": e.situation, "seed": int(e.seed), "before": round(b, 6),
                               "after": round(c, 6)}
                              for e, b, c in zip(held, before, after)],
        },
        "validation": ({"before": scores_block(val_before), "after": scores_block(val_after)}
                       if val_before is not None else None),
        "program": {"path": str(cfg.out), "demos": len(pred.demos),
                    "instructions_changed": pred.signature.instructions != base_instr,
                    "instructions": pred.signature.instructions},
        "notes": notes,
        "elapsed_seconds": round(time.time() - t0, 2),
        **common(cfg),
    }
    write_atomic(cfg.summary_path, json.dumps(summary, indent=2) + "\n")
    return summary

