"""The printed summary of ``optimize.planner`` (``<out>.summary.json`` holds the same and more)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["format_summary"]


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
            + (f"; {b['failed_calls']} failed" if b.get("failed_calls") else ""),
            f"situations: {s['situations']['train']} train, {s['situations']['validation']} validation, "
            f"{s['situations']['heldout']} held-out (seeds {_seed_text(s['seeds']['heldout'])})",
            f"held-out mean score: uncompiled {h['before']['mean']:.4f} -> compiled {h['after']['mean']:.4f} "
            f"({h['delta_mean']:+.4f})",
            f"validation mean score: uncompiled {s['validation']['before']['mean']:.4f} -> compiled "
            f"{s['validation']['after']['mean']:.4f}",
            "per held-out situation (before -> after):",
        ]
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


def _seed_text(seeds: Sequence[int]) -> str:
    if seeds and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    return ",".join(map(str, seeds))

