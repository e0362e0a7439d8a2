"""Every code block of the README runs, so the README cannot drift from the code (issue 11, "Also").

How each block is checked (all in one scratch directory, in README order, so later commands see the files
earlier ones wrote, as a reader's would):

- ```bash blocks: every command runs with its sizes shrunk by argument rewriting (``SMALL``: fewer agents,
  seeds, years, trials; a flag the README gives is replaced, a missing one appended), so the whole file takes
  well under two minutes. ``programs.serve`` runs in the background on a free port (the README's port is
  rewritten in the ``--api-base`` that follows) and is stopped at the end of its block.
- Not run, said here explicitly: ``pip install`` (the test environment is the installed project; no network)
  and ``python -m pytest`` (this is the suite); both are checked with ``--version``. Commands that need a
  real hosted LM or an API key, or a GPU server, (``--lm openai/gpt-4o-mini``, ``--api-base http://gpu1...``,
  Ollama) are checked only by ``--help`` and by their pre-flight: run as written without a key/server they
  must stop at once with one line and exit status 2, before any work.
- Commands of the local real model (``--lm local``, ``python -m llama_cpp.server`` and the runs against it)
  are run end to end by the ``realmodel`` tier (``tests/realmodel``); here only ``--help`` is checked.
- ```python blocks are executed as written (the signatures snippet on the offline engine it configures).
- The plain ``` block with the main job's table is the full-size output: the test checks its header and row
  names against a small run; set ``README_FULL=1`` to run the full default job (about 40 s) and compare every
  number.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

#: Small sizes per program (flag -> value); applied to every command of that program.
SMALL = {
    "eval.compare": {"--agents": "8", "--seeds": "0", "--years": "2", "--steps-per-year": "1",
                     "--oracle-trials": "5", "--oracle-refine": "0"},
    "programs.simulate": {"--agents": "6", "--years": "2", "--steps-per-year": "2"},
    "optimize.planner": {"--agents": "8", "--years": "2", "--train-seeds": "0-1", "--val-seeds": "2",
                         "--heldout-seeds": "100", "--tune-seeds": "3", "--trials": "2", "--oracle-trials": "5",
                         "--oracle-refine": "0"},
    "programs.serve": {"--retry-after-s": "0.05"},
}
#: Flags added to every run of a program (quiet output, quick retries against the faulty server).
EXTRA = {"eval.compare": ["--no-progress"], "programs.simulate": ["--no-progress", "--retry-backoff", "0.05"],
         "optimize.planner": ["--quiet"], "programs.serve": []}
#: Markers of commands that need a hosted LM, a key or a GPU server: --help and pre-flight only.
NEEDS_REAL_LM = ("openai/gpt-4o-mini", "gpu1:", "ollama_chat/", "openai/o4-mini", "--lm openai/gpt-5-mini --reasoning-effort")
#: Markers of the local real model's commands: tests/realmodel runs them end to end (in-process and served, with
#: the model this README names); here the project's commands are checked by --help, and the model server not run.
REAL_MODEL = ("--lm local", "llama_cpp.server", "openai/gemma-3-270m", "bench_local")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def commands(block: str) -> list[str]:
    text = block.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.split("  #")[0].split(" # ")[0].strip()
        if line and not line.startswith("#"):
            out += [part.strip() for part in line.split("&&")]
    return out


def shrink(words: list[str], prog: str) -> list[str]:
    words = list(words)
    small = dict(SMALL.get(prog, {}))
    if prog == "programs.simulate" and "--resume" in words:
        small["--years"] = "3"  # a resumed run continues to more years than the first one ran
    if prog == "optimize.planner" and "--tune" not in words:
        small.pop("--trials")
        small.pop("--tune-seeds")
    for flag, value in small.items():
        if flag in words:
            words[words.index(flag) + 1] = value
        else:
            words += [flag, value]
    return words + EXTRA.get(prog, [])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    e.update(PYTHONPATH=str(ROOT), LITELLM_LOCAL_MODEL_COST_MAP="True", MPLBACKEND="Agg")
    return e


def run(words: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    argv = [sys.executable if words[0] == "python" else words[0], *words[1:]]
    return subprocess.run(argv, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)


def test_readme_bash_blocks_run(tmp_path):
    checked = []
    for block in blocks("bash"):
        server = None
        port_map: dict[str, str] = {}
        try:
            for cmd in commands(block):
                words = shlex.split(cmd)
                if words[:4] == ["python", "-m", "pip", "install"]:
                    r = run(["python", "-m", "pip", "--version"], tmp_path)  # not run: no network, already installed
                    assert r.returncode == 0
                    checked.append(("not run (installed)", cmd))
                    continue
                if words[:3] == ["python", "-m", "pytest"]:
                    r = run(["python", "-m", "pytest", "--version"], tmp_path)  # not run: this is the suite
                    assert r.returncode == 0
                    checked.append(("not run (this suite)", cmd))
                    continue
                assert words[:2] == ["python", "-m"], cmd
                prog = words[2]
                for old, new in port_map.items():
                    words = [w.replace(old, new) for w in words]
                if any(m in cmd for m in REAL_MODEL):
                    if prog != "llama_cpp.server":
                        h = run(words[:3] + ["--help"], tmp_path, timeout=60)
                        assert h.returncode == 0 and "usage:" in h.stdout, h.stderr
                    checked.append(("real model: tests/realmodel", cmd))
                    continue
                if any(m in cmd for m in NEEDS_REAL_LM):
                    h = run(words[:3] + ["--help"], tmp_path, timeout=60)
                    assert h.returncode == 0 and "usage:" in h.stdout, h.stderr
                    r = run(words, tmp_path, timeout=60)  # pre-flight: no key / no server here
                    assert r.returncode == 2, (cmd, r.stdout[-500:], r.stderr[-500:])
                    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
                    checked.append(("help + pre-flight", cmd))
                    continue
                if prog == "programs.serve":
                    port = free_port()
                    old = words[words.index("--port") + 1]
                    port_map[f":{old}/"] = f":{port}/"
                    words[words.index("--port") + 1] = str(port)
                    server = subprocess.Popen([sys.executable, *shrink(words, prog)[1:]], cwd=tmp_path, env=env(),
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    assert "serving" in server.stdout.readline()
                    checked.append(("background", cmd))
                    continue
                r = run(shrink(words, prog), tmp_path)
                assert r.returncode == 0, (cmd, r.stdout[-1500:], r.stderr[-1500:])
                checked.append(("ran small", cmd))
        finally:
            if server is not None:
                server.send_signal(signal.SIGINT)
                server.wait(timeout=10)
    kinds = {k for k, _ in checked}
    assert {"ran small", "help + pre-flight", "background"} <= kinds, checked
    # What the README promises the commands wrote.
    assert (tmp_path / "results" / "summary.csv").exists()
    assert (tmp_path / "results" / "compiled" / "summary.csv").exists()
    assert (tmp_path / "compiled" / "planner.json").exists() and (tmp_path / "compiled" / "tuned.json").exists()
    assert (tmp_path / "runs" / "a" / "summary.json").exists() and (tmp_path / "runs" / "faulty" / "summary.json").exists()


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    py = blocks("python")
    assert len(py) >= 2
    for code in py:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


def test_readme_main_table_matches_the_code():
    table = re.search(r"```\n(planner .*?)```", README, flags=re.S).group(1).strip().splitlines()
    names = [ln.split("  ")[0] for ln in table[2:] if not ln.startswith("LM planners")]
    from eval.compare import LEARNING, build_parser, resolve_config

    default = resolve_config(build_parser().parse_args([])).planners  # the default run's rows, in table order
    assert names == [f"{p} (offline engine)" if p in LEARNING else p for p in default]
    assert table[-1] == "LM planners (llm, democratic): offline engine (not a language model)"
    if os.environ.get("README_FULL") != "1":
        pytest.skip("the full default job (minutes) runs only with README_FULL=1; header and rows checked")
    r = run(["python", "-m", "eval.compare", "--no-progress", "--no-plots", "--out", "full"], Path(os.environ.get(
        "TMPDIR", "/tmp")), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for line in table:
        assert line in r.stdout, line


def test_bench_economy_quick_prints_no_verdict():
    r = run(["python", str(ROOT / "bench" / "bench_economy.py"), "--quick"], ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert " ok " not in r.stdout and "OVER TARGET" not in r.stdout and "ratio" not in r.stdout, r.stdout
    assert "no verdict" in r.stdout
