"""The planners that learn across tax years: ``llm``, ``compiled`` and ``democratic``.

Each runs a :class:`programs.simulation.Simulation` on the comparison's population for ``--years`` tax
years. Its reported schedule is the one it set for the final tax year, scored like every baseline: with
rational workers on the same population (so the oracle stays a ceiling). The per-year trajectory scores
each year's schedule the same way; ``welfare_sim`` keeps what the simulation's own workers reached.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


from economy.tax import PRESETS, to_fraction
from eval import baselines
from eval.report import Run, YearRecord
from programs.lm import OFFLINE_LABEL



def _sim_settings(cfg: Any, planner: str, seed: int) -> dict[str, Any]:
    scenario = "democratic" if planner == "democratic" else cfg.scenario
    if planner in ("es", "random") and scenario == "democratic":
        scenario = "rational"  # elections would override a black-box planner's proposals
    kappa: Any = cfg.kappa_name if cfg.kappa_name in ("calibrated", "paper") else cfg.kappa
    settings = dict(agents=cfg.agents, years=cfg.years, steps_per_year=cfg.steps_per_year, scenario=scenario,
                    workers=cfg.workers, brackets=cfg.brackets if cfg.brackets in PRESETS else list(cfg.cutoffs),
                    swf=cfg.swf, kappa=kappa, seed=seed)
    if cfg.temperature is not None:
        settings["temperature"] = cfg.temperature
    settings["concurrency"] = cfg.concurrency
    # The welfare-weight floor and the world's rules (--preset paper-v1); absent on older configs.
    for key in ("skill_floor", "hours_grid", "rate_grid", "max_rate_move", "top_income_cap", "history_len"):
        v = getattr(cfg, key, None)
        if v is not None:
            settings[key] = v
    if getattr(cfg, "initial_rate", None) is not None:
        settings["initial_rates"] = [cfg.initial_rate] * len(cfg.cutoffs)  # custom cut-offs too
    return settings


def _world(cfg: Any) -> dict[str, Any]:
    return cfg.world() if hasattr(cfg, "world") else {}


def _lm_options(cfg: Any) -> dict[str, Any]:
    """The client settings shared by the pre-flight check and the LMs it admits."""
    kw: dict[str, Any] = dict(concurrency=cfg.concurrency, timeout=cfg.timeout, num_retries=cfg.num_retries,
                              structured=cfg.structured, max_tokens=cfg.max_tokens,
                              settings=getattr(cfg, "backend_settings", None) or None,
                              reasoning_effort=getattr(cfg, "reasoning_effort", None))
    if cfg.temperature is not None:
        kw["temperature"] = cfg.temperature
    return kw


def check_learning_config(cfg: Any) -> None:
    """Validate everything the learning planners need, without building or calling any LM.

    Raises ``ConfigError`` (one line) on: a bad ``--lm``/``--api-base``/``--temperature``, a simulation setting out of
    range, or a compiled program that does not load or was compiled for other brackets.
    """
    from programs.errors import ConfigError
    from programs.lm import ConfigError as LMConfigError
    from programs.lm import check_lm_config
    from programs.simulation import load_config

    learning = [p for p in cfg.planners if p in ("llm", "compiled", "democratic")]
    try:
        # probe: one GET {base}/models per endpoint, so an unreachable server fails here, not mid-run.
        check_lm_config(cfg.lm, cfg.api_base or None, probe=True, **_lm_options(cfg))
        if "/" in cfg.lm and not cfg.lm.startswith("local:"):
            # A served or hosted model is built once now (no call is sent), so settings DSPy refuses are this
            # one line rather than an error mid-comparison. The in-process models are not loaded twice.
            from programs.lm import build_lms

            build_lms(cfg.lm, cfg.api_base or None, seed=cfg.seeds[0], **_lm_options(cfg))
        for p in learning:
            load_config(**_sim_settings(cfg, p, cfg.seeds[0]))
    except LMConfigError as e:
        raise ConfigError(str(e)) from None
    if "compiled" in learning:
        try:
            agent = _load_program(cfg.planner_program)
        except Exception as e:  # a broken file: say which and why, in one line
            raise ConfigError(f"--planner-program {cfg.planner_program!r} does not load: "
                              f"{' '.join(str(e).split())[:200]}") from None
        want = list(cfg.cutoffs)
        if [float(c) for c in agent.cutoffs] != [float(c) for c in want]:
            raise ConfigError(f"--planner-program was compiled for brackets {agent.cutoffs} but --brackets "
                              f"{cfg.brackets!r} has {want}")


def _serves_offline_engine(api_base: str, timeout: float = 3.0) -> bool:
    """Whether an OpenAI-compatible endpoint is ``programs.serve`` (its ``/models`` says so).

    One GET of the model list, not an LM call; an unreachable endpoint or another server gives False.
    """
    import json
    import urllib.request

    from programs.lm.endpoint import split_endpoint

    try:
        base, auth, _ = split_endpoint(api_base)  # a gateway's credentials, as the calls send them
        req = urllib.request.Request(base.rstrip("/") + "/models", headers=auth)
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            body = json.loads(resp.read(65536).decode("utf-8", "replace"))
        return any("not a language model" in str(m.get("description", "")) for m in body.get("data", []))
    except Exception:  # any failure: we simply cannot tell, and the label stays the model string
        return False


def usage_sum(items):
    from programs.lm.usage import usage_sum as _sum

    return _sum(items)


def _load_program(path: str):
    from programs.agents.tax_planner import PlannerAgent

    return PlannerAgent.load(path)


class LearningContext:
    """Runs the learning planners of one comparison (LMs are built per seed, lazily)."""

    def __init__(self, cfg: Any, probe: bool = True) -> None:
        from programs.lm import describe_lm
        from programs.lm.reasoning import reasoning_plan

        self.cfg = cfg
        plan = reasoning_plan(cfg.lm, cfg.api_base or None, getattr(cfg, "reasoning_effort", None))
        temperature = None if cfg.temperature is None and not plan.fixed_sampling else plan.temperature(cfg.temperature)
        self.lm_label = describe_lm(cfg.lm, cfg.api_base or None, temperature=temperature)
        if plan.reasons:
            self.lm_label += f", {plan.describe()}"
        # (A worker process's context only runs and counts: it need not ask the endpoints what they serve.)
        served = [b for b in cfg.api_base if _serves_offline_engine(b)] if probe else []
        if served:
            # `programs.serve` answers under any model name: say what actually answered.
            self.lm_label += (f" — the endpoint{'s' if len(served) > 1 else ''} serve{'' if len(served) > 1 else 's'} "
                              f"the {OFFLINE_LABEL} over HTTP")
        self.offline = cfg.lm == "offline" or bool(served)
        self._fallbacks: dict[str, int] = {}
        self._leaders: list[str] = []
        #: LM answers and tokens by role over every LM simulation of the comparison.
        self.usage: dict[str, dict[str, int]] = {}

    def _lms(self, seed: int) -> list:
        from programs.lm import build_lms

        return build_lms(self.cfg.lm, self.cfg.api_base or None, seed=seed, **_lm_options(self.cfg))

    def _guard(self):
        """A fresh ``FallbackGuard`` per simulation (``--max-fallback-rate``, ``--fallback-patience``)."""
        from programs.simulation.guard import FallbackGuard

        return FallbackGuard(getattr(self.cfg, "max_fallback_rate", 0.5), getattr(self.cfg, "fallback_patience", 3))

    def run(self, planner: str, population: Any, seed: int) -> Run:
        """Simulate ``planner`` on ``population`` for the configured tax years; score its schedules."""
        from programs.simulation import Simulation, load_config

        cfg = self.cfg
        sim_cfg = load_config(**_sim_settings(cfg, planner, seed))
        agent = _load_program(cfg.planner_program) if planner == "compiled" else None
        sim = Simulation(sim_cfg, lms=self._lms(seed), planner=agent, population=population)
        try:
            summary = sim.run(progress=False, guard=self._guard())
        finally:
            sim.close()
        base = sim.initial_schedule
        years: list[YearRecord] = []
        for i, y in enumerate(summary.years):
            sched = base.with_rates(np.clip(to_fraction(y.rates_percent), 0.0, 1.0))
            years.append(YearRecord(year=i, rates=sched.rates.tolist(),
                                    welfare=baselines.welfare_of(population, sched, cfg.swf, cfg.kappa, **_world(cfg)),
                                    welfare_sim=math.nan if y.welfare is None else float(y.welfare)))
        final = base.with_rates(np.clip(to_fraction(summary.final.rates_percent), 0.0, 1.0))
        out = baselines.evaluate(population, final, cfg.swf, cfg.kappa, **_world(cfg))
        self.usage = usage_sum([self.usage, sim.usage_totals])
        fb = {k: int(v) for k, v in summary.fallbacks.items()}
        for k, v in fb.items():
            self._fallbacks[f"{planner}:{k}"] = self._fallbacks.get(f"{planner}:{k}", 0) + v
        if planner == "democratic" and summary.leader is not None:
            lead = summary.leader
            persona = " ".join(lead.persona.split())
            persona = persona if len(persona) <= 90 else persona[:89].rstrip() + "…"
            self._leaders.append(f"seed {seed}: {lead.name} (agent {lead.agent_id}: {persona})")
        extra = {
            "welfare_sim": float(summary.final.welfare if summary.final.welfare is not None else math.nan),
            "fallbacks": float(sum(fb.values())),
        }
        return Run(planner, seed, final, out, years=years, extra=extra)

    def run_blackbox(self, planner: str, population: Any, seed: int) -> Run:
        """Run black-box planner ``planner`` (``es``/``random``, ``eval.blackbox``) with the LM planner's
        information: the same simulation settings, years and start, one welfare figure per tax year."""
        from eval.blackbox import run_blackbox
        from programs.simulation import load_config

        cfg = self.cfg
        sim_cfg = load_config(**_sim_settings(cfg, planner, seed))
        lms = self._lms(seed) if sim_cfg.workers == "llm" else None
        res = run_blackbox(planner, sim_cfg, seed=seed, lms=lms, population=population,
                           guard=self._guard() if lms else None)
        base = sim_cfg.initial_tax_schedule()
        years = [YearRecord(year=i, rates=list(r),
                            welfare=baselines.welfare_of(population, base.with_rates(r), cfg.swf, cfg.kappa,
                                                         skill_floor=cfg.skill_floor),
                            welfare_sim=float(w))
                 for i, (r, w) in enumerate(zip(res.rates_by_year, res.welfare_by_year))]
        final = base.with_rates(res.final_rates)
        out = baselines.evaluate(population, final, cfg.swf, cfg.kappa, skill_floor=cfg.skill_floor)
        for k, v in res.fallbacks.items():
            self._fallbacks[f"{planner}:{k}"] = self._fallbacks.get(f"{planner}:{k}", 0) + v
        self.usage = usage_sum([self.usage, res.usage])
        extra = {"welfare_sim": float(res.welfare_by_year[-1]),
                 "fallbacks": float(sum(res.fallbacks.values())),
                 "best_seen_year": float(res.best_index),
                 "best_seen_welfare": years[res.best_index].welfare}
        return Run(planner, seed, final, out, years=years, extra=extra)

    def counts(self) -> dict[str, Any]:
        """What this context counted (usage, fallbacks, leaders): a worker process's part, for :meth:`merge`."""
        return {"usage": self.usage, "fallbacks": dict(self._fallbacks), "leaders": list(self._leaders)}

    def merge(self, counts: dict[str, Any]) -> None:
        """Add another context's :meth:`counts` (merged in the comparison's own order: the notes do not depend
        on which process finished first)."""
        self.usage = usage_sum([self.usage, counts["usage"]])
        for k, v in counts["fallbacks"].items():
            self._fallbacks[k] = self._fallbacks.get(k, 0) + int(v)
        self._leaders += counts["leaders"]

    def count_fallbacks(self, who: str, counts: dict[str, int]) -> None:
        """Add another simulation's fallbacks (e.g. the LM workers of the empirical Saez elasticity) to the notes."""
        for k, v in counts.items():
            self._fallbacks[f"{who}:{k}"] = self._fallbacks.get(f"{who}:{k}", 0) + int(v)

    def count_usage(self, usage: dict[str, dict[str, int]]) -> None:
        """Add another simulation's answers and tokens by role (e.g. the empirical Saez elasticity's)."""
        self.usage = usage_sum([self.usage, usage])

    def usage_summary(self) -> dict[str, Any] | None:
        """Tokens by role over the comparison's LM simulations with their estimated cost (a dumped
        ``UsageSummary``), or None when no LM was called."""
        from programs.lm.cost import estimate_cost
        from programs.simulation.records import usage_summary

        if not self.usage:
            return None
        s = usage_summary(self.usage, "estimated" if self.offline else "reported").model_dump()
        s["cost"] = estimate_cost(s["total"], self.cfg.lm, self.cfg.api_base or None,
                                  price_in=getattr(self.cfg, "price_in", None),
                                  price_out=getattr(self.cfg, "price_out", None), tokens_estimated=self.offline)
        return s

    def notes(self) -> list[str]:
        """Report notes: fallbacks counted in the simulations, the LM usage, the elected leaders."""
        from programs.cli import usage_line

        out = []
        line = usage_line(self.usage_summary())
        if line:
            out.append("LM usage of the comparison's simulations (learning and black-box planners, empirical Saez "
                       "elasticity): " + line + ".")
        if self._fallbacks:
            out.append("Fallbacks in the learning planners' simulations (an unusable LM answer replaced by the "
                       "last valid action; 'out_of_range' = a number outside its range, which is not clamped): "
                       + ", ".join(f"{k} {v}" for k, v in sorted(self._fallbacks.items())) + ".")
        else:
            out.append("No LM fallbacks in the learning planners' simulations.")
        if self._leaders:
            out.append("Final elected leaders (democratic): " + "; ".join(self._leaders) + ".")
        return out
