"""Running a comparison: every planner on every seed's population, the oracle, the Saez robustness runs and
the SWF matrix's oracles, as independent units (``eval.parallel``: ``--jobs`` worker processes, the same output
for every ``--jobs``); the outputs are written by :mod:`eval.compare.outputs`.

Per seed: the one-shot baselines and each learning and black-box planner are units of their own; the oracle
waits for them (its search starts from every other planner's schedule); the Saez robustness runs and the
matrix's oracle under each other SWF wait for the oracle. A unit's function is module-level and rebuilds
what it needs from the configuration (the population from its seed, the LMs per unit, as before), so a worker
process computes exactly what this process would; the results are assembled here in one fixed order.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from economy import PRESETS, TaxSchedule
from eval import baselines
from eval.blackbox import BLACKBOX
from eval.compare.config import BASELINES, LEARNING, CompareConfig
from eval.compare.outputs import write_outputs
from eval.parallel import Unit, run_units
from eval.report import Run


def run_comparison(cfg: CompareConfig, *, log=print) -> dict[str, Any]:
    """Run every planner on every seed, write the outputs and return them (runs, table, paths)."""
    t0 = time.perf_counter()
    plan = ComparisonPlan(cfg)
    results = run_units(plan.units(), cfg.jobs, desc="eval.compare", progress=cfg.progress)
    return plan.finish(results, elapsed=time.perf_counter() - t0, log=log)


# ------------------------------------------------------------------------------------------------------
# the units (module-level: worker processes import them by name)
# ------------------------------------------------------------------------------------------------------
def _population(cfg: CompareConfig, seed: int) -> Any:
    from economy.population import Population

    return Population.sample(cfg.agents, seed=seed)


def _context(cfg: CompareConfig) -> Any:
    from eval.learning import LearningContext

    return LearningContext(cfg, probe=False)


def baselines_unit(cfg: CompareConfig, seed: int) -> tuple[dict[str, TaxSchedule], str | None]:
    """The one-shot schedules of one seed (none, flat, US federal, Saez, saez_v1 when asked) and a note."""
    pop = _population(cfg, seed)
    cutoffs = np.asarray(cfg.cutoffs, dtype=np.float64)
    schedules: dict[str, TaxSchedule] = {"none": cfg.capped(baselines.none_schedule(cutoffs))}
    # (The flat and oracle searches run without the top-income cap; their results are scored with it.)
    schedules["flat"] = cfg.capped(baselines.flat_schedule(pop, cutoffs, cfg.swf, cfg.kappa, **cfg.world()))
    us, note = baselines.us_federal_schedule(cfg.brackets, cutoffs)
    schedules["us_federal"] = cfg.capped(us) if cfg.top_income_cap is None or us.cutoffs[-1] < cfg.top_income_cap else us
    schedules["saez"] = cfg.capped(baselines.saez_baseline(pop, cutoffs, cfg.swf, cfg.kappa,
                                                           skill_floor=cfg.skill_floor))
    if "saez_v1" in cfg.planners:
        schedules["saez_v1"] = cfg.capped(baselines.saez_v1_baseline(pop, cutoffs, cfg.saez_v1_variant))
    return schedules, note


def planner_unit(cfg: CompareConfig, planner: str, seed: int) -> tuple[Run, dict[str, Any]]:
    """One learning (``eval.learning``) or black-box (``eval.blackbox``) planner on one seed, and what it counted."""
    ctx = _context(cfg)
    pop = _population(cfg, seed)
    run = ctx.run_blackbox(planner, pop, seed) if planner in BLACKBOX else ctx.run(planner, pop, seed)
    return run, ctx.counts()


def oracle_unit(cfg: CompareConfig, seed: int, candidates: list[TaxSchedule]) -> tuple[TaxSchedule, int]:
    """The oracle of one seed, its search started from ``candidates`` (every other planner's schedule)."""
    cutoffs = np.asarray(cfg.cutoffs, dtype=np.float64)
    return baselines.oracle_baseline(_population(cfg, seed), cutoffs, cfg.swf, cfg.kappa, seed=seed,
                                     n_trials=cfg.oracle_trials, n_refine=cfg.oracle_refine, candidates=candidates,
                                     **cfg.world())


def robustness_unit(cfg: CompareConfig, seed: int, refs: tuple[float, float],
                    saez: TaxSchedule) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Saez's robustness rows of one seed and, when LM workers ran, what they counted."""
    ctx = _context(cfg) if (set(cfg.planners) & (set(LEARNING) | set(BLACKBOX))) else None
    cutoffs = np.asarray(cfg.cutoffs, dtype=np.float64)
    rows = _saez_robustness(cfg, ctx, _population(cfg, seed), seed, cutoffs, refs, saez)
    return rows, None if ctx is None else ctx.counts()


def matrix_unit(cfg: CompareConfig, seed: int, swf: str, candidates: list[TaxSchedule]) -> tuple[float, float]:
    """(W_none, W_oracle) of one seed under another SWF than the run's (the SWF matrix's references)."""
    from eval.swf import swf_refs

    cutoffs = np.asarray(cfg.cutoffs, dtype=np.float64)
    return swf_refs(_population(cfg, seed), cutoffs, cfg.swf, swf, cfg.kappa, cfg.skill_floor, seed, candidates)


# ------------------------------------------------------------------------------------------------------
class ComparisonPlan:
    """The units of one comparison and, from their results, its runs, tables and files.

    ``prefix`` keeps the keys of several comparisons apart when one pool runs them all (``eval.replicate``).
    """

    def __init__(self, cfg: CompareConfig, prefix: str = "") -> None:
        self.cfg, self.prefix = cfg, prefix
        self.cutoffs = np.asarray(cfg.cutoffs, dtype=np.float64)
        self.learning = [p for p in cfg.planners if p in LEARNING]
        self.blackbox = [p for p in cfg.planners if p in BLACKBOX]
        self.ctx = None
        self.lm_label = None
        if self.learning or self.blackbox:
            from eval.learning import LearningContext

            self.ctx = LearningContext(cfg)  # LMs are built per unit (the offline engine is seeded by the seed)
            if self.learning or cfg.workers == "llm":
                self.lm_label = self.ctx.lm_label
        self._pops: dict[int, Any] = {}
        self._outcomes: dict[int, dict[str, Any]] = {}

    def key(self, seed: int, what: str) -> Hashable:
        return (self.prefix, seed, what)

    def pop(self, seed: int) -> Any:
        if seed not in self._pops:
            self._pops[seed] = _population(self.cfg, seed)
        return self._pops[seed]

    def _schedules(self, seed: int, r: Mapping[Hashable, Any]) -> dict[str, TaxSchedule]:
        schedules = dict(r[self.key(seed, "baselines")][0])
        if self.key(seed, "oracle") in r:
            schedules["oracle"] = r[self.key(seed, "oracle")][0]
        return schedules

    def _learned(self, seed: int, r: Mapping[Hashable, Any]) -> list[Run]:
        return [r[self.key(seed, p)][0] for p in self.learning + self.blackbox]

    def _seed_outcomes(self, seed: int, r: Mapping[Hashable, Any]) -> dict[str, Any]:
        """Every one-shot schedule of ``seed`` scored with rational workers (once the oracle is done)."""
        if seed not in self._outcomes:
            cfg = self.cfg
            self._outcomes[seed] = {k: baselines.evaluate(self.pop(seed), s, cfg.swf, cfg.kappa, **cfg.world())
                                    for k, s in self._schedules(seed, r).items()}
        return self._outcomes[seed]

    def _refs(self, seed: int, r: Mapping[Hashable, Any]) -> tuple[float, float]:
        out = self._seed_outcomes(seed, r)
        return float(out["none"].welfare), float(out["oracle"].welfare)

    def _seed_runs(self, seed: int, r: Mapping[Hashable, Any]) -> list[Run]:
        """One seed's rows: the learning and black-box planners, then the listed baselines in BASELINES order."""
        schedules, outcomes = self._schedules(seed, r), self._seed_outcomes(seed, r)
        runs = self._learned(seed, r)
        n_eval = r[self.key(seed, "oracle")][1]
        for name in BASELINES:
            if name in self.cfg.planners and name in schedules:
                extra = {"oracle_evaluations": float(n_eval)} if name == "oracle" else {}
                runs.append(Run(name, seed, schedules[name], outcomes[name], extra=extra))
        return runs

    def _matrix_swfs(self) -> list[str]:
        from economy.welfare import SWFS

        return [s for s in SWFS if s != self.cfg.swf]

    def units(self) -> list[Unit]:
        """Per seed, in priority order: the baselines and planners, the oracle, the robustness runs, the matrix."""
        cfg, k = self.cfg, self.key
        out: list[Unit] = []
        for seed in cfg.seeds:
            first = [k(seed, "baselines")] + [k(seed, p) for p in self.learning + self.blackbox]
            out.append(Unit(k(seed, "baselines"), baselines_unit, (cfg, seed), label=f"seed {seed}: baselines"))
            out += [Unit(k(seed, p), planner_unit, (cfg, p, seed), label=f"seed {seed}: {p}")
                    for p in self.learning + self.blackbox]

            def oracle_args(r, seed=seed):
                s = r[k(seed, "baselines")][0]
                return (cfg, seed, [s[n] for n in ("saez", "saez_v1", "flat", "none") if n in s]
                        + [run.schedule for run in self._learned(seed, r)])

            out.append(Unit(k(seed, "oracle"), oracle_unit, oracle_args, after=tuple(first),
                            label=f"seed {seed}: oracle"))

            def robustness_args(r, seed=seed):
                return (cfg, seed, self._refs(seed, r), self._schedules(seed, r)["saez"])

            out.append(Unit(k(seed, "robustness"), robustness_unit, robustness_args,
                            after=(k(seed, "oracle"),), label=f"seed {seed}: Saez robustness"))
            for swf in self._matrix_swfs():
                def matrix_args(r, seed=seed, swf=swf):
                    from eval.swf import matrix_candidates

                    return (cfg, seed, swf, matrix_candidates(self._seed_runs(seed, r), self.cutoffs))

                out.append(Unit(k(seed, f"swf:{swf}"), matrix_unit, matrix_args, after=(*first, k(seed, "oracle")),
                                label=f"seed {seed}: oracle under {swf}"))
        return out

    def finish(self, r: Mapping[Hashable, Any], *, elapsed: float, log=print) -> dict[str, Any]:
        """Assemble the units' results in the comparison's fixed order and write the outputs."""
        from eval import swf as swf_eval

        cfg = self.cfg
        notes: list[str] = list(cfg.extra.get("notes", []))
        runs: list[Run] = []
        refs: dict[int, tuple[float, float]] = {}
        robustness_rows: list[dict[str, Any]] = []
        oracle_refs: dict[tuple[int, str], tuple[float, float]] = {}
        for seed in cfg.seeds:
            note = r[self.key(seed, "baselines")][1]
            if note and note not in notes:
                notes.append(note)
            if self.ctx is not None:
                for p in self.learning + self.blackbox:
                    self.ctx.merge(r[self.key(seed, p)][1])
            refs[seed] = self._refs(seed, r)
            rows, counts = r[self.key(seed, "robustness")]
            robustness_rows += rows
            if self.ctx is not None and counts is not None:
                self.ctx.merge(counts)
            runs += self._seed_runs(seed, r)
            oracle_refs.update({(seed, s): r[self.key(seed, f"swf:{s}")] for s in self._matrix_swfs()})
        pops = {seed: self.pop(seed) for seed in cfg.seeds}
        matrix = swf_eval.swf_matrix(runs, pops, self.cutoffs, main_swf=cfg.swf, main_refs=refs, kappa=cfg.kappa,
                                     skill_floor=cfg.skill_floor, oracle_refs=oracle_refs)
        return write_outputs(cfg, runs=runs, pops=pops, refs=refs, matrix=matrix, robustness_rows=robustness_rows,
                             notes=notes, ctx=self.ctx, lm_label=self.lm_label, learning=self.learning,
                             blackbox=self.blackbox, cutoffs=self.cutoffs, elapsed=elapsed, log=log)


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
