"""eval.calibration: the two labor-cost presets as ``docs/design.md`` §3.1 describes them."""

import pytest

from eval.calibration import calibration_table, main


def test_calibrated_kappa_puts_the_median_at_40h_and_paper_kappa_at_the_cap():
    t = calibration_table(agents=200, seed=1)
    cal, paper = t.iloc[0], t.iloc[1]
    assert cal["median hours, no tax"] == pytest.approx(40.0, abs=1.0)  # stratified 200 agents: median skill ~ GB2 median
    assert cal["share at the 100 h cap"] < 0.05
    assert paper["median hours, no tax"] == 100.0
    assert paper["share at the 100 h cap"] > 0.8
    assert cal["saez % of oracle gain"] > 90.0


def test_bad_brackets_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--agents", "10", "--brackets", "nope"])
    assert exc.value.code == 2
    assert "brackets='nope': not a preset" in capsys.readouterr().err


def test_custom_cutoffs(capsys):
    from eval.calibration import main

    assert main(["--agents", "60", "--brackets", "0,50000,200000"]) == 0
    assert "calibrated" in capsys.readouterr().out
