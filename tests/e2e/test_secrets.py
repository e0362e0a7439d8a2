"""A planted API key reaches the server (it is really used) but no file, log or output of ours.

The key is set as OPENAI_API_KEY; with --api-base pointing at the local server the client sends it there.
The server records only a hash prefix of the credentials it was shown, which proves the key was in play.
"""

from __future__ import annotations

import base64
import hashlib
import json
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


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@pytest.mark.slow
def test_gateway_credentials_in_the_url_are_used_and_never_written(tmp_path: Path):
    """An endpoint URL with user-info (gateways, proxies) works, its credentials sent as the request's
    Authorization; a URL with a query is refused in one line (DSPy's clients cannot send a query). Neither
    secret is written or printed: run directories, reports, configs, saved programs, DSPy's cache, the
    stop line's "run again with" command."""
    password, token = f"PW{secrets.token_hex(6)}", f"TOK{secrets.token_hex(6)}"
    env = cli_env(tmp_path)
    outputs = []
    with serve(tmp_path / "srv", env=env) as server:
        userinfo = server.url.replace("http://", f"http://gw-user:{password}@")
        query = server.url + f"?token={token}"
        outputs.append(run_cli("programs.simulate", ["--agents", "4", "--years", "2", "--steps-per-year", "1",
                                                     "--brackets", "three", "--lm", "openai/offline", "--api-base",
                                                     userinfo, "--no-progress", "--out", str(tmp_path / "run")], env))
        outputs.append(run_cli("programs.simulate", ["--agents", "4", "--years", "3", "--steps-per-year", "1",
                                                     "--brackets", "three", "--lm", "openai/offline", "--api-base",
                                                     userinfo, "--no-progress", "--out", str(tmp_path / "run"),
                                                     "--resume"], env))
        outputs.append(run_cli("eval.compare", ["--agents", "4", "--years", "2", "--steps-per-year", "1", "--seeds",
                                                "1", "--planners", "llm,flat", "--oracle-trials", "3",
                                                "--oracle-refine", "0", "--lm", "openai/offline", "--api-base",
                                                userinfo, "--no-progress", "--out", str(tmp_path / "cmp")], env))
        outputs.append(run_cli("optimize.planner", ["--agents", "4", "--years", "2", "--train-seeds", "0",
                                                    "--val-seeds", "1", "--heldout-seeds", "100", "--oracle-trials",
                                                    "3", "--oracle-refine", "0", "--budget", "20", "--workers",
                                                    "rational", "--quiet", "--lm", "openai/offline", "--api-base",
                                                    userinfo, "--out", str(tmp_path / "prog.json")], env))
        refused = [run_cli(m, [*a, "--lm", "openai/offline", "--api-base", query, "--out", str(tmp_path / "q")], env)
                   for m, a in (("programs.simulate", ["--agents", "4"]), ("eval.compare", ["--agents", "4"]))]
        outputs += refused
        seen = server.stats()
    # Every call failing: the comparison stops and prints the command to run again, redacted (its own DSPy
    # cache: the answers cached above would otherwise be replayed).
    env = cli_env(tmp_path / "down")
    with serve(tmp_path / "srv_down", "--fail-rate", "1", "--faults", "http500", env=env) as down:
        stopped = run_cli("eval.compare", ["--agents", "4", "--years", "2", "--steps-per-year", "1", "--seeds", "1",
                                           "--planners", "llm", "--lm", "openai/offline", "--num-retries", "0",
                                           "--api-base", down.url.replace("http://", f"http://gw-user:{password}@"),
                                           "--no-progress", "--fallback-patience", "1", "--out",
                                           str(tmp_path / "stopped")], env)
    outputs.append(stopped)
    assert [o.returncode for o in outputs] == [0, 0, 0, 0, 2, 2, 3], [o.stderr[-800:] for o in outputs]
    assert "run again with: python -m eval.compare" in stopped.stderr and "gw-user:***@" in stopped.stderr
    # The comparison recognised the offline engine behind the gateway URL (its /models probe sent the
    # credentials too), so its LM rows are labelled as the stand-in, never as LLM results.
    assert "offline engine (not a language model)" in outputs[2].stdout
    for r in refused:
        assert len(r.stderr.strip().splitlines()) == 1 and "carries a query" in r.stderr and "token=***" in r.stderr
    # The credentials were really used: as the request's Authorization (HTTP Basic) on every call and on the
    # pre-flight probe, and no call failed for want of them.
    basic = "Basic " + base64.b64encode(f"gw-user:{password}".encode()).decode()
    assert seen["credentials_sha256_12"] == {_sha12(basic): seen["requests"]}
    assert seen["probe"]["credentials_sha256_12"].get(_sha12(basic), 0) >= 4
    assert seen["status"] == {"200": seen["requests"]} and seen["requests"] > 0
    # ... and neither secret appears anywhere we write or print (the URLs are kept, redacted).
    files = all_text(tmp_path)
    names = {p.name for p, _ in files}
    assert {"summary.json", "report.md", "config.json", "steps.jsonl", "prog.json"} <= names
    for path, data in files:
        for secret in (password, token):
            assert secret.encode() not in data, f"{secret} leaked into {path}"
    for o in outputs:
        for secret in (password, token):
            assert secret not in o.stdout and secret not in o.stderr
    config = json.loads((tmp_path / "cmp" / "config.json").read_text())
    assert config["api_base"] == [server.url.replace("http://", "http://gw-user:***@")]
