"""Piecewise-linear marginal income-tax schedules (``docs/design.md`` §3.3).

A schedule has ``k`` brackets ``[b_j, b_{j+1})`` with lower bounds ``cutoffs = (0, b_1, ..., b_{k-1})``
and marginal rates ``rates = (tau_0, ..., tau_{k-1})`` in ``[0, 1]``; the top bracket is open to infinity
(the reference capped it at $10M and left income above untaxed).

That cap is available as an option, ``TaxSchedule(..., top_income_cap=10_000_000)``: income above the cap
is untaxed, i.e. ``T(z) = T(min(z, cap))`` and the marginal rate above the cap is 0. It is off (``None``)
by default and used by ``--preset paper-v1`` to replicate the reference; :meth:`TaxSchedule.as_brackets`
gives the equivalent uncapped schedule (one more bracket, at the cap, with rate 0) for code that works
on cut-offs and rates, such as the exact best response.

A schedule may allow negative marginal rates (a wage subsidy, e.g. an earned-income credit's phase-in)
down to its ``min_rate`` (default 0, at least ``RATE_FLOOR = -1``); the tax is then negative (a net
credit) on low incomes, and every function of the economy handles it unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from economy._blocks import Scratch, count_at_least, map_blocks

#: Lower bounds of the brackets (single filer) and their default rates.
PRESETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "us_federal_2023": (
        (0, 11000, 44725, 95375, 182100, 231250, 578125),
        (0.10, 0.12, 0.22, 0.24, 0.32, 0.35, 0.37),
    ),
    "us_federal_2024": (
        (0, 11600, 47150, 100525, 191950, 243725, 609350),
        (0.10, 0.12, 0.22, 0.24, 0.32, 0.35, 0.37),
    ),
    "us_federal_2025": (
        (0, 11925, 48475, 103350, 197300, 250525, 626350),
        (0.10, 0.12, 0.22, 0.24, 0.32, 0.35, 0.37),
    ),
    # The LLM Economist paper's three brackets; no statutory rates, so zero by default.
    "three": ((0, 90000, 159100), (0.0, 0.0, 0.0)),
    "flat": ((0,), (0.0,)),
}

#: The lowest marginal rate any schedule may allow (``min_rate``): a 100% wage subsidy.
RATE_FLOOR = -1.0


class TaxSchedule:
    """An immutable piecewise-linear marginal tax schedule.

    Parameters
    ----------
    cutoffs : sequence of float, shape (k,)
        Lower bound of each bracket in dollars per year: starts at 0, strictly increasing.
    rates : sequence of float, shape (k,)
        Marginal rate of each bracket as a fraction in [min_rate, 1].
    min_rate : float in [RATE_FLOOR, 0], keyword-only
        The lowest marginal rate allowed (default 0: no subsidies). A negative bound admits negative
        marginal rates, e.g. an earned-income credit's phase-in; the tax is then negative (a net credit).

    Examples
    --------
    >>> s = TaxSchedule([0, 10_000], [0.1, 0.5])
    >>> float(s.tax(30_000))
    11000.0
    >>> float(TaxSchedule([0, 10_000], [0.1, 0.5], top_income_cap=20_000).tax(30_000))
    6000.0
    >>> float(TaxSchedule([0, 10_000], [-0.2, 0.3], min_rate=-0.5).tax(5_000))  # a credit of $1,000
    -1000.0

    top_income_cap : float, optional, keyword-only
        Income above this is untaxed (the reference's $10M upper bound of the top bracket). Must be
        finite and above the last cut-off. Default None: the top bracket is open.
    """

    __slots__ = ("_cutoffs", "_rates", "_base", "_min_rate", "_cap")

    def __init__(self, cutoffs: ArrayLike, rates: ArrayLike, *, min_rate: float = 0.0,
                 top_income_cap: float | None = None) -> None:
        c = _as_vector(cutoffs, "cutoffs")
        r = _as_vector(rates, "rates")
        if c.size == 0:
            raise ValueError("cutoffs must hold at least one bracket (the first cut-off is 0)")
        if not np.all(np.isfinite(c)):
            raise ValueError("cutoffs must be finite numbers; the top bracket is open to infinity by construction")
        if c[0] != 0:
            raise ValueError(f"cutoffs[0]={c[0]:g} must be 0: the first bracket starts at zero income")
        bad = np.flatnonzero(np.diff(c) <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise ValueError(f"cutoffs must be strictly increasing: cutoffs[{i}]={c[i]:g} <= cutoffs[{i - 1}]={c[i - 1]:g}")
        if r.size != c.size:
            raise ValueError(f"rates has {r.size} entries but there are {c.size} brackets (one rate per bracket)")
        lo = _check_min_rate(min_rate)
        bad = np.flatnonzero(~((r >= lo) & (r <= 1)))  # also catches NaN
        if bad.size:
            i = int(bad[0])
            hint = "; pass min_rate < 0 to allow negative marginal rates" if r[i] < 0 and not lo else ""
            raise ValueError(f"rates[{i}]={r[i]:g} is outside [{lo:g}, 1] (rates are fractions, e.g. 0.22 for 22%{hint})")
        self._min_rate = lo
        c.setflags(write=False)
        r.setflags(write=False)
        self._cutoffs = c
        self._rates = r
        # Tax owed at each bracket's lower bound: the cumulative sum of the full brackets below it.
        base = np.concatenate(([0.0], np.cumsum(r[:-1] * np.diff(c))))
        base.setflags(write=False)
        self._base = base
        self._cap = _check_cap(top_income_cap, float(c[-1]))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, rates: ArrayLike | None = None) -> "TaxSchedule":
        """A named bracket structure (``us_federal_2023/2024/2025``, ``three``, ``flat``).

        ``rates`` replaces the preset's default rates (the statutory ones for the US presets, zero otherwise).
        """
        if name not in PRESETS:
            raise ValueError(f"unknown tax preset {name!r}; choose one of {sorted(PRESETS)}")
        cutoffs, default = PRESETS[name]
        return cls(cutoffs, default if rates is None else rates)

    @classmethod
    def none(cls, cutoffs: "CutoffsLike" = "flat") -> "TaxSchedule":
        """The zero-tax schedule on the given brackets."""
        c = resolve_cutoffs(cutoffs)
        return cls(c, np.zeros_like(c))

    @classmethod
    def flat(cls, rate: float, cutoffs: "CutoffsLike" = "flat") -> "TaxSchedule":
        """The same marginal ``rate`` in every bracket."""
        c = resolve_cutoffs(cutoffs)
        return cls(c, np.full_like(c, float(rate)))

    def with_rates(self, rates: ArrayLike) -> "TaxSchedule":
        """The same brackets (``min_rate`` and top-income cap included) with new rates."""
        return TaxSchedule(self._cutoffs, rates, min_rate=self._min_rate, top_income_cap=self._cap)

    def with_top_income_cap(self, cap: float | None) -> "TaxSchedule":
        """The same brackets and rates with income above ``cap`` untaxed (None: no cap)."""
        return TaxSchedule(self._cutoffs, self._rates, min_rate=self._min_rate, top_income_cap=cap)

    def as_brackets(self) -> "TaxSchedule":
        """The same tax function without a cap: the cap becomes one more bracket with rate 0."""
        if self._cap is None:
            return self
        return TaxSchedule(np.append(self._cutoffs, self._cap), np.append(self._rates, 0.0), min_rate=self._min_rate)

    # -- accessors ----------------------------------------------------------------------------
    @property
    def cutoffs(self) -> NDArray[np.float64]:
        """Lower bound of each bracket, shape (k,), read-only."""
        return self._cutoffs

    @property
    def rates(self) -> NDArray[np.float64]:
        """Marginal rate of each bracket as a fraction, shape (k,), read-only."""
        return self._rates

    @property
    def top_income_cap(self) -> float | None:
        """Income above which no tax is owed (None: the top bracket is open)."""
        return self._cap

    @property
    def min_rate(self) -> float:
        """The lowest marginal rate this schedule allows (0 unless negative rates were admitted)."""
        return self._min_rate

    @property
    def n_brackets(self) -> int:
        return int(self._cutoffs.size)

    # -- the schedule as a function -----------------------------------------------------------
    def bracket_index(self, z: ArrayLike) -> NDArray[np.intp]:
        """Index of the bracket holding each income (an income on a cut-off belongs to the bracket above)."""
        return self._index(np.maximum(np.asarray(z, dtype=np.float64), 0.0))

    def _index(self, z: NDArray[np.float64]) -> NDArray[np.intp]:
        return count_at_least(z.reshape(-1), self._cutoffs[1:]).reshape(z.shape)

    def tax(self, z: ArrayLike, out: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """Tax owed on pre-tax income ``z`` (any shape; negative income is taxed as zero).

        ``out``, optional: a contiguous float64 array of ``z``'s shape to write the taxes into (returned).
        """
        z = np.asarray(z, dtype=np.float64)
        if out is None:
            out = np.empty(z.shape)
        elif out.shape != z.shape or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a contiguous float64 array of shape {z.shape}, got {out.dtype} {out.shape}")
        flat_z, flat_out = z.reshape(-1), out.reshape(-1)
        # cache-sized blocks (economy._blocks), one pass per block, blocks on threads
        map_blocks(lambda blk, scratch: self._tax_block(flat_z[blk], flat_out[blk], scratch), flat_z.size)
        return out if out.ndim else out[()]

    def _tax_block(self, z: NDArray[np.float64], out: NDArray[np.float64], scratch: Scratch) -> None:
        """``out[:] = T(z)`` for a 1-D block: ``B_j + tau_j*(z - b_j)`` in bracket ``j``.

        For the economy's own passes over blocks (``economy.world`` taxes each block of incomes as it
        makes it, in the same pass): ``z`` and ``out`` of at most ``BLOCK`` elements, ``scratch`` the worker's.
        """
        k = z.size
        zc = np.maximum(z, 0.0, out=scratch("tax.z", k))
        if self._cap is not None:
            np.minimum(zc, self._cap, out=zc)
        j = count_at_least(zc, self._cutoffs[1:], scratch)
        per_agent = scratch("tax.table", k)  # mode="clip": no buffered copy (j is always in range)
        np.subtract(zc, self._cutoffs.take(j, out=per_agent, mode="clip"), out=out)
        out *= self._rates.take(j, out=per_agent, mode="clip")
        out += self._base.take(j, out=per_agent, mode="clip")

    def marginal_rate(self, z: ArrayLike) -> NDArray[np.float64]:
        """Marginal rate at income ``z`` (the upper bracket's rate on a cut-off; 0 at or above the cap)."""
        r = self._rates[self.bracket_index(z)]
        if self._cap is not None:
            r = np.where(np.asarray(z, dtype=np.float64) >= self._cap, 0.0, r)
        return r

    def after_tax(self, z: ArrayLike) -> NDArray[np.float64]:
        """Income left after tax, ``z - T(z)``."""
        z = np.asarray(z, dtype=np.float64)
        return z - self.tax(z)

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"cutoffs", "rates"}``, plus ``"min_rate"`` when negative rates are allowed and
        ``"top_income_cap"`` when there is one."""
        d: dict[str, Any] = {"cutoffs": self._cutoffs.tolist(), "rates": self._rates.tolist()}
        if self._min_rate:
            d["min_rate"] = self._min_rate
        if self._cap is not None:
            d["top_income_cap"] = self._cap
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TaxSchedule":
        missing = {"cutoffs", "rates"} - set(d)
        if missing:
            raise ValueError(f"a tax schedule needs the keys 'cutoffs' and 'rates'; missing {sorted(missing)}")
        return cls(d["cutoffs"], d["rates"], min_rate=d.get("min_rate", 0.0), top_income_cap=d.get("top_income_cap"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, s: str) -> "TaxSchedule":
        return cls.from_dict(json.loads(s))

    def table(self) -> str:
        """A readable bracket table in dollars and percent."""
        lines = [f"{'bracket':>26}  {'rate':>6}"]
        upper = list(self._cutoffs[1:]) + [np.inf]
        for lo, hi, r in zip(self._cutoffs, upper, self._rates):
            span = f"${lo:,.0f} – " + ("and up" if np.isinf(hi) else f"${hi:,.0f}")
            lines.append(f"{span:>26}  {100 * r:5.1f}%")
        return "\n".join(lines)

    def __repr__(self) -> str:
        pct = ", ".join(f"{100 * r:.1f}%" for r in self._rates)
        cap = "" if self._cap is None else f", top_income_cap={self._cap:g}"
        return f"TaxSchedule(cutoffs={self._cutoffs.tolist()}, rates=[{pct}]{cap})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaxSchedule):
            return NotImplemented
        return bool(np.array_equal(self._cutoffs, other._cutoffs) and np.array_equal(self._rates, other._rates)
                    and self._cap == other._cap)

    def __hash__(self) -> int:
        return hash((self._cutoffs.tobytes(), self._rates.tobytes(), self._cap))


CutoffsLike = Union[str, Sequence[float], NDArray[np.float64], TaxSchedule]


BracketsLike = Union[str, Sequence[float]]


def parse_brackets(value: BracketsLike, name: str | None = "brackets") -> str | list[float]:
    """A bracket preset's name, or custom cut-offs from ``"0,50000,200000"`` or a sequence (validated).

    The one parser of every CLI's ``--brackets`` and of ``SimulationConfig.brackets``. Raises ValueError
    naming ``name`` (and the value; ``name=None`` for the reason alone), the offending item and the choices.
    """
    try:
        return _parse_brackets(value)
    except ValueError as e:
        raise ValueError(str(e) if name is None else f"{name}={value!r}: {e}") from None


def _parse_brackets(value: BracketsLike) -> str | list[float]:
    if isinstance(value, str):
        text = value.strip()
        if text in PRESETS:
            return text
        if "," not in text and not text.replace(".", "", 1).isdigit():
            raise ValueError(f"not a preset ({', '.join(sorted(PRESETS))}) nor cut-offs such as 0,50000,200000")
        items = [x.strip() for x in text.split(",") if x.strip()]
        nums = []
        for x in items:
            try:
                nums.append(float(x))
            except ValueError:
                raise ValueError(f"{x!r} is not a number (cut-offs in $/year, e.g. 0,50000,200000)") from None
    else:
        nums = [float(x) for x in value]
    return resolve_cutoffs(nums).tolist()


def to_percent(rates: ArrayLike) -> list[float]:
    """Rates as fractions -> percent, as prompts and reports show them.

    Rounded to 1e-6 so that 0.22 shows as 22.0, not 22.000000000000004.
    """
    return [round(100.0 * float(r), 6) for r in np.asarray(rates, dtype=np.float64).reshape(-1)]


def to_fraction(rates_percent: ArrayLike) -> NDArray[np.float64]:
    """Rates in percent -> fractions, shape (k,), as ``TaxSchedule`` takes them."""
    return np.asarray(rates_percent, dtype=np.float64).reshape(-1) / 100.0


def resolve_cutoffs(cutoffs: CutoffsLike) -> NDArray[np.float64]:
    """Bracket lower bounds from a preset name, a sequence or a schedule (validated)."""
    if isinstance(cutoffs, TaxSchedule):
        return cutoffs.cutoffs.copy()
    if isinstance(cutoffs, str):
        if cutoffs not in PRESETS:
            raise ValueError(f"unknown brackets {cutoffs!r}; choose one of {sorted(PRESETS)} or give cut-offs")
        return np.asarray(PRESETS[cutoffs][0], dtype=np.float64)
    c = _as_vector(cutoffs, "cutoffs")
    TaxSchedule(c, np.zeros_like(c))  # validates
    return c


def _check_cap(cap: float | None, top_cutoff: float) -> float | None:
    """A valid top-income cap (finite, above the last cut-off) or None."""
    if cap is None:
        return None
    try:
        v = float(cap)
    except (TypeError, ValueError):
        raise ValueError(f"top_income_cap must be a number or None, got {cap!r}") from None
    if not (np.isfinite(v) and v > top_cutoff):
        raise ValueError(f"top_income_cap={cap!r} must be finite and above the last cut-off {top_cutoff:g}")
    return v


def _check_min_rate(min_rate: float) -> float:
    try:
        lo = float(min_rate)
    except (TypeError, ValueError):
        raise ValueError(f"min_rate={min_rate!r} is not a number in [{RATE_FLOOR:g}, 0]") from None
    if not (RATE_FLOOR <= lo <= 0.0):  # also rejects NaN
        raise ValueError(f"min_rate={lo:g} is outside [{RATE_FLOOR:g}, 0] (the lowest marginal rate allowed, a fraction)")
    return lo + 0.0  # -0.0 -> 0.0


def _as_vector(x: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        a = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers, got {x!r}") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a
