"""--personas lm: WritePersona from census attributes, stored with the run, reused on resume, counted."""

from __future__ import annotations

import json

from programs.agents.batch import BatchRunner
from programs.agents.persona import PersonaSet, PersonaWriter, demographics
from programs.lm import build_lms
from programs.simulation import Simulation, cli as simulate, load_config
from programs.simulation.dryrun import calls_by_role
from economy.population import Population
from tests.programs.fakes import FunctionEngine, lm

TINY = dict(agents=4, years=2, steps_per_year=1, brackets="three", workers="rational")


def test_lm_personas_come_from_the_census_attributes_and_count_in_the_usage():
    cfg = load_config(**TINY, personas="lm")
    sim = Simulation(cfg, build_lms("offline", seed=0))
    pop = sim.population
    assert sim.personas != list(pop.persona)  # not the template sentences
    for i, p in enumerate(sim.personas):  # the offline engine restates the demographics it was given
        assert p.startswith(f"You are a {int(pop.frame['age'][i])}-year-old") and "potential income" in p
        assert [m.persona for m in sim.memories] == sim.personas
    summary = sim.run(progress=False)
    assert summary.usage.by_role["persona"].calls == cfg.agents
    assert calls_by_role(cfg) == {"planner": 1, "persona": 4}
    # A resumed run is given the stored set: no persona call, the same personas and usage.
    counting = FunctionEngine(lambda r: "[[ ## persona ## ]]\nYou are someone else.\n\n[[ ## completed ## ]]")
    stored = PersonaSet.model_validate_json(sim.persona_set.model_dump_json())
    again = Simulation(cfg, [lm(counting)], personas=stored)
    assert counting.calls == 0 and again.personas == sim.personas
    assert again.usage_totals["persona"] == sim.usage_totals["persona"]


def test_an_unusable_persona_falls_back_to_the_template_counted():
    pop = Population.sample(3, seed=1)
    garbage = FunctionEngine(lambda r: "[[ ## persona ## ]]\n\n\n[[ ## completed ## ]]")
    personas, fb = PersonaWriter().write_batch(pop, lms=[lm(garbage)], runner=BatchRunner(1))
    assert personas == list(pop.persona) and sum(fb.values()) == 3 and garbage.calls == 3
    assert demographics(pop.frame.to_dict("records")[0]).startswith("age: ")


def test_simulate_stores_the_personas_and_resume_reuses_them(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--agents", "4", "--steps-per-year", "1", "--brackets", "three", "--workers", "rational",
            "--personas", "lm", "--no-progress", "--out", str(out)]
    assert simulate.main([*base, "--years", "2"]) == 0
    stored = json.loads((out / "personas.json").read_text())
    assert len(stored["personas"]) == 4 and stored["usage"]["persona"]["calls"] == 4
    assert "personas: written by the LM (4 answers" in capsys.readouterr().out
    before = (out / "personas.json").read_bytes()
    assert simulate.main([*base, "--years", "3", "--resume"]) == 0
    assert "personas: written" not in capsys.readouterr().out  # reused, not rewritten
    assert (out / "personas.json").read_bytes() == before
    summary = json.loads((out / "summary.json").read_text())
    assert summary["usage"]["by_role"]["persona"]["calls"] == 4 and summary["config"]["personas"] == "lm"
    (out / "personas.json").unlink()
    assert simulate.main([*base, "--years", "3", "--resume"]) == 2
    assert "personas.json cannot be read" in capsys.readouterr().err
