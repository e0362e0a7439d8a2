"""examples.eitc: the unchanged worker under an earned-income credit, small and offline."""

import subprocess
import sys

import numpy as np
import pytest

from examples import common
from examples.eitc import eitc_schedule, format_table, phase_out_rate, run_sweep
from examples.eitc.__main__ import main
from programs.errors import ConfigError
from programs.lm import build_lms


def test_schedule_is_the_statute_at_34_percent():
    s = eitc_schedule(0.34, 0.20)
    assert phase_out_rate(0.34) == pytest.approx(0.1598, abs=5e-5)  # the 2024 statute's 15.98%
    np.testing.assert_allclose(s.rates, [-0.14, 0.20, 0.20 + phase_out_rate(0.34), 0.20])
    # The credit is gone at the end of the phase-out: the tax there is the flat tax alone.
    assert float(s.tax(49_084)) == pytest.approx(0.20 * 49_084)
    assert float(s.tax(12_390)) == pytest.approx(0.20 * 12_390 - 0.34 * 12_390)
    with pytest.raises(ValueError, match=r"credit_rate=1.5 is outside \[0, 1\]"):
        eitc_schedule(1.5)


def test_sweep_tracks_the_best_response_offline():
    [lm] = build_lms("offline", seed=0)
    rows = run_sweep([lm], [0.0, 0.34], agents=10, steps=4, seed=0)
    assert [r.credit_rate for r in rows] == [0.0, 0.34]
    zero, credit = rows
    assert credit.rates_percent[0] == pytest.approx(-14.0)
    # The textbook response, in the yardstick: more hours in the phase-in, fewer in the phase-out.
    assert credit.hours_br["phase-in"] > zero.hours_br["phase-in"]
    assert credit.hours_br["phase-out"] < zero.hours_br["phase-out"]
    for r in rows:
        assert r.fallbacks == {}
        assert r.gap_median < 2.0  # the offline workers land near the exact best response
        # Few steps: the top earners are still climbing toward their hours, so welfare is only close.
        assert r.welfare_lm == pytest.approx(r.welfare_br, rel=0.25)
        assert r.rebate_br > 0
    table = format_table(rows)
    assert "hours phase-in LM/BR" in table and "-14" in table


def test_cli_runs_offline_and_says_it_is_not_a_language_model(capsys):
    assert main(["--agents", "6", "--steps", "2", "--credit-rates", "0,34"]) == 0
    out = capsys.readouterr().out
    assert "offline engine (not a language model)" in out and "NOT a language model" in out
    assert out.count("\n") >= 6


def test_cli_passes_lm_to_build_lms_and_reports_config_errors_in_one_line(monkeypatch, capsys):
    seen = {}

    def fake(lm, api_base=None, **kw):
        seen["lm"] = lm
        raise ConfigError(f"lm={lm!r}: not available here")

    monkeypatch.setattr(common, "build_lms", fake)
    with pytest.raises(SystemExit) as e:
        main(["--lm", "local"])
    assert e.value.code == 2 and seen["lm"] == "local"
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "lm='local': not available here" in err


@pytest.mark.parametrize("argv, text", [
    (["--credit-rates", "0,x"], "give percents such as 0,17,34,51"),
    (["--credit-rates", "150"], "150 is outside [0, 100]"),
    (["--tax-rate", "-5"], "--tax-rate=-5 is outside [0, 100]"),
])
def test_cli_bad_flags_are_one_line_exit_2(argv, text, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and text in err and err.strip().count("\n") == 0


def test_cli_unknown_lm_is_one_line_without_traceback():
    r = subprocess.run([sys.executable, "-m", "examples.eitc", "--lm", "no-such-model"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "lm='no-such-model'" in r.stderr and "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
