"""Issue 19: the planner compiled on the real model (Gemma 3 270M, ``--lm local``) with a budget of a few
calls saves a program that loads and proposes a valid schedule on the same model, in ``eval.compare``.

Sized to a few dozen planner calls (rational workers in the metric and the comparison): bootstrap on two
training situations and one validation situation, four held-out situations scored before and after."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.realmodel.conftest import ROOT, run_cli

pytestmark = [pytest.mark.realmodel, pytest.mark.slow]

SIZE = ["--agents", "8", "--years", "2", "--train-seeds", "0-1", "--val-seeds", "2", "--heldout-seeds", "100-101",
        "--oracle-trials", "20", "--oracle-refine", "0"]


def test_local_compile_saves_a_program_the_comparison_runs(gguf, tmp_path):
    prog = tmp_path / "planner.json"
    # Scoring before and after: 2 x (2 held-out + 1 validation) = 6 calls; bootstrap needs 2V + (T + V) = 5.
    r = run_cli("optimize.planner", *SIZE, "--lm", "local", "--optimizer", "bootstrap", "--budget", "12",
                "--max-demos", "1", "--max-labeled-demos", "1", "--quiet", "--out", str(prog), timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(prog.with_name("planner.summary.json").read_text())
    assert "offline" not in s["lm"].lower() and "gemma" in s["lm"].lower()
    b = s["budget"]
    assert b["total_calls"] <= 12 and b["total_calls"] == b["compile_calls"] + b["evaluation_calls"] > 0
    assert s["usage"]["source"] == "reported" and s["usage"]["by_role"]["planner"]["completion_tokens"] > 0
    paired = s["heldout"]["paired"]["per_seed"]
    assert paired["n"] == 2 and paired["low"] <= paired["delta_mean"] <= paired["high"]
    assert "paired over held-out seeds" in r.stdout and "failures:" in r.stdout
    assert "api_key" not in prog.read_text()

    out = tmp_path / "cmp"
    r = run_cli("eval.compare", "--lm", "local", "--planners", "compiled,saez", "--planner-program", str(prog),
                "--agents", "4", "--seeds", "0", "--years", "2", "--steps-per-year", "2", "--workers", "rational",
                "--oracle-trials", "20", "--oracle-refine", "0", "--no-plots", "--no-progress", "--out", str(out),
                timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [row for row in csv.DictReader((out / "summary.csv").open()) if row["planner"] == "compiled"]
    assert len(rows) == 1
    # The compiled planner's year-1 proposal came from the model: a usable schedule, no fallback.
    assert float(rows[0]["fallbacks"]) == 0, rows[0]
    traj = [row for row in csv.DictReader((out / "trajectory.csv").open()) if row["planner"] == "compiled"]
    assert traj and all(0.0 <= float(v) <= 100.0 for row in traj for k, v in row.items()
                        if k.startswith("rate_") and v not in ("", None))


_PROPOSAL = """
import dspy
from dspy.propose.dataset_summary_generator import DatasetDescriptor
from programs.lm import build_lms
from programs.lm.structured import INSTRUCTION_MAX_CHARS, WritingAdapter, with_writing_budget

lm = with_writing_budget(build_lms("local", temperature=1.0)[0])
with dspy.context(lm=lm, adapter=WritingAdapter()):
    got = dspy.Predict(DatasetDescriptor)(examples="[Example({'cutoffs': [0.0, 11600.0], 'rates_percent': [10, 12]})]")
assert 1 <= len(got.observations) <= INSTRUCTION_MAX_CHARS, len(got.observations)
print("PARSED", len(got.observations))
"""


def test_a_dspy_proposal_on_the_local_model_parses_within_its_bound(gguf):
    """MIPROv2's first proposer call (its dataset summary) through ``WritingAdapter``: llama.cpp takes the
    bounded-text grammar (a longer bound is refused and the process crashes, hence the subprocess) and the
    answer parses. Before, the model answered in prose no DSPy adapter parses and the compile stopped."""
    r = subprocess.run([sys.executable, "-c", _PROPOSAL], cwd=ROOT, capture_output=True, text=True, timeout=900,
                       env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert r.returncode == 0 and "PARSED" in r.stdout, (r.returncode, r.stderr[-2000:])
