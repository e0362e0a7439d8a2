"""The oracle: the welfare-maximising bracket rates under fully rational workers (``docs/design.md`` §3.7).

Every planner is reported as a share of the oracle's welfare gain over no tax, so the oracle must be a
ceiling in practice: a global search (Optuna's seeded TPE sampler) warm-started at the Saez schedule,
no tax and an optional user start, then a local refinement on the best point found (Nelder-Mead, then a
compass search, which copes with the kinks bunching puts in the welfare surface). The result is the best
schedule *evaluated*, and the warm starts are evaluated first, so the oracle is never worse than any of
them: ``oracle >= Saez`` and ``oracle >= no tax`` hold by construction, not by luck.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from economy.constants import DELTA, KAPPA, MIN_WAGE_SKILL, resolve_kappa, resolve_skill_floor
from economy.tax import CutoffsLike, TaxSchedule, resolve_cutoffs

#: Default number of Optuna trials (the warm starts included).
N_TRIALS: int = 200
#: Default budget of objective evaluations for the local refinement.
N_REFINE: int = 1500


@dataclass(frozen=True)
class OracleResult:
    """The oracle's schedule, the welfare it reaches and how many schedules were evaluated to find it."""

    schedule: TaxSchedule
    welfare: float
    n_evaluations: int


class _Objective:
    """Welfare of a rate vector under rational best responses; remembers the best point evaluated."""

    def __init__(
        self, population: Any, cutoffs: NDArray[np.float64], swf: str, kappa: float, delta: float, skill_floor: float
    ) -> None:
        from economy.labor import best_response
        from economy.world import outcome

        self._best_response = best_response
        self._outcome = outcome
        self.population = population
        self.skill = np.asarray(getattr(population, "skill", population), dtype=np.float64)
        self.cutoffs = cutoffs
        self.swf = swf
        self.kappa = kappa
        self.delta = delta
        self.skill_floor = skill_floor
        self.n_evaluations = 0
        self.best_rates = np.zeros_like(cutoffs)
        self.best_welfare = -np.inf
        self._cache: dict[bytes, float] = {}

    def __call__(self, rates: ArrayLike) -> float:
        r = np.clip(np.asarray(rates, dtype=np.float64), 0.0, 1.0)
        key = r.tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        schedule = TaxSchedule(self.cutoffs, r)
        hours = self._best_response(self.skill, schedule, kappa=self.kappa, delta=self.delta)
        w = float(self._outcome(
            self.population, schedule, hours, self.swf, kappa=self.kappa, delta=self.delta, skill_floor=self.skill_floor
        ).welfare)
        self.n_evaluations += 1
        self._cache[key] = w
        if w > self.best_welfare:
            self.best_welfare, self.best_rates = w, r.copy()
        return w


def oracle_schedule(
    population: Any,
    cutoffs: CutoffsLike,
    *,
    swf: str = "inverse_skill",
    seed: int = 0,
    n_trials: int = N_TRIALS,
    kappa: float | str = KAPPA,
    delta: float = DELTA,
    init: TaxSchedule | ArrayLike | None = None,
    n_refine: int = N_REFINE,
    skill_floor: float | str = MIN_WAGE_SKILL,
) -> OracleResult:
    """Search the bracket rates that maximise social welfare when every worker best-responds.

    Parameters
    ----------
    population : Population or array_like (n,)
        Agents, or their skills.
    cutoffs : preset name, sequence (k,) or TaxSchedule
        Bracket lower bounds (the rates are searched, the brackets are fixed).
    swf : str
        Social welfare function maximised (see ``economy.welfare.SWFS``).
    seed : int
        Seed of the Optuna sampler; the search is deterministic for a given seed.
    n_trials : int
        Optuna trials, including the enqueued warm starts (Saez, no tax, ``init``); >= 0.
    kappa, delta : labor-cost parameters of the workers' utility.
    init : TaxSchedule or array_like (k,), optional
        Another start (e.g. a planner's proposal): its rates on these brackets.
    n_refine : int
        Budget of objective evaluations for the local refinement; 0 skips it.
    skill_floor : float >= 0 or preset name
        Floor on the skill in the ``inverse_skill`` and ``paper`` weights (``economy.welfare``), used both
        by the welfare maximised and by the Saez warm start; 0 = raw weights.

    Returns
    -------
    OracleResult
        ``schedule`` with the best rates found, ``welfare`` it reaches (``outcome(..., skill_floor=...).welfare``
        with rational hours) and ``n_evaluations`` of the objective (distinct rate vectors).
    """
    from economy.saez import saez_schedule
    from economy.welfare import check_swf

    swf = check_swf(swf)
    floor = resolve_skill_floor(skill_floor)
    c = resolve_cutoffs(cutoffs)
    kappa_f = resolve_kappa(kappa)
    k = c.size
    if int(n_trials) < 0:
        raise ValueError(f"n_trials={n_trials} must be >= 0")
    if int(n_refine) < 0:
        raise ValueError(f"n_refine={n_refine} must be >= 0")
    init_rates = None if init is None else _init_rates(init, c)  # validate before the Saez iteration
    # Warm starts: Saez (usually the best of them), no tax and the caller's start.
    starts = [saez_schedule(population, c, swf=swf, kappa=kappa_f, delta=delta, skill_floor=floor).rates.copy(), np.zeros(k)]
    if init_rates is not None:
        starts.append(init_rates)

    f = _Objective(population, c, swf, kappa_f, float(delta), floor)
    # The warm starts are always evaluated, whatever n_trials is: the guarantee "never worse than Saez,
    # no tax or init" rests on it.
    for s in starts:
        f(s)
    if n_trials > 0:
        _optuna_search(f, starts, k, int(n_trials), int(seed))
    if n_refine > 0:
        # Refine the best point found, then the best warm start if that is elsewhere: the surface is flat
        # near the optimum with shallow local maxima (kinks), and the global search's best point is not
        # always in the best basin. Each refinement keeps whatever it improves on.
        refine_from = [f.best_rates.copy()]
        best_start = max(starts, key=f)
        if not np.array_equal(best_start, refine_from[0]):
            refine_from.append(best_start)
        for x0 in refine_from:
            _refine(f, x0, int(n_refine) // len(refine_from))
    return OracleResult(TaxSchedule(c, f.best_rates), float(f.best_welfare), int(f.n_evaluations))


def _optuna_search(f: _Objective, starts: list[NDArray[np.float64]], k: int, n_trials: int, seed: int) -> None:
    """Seeded multivariate TPE over [0, 1]^k, warm-started with the given rate vectors."""
    import optuna

    names = [f"r{j}" for j in range(k)]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one INFO line per trial otherwise
    try:
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=min(20, max(n_trials // 5, 1)))
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for s in starts:
            study.enqueue_trial({n: float(v) for n, v in zip(names, s)})

        def objective(trial: "optuna.Trial") -> float:
            return f(np.array([trial.suggest_float(n, 0.0, 1.0) for n in names]))

        study.optimize(objective, n_trials=n_trials)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _refine(f: _Objective, x0: NDArray[np.float64], budget: int) -> None:
    """Nelder-Mead from ``x0``, then a compass search with halving steps around the best point it reached.

    The compass search tries +-step on one rate at a time and keeps any improvement; it halves the step
    when no coordinate improves. It is robust to the welfare surface's kinks (agents jumping between a
    kink and an interior optimum) where Nelder-Mead can stall.
    """
    from scipy.optimize import minimize

    start = f.n_evaluations
    x0 = np.asarray(x0, dtype=np.float64).copy()
    k = x0.size
    # Initial simplex: steps of 0.05 into the box (scipy's default 0.00025 step at a zero rate is useless).
    simplex = np.tile(x0, (k + 1, 1))
    for j in range(k):
        simplex[j + 1, j] += 0.05 if x0[j] <= 0.95 else -0.05
    nm_budget = max(budget // 2, 1)
    scale = max(abs(f(x0)), 1.0)
    res = minimize(
        lambda x: -f(x),
        x0,
        method="Nelder-Mead",
        bounds=[(0.0, 1.0)] * k,
        options={"initial_simplex": simplex, "maxfev": nm_budget, "xatol": 1e-4, "fatol": 1e-10 * scale},
    )
    x = np.clip(res.x, 0.0, 1.0)
    best_x, best_w = (x, f(x)) if f(x) > f(x0) else (x0, f(x0))
    step = 0.02
    while step >= 1e-4 and f.n_evaluations - start < budget:
        improved = False
        for j in range(k):
            for sign in (1.0, -1.0):
                x = best_x.copy()
                x[j] = min(max(x[j] + sign * step, 0.0), 1.0)
                if x[j] == best_x[j]:
                    continue
                w = f(x)
                if w > best_w:
                    best_x, best_w, improved = x, w, True
                    break
                if f.n_evaluations - start >= budget:
                    return
        if not improved:
            step *= 0.5


def _init_rates(init: TaxSchedule | ArrayLike, cutoffs: NDArray[np.float64]) -> NDArray[np.float64]:
    if isinstance(init, TaxSchedule):
        if not np.array_equal(init.cutoffs, cutoffs):
            raise ValueError(f"init has cut-offs {init.cutoffs.tolist()} but the oracle searches {cutoffs.tolist()}")
        return init.rates.copy()
    r = np.asarray(init, dtype=np.float64)
    if r.shape != cutoffs.shape:
        raise ValueError(f"init has {r.size} rates but there are {cutoffs.size} brackets")
    TaxSchedule(cutoffs, r)  # validates: each rate in [0, 1]
    return r.copy()
