"""Docstrings cite ``docs/design.md §n``: every cited section exists, so the design document cannot drift
away from the code that points at it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITE = re.compile(r"docs/design\.md``? (§[0-9]+(?:\.[0-9]+)?)")
HEAD = re.compile(r"^#{2,3} ([0-9]+(?:\.[0-9]+)?)\.? ", re.M)


def test_every_cited_section_exists():
    heads = {f"§{m}" for m in HEAD.findall((ROOT / "docs" / "design.md").read_text())}
    assert {"§3", "§4.2", "§5.4", "§6.6", "§8.1"} <= heads
    cited: dict[str, list[str]] = {}
    for path in ROOT.glob("*/**/*.py"):
        if ".git" in path.parts:
            continue
        for sec in CITE.findall(path.read_text(encoding="utf-8")):
            cited.setdefault(sec, []).append(str(path.relative_to(ROOT)))
    assert len(cited) >= 5
    missing = {s: files for s, files in cited.items() if s not in heads}
    assert not missing, f"docs/design.md has no section {sorted(missing)} cited by {missing}"
