"""report.html and the live viewer without a browser (eval.page, eval.view): the page model holds what the
run wrote and the exact economics beside it; the viewer is read-only, loopback, one line on bad input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from economy import Population, best_response, resolve_kappa
from eval.page import PAGE, PLOTLY_JS, page_model, render_html, run_kind
from programs.errors import ConfigError
from programs.lm import OFFLINE_LABEL
from programs.simulation import load_config
from programs.simulation.runlog import read_steps
from tests.eval.runs import CMP_PLANNERS, SIM_AGENTS, SIM_STEPS, SIM_YEARS, Viewer, comparison_run, simulation_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulation_run(tmp_path_factory.mktemp("page") / "sim")


@pytest.fixture(scope="module")
def cmp(tmp_path_factory):
    return comparison_run(tmp_path_factory.mktemp("page") / "cmp")


def charts(model):
    return {c["id"]: c for c in model["charts"]}


def test_simulate_writes_the_page_and_plotly_beside_it(sim):
    html = (sim / PAGE).read_text()
    assert (sim / PLOTLY_JS).stat().st_size > 1_000_000  # plotly's own bundle, from the Python package
    # Offline: the only script source is the file beside the page; no CDN, no URL at all in the page's tags.
    assert '<script src="plotly.min.js">' in html and "https://" not in html and "http://" not in html
    assert OFFLINE_LABEL in html


@pytest.mark.slow
def test_every_chart_names_the_engine(sim, cmp):
    for d in (sim, cmp):
        for c in page_model(d)["charts"]:
            assert f"answered by: {OFFLINE_LABEL}" in c["layout"]["title"]["text"], c["id"]


def test_simulation_charts_hold_the_logged_steps_and_the_exact_best_response(sim):
    model = page_model(sim)
    records = read_steps(sim / "steps.jsonl")
    assert model["n_steps"] == len(records) == SIM_STEPS and model["status"] == "finished"
    c = charts(model)
    assert list(c) == ["schedule", "hours", "income", "per_step", "elections", "fallbacks", "tokens"]
    welfare, revenue, gini = c["per_step"]["data"]
    assert welfare["y"] == pytest.approx([r["welfare"] for r in records])
    assert revenue["y"] == pytest.approx([r["revenue"] for r in records])
    assert all(0.0 <= g < 1.0 for g in gini["y"])
    # Hours against skill: per step, the hours logged and the best response recomputed from scratch.
    cfg = load_config(**json.loads((sim / "config.json").read_text())["config"])
    skill = Population.sample(cfg.agents, seed=cfg.seed, stratified=cfg.stratified).skill
    hours = c["hours"]["data"]
    assert len(hours) == 2 * SIM_STEPS and c["hours"]["slider"]["values"] == list(range(SIM_STEPS))
    for t, rec in enumerate(records):
        chosen, br = hours[2 * t], hours[2 * t + 1]
        assert chosen["meta"] == br["meta"] == {"step": t}
        assert chosen["y"] == rec["hours"] and chosen["x"] == pytest.approx(skill)
        exact = best_response(skill, cfg.initial_tax_schedule().with_rates(rec["rates"]), kappa=resolve_kappa(cfg.kappa))
        order = np.argsort(skill, kind="stable")
        assert br["y"] == pytest.approx(exact[order]) and br["x"] == pytest.approx(np.sort(skill))
    # The schedule per year: one trace per tax year behind the slider, plus the year-0 reference.
    sched = c["schedule"]
    assert c["schedule"]["slider"]["values"] == list(range(SIM_YEARS)) and len(sched["data"]) == 1 + SIM_YEARS
    for y in range(SIM_YEARS):
        rates = next(r["rates"] for r in records if r["year"] == y)
        assert sched["data"][1 + y]["y"][:-1] == pytest.approx([100 * r for r in rates])
    for tr in c["income"]["data"]:
        assert sum(tr["y"]) == pytest.approx(100.0)


def test_elections_show_every_vote_and_the_winner(sim):
    model = page_model(sim)
    votes = charts(model)["elections"]["data"]
    assert len(votes) == 3  # candidates A, B, C
    per_election = np.sum([tr["y"] for tr in votes], axis=0)
    assert per_election.tolist() == [SIM_AGENTS] * SIM_YEARS
    events = [r["event"]["election"] for r in read_steps(sim / "steps.jsonl") if r.get("event")]
    for i, e in enumerate(events):
        marked = [tr["name"] for tr in votes if tr["text"][i] == "winner"]
        assert marked == [e["winner"]]
    platforms = model["tables"][0]
    assert len(platforms["rows"]) == 3 * SIM_YEARS and sum(r[4] == "✓" for r in platforms["rows"]) == SIM_YEARS


def test_tokens_and_fallbacks_per_step_match_the_log(sim):
    c = charts(page_model(sim))
    records = read_steps(sim / "steps.jsonl")
    roles = {tr["name"]: tr["y"] for tr in c["tokens"]["data"]}
    assert set(roles) == {"worker", "planner", "voter"}
    for t, r in enumerate(records):
        want = sum(u["prompt_tokens"] + u["completion_tokens"] for u in r["usage"].values())
        assert sum(ys[t] for ys in roles.values()) == want
    fb = c["fallbacks"]["data"]
    assert [tr["name"] for tr in fb] == ["no fallbacks"] and fb[0]["y"] == [0] * SIM_STEPS


def test_a_run_in_progress_and_a_cut_last_line(tmp_path, sim):
    run = tmp_path / "live"
    run.mkdir()
    (run / "config.json").write_text((sim / "config.json").read_text())
    (run / "steps.jsonl").write_text("")
    model = page_model(run)
    assert model["n_steps"] == 0 and "0 of 4 steps" in model["status"]
    assert all(len(c["data"]) >= 1 for c in model["charts"] if c["id"] in ("per_step", "fallbacks"))
    lines = (sim / "steps.jsonl").read_text().splitlines(keepends=True)
    cut = lines[0] + lines[1][:40]  # a kill mid-write: the viewer shows the complete step and leaves the file
    (run / "steps.jsonl").write_text(cut)
    assert page_model(run)["n_steps"] == 1 and (run / "steps.jsonl").read_text() == cut
    render_html(page_model(run), live=True)


@pytest.mark.slow
def test_comparison_page(cmp):
    model = page_model(cmp)
    c = charts(model)
    assert list(c) == ["welfare_by_year", "schedules", "oracle_gain", "swf_matrix", "paired_vs_saez", "weights"]
    assert len(c["welfare_by_year"]["data"]) == len(c["schedules"]["data"]) == len(CMP_PLANNERS)
    gain = c["oracle_gain"]["data"][0]
    by = dict(zip(gain["x"], gain["y"]))
    assert by["oracle"] == pytest.approx(100.0) and by["none"] == pytest.approx(0.0)
    assert by["llm (offline engine)"] < 100.0  # the offline engine's planner is labelled as such, everywhere
    # Welfare per tax year: the LM planner's mean over seeds of trajectory.csv, with an interval.
    traj = pd.read_csv(cmp / "trajectory.csv")
    llm = c["welfare_by_year"]["data"][0]
    assert llm["y"] == pytest.approx(traj.groupby("year")["welfare"].mean().tolist())
    assert all(e > 0 for e in llm["error_y"]["array"])
    heat = c["swf_matrix"]["data"][0]
    assert len(heat["z"]) == len(CMP_PLANNERS) and len(heat["z"][0]) == len(heat["x"]) >= 4
    paired = pd.read_csv(cmp / "paired_vs_saez.csv")
    assert c["paired_vs_saez"]["data"][0]["y"] == pytest.approx(paired["diff_welfare"].tolist())
    weights = pd.read_csv(cmp / "weights.csv")
    ess = c["weights"]["data"][0]
    assert ess["y"] == pytest.approx(weights["ess_share"].tolist()) and len(ess["x"]) == 2
    # The schedules end on their own brackets: us_federal at 37% on top, no tax at 0.
    sched = {tr["name"]: tr for tr in c["schedules"]["data"]}
    assert sched["us_federal"]["y"][-1] == pytest.approx(37.0) and set(sched["none"]["y"]) == {0.0}
    assert "llm (offline engine)" in model["text"]


@pytest.mark.slow
def test_a_comparison_without_paired_rows_or_trajectories(cmp, tmp_path):
    # eval.replicate's comparisons can write an empty paired_vs_saez.csv (no columns): that chart is left out.
    for f in cmp.iterdir():
        if f.suffix in (".csv", ".json"):
            (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "paired_vs_saez.csv").write_text("\n")
    (tmp_path / "trajectory.csv").unlink()
    c = charts(page_model(tmp_path))
    assert "paired_vs_saez" not in c and "swf_matrix" in c
    assert all(tr["line"]["dash"] == "dash" for tr in c["welfare_by_year"]["data"])  # every planner one-shot


def test_not_a_run_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="is not a run"):
        run_kind(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        run_kind(tmp_path / "missing")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "summary.csv").write_text("planner\n")
    assert run_kind(tmp_path) == "comparison"


# ── the viewer ─────────────────────────────────────────────────────────────────────────────────────

def view(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "eval.view", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120, **kw)


@pytest.mark.slow
def test_view_html_rewrites_the_page_of_an_existing_run(sim, tmp_path):
    run = tmp_path / "copy"
    run.mkdir()
    for name in ("config.json", "steps.jsonl", "summary.json"):
        (run / name).write_bytes((sim / name).read_bytes())
    r = view(run, "--html")
    assert r.returncode == 0 and (run / PAGE).is_file() and (run / PLOTLY_JS).is_file(), r.stderr
    assert (run / PAGE).read_text() == (sim / PAGE).read_text()  # one builder: the same run, the same page


def test_view_refuses_a_directory_that_is_not_a_run(tmp_path):
    r = view(tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "is not a run" in r.stderr
    r = view(tmp_path / "nope", "--html")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_view_refuses_a_busy_port(sim):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = view(sim, "--port", port)
    assert r.returncode == 2 and r.stderr.strip() == f"eval.view: --port={port} on 127.0.0.1: is in use; pass another --port"


@pytest.mark.slow
def test_live_viewer_follows_the_log_is_read_only_and_stops_cleanly(sim, tmp_path):
    run = tmp_path / "live"
    run.mkdir()
    (run / "config.json").write_text((sim / "config.json").read_text())
    lines = (sim / "steps.jsonl").read_text().splitlines(keepends=True)
    (run / "steps.jsonl").write_text(lines[0])
    v = Viewer(run)
    try:
        assert json.loads(v.get("data.json"))["n_steps"] == 1
        page = v.get("/").decode()
        assert "const LIVE = true" in page and '<script src="plotly.min.js">' in page
        assert len(v.get("plotly.min.js")) > 1_000_000
        with open(run / "steps.jsonl", "a") as f:
            f.write(lines[1])
        deadline = time.monotonic() + 20
        while json.loads(v.get("data.json"))["n_steps"] != 2:
            assert time.monotonic() < deadline, "the viewer did not see the new step"
            time.sleep(0.2)
        req = urllib.request.Request(v.url + "data.json", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        assert err.value.code == 405
        with pytest.raises(urllib.error.HTTPError) as err:
            v.get("../config.json")
        assert err.value.code == 404
    finally:
        code, stderr = v.stop()
    assert code == 0 and stderr.strip() == "eval.view: stopped" and "Traceback" not in stderr
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "steps.jsonl"]  # nothing written
