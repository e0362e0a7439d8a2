"""eval.compare's replication pieces: the saez_v1 row and --preset paper-v1 (issue 14)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from economy import KAPPA_PAPER, PRESETS, Population
from economy.saez_v1 import saez_v1_schedule
from eval.compare import build_parser, main, resolve_config

TINY = ["--agents", "20", "--seeds", "0-1", "--oracle-trials", "10", "--oracle-refine", "20", "--no-progress",
        "--no-plots"]


def _cfg(*argv):
    return resolve_config(build_parser().parse_args(list(argv)))


@pytest.mark.parametrize("variant", ["saez", "saez_flat", "saez_three"])
def test_saez_v1_row_equals_saez_v1_schedule(tmp_path, variant):
    out = tmp_path / variant
    assert main(TINY + ["--brackets", "three", "--planners", "saez_v1,saez", "--saez-v1-variant", variant,
                        "--out", str(out)]) == 0
    df = pd.read_csv(out / "summary.csv")
    assert sorted(df["planner"].unique()) == ["saez", "saez_v1"]
    for seed in (0, 1):
        want = saez_v1_schedule(Population.sample(20, seed=seed), "three", variant)
        row = df[(df["planner"] == "saez_v1") & (df["seed"] == seed)].iloc[0]
        got = [row[f"rate_{j}_pct"] for j in (1, 2, 3)]
        np.testing.assert_allclose(got, 100 * want.rates, atol=1e-9)
    assert "the earlier implementation's 'Saez'" in (out / "report.md").read_text()


def test_saez_v1_is_listed_in_help(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "saez_v1" in text and "--saez-v1-variant" in text and "paper-v1" in text


def test_paper_v1_preset_resolves_to_each_listed_value():
    cfg = _cfg("--preset", "paper-v1")
    assert cfg.brackets == "three" and cfg.cutoffs == list(PRESETS["three"][0])
    assert cfg.swf == "paper" and cfg.kappa == KAPPA_PAPER == 0.0005
    assert cfg.skill_floor == 0.0
    assert cfg.top_income_cap == 10_000_000
    assert cfg.initial_rate == 50.0
    assert cfg.max_rate_move == 20.0 and cfg.rate_grid == 10.0
    assert cfg.hours_grid == 10.0
    assert cfg.history_len == 50
    assert cfg.steps_per_year == 25
    assert cfg.saez_v1_variant == "saez"
    # explicit flags win over the preset
    cfg = _cfg("--preset", "paper-v1", "--skill-floor", "min_wage", "--hours-grid", "none", "--steps-per-year", "4")
    assert cfg.skill_floor > 0 and cfg.hours_grid is None and cfg.steps_per_year == 4 and cfg.rate_grid == 10.0
    # and without a preset every rule is off
    cfg = _cfg()
    assert (cfg.top_income_cap, cfg.hours_grid, cfg.rate_grid, cfg.max_rate_move, cfg.initial_rate) == (None,) * 5


def test_paper_v1_reaches_the_simulation_config():
    from eval.learning import _sim_settings
    from programs.simulation import load_config

    cfg = _cfg("--preset", "paper-v1")
    sim = load_config(**_sim_settings(cfg, "llm", 0))
    assert sim.initial_rates == [50.0, 50.0, 50.0] and sim.kappa == "paper" and sim.swf == "paper"
    assert (sim.skill_floor, sim.hours_grid, sim.rate_grid, sim.max_rate_move, sim.top_income_cap, sim.history_len) \
        == (0.0, 10.0, 10.0, 20.0, 10_000_000, 50)
    assert sim.initial_tax_schedule().top_income_cap == 10_000_000


@pytest.mark.parametrize("argv, word", [
    (["--saez-v1-variant", "bogus"], "--saez-v1-variant"),
    (["--planners", "saez_v1", "--saez-v1-variant", "saez_three"], "saez_three"),  # 7 brackets by default
    (["--hours-grid", "0"], "--hours-grid"),
    (["--max-rate-move", "lots"], "--max-rate-move"),
    (["--top-income-cap", "1000"], "--top-income-cap"),
    (["--skill-floor", "-3"], "--skill-floor"),
    (["--initial-rate", "150"], "--initial-rate"),
])
def test_bad_replication_flags_exit_2_with_one_line(argv, word, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(argv + ["--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.splitlines()) == 1 and word in err, err


def test_default_planners_leave_saez_v1_out_on_brackets_above_its_bound():
    cfg = _cfg("--brackets", "0,50000,20000000")
    assert "saez_v1" not in cfg.planners and any("saez_v1 was left out" in n for n in cfg.extra["notes"])
    with pytest.raises(Exception, match="saez_v1 needs every cut-off"):
        _cfg("--brackets", "0,50000,20000000", "--planners", "saez_v1")
