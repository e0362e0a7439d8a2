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

from economy import TaxSchedule
from economy.tax import PRESETS
from eval import baselines
from eval.report import Run, YearRecord
from programs.lm import OFFLINE_LABEL

#: Fallback kinds that are not failures (a rate clamped into [0, 100] still yields a valid answer).
_NOT_FAILURES = frozenset({"clamped"})


def _sim_settings(cfg: Any, planner: str, seed: int) -> dict[str, Any]:
    scenario = "democratic" if planner == "democratic" else cfg.scenario
    kappa: Any = cfg.kappa_name if cfg.kappa_name in ("calibrated", "paper") else cfg.kappa
    settings = dict(agents=cfg.agents, years=cfg.years, steps_per_year=cfg.steps_per_year, scenario=scenario,
                    workers=cfg.workers, brackets=cfg.brackets, swf=cfg.swf, kappa=kappa, seed=seed)
    if cfg.temperature is not None:
        settings["temperature"] = cfg.temperature
    settings["concurrency"] = cfg.concurrency
    return settings


def _lm_options(cfg: Any) -> dict[str, Any]:
    """The client settings shared by the pre-flight check and the LMs it admits."""
    kw: dict[str, Any] = dict(concurrency=cfg.concurrency, timeout=cfg.timeout, num_retries=cfg.num_retries,
                              structured=cfg.structured, max_tokens=cfg.max_tokens)
    if cfg.temperature is not None:
        kw["temperature"] = cfg.temperature
    return kw


def check_learning_config(cfg: Any) -> None:
    """Validate everything the learning planners need, without building or calling any LM.

    Raises ``eval.compare.ConfigError`` (one line) on: brackets that are not a preset (the simulation
    runs on preset brackets), a bad ``--lm``/``--api-base``/``--temperature``, a simulation setting out of
    range, or a compiled program that does not load or was compiled for other brackets.
    """
    from programs.errors import ConfigError
    from programs.lm import ConfigError as LMConfigError
    from programs.lm import check_lm_config
    from programs.simulation import load_config

    learning = [p for p in cfg.planners if p in ("llm", "compiled", "democratic")]
    if cfg.brackets not in PRESETS:
        raise ConfigError(f"planners {', '.join(learning)} simulate on a bracket preset ({', '.join(sorted(PRESETS))}), "
                          f"not on custom --brackets {cfg.brackets!r}; choose a preset or drop them from --planners")
    try:
        # probe: one GET {base}/models per endpoint, so an unreachable server fails here, not mid-run.
        check_lm_config(cfg.lm, cfg.api_base or None, probe=True, **_lm_options(cfg))
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
        want = list(PRESETS[cfg.brackets][0])
        if [float(c) for c in agent.cutoffs] != [float(c) for c in want]:
            raise ConfigError(f"--planner-program was compiled for brackets {agent.cutoffs} but --brackets "
                              f"{cfg.brackets!r} has {want}")


def _serves_offline_engine(api_base: str, timeout: float = 3.0) -> bool:
    """Whether an OpenAI-compatible endpoint is ``programs.serve`` (its ``/models`` says so).

    One GET of the model list, not an LM call; an unreachable endpoint or another server gives False.
    """
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(api_base.rstrip("/") + "/models", timeout=timeout) as resp:  # noqa: S310
            body = json.loads(resp.read(65536).decode("utf-8", "replace"))
        return any("not a language model" in str(m.get("description", "")) for m in body.get("data", []))
    except Exception:  # any failure: we simply cannot tell, and the label stays the model string
        return False


def _load_program(path: str):
    from programs.agents.tax_planner import PlannerAgent

    return PlannerAgent.load(path)


class LearningContext:
    """Runs the learning planners of one comparison (LMs are built per seed, lazily)."""

    def __init__(self, cfg: Any) -> None:
        from programs.lm import describe_lm

        self.cfg = cfg
        self.lm_label = describe_lm(cfg.lm, cfg.api_base or None, temperature=cfg.temperature)
        served = [b for b in cfg.api_base if _serves_offline_engine(b)]
        if served:
            # `programs.serve` answers under any model name: say what actually answered.
            self.lm_label += (f" — the endpoint{'s' if len(served) > 1 else ''} serve{'' if len(served) > 1 else 's'} "
                              f"the {OFFLINE_LABEL} over HTTP")
        self.offline = cfg.lm == "offline" or bool(served)
        self._fallbacks: dict[str, int] = {}
        self._leaders: list[str] = []

    def _lms(self, seed: int) -> list:
        from programs.lm import build_lms

        return build_lms(self.cfg.lm, self.cfg.api_base or None, seed=seed, **_lm_options(self.cfg))

    def run(self, planner: str, population: Any, seed: int) -> Run:
        """Simulate ``planner`` on ``population`` for the configured tax years; score its schedules."""
        from programs.simulation import Simulation, load_config

        cfg = self.cfg
        sim_cfg = load_config(**_sim_settings(cfg, planner, seed))
        agent = _load_program(cfg.planner_program) if planner == "compiled" else None
        sim = Simulation(sim_cfg, lms=self._lms(seed), planner=agent, population=population)
        try:
            summary = sim.run(progress=False)
        finally:
            sim.close()
        base = sim.initial_schedule
        years: list[YearRecord] = []
        for i, y in enumerate(summary["years"]):
            sched = base.with_rates(np.clip(np.asarray(y["rates_percent"], dtype=float) / 100.0, 0.0, 1.0))
            years.append(YearRecord(year=i + 1, rates=sched.rates.tolist(),
                                    welfare=baselines.welfare_of(population, sched, cfg.swf, cfg.kappa),
                                    welfare_sim=float(y.get("welfare", math.nan))))
        final = base.with_rates(np.clip(np.asarray(summary["final"]["rates_percent"], dtype=float) / 100.0, 0.0, 1.0))
        out = baselines.evaluate(population, final, cfg.swf, cfg.kappa)
        fb = {k: int(v) for k, v in (summary.get("fallbacks") or {}).items()}
        for k, v in fb.items():
            self._fallbacks[f"{planner}:{k}"] = self._fallbacks.get(f"{planner}:{k}", 0) + v
        if planner == "democratic" and summary.get("leader"):
            lead = summary["leader"]
            persona = " ".join(str(lead.get("persona", "")).split())
            persona = persona if len(persona) <= 90 else persona[:89].rstrip() + "…"
            self._leaders.append(f"seed {seed}: {lead.get('name')} (agent {lead.get('agent_id')}: {persona})")
        extra = {
            "welfare_sim": float(summary["final"].get("welfare") or math.nan),
            "fallbacks": float(sum(v for k, v in fb.items() if k not in _NOT_FAILURES)),
        }
        return Run(planner, seed, final, out, years=years, extra=extra)

    def notes(self) -> list[str]:
        """Report notes: fallbacks counted in the simulations, the elected leaders."""
        out = []
        if self._fallbacks:
            out.append("Fallbacks in the learning planners' simulations (an unusable LM answer replaced by the "
                       "last valid action; 'clamped' = a rate clamped into range): "
                       + ", ".join(f"{k} {v}" for k, v in sorted(self._fallbacks.items())) + ".")
        else:
            out.append("No LM fallbacks in the learning planners' simulations.")
        if self._leaders:
            out.append("Final elected leaders (democratic): " + "; ".join(self._leaders) + ".")
        return out
