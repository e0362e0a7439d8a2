"""The economy: pure numpy, vectorised over agents (DESIGN.md §3)."""

from economy.constants import DELTA, GB2_MEDIAN, HOURS_REF, KAPPA, KAPPA_PAPER, KAPPA_PRESETS, MAX_HOURS, resolve_kappa
from economy.tax import PRESETS, TaxSchedule, resolve_cutoffs

__all__ = [
    "DELTA", "GB2_MEDIAN", "HOURS_REF", "KAPPA", "KAPPA_PAPER", "KAPPA_PRESETS", "MAX_HOURS", "resolve_kappa",
    "PRESETS", "TaxSchedule", "resolve_cutoffs",
]
