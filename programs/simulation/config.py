"""What determines a run: ``SimulationConfig``, validated with one-line errors naming the field."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from economy.constants import MIN_WAGE_SKILL, SKILL_FLOOR_PRESETS, resolve_skill_floor
from economy.population import UTILITY_TYPES
import numpy as np

from economy.tax import TaxSchedule, parse_brackets, resolve_cutoffs, to_fraction
from economy.welfare import SWFS
from programs.errors import ConfigError
from programs.simulation.scenarios import SCENARIOS

__all__ = ["SimulationConfig", "load_config", "config_error_line", "RESUMABLE_CHANGES"]

#: Settings that may change when a stopped run is resumed (they do not change any result).
RESUMABLE_CHANGES = frozenset({"years", "concurrency"})


class SimulationConfig(BaseModel):
    """Everything that determines a run (with the LM). Invalid values raise naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: int = Field(100, ge=1, le=1_000_000, description="number of workers")
    years: int = Field(5, ge=1, description="tax years in the episode")
    steps_per_year: int = Field(25, ge=1, description="worker steps per tax year (the reference's 25)")
    scenario: str = Field("rational", description="a registered scenario (programs.simulation.scenarios)")
    workers: Literal["llm", "rational"] = "llm"
    personas: Literal["template", "lm"] = Field("template", description=(
        "the workers' personas: 'template' (economy.population's sentence from the census cell) or 'lm' "
        "(WritePersona from the census attributes, once before step 0, stored with the run)"))
    brackets: str | list[float] = Field("us_federal_2024", description="a bracket preset (economy.tax.PRESETS) or "
                                        "custom cut-offs in $/year starting at 0, e.g. [0, 50000, 200000]")
    initial_rates: list[float] | None = Field(None, description="year-0 rates in percent (default: the preset's; "
                                              "0 on custom cut-offs)")
    swf: str = Field("inverse_skill", description="social welfare function (economy.welfare.SWFS)")
    kappa: float | Literal["calibrated", "paper"] = "calibrated"
    #: Floor on the skill in the ``inverse_skill``/``paper`` welfare weights (``economy.welfare``), dollars per
    #: year per weekly hour. Default: the full-time federal minimum wage (FLSA, 29 U.S.C. §206(a)(1)(C): $7.25/h,
    #: i.e. 7.25 x 52 = 377, a full-time income of $15,080 a year); 0 = raw weights (the behaviour before the
    #: floor). A preset name (``min_wage``, ``none``) is accepted and stored as its number.
    skill_floor: float = Field(MIN_WAGE_SKILL, description="welfare-weight skill floor (economy.welfare), >= 0")
    utility_mix: dict[str, float] | None = None
    history_len: int = Field(5, ge=0, le=1000, description="recent steps (workers) / years (planner) in prompts")
    best_k: int = Field(3, ge=0, le=100, description="best past entries shown in prompts")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    election_every: int = Field(2, ge=1, description="years between elections (democratic)")
    n_candidates: int = Field(3, ge=1, le=26)
    voting: Literal["plurality", "irv"] = "plurality"
    module_type: Literal["predict", "cot"] = "predict"
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    concurrency: int = Field(8, ge=1, le=1024)
    stratified: bool = True
    # The world's rules the reference imposed (all off by default; ``--preset paper-v1`` sets them):
    hours_grid: float | None = Field(None, gt=0, le=100, description=(
        "workers' hours rounded to multiples of this (reference: 10, LABOR in {0, 10, ..., 100}); rational "
        "workers best-respond on the same grid. None: any hours in [0, 100]"))
    rate_grid: float | None = Field(None, gt=0, le=100, description=(
        "the planner's rate changes rounded to multiples of this many points (reference: 10)"))
    max_rate_move: float | None = Field(None, ge=0, le=100, description=(
        "largest change of a bracket's rate per tax year, in points (reference: 20); larger moves are cut "
        "to it and counted as move_limited"))
    top_income_cap: float | None = Field(None, description=(
        "income above this is untaxed (reference: 10,000,000, its top bracket's upper bound); None: open top bracket"))

    @field_validator("brackets", mode="before")
    @classmethod
    def _brackets_ok(cls, v: Any) -> str | list[float]:
        return parse_brackets(v, name=None)  # pydantic's error names the field

    @field_validator("scenario", "swf")
    @classmethod
    def _registered(cls, v: str, info: Any) -> str:
        # Read at validation time: a scenario registered after import is a valid choice.
        choices = sorted(SCENARIOS) if info.field_name == "scenario" else list(SWFS)
        if v not in choices:
            raise ValueError(f"must be one of {choices}")
        return v

    @field_validator("kappa", mode="before")
    @classmethod
    def _kappa_name_ok(cls, v: Any) -> Any:
        # Before the union parses it, so an unknown name is named as such, not as a failed float.
        if isinstance(v, str) and v not in ("calibrated", "paper"):
            raise ValueError("must be a number > 0 or a preset ('calibrated', 'paper')")
        return v

    @field_validator("kappa")
    @classmethod
    def _kappa_ok(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not (math.isfinite(v) and v > 0):
            raise ValueError("must be > 0 or a preset ('calibrated', 'paper')")
        return v

    @field_validator("skill_floor", mode="before")
    @classmethod
    def _skill_floor_ok(cls, v: Any) -> float:
        if isinstance(v, bool):
            raise ValueError(f"must be a number >= 0 or a preset {sorted(SKILL_FLOOR_PRESETS)}")
        try:
            return resolve_skill_floor(v)
        except ValueError:
            raise ValueError(f"must be a number >= 0 (dollars per year per weekly hour) or a preset "
                             f"{sorted(SKILL_FLOOR_PRESETS)}") from None

    @field_validator("utility_mix")
    @classmethod
    def _mix_ok(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        bad = sorted(set(v) - set(UTILITY_TYPES))
        if bad:
            raise ValueError(f"unknown utility types {bad}; allowed {list(UTILITY_TYPES)}")
        if any(not (math.isfinite(x) and x >= 0) for x in v.values()) or sum(v.values()) <= 0:
            raise ValueError("shares must be >= 0 and sum to more than 0")
        return v

    @field_validator("initial_rates")
    @classmethod
    def _rates_ok(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        for i, r in enumerate(v):
            if not (0.0 <= r <= 100.0):
                raise ValueError(f"initial_rates[{i}]={r:g} is outside [0, 100] (percent)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "SimulationConfig":
        k = len(resolve_cutoffs(self.brackets))
        if self.initial_rates is not None and len(self.initial_rates) != k:
            raise ValueError(f"initial_rates has {len(self.initial_rates)} entries but brackets="
                             f"{self.brackets!r} has {k} (one rate per bracket)")
        if self.top_income_cap is not None:
            top = float(resolve_cutoffs(self.brackets)[-1])
            if not (math.isfinite(self.top_income_cap) and self.top_income_cap > top):
                raise ValueError(f"top_income_cap={self.top_income_cap:g} must be finite and above the top "
                                 f"bracket's cut-off {top:g}")
        SCENARIOS[self.scenario].check_config(self)  # the scenario's own settings
        return self

    def initial_tax_schedule(self) -> TaxSchedule:
        """The year-0 schedule: the brackets with ``initial_rates`` (percent) if given, else the preset's
        rates (no tax on custom cut-offs), and the top-income cap if one is set (every later schedule keeps
        it: they are made with ``with_rates``)."""
        rates = None if self.initial_rates is None else to_fraction(self.initial_rates)
        if isinstance(self.brackets, str):
            sched = TaxSchedule.preset(self.brackets, rates=rates)
        else:
            cutoffs = resolve_cutoffs(self.brackets)
            sched = TaxSchedule(cutoffs, rates if rates is not None else np.zeros_like(cutoffs))
        return sched.with_top_income_cap(self.top_income_cap)

    @property
    def total_steps(self) -> int:
        return self.years * self.steps_per_year


def config_error_line(exc: ValidationError) -> str:
    """One line naming the first bad field, its value and the allowed range."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = err.get("msg", "invalid").removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        return f"{loc}: unknown setting"
    if loc:
        return f"{loc}={err.get('input')!r}: {msg}"
    return msg


def load_config(**settings: Any) -> SimulationConfig:
    """``SimulationConfig(**settings)`` raising ``ConfigError`` with one line naming the problem."""
    try:
        return SimulationConfig(**settings)
    except ValidationError as exc:
        raise ConfigError(config_error_line(exc)) from None
