"""The economy: pure numpy, vectorised over agents (DESIGN.md §3)."""

from economy.constants import DELTA, GB2_MEDIAN, HOURS_REF, KAPPA, KAPPA_PAPER, KAPPA_PRESETS, MAX_HOURS, resolve_kappa
from economy.tax import PRESETS, TaxSchedule, resolve_cutoffs
from economy.population import Population, gb2_cdf, gb2_quantile, gb2_sample

__all__ = [
    "DELTA", "GB2_MEDIAN", "HOURS_REF", "KAPPA", "KAPPA_PAPER", "KAPPA_PRESETS", "MAX_HOURS", "resolve_kappa",
    "PRESETS", "TaxSchedule", "resolve_cutoffs",
    "Population", "gb2_sample", "gb2_quantile", "gb2_cdf",
]
