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
- Commands of the local real model (``--lm local``, ``python -m programs.lm.llama_server`` and the runs against it)
  are run end to end by the ``realmodel`` tier (``tests/realmodel``); here only ``--help`` is checked.
- ```python blocks are executed as written (the signatures snippet on the offline engine it configures).
- The plain ``` block with the main job's table is the full-size output: its row names are checked against
  the code at once, and a ``slow`` test runs the full default job (``python -m eval.compare``; how long it takes is the
  README's figure) in a subprocess and compares every
  number of the table, and the default-run figures quoted beside it, within rounding.
- Figures of other commands: those a test can re-run at their README size are checked (``slow``:
  ``eval.calibration``; fast: ``eval.compare --dry-run``); every other figure states its command, the
  machine and the date it was measured (``test_unchecked_figures_say_command_machine_and_date``).
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

#: The full default job's wall time as the README states it ("(218 s measured; ..."): its one home is the README.
FULL_JOB_S = int(re.search(r"\((\d+) s measured", README).group(1))

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
REAL_MODEL = ("--lm local", "programs.lm.llama_server", "openai/gemma-3-270m", "bench_local")


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
                if prog == "eval.view" and "--html" not in words:  # the live viewer serves until Ctrl-C
                    viewer = subprocess.Popen([sys.executable, *words[1:], "--port", str(free_port())], cwd=tmp_path,
                                              env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    line = viewer.stdout.readline()
                    viewer.send_signal(signal.SIGINT)
                    _, err = viewer.communicate(timeout=30)
                    assert " at http://127.0.0.1:" in line and viewer.returncode == 0, (line, err)
                    checked.append(("served, stopped", cmd))
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
    assert (tmp_path / "results" / "report.html").exists() and (tmp_path / "runs" / "a" / "report.html").exists()


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    py = blocks("python")
    assert len(py) >= 2
    for code in py:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _main_table() -> list[str]:
    return re.search(r"```\n(planner .*?)```", README, flags=re.S).group(1).strip().splitlines()


def _table_rows(lines: list[str]) -> dict[str, list[str]]:
    """Row name -> its numbers as printed (columns are separated by two or more spaces)."""
    rows = {}
    for ln in lines[2:]:
        if ln.startswith("LM planners"):
            continue
        parts = re.split(r"\s{2,}", ln.strip())
        rows[parts[0]] = _NUM.findall("  ".join(parts[1:]))
    return rows


def _within_rounding(shown: str, value: float) -> bool:
    """``value`` printed to ``shown``'s decimals is ``shown`` or one unit of its last digit away."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return abs(float(shown.replace(",", "")) - value) <= 10.0 ** -decimals * 1.000001


def test_readme_main_table_matches_the_code():
    table = _main_table()
    names = [ln.split("  ")[0] for ln in table[2:] if not ln.startswith("LM planners")]
    from eval.compare import LEARNING, build_parser, resolve_config

    default = resolve_config(build_parser().parse_args([])).planners  # the default run's rows, in table order
    assert names == [f"{p} (offline engine)" if p in LEARNING else p for p in default]
    assert table[-1] == "LM planners (llm, democratic): offline engine (not a language model)"
    assert list(_table_rows(table)) == names
    assert all(len(v) == 11 for v in _table_rows(table).values())  # 5 mean ± half-width pairs and the seeds


def test_within_rounding_reads_the_printed_decimals():
    assert _within_rounding("37,468.4", 37468.44) and _within_rounding("37,468.4", 37468.5)
    assert not _within_rounding("37,468.4", 37468.6)
    assert _within_rounding("0.455", 0.4551) and not _within_rounding("0.455", 0.457)
    assert _within_rounding("25,126", 25126.4) and not _within_rounding("25,126", 25128)


@pytest.fixture(scope="module")
def full_default_run(tmp_path_factory) -> tuple[Path, str]:
    """The README's main job, exactly as documented (output flags only), in a subprocess."""
    out = tmp_path_factory.mktemp("readme_full") / "results"
    r = run(["python", "-m", "eval.compare", "--no-progress", "--no-plots", "--out", str(out)], out.parent,
            timeout=5400)
    assert r.returncode == 0, r.stderr[-2000:]
    return out, r.stdout


@pytest.mark.slow
def test_readme_main_table_is_the_full_default_run(full_default_run):
    _, stdout = full_default_run
    printed = stdout.splitlines()
    start = next(i for i, ln in enumerate(printed) if ln.startswith("planner "))
    end = next((i for i in range(start, len(printed)) if not printed[i].strip()), len(printed))  # the paired table follows
    got = _table_rows(printed[start:end])
    want = _table_rows(_main_table())
    assert list(got) == list(want)
    for name, shown in want.items():
        values = [float(v.replace(",", "")) for v in got[name]]
        assert len(values) == len(shown), (name, got[name])
        assert got[name][-1] == shown[-1], (name, "seeds")
        bad = [(s, v) for s, v in zip(shown, values) if not _within_rounding(s, v)]
        assert not bad, (name, bad)
    assert _main_table()[-1] in printed


@pytest.mark.slow
def test_readme_default_run_figures(full_default_run):
    """The default-run figures the README quotes beside the table: weights, Saez robustness, SWF winners."""
    import pandas as pd

    out, _ = full_default_run
    w = pd.read_csv(out / "weights.csv")
    m = re.search(r"default run: ESS (\d+) of 100\s+agents on every seed, largest share ([\d.]+)%; without the floor "
                  r"ESS (\d+)–(\d+) and one agent holds (\d+)–(\d+)%", README)
    assert m, "the weights.csv sentence moved"
    ess, share, ess0_lo, ess0_hi, top0_lo, top0_hi = m.groups()
    assert (w["ess"].round() == int(ess)).all() and _within_rounding(share, 100 * w["top_share"].max())
    assert (int(ess0_lo), int(ess0_hi)) == (round(w["ess_no_floor"].min()), round(w["ess_no_floor"].max()))
    assert (int(top0_lo), int(top0_hi)) == (round(100 * w["top_share_no_floor"].min()),
                                            round(100 * w["top_share_no_floor"].max()))

    rob = pd.read_csv(out / "saez_robustness.csv")
    m = re.search(r"Default run: ([\d.]+),\s+([\d.]+), ([\d.]+), ([\d.]+)% of the oracle gain for the sweep; the "
                  r"estimated elasticities are ([\d.]+) \(rational\) and\s+([\d.]+) \(offline-engine workers\), "
                  r"giving ([\d.]+)% and ([\d.]+)%", README)
    assert m, "the saez_robustness.csv sentence moved"
    sweep, (e_rat, e_lm), (g_rat, g_lm) = m.groups()[:4], m.groups()[4:6], m.groups()[6:]
    mean = rob.groupby("variant", sort=False).mean(numeric_only=True)
    for eps, shown in zip((0.2, 0.4, 0.8, 1.5), sweep):
        assert _within_rounding(shown, mean.loc[f"e={eps:g}", "pct_oracle_gain"]), eps
    for who, e_shown, g_shown in (("rational", e_rat, g_rat), ("llm", e_lm, g_lm)):
        row = mean.loc[f"empirical ({who} workers)"]
        assert _within_rounding(e_shown, row["elasticity"]) and _within_rounding(g_shown, row["pct_oracle_gain"]), who

    from eval.swf import winners

    assert winners(pd.read_csv(out / "swf_matrix.csv")) == {"inverse_skill": "saez", "paper": "saez", "rawlsian": "saez", "atkinson": "flat",
                       "utilitarian": "none"}
    sentence = "default run: Saez under `inverse_skill`, `paper` and `rawlsian`, flat under `atkinson`, no tax under `utilitarian`"
    assert re.search(r"\s+".join(map(re.escape, sentence.split())), README), "the SWF-winner sentence moved"


@pytest.mark.slow
def test_readme_calibration_table_is_the_calibration_command():
    """`python -m eval.calibration` at its README size (1,000 agents; ~5 CPU-s): every cell of the table."""
    from eval.calibration import calibration_table

    rows = re.findall(r"^\| (calibrated|paper) \(([\d.]+)\) \| (\d+) \| (\d+)% \| ([\d ]+) \| ([\d ]+) \| ([\d.]+) \|$",
                      README, flags=re.M)
    assert [r[0] for r in rows] == ["calibrated", "paper"]
    table = calibration_table()
    for (name, kappa, hours, cap, saez, oracle, gain), (label, got) in zip(rows, table.iterrows()):
        assert label.startswith(name) and _within_rounding(kappa, float(label.split("(")[1].rstrip(")")))
        assert int(hours) == round(got["median hours, no tax"]) and int(cap) == round(100 * got["share at the 100 h cap"])
        assert saez == got["saez rates %"] and oracle == got["oracle rates %"]
        assert _within_rounding(gain, got["saez % of oracle gain"])


def test_readme_skill_floor_figures_are_the_weights_of_1000_agents():
    """`weights.csv` of `eval.compare --agents 1000 --seeds 0-4`, by the function that writes it."""
    from economy import KAPPA, MIN_WAGE_SKILL
    from economy.population import Population
    from economy.tax import resolve_cutoffs
    from eval.swf import weight_frame

    m = re.search(r"at 1,000 agents\s+\(seeds 0–4\) one agent holds (\d+)–(\d+)% of all weight and the effective "
                  r"sample size is (\d+)–(\d+); with the floor\s+it is (\d+) of 1,000 \(largest share ([\d.]+)%\) on "
                  r"every seed", README)
    assert m, "the skill-floor sentence moved"
    top_lo, top_hi, ess_lo, ess_hi, ess, share = m.groups()
    w = weight_frame({s: Population.sample(1000, seed=s) for s in range(5)}, "inverse_skill", MIN_WAGE_SKILL, KAPPA,
                     resolve_cutoffs("us_federal_2024"))
    assert (int(top_lo), int(top_hi)) == (round(100 * w["top_share_no_floor"].min()),
                                          round(100 * w["top_share_no_floor"].max()))
    assert (int(ess_lo), int(ess_hi)) == (round(w["ess_no_floor"].min()), round(w["ess_no_floor"].max()))
    assert (w["ess"].round() == int(ess)).all() and _within_rounding(share, 100 * w["top_share"].max())


@pytest.mark.slow
def test_readme_swf_matrix_oracle_budget_is_within_a_tenth_of_a_percent():
    """The SWF matrix's reduced oracle budget against the full one, under every SWF (~6 CPU-s)."""
    from economy.oracle import oracle_schedule
    from economy.population import Population
    from economy.welfare import SWFS
    from eval.swf import MATRIX_ORACLE_REFINE, MATRIX_ORACLE_TRIALS

    m = re.search(r"oracle per SWF \((\d+) trials \+ (\d+) refinement evaluations,\s+within ([\d.]+)% of the full "
                  r"budget of ([\d,]+) \+ ([\d,]+) on (\d+) agents, 7 brackets, seed 0\)", README)
    assert m, "the SWF-matrix budget sentence moved"
    trials, refine, pct, full_trials, full_refine, agents = m.groups()
    assert (int(trials), int(refine)) == (MATRIX_ORACLE_TRIALS, MATRIX_ORACLE_REFINE)
    pop = Population.sample(int(agents), seed=0)
    for swf in SWFS:
        small = oracle_schedule(pop, "us_federal_2024", swf=swf, seed=0, n_trials=int(trials), n_refine=int(refine))
        full = oracle_schedule(pop, "us_federal_2024", swf=swf, seed=0, n_trials=int(full_trials.replace(",", "")),
                               n_refine=int(full_refine.replace(",", "")))
        assert full.welfare - small.welfare <= float(pct) / 100 * abs(full.welfare), swf


def test_readme_dry_run_figures_are_the_dry_run():
    m = re.search(r"The default `python -m eval.compare --dry-run`: ([\d,]+) answers\s+\(worker ([\d,]+), planner "
                  r"(\d+), voter ([\d,]+)\), ~(\d+) M prompt tokens", README)
    assert m, "the --dry-run sentence moved"
    r = run(["python", "-m", "eval.compare", "--dry-run"], ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    got = re.search(r"(\d+) LM answers \(worker (\d+), planner (\d+), voter (\d+)\)", r.stdout).groups()
    assert [int(x.replace(",", "")) for x in m.groups()[:4]] == [int(x) for x in got]
    prompt = int(re.search(r"~([\d,]+) prompt", r.stdout).group(1).replace(",", ""))
    assert int(m.group(5)) == round(prompt / 1e6)


#: README figures no test re-runs (minutes of compile, a real model, timings): each must say its command, the
#: machine and the date it was measured, within its paragraph or the few before it (a table's heading text).
UNCHECKED_FIGURES = ("~6.6M against", "| 1.6 (1.4 CPU-s) |", "bootstrap 0.436 → 0.556",
                     "welfare −35.0 ± 237.8", "| 0.066 s wall on 2 threads", "800 vs 823 /s", "285/s = 0.89", "| 34.7 | 38.9 |",
                     "34.7 vs 167.4 CPU-s")


def test_unchecked_figures_say_command_machine_and_date():
    paragraphs = re.split(r"\n\s*\n", README)
    for figure in UNCHECKED_FIGURES:
        i = next((k for k, p in enumerate(paragraphs) if figure in p), None)
        assert i is not None, f"{figure!r} is no longer in the README: update UNCHECKED_FIGURES"
        context = "\n".join(paragraphs[max(0, i - 3):i + 1])
        assert re.search(r"\b20\d\d-\d\d-\d\d\b", context), f"{figure!r}: no date it was measured"
        assert "2-core" in context, f"{figure!r}: no machine"
        assert "python " in context or "commands above" in context, f"{figure!r}: no command"


def test_the_full_job_duration_is_stated_once():
    # The README measures the full default job; this module must not state a figure of its own (it said
    # "about 40 s" while the README said 218 s).
    assert 10 < FULL_JOB_S < 3600
    assert not re.search(r"\d+\s*s\b", __doc__ or ""), "a duration in this module's docstring duplicates the README's"


def test_bench_economy_quick_prints_no_verdict():
    r = run(["python", str(ROOT / "bench" / "bench_economy.py"), "--quick"], ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert " ok " not in r.stdout and "OVER TARGET" not in r.stdout and "ratio" not in r.stdout, r.stdout
    assert "no verdict" in r.stdout
