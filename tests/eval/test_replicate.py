"""`python -m eval.replicate` on a tiny size: both comparisons, paired intervals, the offline label, bad flags."""

from __future__ import annotations

import pandas as pd
import pytest

from eval import compare
from eval.replicate import main

TINY = ["--agents", "8", "--years", "2", "--steps-per-year", "2", "--seeds", "0-2", "--oracle-trials", "8",
        "--no-progress"]
LABEL = "offline engine (not a language model)"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("replication")
    assert main(TINY + ["--out", str(out)]) == 0
    return out


def test_writes_the_report_and_csv_with_both_comparisons(tiny):
    md = (tiny / "replication.md").read_text()
    df = pd.read_csv(tiny / "replication.csv")
    assert set(df["comparison"]) == {"as_published", "corrected"}
    paired = df[df["kind"] == "paired"].set_index(["comparison", "versus"])
    assert ("as_published", "saez_v1") in paired.index
    assert ("corrected", "saez") in paired.index and ("corrected", "oracle") in paired.index
    assert (paired["n"] == 3).all() and paired["half_width"].notna().all()
    # the paired difference is the mean of the per-seed differences of the comparisons' own summaries
    s = pd.read_csv(tiny / "as_published" / "summary.csv").pivot(index="seed", columns="planner", values="welfare")
    assert paired.loc[("as_published", "saez_v1"), "mean"] == pytest.approx((s["llm"] - s["saez_v1"]).mean())
    for heading in ("As the paper made it", "Corrected", "SWF matrix", "remain under `--preset paper-v1`"):
        assert heading in md, heading
    assert (tiny / "as_published" / "report.md").exists() and (tiny / "corrected" / "report.md").exists()
    assert (tiny / "as_published" / "report.html").exists() and (tiny / "corrected" / "report.html").exists()


def test_offline_label_everywhere(tiny):
    md = (tiny / "replication.md").read_text()
    df = pd.read_csv(tiny / "replication.csv")
    assert (df["engine"] == LABEL).all()
    # every table row of the LM planner (headline and per-comparison tables) carries the label
    rows = [line for line in md.splitlines()
            if line.startswith("| ") and any(c.strip().startswith("llm") for c in line.split("|")[1:3])
            and not line.startswith(("| workers", "| planners"))]
    assert len(rows) >= 4 and all(LABEL in line for line in rows), rows
    assert f"| LM (planner; LM workers) | {LABEL} | {LABEL} |" in md


def test_the_default_corrected_comparison_runs_es(tiny):
    md = (tiny / "replication.md").read_text()
    assert "es" in compare.PLANNERS
    assert "| corrected |" in md and "| es |" in md
    assert "not in this version" not in md


def test_the_planner_list_is_a_parameter_and_unknown_planners_are_skipped_with_a_note(tmp_path):
    out = tmp_path / "r"
    assert main(TINY + ["--planners", "llm,oracle,nonesuch", "--out", str(out)]) == 0
    md = (out / "replication.md").read_text()
    assert "| es |" not in md and "| nonesuch |" not in md
    assert "Planner(s) nonesuch of the corrected comparison are not in this version" in md
    corrected = pd.read_csv(out / "corrected" / "summary.csv")
    assert set(corrected["planner"]) == {"llm", "oracle"}


def test_refuses_to_overwrite_without_the_flag(tiny, capsys):
    with pytest.raises(SystemExit) as e:
        main(TINY + ["--out", str(tiny)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "--overwrite" in err


@pytest.mark.parametrize("argv, word", [
    (["--agents", "0"], "--agents"),
    (["--seeds", "a"], "--seeds"),
    (["--planners", "saez,oracle"], "llm"),
    (["--steps-per-year", "x"], "--steps-per-year"),
    (["--bogus"], "--bogus"),
    (["--lm", "not-a-model"], "not-a-model"),
])
def test_bad_flags_exit_2_with_one_line(argv, word, capsys, tmp_path, monkeypatch):
    import programs.lm

    def no_lm(*a, **k):
        raise AssertionError("an LM was built before the configuration was validated")

    monkeypatch.setattr(programs.lm, "build_lms", no_lm)
    with pytest.raises(SystemExit) as e:
        main(argv + ["--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.splitlines()) == 1 and word in err, err
    assert not (tmp_path / "x").exists()
