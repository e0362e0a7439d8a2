"""A planted API key reaches the server (it is really used) but no file, log or output of ours.

The key is set as OPENAI_API_KEY; with --api-base pointing at the local server the client sends it there.
The server records only a hash prefix of the credentials it was shown, which proves the key was in play.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest

from tests.e2e.conftest import cli_env, run_cli, serve


def all_text(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_planted_key_never_written(tmp_path: Path):
    key = f"sk-planted-XYZ-{secrets.token_hex(8)}"
    env = cli_env(tmp_path, OPENAI_API_KEY=key)
    outputs = []
    with serve(tmp_path / "srv", "--fail-rate", "0.2", "--faults", "http500,http429,out_of_range",
               "--retry-after-s", "0.1", "--seed", "2", env=env) as server:
        sim = run_cli("programs.simulate", ["--agents", "6", "--years", "2", "--steps-per-year", "2", "--brackets",
                                            "three", "--lm", "openai/offline", "--api-base", server.url,
                                            "--no-progress", "--retry-backoff", "0.05", "--out",
                                            str(tmp_path / "run")], env)
        outputs.append(sim)
        # A resume and a refused configuration print and write too.
        outputs.append(run_cli("programs.simulate", ["--agents", "6", "--years", "3", "--steps-per-year", "2",
                                                     "--brackets", "three", "--lm", "openai/offline", "--api-base",
                                                     server.url, "--no-progress", "--out", str(tmp_path / "run"),
                                                     "--resume"], env))
        outputs.append(run_cli("programs.simulate", ["--agents", "0", "--lm", "openai/offline", "--api-base",
                                                     server.url, "--out", str(tmp_path / "bad")], env))
        outputs.append(run_cli("eval.compare", ["--agents", "6", "--years", "2", "--steps-per-year", "2", "--seeds",
                                                "1", "--planners", "llm,flat", "--oracle-trials", "3",
                                                "--oracle-refine", "0", "--lm", "openai/offline", "--api-base",
                                                server.url, "--no-progress", "--out", str(tmp_path / "cmp")], env))
        seen = server.stats()
    assert [o.returncode for o in outputs] == [0, 0, 2, 0], [o.stderr[-800:] for o in outputs]
    # The client really sent the planted key (so the check below is not vacuous) ...
    assert hashlib.sha256(key.encode()).hexdigest()[:12] in seen["credentials_sha256_12"]
    assert "none" not in seen["credentials_sha256_12"]
    # ... and it appears nowhere we write: run directories, reports, plots, DSPy's cache, server log, output.
    needles = [key.encode(), key.split("-")[-1].encode()]
    files = all_text(tmp_path)
    assert any(p.name == "summary.json" for p, _ in files) and any(p.name == "report.md" for p, _ in files)
    for path, data in files:
        for n in needles:
            assert n not in data, f"the key leaked into {path}"
    for o in outputs:
        for n in needles:
            assert n.decode() not in o.stdout and n.decode() not in o.stderr
