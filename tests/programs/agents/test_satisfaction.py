"""Year-end satisfaction: an answer that is not yes/no falls back to the worker's last judgement."""

from __future__ import annotations

import re
from pathlib import Path

from programs.agents.satisfaction import SatisfactionRater
from signatures import WorkerStep
from tests.programs.fakes import FunctionEngine, lm

ROW = WorkerStep(step=0, hours=40.0, pretax_income=50000.0, tax=5000.0, rebate=1000.0, consumption=46000.0,
                 utility=1.0)
GARBAGE = FunctionEngine(lambda r: "[[ ## satisfied ## ]]\nit depends\n\n[[ ## completed ## ]]")


def test_an_unreadable_answer_keeps_the_last_judgement_satisfied_before_the_first():
    rater = SatisfactionRater()
    after_no = rater(persona="p", this_year=ROW, fallback=False, lm=lm(GARBAGE))
    after_yes = rater(persona="p", this_year=ROW, fallback=True, lm=lm(GARBAGE))
    first = rater(persona="p", this_year=ROW, fallback=None, lm=lm(GARBAGE))
    assert (after_no.satisfied, after_yes.satisfied, first.satisfied) == (False, True, True)
    assert after_no.fallback == after_yes.fallback == first.fallback == "parse_error"  # "it depends" is no bool
    assert rater.fallbacks.snapshot() == {"parse_error": 3}


def test_the_readme_states_the_satisfaction_fallback_the_code_applies():
    readme = " ".join((Path(__file__).resolve().parents[3] / "README.md").read_text().split())
    assert "counts as satisfied" not in readme
    assert re.search(r"satisfaction answer that is not yes/no falls back to the worker's last judgement", readme)
