"""``eval.compare --dry-run``: the LM answers by role and the estimated tokens of a comparison, without
building or calling any LM (``programs.simulation.dryrun``)."""

from __future__ import annotations

from economy import PRESETS
from eval.blackbox import BLACKBOX
from eval.compare.config import LEARNING, CompareConfig


def dry_run_calls(cfg: CompareConfig) -> dict[str, int]:
    """LM answers by role of the whole comparison (``programs.simulation.dryrun``): per seed, each learning
    planner's simulation, and with LM workers each black-box planner's and the empirical Saez elasticity's."""
    from eval.learning import _sim_settings
    from programs.simulation import load_config
    from programs.simulation.dryrun import add_calls, calls_by_role

    parts = []
    for seed in cfg.seeds:
        for p in cfg.planners:
            if p in LEARNING:
                parts.append(calls_by_role(load_config(**_sim_settings(cfg, p, seed))))
            elif p in BLACKBOX and cfg.workers == "llm":
                parts.append(calls_by_role(load_config(**_sim_settings(cfg, p, seed)), planner_calls=False))
        if cfg.workers == "llm" and cfg.brackets in PRESETS:  # the empirical Saez elasticity: 2 tax years
            es = load_config(**_sim_settings(cfg, "es", seed))
            parts.append(calls_by_role(es.model_copy(update={"years": 2}), planner_calls=False))
    return add_calls(*parts)


def dry_run_lines(cfg: CompareConfig) -> list[str]:
    from programs.simulation.dryrun import dry_run

    from programs.lm.reasoning import reasoning_plan

    plan = dry_run(dry_run_calls(cfg), max_tokens=cfg.max_tokens, n_brackets=len(cfg.cutoffs),
                   reasoning=reasoning_plan(cfg.lm, cfg.api_base or None, cfg.reasoning_effort))
    what = (f"eval.compare ({len(cfg.seeds)} seeds x planners {', '.join(cfg.planners)}; {cfg.agents} agents, "
            f"{cfg.years} tax years x {cfg.steps_per_year} steps, workers {cfg.workers})")
    return plan.lines(what) + [plan.cost_line(cfg.lm, cfg.api_base, cfg.price_in, cfg.price_out)]
