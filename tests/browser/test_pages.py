"""report.html and the live viewer in headless Chromium: the pages load without console errors, every chart
drew the traces and points of a small known run, the year slider changes the schedule shown, and the live
view gains a step appended to steps.jsonl without a reload. Screenshots go under pytest's tmp dir."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from eval.page import PAGE
from programs.simulation.runlog import read_steps
from tests.eval.runs import CMP_PLANNERS, SIM_AGENTS, SIM_STEPS, SIM_YEARS, Viewer

pytestmark = pytest.mark.browser

#: Per chart, for the visible traces: [trace name, points Plotly computed to draw] (from gd.calcdata).
DRAWN = """
const out = {};
for (const c of window.REPORT.model.charts) {
  const gd = document.getElementById('chart-' + c.id);
  if (!gd || !gd._fullData || !gd.calcdata) { out[c.id] = null; continue; }
  out[c.id] = gd._fullData.map((t, i) => [t.name, t.visible === true,
    t.visible === true ? gd.calcdata[i].filter(p => p.y !== undefined ? p.y !== null : true).length : 0])
    .filter(r => r[1]).map(r => [r[0], r[2]]);
}
return out;
"""


def load(driver, url: str) -> None:
    driver.get_log("browser")  # drain what an earlier page logged
    driver.get(url)
    wait_for(driver, "return !!(window.REPORT && window.REPORT.updates > 0)")


def wait_for(driver, script: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {script}")
        time.sleep(0.2)


def errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(driver, path) -> None:
    """The whole page: the window grown to the document's height."""
    h = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1200, min(h + 40, 12000))
    time.sleep(0.5)  # Plotly's responsive relayout
    driver.save_screenshot(str(path))
    driver.set_window_size(1200, 900)
    assert path.stat().st_size > 10_000


def test_simulation_page_draws_every_chart(driver, sim_run, shots):
    load(driver, (sim_run / PAGE).as_uri())
    drawn = driver.execute_script(DRAWN)
    assert errors(driver) == []
    # The newest tax year / step is shown: the year-0 reference and the last year's schedule (7 brackets
    # + the end of the axis), the last step's hours and best response (one point per agent).
    assert drawn["schedule"] == [["year-0 schedule", 8], [f"tax year {SIM_YEARS - 1}", 8]]
    assert drawn["hours"] == [[f"hours chosen (step {SIM_STEPS - 1})", SIM_AGENTS],
                              [f"exact best response (step {SIM_STEPS - 1})", SIM_AGENTS]]
    assert drawn["income"] == [[f"tax year {SIM_YEARS - 1} (last step logged)", 7]]
    assert [n for _, n in drawn["per_step"]] == [SIM_STEPS] * 3
    assert drawn["elections"] == [[f"Candidate {c}", SIM_YEARS] for c in "ABC"]
    assert drawn["fallbacks"] == [["no fallbacks", SIM_STEPS]]
    assert sorted(drawn["tokens"]) == [["planner", SIM_STEPS], ["voter", SIM_STEPS], ["worker", SIM_STEPS]]
    offline = driver.find_element("id", "engine").text
    assert "offline engine (not a language model)" in offline
    n_titles = driver.execute_script(
        "return [...document.querySelectorAll('.gtitle')].filter(t => t.textContent.includes("
        "'answered by: offline engine (not a language model)')).length")
    assert n_titles == len(drawn)
    rows = driver.find_elements("css selector", "#table-platforms tr")
    assert len(rows) == 1 + 3 * SIM_YEARS
    screenshot(driver, shots / "simulation.png")


def test_year_slider_changes_the_schedule_shown(driver, sim_run, shots):
    from selenium.webdriver.common.keys import Keys

    load(driver, (sim_run / PAGE).as_uri())
    shown = ("const gd = document.getElementById('chart-schedule');"
             "return gd._fullData.filter(t => t.visible === true && t.name.startsWith('tax year'))"
             ".map(t => [t.name, Array.from(t.y)]);")
    before = driver.execute_script(shown)
    slider = driver.find_element("id", "slider-schedule")
    slider.send_keys(Keys.HOME)  # a reader's keyboard on the range input: back to tax year 0
    wait_for(driver, "return document.getElementById('slider-schedule').value === '0'")
    after = driver.execute_script(shown)
    records = read_steps(sim_run / "steps.jsonl")
    year = {y: [100 * r for r in next(s["rates"] for s in records if s["year"] == y)] for y in range(SIM_YEARS)}
    assert before[0][0] == f"tax year {SIM_YEARS - 1}" and before[0][1][:-1] == pytest.approx(year[SIM_YEARS - 1])
    assert after[0][0] == "tax year 0" and after[0][1][:-1] == pytest.approx(year[0])
    assert year[0] != year[SIM_YEARS - 1]
    assert "tax year 0" in driver.find_element("id", "slider-value-schedule").text
    assert errors(driver) == []
    screenshot(driver, shots / "simulation_year0.png")


def test_comparison_page_draws_every_chart(driver, cmp_run, shots):
    load(driver, (cmp_run / PAGE).as_uri())
    drawn = driver.execute_script(DRAWN)
    assert errors(driver) == []
    n = len(CMP_PLANNERS)
    assert [name for name, _ in drawn["welfare_by_year"]][0] == "llm (offline engine)"
    assert [pts for _, pts in drawn["welfare_by_year"]] == [2] * n  # 2 tax years; one-shot lines span them
    assert len(drawn["schedules"]) == n
    assert dict(drawn["schedules"])["us_federal"] == 8 and dict(drawn["schedules"])["saez"] == 8
    assert drawn["oracle_gain"] == [["% oracle gain", n]]
    assert len(drawn["swf_matrix"]) == 1
    heat = driver.execute_script("return document.getElementById('chart-swf_matrix')._fullData[0].z.length")
    assert heat == n
    paired = pd.read_csv(cmp_run / "paired_vs_saez.csv")
    assert drawn["paired_vs_saez"] == [["welfare − Saez's", len(paired)]]
    assert [pts for _, pts in drawn["weights"]] == [2] * 6  # 3 diagnostics x (floor, no floor), 2 seeds
    assert "llm (offline engine)" in driver.find_element("id", "text").text
    screenshot(driver, shots / "comparison.png")


def test_live_view_gains_a_step_appended_to_the_log(driver, sim_run, tmp_path, shots):
    run = tmp_path / "live"
    run.mkdir()
    (run / "config.json").write_text((sim_run / "config.json").read_text())
    lines = (sim_run / "steps.jsonl").read_text().splitlines(keepends=True)
    (run / "steps.jsonl").write_text("".join(lines[:2]))
    v = Viewer(run)
    try:
        load(driver, v.url)
        points = "return document.getElementById('chart-per_step').calcdata[0].length"
        assert driver.execute_script(points) == 2
        updates = driver.execute_script("return window.REPORT.updates")
        with open(run / "steps.jsonl", "a") as f:
            f.write(lines[2])  # the run writes its next step
        wait_for(driver, points.replace("return ", "return ") + " === 3", timeout=30)
        assert driver.execute_script("return window.REPORT.updates") > updates
        # The step slider followed the new step, and the page was not reloaded (same document, same counter).
        assert driver.execute_script("return document.getElementById('slider-hours').max") == "2"
        assert "step 2" in driver.find_element("id", "slider-value-hours").text
        assert json.loads(v.get("data.json"))["n_steps"] == 3
        assert "live view" in driver.find_element("id", "status").text
        assert errors(driver) == []
        screenshot(driver, shots / "live.png")
    finally:
        code, stderr = v.stop()
    assert code == 0 and "Traceback" not in stderr
