"""The offline engine: a stand-in for a language model that answers our signatures (``docs/design.md`` §6.3).

It is an **in-context numeric learner**, not a language model. It reads only the prompt an LLM would
read (the system message and the chat messages DSPy's adapters build) and never the simulator's state,
so a test can call it with a hand-written prompt:

- the task is identified from the output fields the system message lists (``hours`` → worker,
  ``rates_percent`` → planner, ``candidate`` → voter, ``satisfied`` → satisfaction, ``persona`` →
  persona writer; a ``reasoning`` field, as ChainOfThought adds, gets a one-line reasoning);
- the inputs are read from the ``[[ ## name ## ]]`` sections of the last user message (JSON for
  pydantic and list values), few-shot demonstrations from the earlier user/assistant pairs;
- the answer follows the adapter's format: ChatAdapter sections, a JSONAdapter object, or XML tags.

Policies:

- worker: with fewer than two distinct hours observed under the current schedule, explore around 40 h
  (or, right after a schedule change, around the best hours seen before it). Otherwise move from the best
  observed hours toward the maximum of a fit of utility against hours — a fit of the effort cost when the
  history obeys the accounting ``utility = consumption - cost(hours)`` (which also re-prices rows seen
  under an old schedule), else a local quadratic — by a step that shrinks as the history grows, plus
  small noise scaled by the temperature.
- planner: a (1+1) evolution strategy over the rates in its history: start from the best schedule seen
  (or, in the first years, from its demonstration), perturb with a step adapted by the one-fifth success
  rule counted in that history, clip to [0, 100] percent.
- voter: the platform that leaves the highest after-tax income at the voter's recent pre-tax income.
- satisfaction: yes when this year's utility is not below last year's.
- persona: a tidied second-person sentence from the demographics.

A new signature gets a policy with ``register_policy(output_field, fn)`` (``docs/design.md`` §8.4): the
engine answers any prompt whose output fields include ``output_field`` with ``fn``; the built-in
policies above are registered the same way, in ``POLICIES``, and take precedence (first match wins).

Randomness comes from a numpy Generator seeded by a stable hash (blake2b) of the prompt, the engine seed
and the temperature: a run replays exactly, and prompts that differ get different noise. The engine is
stateless and holds no global counters; regexes are compiled once.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import numpy as np

import dspy
from dspy.lm15 import Message, Request, Response, TextPart, Usage, response_to_events

from economy.constants import HOURS_REF, MAX_HOURS
from economy.tax import RATE_FLOOR, TaxSchedule, to_fraction
from programs.lm.prompts import assistant_fields, format_fields, parse_system, parse_value, request_texts, sections

__all__ = [
    "OFFLINE_LABEL",
    "MODEL_NAME",
    "POLICIES",
    "Policy",
    "register_policy",
    "OfflineEngine",
    "AsyncOfflineEngine",
    "offline_lm",
    "answer",
    "answer_fields",
    "format_answer",
    "answer_request",
]

OFFLINE_LABEL = "offline engine (not a language model)"
#: Model id the engine reports (and the HTTP server lists).
MODEL_NAME = "offline-engine"

EXPLORE_HOURS = HOURS_REF  # where a worker with nothing observed starts
# Worker search knobs (hours per week).
_PROBE_STEP = 8.0  # second probe away from the first observed hours
_TRUST0 = 20.0  # largest move toward a fitted optimum; shrinks with the number of observations
_NOISE0 = 2.0  # noise sd at the start of a tax year (scaled by the temperature)
_RECENT = 8  # distinct-hours points used by the quadratic fit
# Planner (1+1)-ES knobs (percentage points).
_SIGMA0 = 8.0
_SIGMA_MIN, _SIGMA_MAX = 0.5, 30.0
_ALPHA = 1.5  # 1/5 rule: x alpha per success, x alpha**(-1/4) per failure

_KV = re.compile(r"^\s*([A-Za-z][\w /-]*?)\s*[:=]\s*(.+?)\s*$")
_WS = re.compile(r"\s+")


# ───────────────────────────── prompt parsing ─────────────────────────────


def _floats(x: Any) -> list[float] | None:
    if isinstance(x, str):
        x = parse_value(x)
    if not isinstance(x, list):
        return None
    try:
        out = [float(v) for v in x]
    except (TypeError, ValueError):
        return None
    return out if all(math.isfinite(v) for v in out) else None


def _num(x: Any, default: float = math.nan) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def _rows(x: Any) -> list[dict]:
    if isinstance(x, str):
        x = parse_value(x)
    if isinstance(x, dict):
        x = [x]
    return [r for r in x if isinstance(r, dict)] if isinstance(x, list) else []


def _schedule_tax(z: np.ndarray, cutoffs: Sequence[float], rates_percent: Sequence[float]) -> np.ndarray:
    """Tax on incomes ``z`` under a schedule read from a prompt; NaN when the prompt's schedule is unusable.

    The economy's ``TaxSchedule`` is the one implementation of the piecewise tax; a schedule a prompt
    garbles (lengths differ, cut-offs not increasing from 0) prices nothing rather than something wrong.
    Negative rates (a wage subsidy) are priced down to the economy's ``RATE_FLOOR`` (-100%).
    """
    try:
        return TaxSchedule(cutoffs, to_fraction(rates_percent), min_rate=RATE_FLOOR).tax(z)
    except ValueError:
        return np.full(np.shape(z), np.nan)


def _noise_scale(temperature: float | None) -> float:
    return 1.0 if temperature is None else float(min(max(temperature, 0.0), 2.0))


def _worker(inp: dict, demos: list, rng: np.random.Generator, temperature: float | None) -> tuple[dict, str]:
    rows = _rows(inp.get("history"))
    seen = {(r.get("step"), r.get("hours")) for r in rows}
    rows += [r for r in _rows(inp.get("best")) if (r.get("step"), r.get("hours")) not in seen]
    rows = [r for r in rows if math.isfinite(_num(r.get("hours"))) and math.isfinite(_num(r.get("utility")))]
    rows.sort(key=lambda r: _num(r.get("step"), 0.0))
    sched = inp.get("schedule") if isinstance(inp.get("schedule"), dict) else {}
    cutoffs = _floats(sched.get("cutoffs")) or []
    rates = _floats(sched.get("rates_percent")) or []
    have_schedule = bool(cutoffs) and len(cutoffs) == len(rates)
    skill = _num(inp.get("skill"))
    noise = _noise_scale(temperature)

    h = np.array([_num(r.get("hours")) for r in rows])
    u = np.array([_num(r.get("utility")) for r in rows])
    z = np.array([_num(r.get("pretax_income"), np.nan) for r in rows])
    tax = np.array([_num(r.get("tax"), np.nan) for r in rows])
    reb = np.array([_num(r.get("rebate"), 0.0) for r in rows])
    cons = np.array([_num(r.get("consumption"), np.nan) for r in rows])
    if not math.isfinite(skill) or skill <= 0:
        ok = (h > 0) & np.isfinite(z)
        skill = float(np.median(z[ok] * HOURS_REF / h[ok])) if ok.any() else math.nan

    # Rows taxed as the current schedule would tax them were lived under it; others under an old one.
    if have_schedule and len(rows):
        zz = np.nan_to_num(z)
        t_now = _schedule_tax(zz, cutoffs, rates)
        current = ~np.isfinite(tax) | (np.abs(t_now - tax) <= np.maximum(2.0, 0.005 * np.maximum(t_now, tax)))
    else:
        current = np.ones(len(rows), bool)

    # The accounting utility = consumption - cost(hours) with a cost that is >= 0 and rises with hours
    # lets the worker separate its own effort cost from income, tax and the (exogenous) rebate.
    cost = cons - u
    fit = None
    if len(rows) >= 2 and np.all(np.isfinite(cost)) and math.isfinite(skill):
        order = np.argsort(h)
        hs, cs = h[order], cost[order]
        tol = 1e-6 * max(1.0, float(np.max(np.abs(cs))))
        pos = (hs > 0) & (cs > tol)
        if np.all(cs >= -max(tol, 1.0)) and np.all(np.diff(cs)[np.diff(hs) > 0] >= -max(tol, 1.0)) \
                and np.unique(np.round(hs[pos], 3)).size >= 2:
            # cost = a * h**b: a straight line in logs through the distinct positive points.
            lx, ly = np.log(hs[pos]), np.log(cs[pos])
            lb, la = np.polyfit(lx, ly, 1)
            # Three or more points must lie on the power law (up to rounding of the prompt's numbers);
            # two always do, so then only a plausible convex exponent is accepted.
            on_curve = bool(np.all(np.abs(cs[pos] - np.exp(la + lb * lx)) <= np.maximum(2.0, 0.01 * cs[pos])))
            if 1.2 < lb < 6.0 and (on_curve or np.unique(np.round(hs[pos], 3)).size < 3):
                fit = (math.exp(la), lb)

    def value_now(hours: np.ndarray) -> np.ndarray:
        """Own utility net of the rebate at ``hours`` under the current schedule (needs ``fit``)."""
        inc = skill * hours / HOURS_REF
        t = _schedule_tax(inc, cutoffs, rates) if have_schedule else 0.0
        return inc - t - fit[0] * hours ** fit[1]

    def argmax_now() -> float:
        """Hours maximising ``value_now``: each bracket's interior optimum, every kink, and the bounds."""
        v, (a, b) = skill / 40.0, fit
        cands = [0.0, MAX_HOURS]
        brackets = list(zip(cutoffs, rates)) if have_schedule else [(0.0, 0.0)]
        for j, (lo, r) in enumerate(brackets):
            hi = brackets[j + 1][0] if j + 1 < len(brackets) else math.inf
            if r < 100.0:
                hj = ((1.0 - r / 100.0) * v / (a * b)) ** (1.0 / (b - 1.0))
                if lo <= v * hj <= hi and hj <= MAX_HOURS:
                    cands.append(hj)
            if lo > 0 and lo / v <= MAX_HOURS:
                cands.append(lo / v)
        hs_ = np.asarray(cands)
        return float(hs_[int(np.argmax(value_now(hs_)))])

    n_cur = int(current.sum())
    if fit is not None:
        # Re-price every observed hours value under the current schedule; search from the best of them.
        target = argmax_now()
        obs = np.unique(np.round(h, 3))
        best_h = float(obs[int(np.argmax(value_now(obs)))])
        steps_here = max(n_cur, 1)
        trust = max(1.0, _TRUST0 / math.sqrt(steps_here))
        new = best_h + float(np.clip(target - best_h, -trust, trust))
        new += rng.normal(0.0, _NOISE0 * noise / math.sqrt(steps_here + 1))
        why = (f"My effort cost fits {fit[0]:.3g}*h^{fit[1]:.2f}; under this schedule my utility peaks near "
               f"{target:.1f} h, so I move from {best_h:.1f} h toward it.")
    else:
        y = u - reb if np.all(np.isfinite(cons)) else u  # the rebate does not depend on my own hours
        hc, yc = h[current], y[current]
        # Distinct hours, most recent observation of each, newest last.
        pts: dict[float, float] = {}
        for hv, yv in zip(hc, yc):
            key = round(float(hv), 3)
            pts.pop(key, None)
            pts[key] = float(yv)
        items = list(pts.items())[-_RECENT:]
        if len(items) < 2:
            if len(items) == 1:
                h0 = items[0][0]
                direction = 1.0 if h0 < EXPLORE_HOURS else -1.0
                if 0.0 < h0 < MAX_HOURS and rng.random() < 0.5:
                    direction = -direction
                new = h0 + direction * _PROBE_STEP
                why = f"I have tried only {h0:.1f} h under this schedule; I probe {new:.1f} h to learn the trend."
            elif len(rows):
                best_old = float(h[int(np.argmax(y))])
                new = best_old + rng.normal(0.0, 3.0)
                why = f"The tax schedule changed; I re-explore around my best hours so far, {best_old:.1f} h."
            else:
                new = EXPLORE_HOURS + rng.normal(0.0, 2.5 * noise)
                why = "I have no history yet, so I start near a full-time week of 40 hours."
        else:
            hv = np.array([p[0] for p in items])
            yv = np.array([p[1] for p in items])
            best_h = float(hv[int(np.argmax(yv))])
            trust = max(1.0, 12.0 / math.sqrt(len(hc)))
            target = None
            if len(items) >= 3 and np.ptp(hv) > 0:
                x = hv - best_h
                a, b, _ = np.polyfit(x, yv, 2)
                if a < 0:
                    target = best_h - b / (2 * a)
                else:
                    target = best_h + math.copysign(trust, b)
            if target is None:
                order = np.argsort(hv)
                slope = (yv[order][-1] - yv[order][0]) / max(hv[order][-1] - hv[order][0], 1e-9)
                target = best_h + math.copysign(trust, slope)
            new = best_h + float(np.clip(target - best_h, -trust, trust))
            new += rng.normal(0.0, _NOISE0 * noise / math.sqrt(len(hc) + 1))
            why = (f"Utility was best at {best_h:.1f} h among my recent tries; a local fit points to "
                   f"{target:.1f} h, so I move toward it.")
    new = float(min(max(new, 0.0), MAX_HOURS))
    return {"hours": round(new, 1)}, why


def _es_sigma(points: list[tuple[float, list[float], float]]) -> tuple[float, int, int]:
    """The (1+1)-ES step after replaying the 1/5 success rule over the years in order."""
    best = -math.inf
    succ = fail = 0
    for i, (_, _, w) in enumerate(points):
        if i:
            if w > best:
                succ += 1
            else:
                fail += 1
        best = max(best, w)
    sigma = _SIGMA0 * _ALPHA ** (succ - fail / 4.0)
    return float(min(max(sigma, _SIGMA_MIN), _SIGMA_MAX)), succ, fail


def _planner(inp: dict, demos: list, rng: np.random.Generator, temperature: float | None) -> tuple[dict, str]:
    cutoffs = _floats(inp.get("cutoffs")) or []
    current = _floats(inp.get("current_rates_percent")) or []
    k = len(cutoffs) or len(current)
    points: list[tuple[float, list[float], float]] = []
    seen = set()
    for r in _rows(inp.get("history")) + _rows(inp.get("best")):
        rr, w = _floats(r.get("rates_percent")), _num(r.get("welfare"))
        if rr is None or not math.isfinite(w) or (k and len(rr) != k):
            continue
        key = (r.get("year"), tuple(rr))
        if key not in seen:
            seen.add(key)
            points.append((_num(r.get("year"), 0.0), rr, w))
    points.sort(key=lambda p: p[0])
    k = k or (len(points[0][1]) if points else 1)
    if len(current) != k:
        current = [0.0] * k

    # A demonstration's answer for the same brackets: the first such demo (DSPy lists the chosen ones first),
    # preferring demos shown the same cut-offs.
    demo = None
    for same in (True, False):
        for d_in, d_out in demos:
            rr = _floats(d_out.get("rates_percent"))
            if rr and len(rr) == k and (not same or _floats(d_in.get("cutoffs")) == cutoffs):
                demo = rr
                break
        if demo:
            break
    tried = lambda r: any(max(abs(a - b) for a, b in zip(r, p[1])) < 0.5 for p in points)  # noqa: E731

    if demo is not None and len(points) <= 1 and not tried(demo):
        new = list(demo)
        why = "I start from the schedule of my best demonstration."
    else:
        sigma, succ, fail = _es_sigma(points)
        if points:
            parent_year, parent, w_best = max(points, key=lambda p: p[2])
            why_parent = f"the best welfare so far ({w_best:.4g}) came from year {int(parent_year)}'s rates"
        else:
            parent, why_parent = list(current), "I have no history, so I start from the current rates"
        step = rng.normal(0.0, sigma, size=k)
        new = list(np.clip(np.asarray(parent) + step, 0.0, 100.0))
        why = (f"{why_parent[0].upper()}{why_parent[1:]}; {succ} of the last {succ + fail} changes helped, "
               f"so I perturb them by about {sigma:.1f} points.")
    return {"rates_percent": [round(float(x), 1) for x in new]}, why


def _voter(inp: dict, demos: list, rng: np.random.Generator, temperature: float | None) -> tuple[dict, str]:
    rows = _rows(inp.get("history"))
    rows.sort(key=lambda r: _num(r.get("step"), 0.0))
    recent = rows[-3:]
    z = float(np.mean([_num(r.get("pretax_income"), 0.0) for r in recent])) if recent else 0.0
    rebate = float(np.mean([_num(r.get("rebate"), 0.0) for r in recent])) if recent else 0.0
    cands = [c for c in _rows(inp.get("candidates")) if isinstance(c.get("candidate"), str)]
    if not cands:
        names = inp.get("candidates")
        name = names[0] if isinstance(names, list) and names and isinstance(names[0], str) else "none"
        return {"candidate": name}, "No platform states its rates; I vote for the first candidate."
    shared = _floats(inp.get("cutoffs"))
    scores = []
    for c in cands:
        rates = _floats(c.get("rates_percent")) or []
        cut = _floats(c.get("cutoffs")) or shared or []
        scores.append(z - float(_schedule_tax(np.array([z]), cut, rates)[0]) + rebate)
    i = int(np.argmax(scores))
    why = (f"At my recent income of ${z:,.0f} a year, {cands[i]['candidate']}'s rates leave me "
           f"${scores[i]:,.0f} after tax, the most of any platform.")
    return {"candidate": cands[i]["candidate"]}, why


def _satisfaction(inp: dict, demos: list, rng: np.random.Generator, temperature: float | None) -> tuple[dict, str]:
    this = inp.get("this_year") if isinstance(inp.get("this_year"), dict) else {}
    last = inp.get("last_year") if isinstance(inp.get("last_year"), dict) else None
    u = _num(this.get("utility"), 0.0)
    if last is None:
        ok = u >= 0.0
        why = f"This is my first year and my utility of {u:.4g} is {'non-negative' if ok else 'negative'}."
    else:
        u0 = _num(last.get("utility"), 0.0)
        ok = u >= u0
        why = f"My utility went from {u0:.4g} last year to {u:.4g} this year."
    return {"satisfied": bool(ok)}, why


_SEX = {"female": "woman", "f": "woman", "woman": "woman", "male": "man", "m": "man", "man": "man"}


def _persona(inp: dict, demos: list, rng: np.random.Generator, temperature: float | None) -> tuple[dict, str]:
    text = str(inp.get("demographics") or "").strip()
    fields: dict[str, str] = {}
    for piece in re.split(r"[;\n]|,(?=\s*[A-Za-z][\w /-]*\s*[:=])", text):
        m = _KV.match(piece)
        if m:
            fields[m.group(1).strip().lower().replace(" ", "_")] = m.group(2).strip().rstrip(".")
    if not fields:
        t = _WS.sub(" ", text).strip().rstrip(".")
        persona = f"You are {t[0].lower() + t[1:]}." if t else "You are a US worker."
        return {"persona": persona}, "I restate the description as a persona."
    age = fields.pop("age", None) or fields.pop("age_years", None)
    sex = _SEX.get((fields.pop("sex", None) or fields.pop("gender", None) or "").lower(), "person")
    occ = fields.pop("occupation", None)
    edu = fields.pop("education", None)
    head = f"You are a {age}-year-old {sex}" if age and age.isdigit() else f"You are a {sex}"
    if age and not age.isdigit():
        head += f" aged {age}"
    if occ:
        head += f" working in {occ.lower()}"
    if edu:
        e = edu.lower()
        if "degree" in e and not e.startswith(("a ", "an ", "no ")):
            head += f", with {'an' if e[0] in 'aeiou' else 'a'} {e}"
        else:
            head += f", with {e}" + ("" if "education" in e or "degree" in e else " education")
    rest = " ".join(f"Your {k.replace('_', ' ')}: {v}." for k, v in fields.items())
    persona = head + "." + (f" {rest}" if rest else "")
    return {"persona": persona}, "I turn the demographic fields into one sentence."


#: A policy: ``fn(inputs, demos, rng, temperature) -> (values, reasoning)``. ``inputs`` maps each input
#: field of the prompt's last user message to its value (parsed JSON where it parses, else the stripped
#: text); ``demos`` lists ``(inputs, outputs)`` of the few-shot demonstrations; ``rng`` is a numpy
#: Generator seeded by the prompt; ``temperature`` is the request's (None if unset). ``values`` maps output
#: field names to answers (fields left out get a type default); ``reasoning`` fills a ChainOfThought field.
Policy = Callable[[dict, list, np.random.Generator, "float | None"], tuple[dict, str]]

#: The policies by output field name, in precedence order: a prompt is answered by the first policy
#: whose field is among its output fields. Extend it with ``register_policy``.
POLICIES: dict[str, Policy] = {
    "hours": _worker,
    "rates_percent": _planner,
    "candidate": _voter,
    "satisfied": _satisfaction,
    "persona": _persona,
}
_POLICIES = POLICIES  # the name the engine has always used


def register_policy(output_field: str, fn: Policy, *, replace: bool = False) -> Policy:
    """Have the offline engine answer signatures with the output field ``output_field`` by ``fn``.

    The extension point for a new signature (``docs/design.md`` §8.4). ``fn`` must read only its
    arguments (the prompt), never a simulator's state, and be deterministic given ``rng``. New fields are
    appended after the built-in ones, which keep precedence on a signature that has both. Registering a
    field already taken raises ValueError unless ``replace`` (the same function again is a no-op).
    Returns ``fn``, so it can be used as ``register_policy("field", fn)`` or via ``functools.partial``.
    """
    if not isinstance(output_field, str) or not output_field.isidentifier():
        raise ValueError(f"output_field={output_field!r} must be a signature's output field name (an identifier)")
    if output_field == "reasoning":
        raise ValueError("output_field='reasoning' is filled by the engine from a policy's reasoning; "
                         "register the signature's own output field")
    if not callable(fn):
        raise ValueError(f"the policy for {output_field!r} must be callable, got {type(fn).__name__}")
    old = POLICIES.get(output_field)
    if old is not None and old is not fn and not replace:
        raise ValueError(f"output field {output_field!r} already has the offline policy "
                         f"{getattr(old, '__qualname__', old)!r}; pass replace=True to replace it")
    POLICIES[output_field] = fn
    return fn


def _default(type_name: str) -> Any:
    t = type_name.replace(" ", "").lower()
    if t.startswith("bool"):
        return False
    if t.startswith(("float", "int")):
        return 0
    if t.startswith(("list", "tuple")):
        return []
    if t.startswith("dict"):
        return {}
    return "N/A"


# ───────────────────────────── answering ─────────────────────────────


def _rng(seed: int, temperature: float | None, system: str, messages: Sequence[tuple[str, str]]) -> np.random.Generator:
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{int(seed)}|{temperature!r}|".encode())
    h.update(system.encode())
    for role, text in messages:
        h.update(b"\x1e" + role.encode() + b"\x1f" + text.encode())
    return np.random.default_rng(int.from_bytes(h.digest(), "little"))


def answer_fields(
    system: str,
    messages: Sequence[tuple[str, str]],
    *,
    seed: int = 0,
    temperature: float | None = None,
    json_mode: bool = False,
) -> tuple[list[tuple[str, str]], dict[str, Any], str]:
    """The engine's decision before formatting: output fields ``(name, type)``, their values, and the format.

    Parameters are those of ``answer``. The format is ``"chat"``, ``"json"`` or ``"xml"``; the output
    field list is empty when the prompt is not a DSPy prompt.
    """
    _, out_fields, fmt = parse_system(system or "")
    if json_mode:
        fmt = "json"
    users = [i for i, (role, _) in enumerate(messages) if role == "user"]
    last = messages[users[-1]][1] if users else ""
    if fmt == "chat" and "Respond with a JSON object" in last:
        fmt = "json"
    if not out_fields:
        return [], {}, fmt
    inp = sections(last)
    demos = []
    for i in users[:-1]:
        if i + 1 < len(messages) and messages[i + 1][0] == "assistant":
            demos.append((sections(messages[i][1]), assistant_fields(messages[i + 1][1])))
    names = [n for n, _ in out_fields]
    rng = _rng(seed, temperature, system or "", messages)
    values: dict[str, Any] = {}
    why = ""
    for key, policy in _POLICIES.items():
        if key in names:
            values, why = policy(inp, demos, rng, temperature)
            break
    for name, type_name in out_fields:
        if name == "reasoning":
            values[name] = why or "I answer from the information given."
        elif name not in values:
            values[name] = _default(type_name)
    return list(out_fields), values, fmt


def format_answer(fields: Sequence[tuple[str, str]], values: dict[str, Any], fmt: str) -> str:
    """Render output values in the adapter's format (``chat``, ``json`` or ``xml``)."""
    if not fields:
        return f"This is the {OFFLINE_LABEL}; it answers the project's DSPy signatures only."
    return format_fields(list(fields), values, fmt)


def answer(
    system: str,
    messages: Sequence[tuple[str, str]],
    *,
    seed: int = 0,
    temperature: float | None = None,
    json_mode: bool = False,
) -> str:
    """The engine's reply to one prompt.

    Parameters
    ----------
    system : str
        The system message (DSPy's field list, format and instructions).
    messages : sequence of (role, text)
        The chat after the system message; the last user message holds the inputs, earlier
        user/assistant pairs are demonstrations.
    seed, temperature : the engine seed and the request temperature (0 disables exploration noise).
    json_mode : answer a JSON object even if the system message does not ask for one.

    Returns
    -------
    str : the completion text, in the adapter's format.
    """
    return format_answer(*answer_fields(system, messages, seed=seed, temperature=temperature, json_mode=json_mode))


def answer_request(request: Request, seed: int = 0) -> str:
    """``answer`` for a ``dspy.lm15.Request`` (JSON when the request asks for a response format)."""
    system, messages = request_texts(request)
    return answer(system, messages, seed=seed, temperature=request.config.temperature,
                  json_mode=request.config.response_format is not None)


class OfflineEngine:
    """Synchronous DSPy engine (``dspy.clients.engines.base.Engine``) backed by ``answer``.

    Parameters
    ----------
    seed : int
        Mixed into every call's noise; two engines with the same seed answer a prompt identically.
    """

    label = OFFLINE_LABEL

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def complete(self, request: Request) -> Response:
        system, messages = request_texts(request)
        text = answer(system, messages, seed=self.seed, temperature=request.config.temperature,
                      json_mode=request.config.response_format is not None)
        n_in = (len(system) + sum(len(t) for _, t in messages)) // 4
        n_out = max(1, len(text) // 4)
        return Response(id=None, model=MODEL_NAME, message=Message.assistant([TextPart(text)]),
                        finish_reason="stop", usage=Usage(input_tokens=n_in, output_tokens=n_out))

    def stream(self, request: Request) -> Iterator:
        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass

    def dump_state(self) -> dict:
        return {"seed": self.seed}

    @classmethod
    def load_state(cls, state: dict) -> "OfflineEngine":
        return cls(seed=int(state.get("seed", 0)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})  # {OFFLINE_LABEL}"


class AsyncOfflineEngine:
    """Async counterpart of ``OfflineEngine`` (answers inline: each call takes well under a millisecond)."""

    label = OFFLINE_LABEL

    def __init__(self, seed: int = 0) -> None:
        self._sync = OfflineEngine(seed)

    @property
    def seed(self) -> int:
        return self._sync.seed

    async def complete(self, request: Request) -> Response:
        return self._sync.complete(request)

    async def stream(self, request: Request) -> AsyncIterator:
        for event in self._sync.stream(request):
            yield event

    async def aclose(self) -> None:
        pass

    def dump_state(self) -> dict:
        return {"seed": self.seed}

    @classmethod
    def load_state(cls, state: dict) -> "AsyncOfflineEngine":
        return cls(seed=int(state.get("seed", 0)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})  # {OFFLINE_LABEL}"


def offline_lm(seed: int = 0, temperature: float = 1.0, **kw: Any) -> dspy.LM:
    """A ``dspy.LM`` backed by the offline engine (not a language model).

    Parameters
    ----------
    seed : int
        Engine seed: runs with the same seed and prompts replay exactly.
    temperature : float
        Scales the worker's exploration noise (0 = none); also mixed into the noise seed.
    **kw
        Further ``dspy.LM`` keyword arguments (``num_retries``, ``max_tokens``, ...). The cache is off
        by default because DSPy's cache key ignores a custom engine.
    """
    kw.setdefault("cache", False)
    return dspy.LM(f"offline/{MODEL_NAME}", engine=OfflineEngine(seed), async_engine=AsyncOfflineEngine(seed),
                   temperature=temperature, **kw)
