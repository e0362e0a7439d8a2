"""The economy: pure numpy, vectorised over agents (``docs/design.md`` §3)."""

from economy.constants import (
    DELTA, FEDERAL_MIN_WAGE, GB2_MEDIAN, HOURS_REF, KAPPA, KAPPA_PAPER, KAPPA_PRESETS, MAX_HOURS, MIN_WAGE_SKILL,
    SKILL_FLOOR_PRESETS, parse_kappa, resolve_kappa, resolve_skill_floor,
)
from economy.tax import PRESETS, RATE_FLOOR, TaxSchedule, parse_brackets, resolve_cutoffs, to_fraction, to_percent
from economy.population import Population, gb2_cdf, gb2_quantile, gb2_sample

__all__ = [
    "DELTA", "FEDERAL_MIN_WAGE", "GB2_MEDIAN", "HOURS_REF", "KAPPA", "KAPPA_PAPER", "KAPPA_PRESETS", "MAX_HOURS",
    "MIN_WAGE_SKILL", "SKILL_FLOOR_PRESETS", "parse_kappa", "resolve_kappa", "resolve_skill_floor",
    "PRESETS", "RATE_FLOOR", "TaxSchedule", "parse_brackets", "resolve_cutoffs", "to_fraction", "to_percent",
    "Population", "gb2_sample", "gb2_quantile", "gb2_cdf",
]

from economy.labor import best_response, labor_utility
from economy.welfare import SWFS, WeightDiagnostics, check_swf, gini, social_welfare, weight_diagnostics, welfare_weights
from economy.world import Outcome, outcome

__all__ += ["best_response", "labor_utility", "SWFS", "check_swf", "gini", "social_welfare", "welfare_weights",
            "WeightDiagnostics", "weight_diagnostics", "Outcome", "outcome"]

from economy._blocks import set_threads, thread_count

__all__ += ["set_threads", "thread_count"]

from economy.saez import SaezInfo, estimate_elasticity, saez_rates, saez_schedule
from economy.oracle import OracleResult, oracle_schedule
from economy.saez_v1 import saez_v1_schedule

__all__ += ["SaezInfo", "estimate_elasticity", "saez_rates", "saez_schedule", "OracleResult", "oracle_schedule", "saez_v1_schedule"]
