"""The ``--tune`` job of ``optimize.planner``: run (or join) the Optuna study over the numeric knobs
(``optimize.tune``), score the given and the best knobs end to end on held-out seeds, save the planner."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from optimize.config import Config
from optimize.outputs import common, save_program, say, scores_block
from programs.lm.backends import backend_settings
from programs.lm.models import lm_record
from programs.redact import redact
from programs.simulation.runlog import write_atomic

__all__ = ["run_tune", "tune_workers", "clean_program_demos"]


def tune_workers(a: Any) -> str:
    """The tune's worker model: LLM workers unless ``--workers`` is given (with rational workers the
    tax-year length and the temperature cannot matter)."""
    return a.workers if getattr(a, "_explicit_workers", False) else "llm"


def run_tune(cfg: Config, on_trial: Any = None) -> dict[str, Any]:
    """Run (or join) the Optuna study; write the best planner and the study summary.

    ``on_trial`` is passed to ``optimize.tune.run_study`` (``--mlflow``: ``optimize.tracking.TrialRuns``)."""
    import dspy
    import numpy as np

    from optimize.budget import CallCounter
    from optimize.compile import clean_program
    from optimize.situations import draw_situations
    from optimize.tune import Knobs, TuneSettings, heldout_scores, knobs_of, planner_with, run_study, study_summary
    from programs.lm import describe_lm

    a = cfg.args
    t0 = time.time()
    workers = tune_workers(a)
    pool: list = []
    if a.program:
        from programs.agents.tax_planner import PlannerAgent

        prog = PlannerAgent.load(a.program)
        pool = list(next(iter(prog.named_predictors()))[1].demos)
    elif not a.no_labels:
        say(cfg, f"labeled demonstrations from {len(cfg.train_seeds)} training populations")
        sit = draw_situations(cfg.train_seeds, cfg.econ, cfg.sit)
        sit.sort(key=lambda e: e.year)  # first-year situations first: those are where demos are used
        pool = clean_program_demos(sit)
    settings = TuneSettings(econ=cfg.econ, seeds=cfg.tune_seeds, years=cfg.sit.years, workers=workers,
                            best_k=a.best_k, module_type=a.module_type, lm=a.lm, api_base=a.api_base,
                            structured=a.structured, max_tokens=a.max_tokens, backend_settings=backend_settings(a),
                            reasoning_effort=a.reasoning_effort, demo_pool=pool, base_program=a.program, max_demos=a.max_demos)
    counter = CallCounter()
    say(cfg, f"study {a.study_name!r}: adding {a.trials} trial(s)"
              + (f" to {redact(a.storage)}" if a.storage else " (in memory)"))
    with dspy.context(callbacks=[counter]):
        counter.phase("tune")
        study = run_study(settings, trials=a.trials, storage=a.storage, study_name=a.study_name, seed=a.seed,
                          counter=counter, budget=a.budget, on_trial=on_trial)
        info = study_summary(study)
        if "best" not in info:
            raise RuntimeError(f"study {a.study_name!r} has no complete trial")
        best = knobs_of(info["best"]["knobs"])
        given = Knobs(history_len=max(a.history_len, 1), steps_per_year=a.steps_per_year,
                      temperature=a.temperature, n_demos=min(len(pool), a.max_demos) if a.program else 0)
        counter.phase("evaluate")
        say(cfg, f"held-out end-to-end scores: given knobs {given.to_dict()} vs best {best.to_dict()}")
        before = heldout_scores(settings, given, cfg.heldout_seeds)
        after = heldout_scores(settings, best, cfg.heldout_seeds)
    agent = clean_program(planner_with(settings, best.history_len, best.n_demos))
    save_program(agent, cfg.out)
    summary = {
        "mode": "tune",
        "lm": describe_lm(a.lm, a.api_base),
        "lm_backend": lm_record(a.lm, backend_settings(a)),
        "workers": workers,
        "storage": redact(a.storage) if a.storage else None,
        "study": info,
        "trials_added_by_this_process": a.trials,
        "score": ("end-to-end: mean over tax years 1.. of (W_t - W_none) / (W_oracle - W_none) clipped to [0, 1], "
                  "mean over seeds"),
        "tune_seeds": cfg.tune_seeds,
        "demo_pool": len(pool),
        "heldout": {
            "before": {"knobs": given.to_dict(), **scores_block(before)},
            "after": {"knobs": best.to_dict(), **scores_block(after)},
            "delta_mean": round(float(np.mean(after) - np.mean(before)), 6),
            "per_seed": [{"seed": s, "before": round(b, 6), "after": round(c, 6)}
                         for s, b, c in zip(cfg.heldout_seeds, before, after)],
        },
        "budget": {"limit": a.budget, "calls": counter.snapshot()},
        "program": {"path": str(cfg.out), "history_len": best.history_len, "demos": best.n_demos,
                    "simulation_settings": {"steps_per_year": best.steps_per_year,
                                            "temperature": best.temperature}},
        "notes": ["steps_per_year and temperature are simulation settings, not part of the program: pass them "
                  "to eval.compare / programs.simulate (--steps-per-year, --temperature)."],
        "elapsed_seconds": round(time.time() - t0, 2),
        **common(cfg),
    }
    write_atomic(cfg.summary_path, json.dumps(summary, indent=2) + "\n")
    return summary


def clean_program_demos(examples: Sequence[Any]) -> list:
    """Situations as demonstrations of ``ProposeTaxSchedule`` (inputs and the label only)."""
    import dspy

    from optimize.situations import INPUTS

    out = []
    for e in examples:
        if "rates_percent" not in e:
            continue
        out.append(dspy.Example(**{k: e[k] for k in (*INPUTS, "rates_percent")}).with_inputs(*INPUTS))
    return out

