"""Issue 11 items 12 and 13 for ``eval.compare``: the closing line lists every file written, tax years are
counted from 0 in every output, plots say when the offline engine (not a language model) ran and give the
welfare unit and the per-seed lines, and rate intervals never leave [0, 100]."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from eval import plots
from eval.compare import DEFAULT_RUN_TIME, build_parser, main
from eval.stats import format_ci

TINY = ["--agents", "10", "--seeds", "0-1", "--years", "2", "--steps-per-year", "1", "--oracle-trials", "5",
        "--oracle-refine", "0", "--planners", "llm,saez,oracle", "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp")
    captured: dict = {}
    real = plots.plot_all

    def spy(*a, **k):
        captured.update(k)
        return real(*a, **k)

    plots.plot_all = spy
    try:
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(TINY + ["--out", str(out)]) == 0
    finally:
        plots.plot_all = real
    return out, buf.getvalue(), captured


def test_the_closing_line_lists_every_file_written(run):
    out, text, _ = run
    last = text.strip().splitlines()[-1]
    files = sorted(os.listdir(out))
    assert files == sorted(["summary.csv", "trajectory.csv", "weights.csv", "swf_matrix.csv", "paired_vs_saez.csv",
                            "saez_robustness.csv", "report.md", "config.json", "welfare_by_year.png",
                            "schedules.png", "income_by_bracket.png", "report.html", "plotly.min.js"])
    for name in files:
        assert name in last, (name, last)


def test_years_are_counted_from_zero_everywhere(run):
    out, _, _ = run
    assert sorted(pd.read_csv(out / "trajectory.csv")["year"].unique()) == [0, 1]
    report = (out / "report.md").read_text()
    assert "numbered from 0" in report
    help_text = " ".join(build_parser().format_help().split())
    assert "numbered from 0" in help_text and DEFAULT_RUN_TIME in help_text


def test_plots_name_the_offline_engine_and_the_welfare_unit():
    import matplotlib.pyplot as plt

    titles, ylabels, legends = [], [], []
    real_finish = plots._finish

    def spy(fig, ax, path, grid_axis="both"):
        ax.legend()
        titles.append(ax.get_title())
        ylabels.append(ax.get_ylabel())
        legends.extend(t.get_text() for t in ax.get_legend().get_texts())
        plt.close(fig)
        return path

    from eval.report import Run, YearRecord
    from economy import Population, TaxSchedule
    from eval import baselines

    pop = Population.sample(10, seed=0)
    s = TaxSchedule.preset("us_federal_2024")
    o = baselines.evaluate(pop, s, "inverse_skill", 0.0269)
    runs = [Run("llm", seed, s, o, years=[YearRecord(year=y, rates=list(s.rates), welfare=1.0 + y) for y in range(2)])
            for seed in (0, 1)] + [Run("saez", 0, s, o)]
    plots._finish = spy
    try:
        plots.plot_all(runs, s.cutoffs, "/nonexistent", swf="inverse_skill", offline=True)
    finally:
        plots._finish = real_finish
    assert all("not a language model" in t for t in titles), titles
    assert any("not a language model" in t for t in legends), legends
    assert "$ / year" in ylabels[0]
    assert any("one seed each" in t for t in legends), legends


def test_rate_intervals_are_clipped_to_the_possible_range():
    assert format_ci(22.8, 87.7, "{:.1f}", bounds=(0.0, 100.0)) == "22.8 [0.0, 100.0]*"
    assert format_ci(22.8, 1.0, "{:.1f}", bounds=(0.0, 100.0)) == "22.8 ± 1.0"
