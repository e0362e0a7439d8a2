"""The printed summary of ``optimize.planner`` (``<out>.summary.json`` holds the same and more)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optimize.scores import verdict

__all__ = ["format_summary", "failure_lines"]


def format_summary(s: dict[str, Any]) -> str:
    """The printed summary (the JSON file holds the same and more)."""
    h = s["heldout"]
    lines = []
    if s["mode"] == "compile":
        b = s["budget"]
        lines += [
            f"optimizer: {s['optimizer']}",
            f"LM: {s['lm']}" + (f"; instructions by: {s['instruction_lm']}" if s.get("instruction_lm") else ""),
            f"metric: {s['metric']}",
            f"budget: {b['limit']} LM calls for the whole run; used {b.get('total_calls', '?')}: compile "
            f"{b['compile_calls']} (bound {b['plan']['max_calls']}, knobs {b['plan']['knobs']}), scoring "
            f"{b['evaluation_calls']} (bound {b.get('evaluation_bound', '?')})"
            + (f"; {b['failed_calls']} failed" if b.get("failed_calls") else "")
            + (f"; {b['refused_calls']} refused at the cap (never sent)" if b.get("refused_calls") else ""),
            f"situations: {s['situations']['train']} train, {s['situations']['validation']} validation, "
            f"{s['situations']['heldout']} held-out (seeds {_seed_text(s['seeds']['heldout'])})",
            f"held-out mean score: uncompiled {h['before']['mean']:.4f} -> compiled {h['after']['mean']:.4f} "
            f"({h['delta_mean']:+.4f})",
        ]
        if "paired" in h:
            lines += [f"  paired over held-out seeds: {verdict(h['paired']['per_seed'])}",
                      f"  paired over held-out situations (not independent within a seed): "
                      f"{verdict(h['paired']['per_situation'])}"]
        lines += failure_lines(s.get("failures"))
        if s.get("usage"):
            u = s["usage"]
            lines.append(f"tokens ({u['source']}): {u['total']['prompt_tokens']:,} prompt + "
                         f"{u['total']['completion_tokens']:,} completion over {u['total']['calls']:,} answers; "
                         + ", ".join(f"{r} {row['prompt_tokens'] + row['completion_tokens']:,}"
                                     for r, row in u["by_role"].items()))
        if s.get("validation"):
            lines.append(f"validation mean score: uncompiled {s['validation']['before']['mean']:.4f} -> compiled "
                         f"{s['validation']['after']['mean']:.4f}")
        lines.append("per held-out situation (before -> after):")
        for row in h["per_situation"]:
            lines.append(f"  {row['situation']:<16} {row['before']:.4f} -> {row['after']:.4f}")
        p = s["program"]
        lines.append(f"program: {p['path']} ({p['demos']} demos, instructions "
                     f"{'changed' if p['instructions_changed'] else 'unchanged'})")
    else:
        st = s["study"]
        lines += [
            f"study {st['study_name']!r}: {st['trials']} trials {st['by_state']}"
            + (f" in {s['storage']}" if s.get("storage") else ""),
            f"LM: {s['lm']}; workers: {s['workers']}",
            f"best trial #{st['best']['number']}: score {st['best']['score']:.4f} with {st['best']['knobs']}",
            f"held-out end-to-end mean score: given knobs {h['before']['mean']:.4f} -> best knobs "
            f"{h['after']['mean']:.4f} ({h['delta_mean']:+.4f})",
        ]
        for row in h["per_seed"]:
            lines.append(f"  seed {row['seed']:<6} {row['before']:.4f} -> {row['after']:.4f}")
        lines.append(f"LM calls: {s['budget']['calls']['total']}" +
                     (f" of budget {s['budget']['limit']}" if s['budget']['limit'] else ""))
        lines.append(f"program: {s['program']['path']} (history_len {s['program']['history_len']}, "
                     f"{s['program']['demos']} demos)")
    lines += [f"note: {n}" for n in s.get("notes", [])]
    return "\n".join(lines)


def failure_lines(f: dict[str, Any] | None) -> list[str]:
    """Failed LM calls by phase and cause, and unusable planner answers by phase and kind (or one 'none' line)."""
    if not f:
        return []
    parts = []
    if f.get("compile_aborted"):
        ab = f["compile_aborted"]
        parts.append(f"the compile stopped on an LM failure ({ab['cause']}: {ab['message']}); the saved program "
                     "is the uncompiled one")
    for phase, causes in (f.get("lm_errors") or {}).items():
        parts.append(f"LM errors in {phase}: " + ", ".join(f"{k} {n}" for k, n in causes.items()))
    for role, phases in (f.get("unusable_answers") or {}).items():
        for phase, kinds in phases.items():
            parts.append(f"unusable {role} answers in {phase}: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    return ["failures: " + ("; ".join(parts) if parts else "none (no LM error, every planner answer usable)")]


def _seed_text(seeds: Sequence[int]) -> str:
    if seeds and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    return ",".join(map(str, seeds))



def table(summaries: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of compiles (the README's): budget used, tokens, wall time, held-out score with its
    paired interval over seeds, what the compiled program changed."""
    rows = ["| optimizer | LM calls used / budget | tokens (prompt + completion) | wall time | held-out "
            "uncompiled → compiled | gain, 95% CI over seeds | failures | compiled program |",
            "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        h, b, p = s["heldout"], s["budget"], s["program"]
        seed = h["paired"]["per_seed"]
        ci = (f"{seed['delta_mean']:+.3f} [{seed['low']:+.3f}, {seed['high']:+.3f}] (n={seed['n']})"
              if seed.get("half_width") is not None else f"{seed['delta_mean']:+.3f} (no interval)")
        tok = (s.get("usage") or {}).get("total") or {}
        fails = sum(n for causes in s["failures"]["lm_errors"].values() for n in causes.values())
        bad = sum(n for phases in s["failures"]["unusable_answers"].values() for k in phases.values()
                  for n in k.values())
        change = (f"{p['demos']} demos, instructions {'rewritten' if p['instructions_changed'] else 'unchanged'}")
        if s["failures"].get("compile_aborted"):
            change = f"compile stopped ({s['failures']['compile_aborted']['cause']}): uncompiled program kept"
        rows.append(f"| {s['optimizer']} | {b['total_calls']} / {b['limit']} | "
                    f"{tok.get('prompt_tokens', 0):,} + {tok.get('completion_tokens', 0):,} | "
                    f"{s['elapsed_seconds']:.0f} s | {h['before']['mean']:.3f} → {h['after']['mean']:.3f} | {ci} | "
                    f"{fails} LM errors, {bad} unusable answers, {b.get('refused_calls', 0)} refused | {change} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m optimize.report SUMMARY.json ... : the README's table
    import json
    import sys
    from pathlib import Path

    print(table([json.loads(Path(f).read_text()) for f in sys.argv[1:]]))
