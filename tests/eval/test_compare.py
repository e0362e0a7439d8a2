"""`python -m eval.compare` end to end on a tiny case, its flags, and its failure paths."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from economy import KAPPA_PAPER, PRESETS
from eval.compare import build_parser, main, resolve_config

TINY = ["--agents", "20", "--seeds", "0-1", "--years", "2", "--steps-per-year", "2",
        "--oracle-trials", "15", "--oracle-refine", "60", "--no-progress"]
RATIONAL = ("oracle", "saez", "saez_v1", "us_federal", "flat", "none")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    assert main(TINY + ["--out", str(out)]) == 0
    return out, pd.read_csv(out / "summary.csv"), (out / "report.md").read_text()


def test_outputs_exist_with_the_documented_columns(tiny_run):
    out, df, _ = tiny_run
    for name in ("summary.csv", "trajectory.csv", "report.md", "config.json", "welfare_by_year.png", "schedules.png",
                 "income_by_bracket.png"):
        assert (out / name).stat().st_size > 0, name
    for col in ("planner", "seed", "welfare", "pct_oracle_gain", "revenue", "revenue_per_agent", "mean_hours",
                "gini", "productivity", "welfare_sim", "n_brackets", "cutoffs"):
        assert col in df.columns, col
    assert [f"rate_{j}_pct" for j in range(1, 8)] == [c for c in df.columns if c.startswith("rate_")]
    # One row per planner x seed; every default planner ran (compiled needs --planner-program).
    assert len(df) == 10 * 2
    assert sorted(df["planner"].unique()) == sorted(["llm", "democratic", "es", "random", *RATIONAL])
    assert sorted(df["seed"].unique()) == [0, 1]
    traj = pd.read_csv(out / "trajectory.csv")
    assert len(traj) == 4 * 2 * 2  # (llm, democratic, es, random) x 2 seeds x 2 tax years
    # The reported welfare of a learning planner is its final tax year's schedule under rational workers.
    assert sorted(traj["year"].unique()) == [0, 1]  # tax years are numbered from 0 everywhere
    last = traj[traj["year"] == 1].set_index(["planner", "seed"])["welfare"]
    for _, row in df[df["planner"].isin(["llm", "democratic", "es", "random"])].iterrows():
        assert row["welfare"] == pytest.approx(last[(row["planner"], row["seed"])], rel=1e-12)


def test_oracle_is_the_best_rational_row_and_the_gain_is_normalised(tiny_run):
    _, df, _ = tiny_run
    for seed, sub in df.groupby("seed"):
        w = sub.set_index("planner")["welfare"]
        for p in ("saez", "us_federal", "flat", "none"):
            assert w["oracle"] >= w[p] - 1e-9 * abs(w[p]), (seed, p)
        # The oracle's search starts from every row's schedule, so this holds by construction (it checks the
        # wiring); test_an_oracle_that_sees_no_row_is_a_ceiling checks the search itself.
        assert w["oracle"] >= w.max() - 1e-9 * abs(w.max())
        pct = sub.set_index("planner")["pct_oracle_gain"]
        assert pct["oracle"] == pytest.approx(100.0)
        assert pct["none"] == pytest.approx(0.0)
        # pct_oracle_gain is 100 (W - W_none) / (W_oracle - W_none) on every row.
        expect = 100 * (w - w["none"]) / (w["oracle"] - w["none"])
        np.testing.assert_allclose(pct.to_numpy(), expect.loc[pct.index].to_numpy(), rtol=1e-12)
    # The no-tax row collects nothing; US federal 2024 rates on its own cut-offs.
    none = df[df["planner"] == "none"]
    assert (none["revenue"] == 0).all()
    us = df[df["planner"] == "us_federal"].iloc[0]
    assert [us[f"rate_{j}_pct"] for j in range(1, 8)] == pytest.approx([10, 12, 22, 24, 32, 35, 37])


def test_an_oracle_that_sees_no_row_is_a_ceiling(tiny_run):
    """An oracle searched afresh (``economy.oracle_schedule`` at its default budget, another sampler seed, no
    start from any row) beats every planner's row on its own, and the run's tiny-budget oracle is near it."""
    from economy.oracle import oracle_schedule
    from economy.population import Population
    from eval.baselines import welfare_of

    _, df, _ = tiny_run
    cfg = resolve_config(build_parser().parse_args(TINY))
    for seed, sub in df.groupby("seed"):
        pop = Population.sample(cfg.agents, seed=int(seed))
        blind = oracle_schedule(pop, cfg.cutoffs, swf=cfg.swf, seed=1000 + int(seed), kappa=cfg.kappa,
                                skill_floor=cfg.skill_floor)
        w_blind = welfare_of(pop, blind.schedule, cfg.swf, cfg.kappa, **cfg.world())
        w = sub.set_index("planner")["welfare"]
        rows = w.drop("oracle")
        assert w_blind >= rows.max(), (seed, rows.idxmax(), rows.max(), w_blind)
        assert w["oracle"] == pytest.approx(w_blind, rel=0.02), seed


def test_report_names_the_offline_engine_and_the_command(tiny_run):
    _, df, report = tiny_run
    assert "offline engine (not a language model)" in report
    assert "llm (offline engine)" in report  # the rows are labelled, never shown as LLM results
    assert "python -m eval.compare --agents 20 --seeds 0-1" in report
    assert "## Schedules side by side" in report and "inverse_skill" in report
    assert "welfare per tax year" in report and "| 2 |" in report  # the 2-year trajectory table
    # The learning planners' trajectory covers every tax year; their final welfare is a real number.
    llm = df[df["planner"] == "llm"]
    assert np.isfinite(llm["welfare"]).all() and np.isfinite(llm["welfare_sim"]).all()


def _exit_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    return exc.value.code, err


@pytest.mark.parametrize("argv, word", [
    (["--scenario", "utopia"], "--scenario"),
    (["--brackets", "four"], "--brackets"),
    (["--brackets", "0,5000,1000"], "strictly increasing"),
    (["--swf", "happiness"], "--swf"),
    (["--planners", "saez,magic"], "'magic'"),
    (["--agents", "0"], "--agents"),
    (["--agents", "-5"], "--agents"),
    (["--seeds", "0,0"], "repeats seed 0"),
    (["--seeds", "-2"], "--seeds"),
    (["--seeds", "a,b"], "--seeds"),
    (["--years", "0"], "--years"),
    (["--kappa", "-1"], "--kappa"),
    (["--oracle-trials", "0"], "--oracle-trials"),
    (["--planners", "compiled"], "--planner-program"),
    (["--lm", "not-a-model"], "not-a-model"),
    (["--agents", "lots"], "--agents"),
])
def test_bad_config_exits_2_with_one_line(argv, word, capsys, monkeypatch, tmp_path):
    import programs.lm

    def no_lm(*a, **k):  # the check must happen before any LM is built or called
        raise AssertionError("an LM was built before the configuration was validated")

    monkeypatch.setattr(programs.lm, "build_lms", no_lm)
    code, err = _exit_line(argv + ["--out", str(tmp_path / "x")], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and word in err, err
    assert not (tmp_path / "x").exists()


def test_paper_preset_sets_the_papers_setup_and_flags_override_it():
    cfg = resolve_config(build_parser().parse_args(["--preset", "paper"]))
    assert cfg.brackets == "three" and cfg.cutoffs == list(PRESETS["three"][0])
    assert cfg.swf == "paper" and cfg.steps_per_year == 25 and cfg.kappa == KAPPA_PAPER
    cfg = resolve_config(build_parser().parse_args(["--preset", "paper", "--swf", "utilitarian",
                                                    "--steps-per-year", "3"]))
    assert cfg.swf == "utilitarian" and cfg.steps_per_year == 3 and cfg.brackets == "three"
    cfg = resolve_config(build_parser().parse_args([]))
    assert cfg.brackets == "us_federal_2024" and cfg.swf == "inverse_skill" and cfg.kappa != KAPPA_PAPER


def test_seeds_and_planner_selection():
    cfg = resolve_config(build_parser().parse_args(["--planners", "none,saez"]))
    assert cfg.planners == ["saez", "none"]  # display order, duplicates removed
    # Custom cut-offs are a first-class bracket set: every planner, the learning ones included, runs on them.
    cfg = resolve_config(build_parser().parse_args(["--brackets", "0,50000"]))
    assert {"llm", "democratic", "saez"} <= set(cfg.planners) and cfg.cutoffs == [0.0, 50000.0]


def test_three_brackets_us_federal_on_its_own_brackets_and_compiled_planner(tmp_path, capsys):
    from programs.agents.tax_planner import PlannerAgent

    prog = tmp_path / "planner.json"
    PlannerAgent("three").save(str(prog))
    out = tmp_path / "out"
    assert main(["--agents", "20", "--seeds", "0,3", "--years", "2", "--steps-per-year", "1", "--brackets", "three",
                 "--workers", "rational", "--planners", "compiled,us_federal,none,oracle", "--planner-program",
                 str(prog), "--oracle-trials", "10", "--oracle-refine", "40", "--no-plots", "--no-progress",
                 "--out", str(out)]) == 0
    df = pd.read_csv(out / "summary.csv")
    assert sorted(df["seed"].unique()) == [0, 3]
    us = df[df["planner"] == "us_federal"]
    assert (us["n_brackets"] == 7).all() and (df[df["planner"] == "compiled"]["n_brackets"] == 3).all()
    report = (out / "report.md").read_text()
    assert "us_federal runs on its own brackets" in report
    # A program compiled for other brackets is refused before anything runs.
    code, err = _exit_line(["--brackets", "us_federal_2024", "--planners", "compiled", "--planner-program", str(prog),
                            "--out", str(tmp_path / "y")], capsys)
    assert code == 2 and "compiled for brackets" in err


def test_democratic_scenario_is_not_run_twice_and_unknown_endpoints_are_not_labelled_offline():
    from eval.learning import _serves_offline_engine

    cfg = resolve_config(build_parser().parse_args(["--scenario", "democratic"]))
    assert "llm" not in cfg.planners and "democratic" in cfg.planners and cfg.extra["notes"]
    # Nothing listens on port 9 (discard): we cannot tell what it serves, so no offline label is claimed.
    assert _serves_offline_engine("http://127.0.0.1:9/v1", timeout=0.5) is False


def test_custom_cutoffs_run_the_learning_planners_too(tmp_path):
    # The README's example: issue 11 item 6 (the llm and democratic rows were silently dropped).
    out = tmp_path / "custom"
    assert main(["--agents", "12", "--seeds", "0", "--years", "2", "--steps-per-year", "1", "--brackets",
                 "0,50000,200000", "--planners", "llm,democratic,saez", "--no-plots", "--no-progress",
                 "--out", str(out)]) == 0
    rows = (out / "summary.csv").read_text()
    assert "llm" in rows and "democratic" in rows and "saez" in rows


def test_initial_rate_on_custom_cutoffs_sets_one_rate_per_bracket():
    from eval.learning import _sim_settings

    cfg = resolve_config(build_parser().parse_args(["--brackets", "0,50000,200000", "--initial-rate", "20"]))
    s = _sim_settings(cfg, "llm", 0)
    assert s["brackets"] == [0.0, 50000.0, 200000.0] and s["initial_rates"] == [20.0, 20.0, 20.0]
    assert s["skill_floor"] == cfg.skill_floor
