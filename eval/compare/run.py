"""Running a comparison: every planner on every seed's population, the oracle, the Saez robustness runs and
the SWF matrix; the outputs are written by :mod:`eval.compare.outputs`."""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from economy import PRESETS, TaxSchedule
from eval import baselines
from eval.blackbox import BLACKBOX
from eval.compare.config import BASELINES, LEARNING, CompareConfig
from eval.compare.outputs import write_outputs
from eval.report import Run


def run_comparison(cfg: CompareConfig, *, log=print) -> dict[str, Any]:
    """Run every planner on every seed, write the outputs and return them (runs, table, paths)."""
    from tqdm.auto import tqdm

    from economy.population import Population

    t0 = time.perf_counter()
    cutoffs = np.asarray(cfg.cutoffs, dtype=np.float64)
    learning = [p for p in cfg.planners if p in LEARNING]
    blackbox = [p for p in cfg.planners if p in BLACKBOX]
    lm_label = None
    ctx = None
    if learning or blackbox:
        from eval.learning import LearningContext
        ctx = LearningContext(cfg)  # LMs are built per seed (the offline engine is seeded by it)
        if learning or cfg.workers == "llm":
            lm_label = ctx.lm_label
    n_tasks = len(cfg.seeds) * (len(BASELINES) + len(learning) + len(blackbox) + 2)  # + SWF matrix, Saez robustness
    pops: dict[int, Any] = {}
    robustness_rows: list[dict[str, Any]] = []
    world = cfg.world()
    bar = tqdm(total=n_tasks, desc="eval.compare", unit="run", disable=not cfg.progress, file=sys.stderr)
    runs: list[Run] = []
    refs: dict[int, tuple[float, float]] = {}
    notes: list[str] = list(cfg.extra.get("notes", []))
    for seed in cfg.seeds:
        pop = Population.sample(cfg.agents, seed=seed)
        pops[seed] = pop
        schedules: dict[str, TaxSchedule] = {}
        extra: dict[str, dict[str, float]] = {}

        def step(name: str) -> None:
            bar.set_postfix_str(f"seed {seed}: {name}")

        step("none")  # the one-shot baselines first, then the learning planners, then the oracle
        schedules["none"] = cfg.capped(baselines.none_schedule(cutoffs))
        bar.update()
        step("flat")
        # (The flat and oracle searches run without the top-income cap; their results are scored with it.)
        schedules["flat"] = cfg.capped(baselines.flat_schedule(pop, cutoffs, cfg.swf, cfg.kappa, **world))
        bar.update()
        step("us_federal")
        us, note = baselines.us_federal_schedule(cfg.brackets, cutoffs)
        schedules["us_federal"] = cfg.capped(us) if cfg.top_income_cap is None or us.cutoffs[-1] < cfg.top_income_cap else us
        if note and note not in notes:
            notes.append(note)
        bar.update()
        step("saez")
        schedules["saez"] = cfg.capped(baselines.saez_baseline(pop, cutoffs, cfg.swf, cfg.kappa,
                                                               skill_floor=cfg.skill_floor))
        bar.update()
        if "saez_v1" in cfg.planners:
            step("saez_v1")
            schedules["saez_v1"] = cfg.capped(baselines.saez_v1_baseline(pop, cutoffs, cfg.saez_v1_variant))
        bar.update()
        learned: list[Run] = []
        for name in learning:
            step(name)
            learned.append(ctx.run(name, pop, seed))
            bar.update()
        for name in blackbox:
            step(name)
            learned.append(ctx.run_blackbox(name, pop, seed))
            bar.update()
        step("oracle")
        # The oracle's search also starts from every other planner's schedule on these brackets, so it is
        # a ceiling over all rows (LM planners included) whatever its trial budget.
        schedules["oracle"], n_eval = baselines.oracle_baseline(
            pop, cutoffs, cfg.swf, cfg.kappa, seed=seed, n_trials=cfg.oracle_trials, n_refine=cfg.oracle_refine,
            candidates=[schedules[k] for k in ("saez", "saez_v1", "flat", "none") if k in schedules]
            + [r.schedule for r in learned], **world)
        extra["oracle"] = {"oracle_evaluations": float(n_eval)}
        bar.update()
        outcomes = {k: baselines.evaluate(pop, s, cfg.swf, cfg.kappa, **world) for k, s in schedules.items()}
        refs[seed] = (float(outcomes["none"].welfare), float(outcomes["oracle"].welfare))
        step("saez robustness")
        robustness_rows += _saez_robustness(cfg, ctx, pop, seed, cutoffs, refs[seed], schedules["saez"])
        bar.update()
        runs += learned
        for name in BASELINES:
            if name in cfg.planners and name in schedules:
                runs.append(Run(name, seed, schedules[name], outcomes[name], extra=extra.get(name, {})))
    bar.set_postfix_str("every planner under every SWF")
    from eval import swf as swf_eval

    matrix = swf_eval.swf_matrix(runs, pops, cutoffs, main_swf=cfg.swf, main_refs=refs, kappa=cfg.kappa,
                                 skill_floor=cfg.skill_floor)
    bar.update(len(cfg.seeds))
    bar.close()
    elapsed = time.perf_counter() - t0
    return write_outputs(cfg, runs=runs, pops=pops, refs=refs, matrix=matrix, robustness_rows=robustness_rows,
                         notes=notes, ctx=ctx, lm_label=lm_label, learning=learning, blackbox=blackbox,
                         cutoffs=cutoffs, elapsed=elapsed, log=log)


def _saez_robustness(cfg: CompareConfig, ctx: Any, pop: Any, seed: int, cutoffs: np.ndarray,
                     refs: tuple[float, float], saez: TaxSchedule) -> list[dict[str, Any]]:
    """Saez's elasticity sweep and empirical elasticity on one seed (LM workers when the run uses them)."""
    from eval.swf import saez_robustness

    sim_config, lms = None, None
    if cfg.workers == "llm" and ctx is not None and cfg.brackets in PRESETS:
        from eval.learning import _sim_settings
        from programs.simulation import load_config

        sim_config = load_config(**_sim_settings(cfg, "es", seed))  # the rational/bounded scenario, LM workers
        lms = ctx._lms(seed)
    fallbacks: dict[str, int] = {}
    usage: dict[str, dict[str, int]] = {}
    rows = saez_robustness(pop, cutoffs, seed=seed, swf=cfg.swf, kappa=cfg.kappa, skill_floor=cfg.skill_floor,
                           refs=refs, base=saez, sim_config=sim_config, lms=lms, fallbacks=fallbacks, usage=usage)
    if ctx is not None:
        ctx.count_fallbacks("saez_empirical", fallbacks)
        ctx.count_usage(usage)
    return rows
