"""The offline instruction writer: a rule-based stand-in for the LM that writes instructions.

MIPROv2, COPRO and GEPA ask an LM to *write* instructions (MIPROv2's grounded proposer, COPRO's
``BasicGenerateInstruction``/``GenerateInstructionGivenAttempts``, GEPA's reflection ``ProposeInstruction``).
The offline engine answers only the project's signatures: asked for an instruction it would answer
"N/A", and an optimizer would then try, and might keep, "N/A" as the planner's instruction. So when no
LM is given for that role (``--reflection-lm``), these optimizers get this writer instead. It is NOT a
language model and it is labelled as such wherever it runs. It answers, deterministically:

- instruction proposals (``proposed_instruction``): the base instruction it is shown (the current one,
  or the best-scoring attempt) with one guidance paragraph from a fixed bank of hand-written,
  economically sound planner strategies, a different one for each request;
- GEPA's reflection (``new_instruction``): the current instruction plus a rule-based summary of the
  metric's feedback in the prompt -- the best-known rates it reports, averaged per bracket, and the
  brackets where proposals fell furthest from them;
- output prefixes, program/module descriptions and dataset summaries: short fixed, true sentences
  (``COMPLETE`` when asked for further observations, which ends MIPROv2's summary loop early).

Any other prompt goes to the offline engine (so the writer can also serve as a task LM in tests).

What it means for results: the offline planner reads demonstrations but not instructions (its policy
is numeric), so offline, instruction search can only reshuffle the engine's noise; offline runs of
mipro/copro/gepa exercise the optimizers end to end, and instruction search pays off only with real
LMs (``--lm`` and ``--reflection-lm``).
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
import threading
from collections.abc import Iterator, Sequence

import dspy
import numpy as np
from dspy.lm15 import Message, Request, Response, TextPart, Usage, response_to_events

from programs.lm.offline import OfflineEngine, answer_fields, format_answer
from programs.lm.prompts import request_texts, sections

__all__ = ["WRITER_LABEL", "GUIDANCE", "OfflineInstructionWriter", "writer_lm", "write_instruction"]

WRITER_LABEL = "offline instruction writer (rule-based, not a language model)"
MODEL_NAME = "offline-instruction-writer"

#: Hand-written planner guidance, one paragraph per candidate instruction.
GUIDANCE: tuple[str, ...] = (
    "Strategy: start from the rates of the year with the highest welfare so far (or from your best "
    "demonstration) and change them by a few percentage points at a time; keep a change only if welfare rose.",
    "Strategy: revenue comes back to everyone as an equal rebate, so taxing higher incomes funds a rebate that "
    "matters most to low earners; raise rates where welfare has risen with them, and stop where mean hours and "
    "revenue start to fall.",
    "Strategy: compare the best years with the rest bracket by bracket; move each bracket's rate toward its "
    "value in the best years, with larger steps when recent changes helped and smaller ones when they did not.",
    "Strategy: watch the workers' response -- if mean hours drop sharply or revenue falls after a rate rise, "
    "the rate has passed the point where it raises welfare; step it back toward the best year's rate.",
    "Strategy: treat each year as an experiment: change at most two or three brackets at once, by a size that "
    "reflects how often past changes improved welfare, so that the history shows which changes helped.",
    "Strategy: brackets with few workers in them move little revenue; spend your changes on the brackets where "
    "most workers' incomes fall, and keep the top bracket's rate consistent with the brackets below it.",
)

_FIXED: dict[str, str] = {
    "proposed_prefix_for_output_field": "Rates in percent, one per bracket:",
    "program_description": ("A tax planner: one predictor reads the bracket cut-offs, the rates in force and past "
                            "years' rates with the welfare, revenue and hours they produced, and proposes next "
                            "year's marginal rate for each bracket."),
    "module_description": ("Proposes next year's marginal rates, one per bracket in percent, from the history of "
                           "rates and the welfare they produced."),
    "summary": ("Each example is a tax planner's decision point: bracket cut-offs, the rates in force and past "
                "years with their welfare; the answer is one marginal rate per bracket in percent."),
}

_BEST = re.compile(r"Best-known rates for this economy \(percent per bracket\): \[([0-9.,\s-]+)\]")
_YOURS = re.compile(r"Your rates \(percent per bracket\): \[([0-9.,\s-]+)\]")
_SCORE = re.compile(r"\(score ([0-9.]+)\)")
_ITEM = re.compile(r"^\[\d+\] «««\n(.*?)\n[ \t]*»»»", re.S | re.M)
_ATTEMPT = re.compile(r"^Instruction #(\d+): (.*)$", re.S)
_MARK = "\n\nStrategy:"
_LESSONS = "\n\nLessons from evaluated proposals"


def _base(instruction: str) -> str:
    """An instruction without the paragraphs this writer adds (so they do not pile up)."""
    text = instruction.strip().strip('"').strip()
    for mark in (_MARK, _LESSONS):
        i = text.find(mark)
        if i >= 0:
            text = text[:i]
    if text.startswith("Strategy:") or text.startswith("Lessons from evaluated proposals"):
        text = ""
    return text.strip()


def _default_instruction() -> str:
    from signatures import ProposeTaxSchedule

    return ProposeTaxSchedule.instructions


def _floats(s: str) -> list[float]:
    try:
        return [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        return []


def _lessons(text: str) -> str | None:
    """A rule-based reading of the metric feedback shown in a reflection prompt."""
    best = [_floats(m) for m in _BEST.findall(text)]
    yours = [_floats(m) for m in _YOURS.findall(text)]
    scores = [float(s) for s in _SCORE.findall(text)]
    best = [b for b in best if b]
    if not best:
        return None
    k = len(best[0])
    best = [b for b in best if len(b) == k]
    target = np.mean(np.asarray(best), axis=0)
    parts = [f"{_LESSONS.strip()} (a rule-based summary of the evaluation feedback): in these economies "
             f"welfare was highest with rates near {', '.join(f'{x:.0f}%' for x in target)} for the {k} brackets, "
             "lowest first."]
    yours = [y for y in yours if len(y) == k]
    if yours:
        gap = target - np.mean(np.asarray(yours), axis=0)
        order = [int(j) for j in np.argsort(-np.abs(gap)) if abs(gap[j]) >= 5.0][:3]
        if order:
            parts.append("Proposals fell furthest from them in " + "; ".join(
                f"bracket {j + 1} ({'too low' if gap[j] > 0 else 'too high'} by about {abs(gap[j]):.0f} points)"
                for j in order) + ".")
    if scores:
        parts.append(f"The evaluated proposals reached {100 * float(np.mean(scores)):.0f}% of the best-known "
                     "welfare gain on average.")
    parts.append("Move from the best year seen toward those rates, and keep a change only if welfare rose.")
    return " ".join(parts)


def _attempts(text: str) -> list[tuple[int, str]]:
    """``(k, instruction)`` for each ``Instruction #k: ...`` item of COPRO's attempts list.

    DSPy's adapters show a list either as JSON or as ``[i] «««`` blocks (indented, possibly multi-line).
    """
    items: list[str] = []
    t = text.strip()
    if t.startswith("["):
        try:
            value = json.loads(t)
            items = [str(v) for v in value] if isinstance(value, list) else []
        except ValueError:
            items = []
    if not items:
        items = [textwrap.dedent(m.group(1)) for m in _ITEM.finditer(text)]
    out = []
    for item in items:
        m = _ATTEMPT.match(item.strip())
        if m:
            out.append((int(m.group(1)), m.group(2).strip()))
    return out


def write_instruction(fields: dict[str, str], text: str, variant: int) -> dict[str, str]:
    """Instruction-writer answers for the output ``fields`` of one prompt (name -> type).

    ``text`` is the prompt's last user message; ``variant`` picks the guidance paragraph.
    """
    inp = sections(text, parse=False)
    out: dict[str, str] = {}
    for name in fields:
        if name in ("new_instruction", "improved_instruction"):
            base = _base(inp.get("current_instruction", "")) or _default_instruction()
            lessons = _lessons(text)
            out[name] = base + ("\n\n" + lessons if lessons else "\n\n" + GUIDANCE[variant % len(GUIDANCE)])
        elif name == "proposed_instruction":
            base = _base(inp.get("basic_instruction", ""))
            if not base and "attempted_instructions" in inp:
                tries = _attempts(inp["attempted_instructions"])
                if tries:  # listed in increasing order of score: the highest number is the best
                    base = _base(max(tries)[1])
            base = base or _default_instruction()
            out[name] = base + "\n\n" + GUIDANCE[variant % len(GUIDANCE)]
        elif name == "observations":
            out[name] = "COMPLETE" if "prior_observations" in inp else _FIXED["summary"]
        elif name in _FIXED:
            out[name] = _FIXED[name]
    return out


#: Output fields that mark a prompt as an instruction-writing request.
WRITER_FIELDS = frozenset({"new_instruction", "improved_instruction", "proposed_instruction", "observations",
                           *_FIXED})


class OfflineInstructionWriter(OfflineEngine):
    """DSPy engine: the rule-based instruction writer, the offline engine for every other prompt.

    It keeps one counter per distinct prompt so that the ``n`` requests DSPy sends for ``n`` completions
    (COPRO asks for several) get different guidance paragraphs; a run replays exactly.
    """

    label = WRITER_LABEL

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self._seen: dict[bytes, int] = {}
        self._lock = threading.Lock()

    def _variant(self, system: str, messages: Sequence[tuple[str, str]]) -> int:
        h = hashlib.blake2b(digest_size=8)
        h.update(f"{self.seed}|".encode() + system.encode())
        for role, text in messages:
            h.update(b"\x1e" + role.encode() + b"\x1f" + text.encode())
        key = h.digest()
        with self._lock:
            i = self._seen.get(key, 0)
            self._seen[key] = i + 1
        return int.from_bytes(key[:4], "little") + i

    def complete(self, request: Request) -> Response:
        system, messages = request_texts(request)
        fields, values, fmt = answer_fields(system, messages, seed=self.seed, temperature=request.config.temperature,
                                            json_mode=request.config.response_format is not None)
        names = {n for n, _ in fields}
        if not names & WRITER_FIELDS:
            return super().complete(request)
        last = next((t for role, t in reversed(messages) if role == "user"), "")
        values.update(write_instruction({n: t for n, t in fields}, last, self._variant(system, messages)))
        text = format_answer(fields, values, fmt)
        n_in = (len(system) + sum(len(t) for _, t in messages)) // 4
        return Response(id=None, model=MODEL_NAME, message=Message.assistant([TextPart(text)]),
                        finish_reason="stop", usage=Usage(input_tokens=n_in, output_tokens=max(1, len(text) // 4)))

    def stream(self, request: Request) -> Iterator:
        return response_to_events(self.complete(request))

    def __deepcopy__(self, memo: dict) -> "OfflineInstructionWriter":
        # LM copies share the writer (its per-prompt counters hold a lock, which cannot be copied).
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})  # {WRITER_LABEL}"


class _AsyncWriter:
    label = WRITER_LABEL

    def __init__(self, sync: OfflineInstructionWriter) -> None:
        self._sync = sync

    async def complete(self, request: Request) -> Response:
        return self._sync.complete(request)

    async def stream(self, request: Request):
        for event in self._sync.stream(request):
            yield event

    async def aclose(self) -> None:
        pass

    def dump_state(self) -> dict:
        return {"seed": self._sync.seed}


def writer_lm(seed: int = 0, temperature: float = 1.0) -> dspy.LM:
    """A ``dspy.LM`` backed by the offline instruction writer (not a language model)."""
    eng = OfflineInstructionWriter(seed)
    lm = dspy.LM(f"offline/{MODEL_NAME}", engine=eng, async_engine=_AsyncWriter(eng), temperature=temperature,
                 cache=False)
    lm.budget_label = WRITER_LABEL
    return lm
