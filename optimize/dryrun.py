"""``optimize.planner --dry-run``: the most LM calls of a run by role and their estimated tokens."""

from __future__ import annotations

from optimize.args import PROG
from optimize.config import Config

__all__ = ["dry_run_calls", "dry_run_lines"]


def dry_run_calls(cfg: Config) -> tuple[dict[str, int], str]:
    """The most LM calls of the run by role, and how they were bounded.

    Compile: scoring before and after (``evaluation_calls``) plus the optimizer's bound (``optimize.budget``);
    each evaluation of a situation is 1 planner call plus, with LM workers, ``agents x steps_per_year``
    worker calls, and the optimizer's bound is split in that ratio (its few instruction-proposal or
    reflection calls are counted with the planner's). Tune: ``--trials`` x ``max_calls_per_trial`` (the held-out scoring of the
    knobs after the study is not counted).
    """
    a = cfg.args
    if a.tune:
        from optimize.tune import TuneSettings, max_calls_per_trial

        workers = a.workers if getattr(a, "_explicit_workers", False) else "llm"
        settings = TuneSettings(econ=cfg.econ, seeds=cfg.tune_seeds, years=cfg.sit.years, workers=workers)
        most = a.trials * max_calls_per_trial(settings)
        per_trial_planner = len(cfg.tune_seeds) * cfg.sit.years
        planner = a.trials * per_trial_planner
        return {"worker": most - planner, "planner": planner}, (
            f"--tune: {a.trials} trials x at most {max_calls_per_trial(settings)} calls; the held-out scoring after "
            "the study is not counted")
    w = cfg.econ.agents * a.steps_per_year if cfg.workers == "llm" else 0
    e = 1 + w
    evals = cfg.eval_calls // e
    opt = cfg.plan.max_calls
    opt_workers = round(opt * w / e)
    calls = {"worker": evals * w + opt_workers, "planner": evals + opt - opt_workers}
    return {r: n for r, n in calls.items() if n}, (
        f"scoring before and after {cfg.eval_calls} + {a.optimizer} at most {opt} ({cfg.plan.formula})")


def dry_run_lines(cfg: Config) -> list[str]:
    from programs.simulation.dryrun import dry_run

    calls, how = dry_run_calls(cfg)
    from programs.lm.reasoning import reasoning_plan

    a = cfg.args
    plan = dry_run(calls, module_type=a.module_type, n_brackets=len(cfg.econ.cutoffs), max_tokens=a.max_tokens,
                   reasoning=reasoning_plan(a.lm, a.api_base, a.reasoning_effort))
    lines = plan.lines(f"{PROG} ({'--tune' if a.tune else a.optimizer}; at most)")
    return [lines[0] + f" [{how}]", *lines[1:]]

