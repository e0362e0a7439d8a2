"""The offline instruction writer: what it answers to MIPROv2, COPRO and GEPA prompts, and nothing else."""

from __future__ import annotations

import dspy
from dspy.teleprompt.copro_optimizer import BasicGenerateInstruction, GenerateInstructionGivenAttempts
from dspy.teleprompt.gepa.instruction_proposal import ProposeInstruction

from programs.lm.writer import GUIDANCE, WRITER_LABEL, writer_lm
from signatures import PlannerYear, ProposeTaxSchedule

BASE = ProposeTaxSchedule.instructions


def test_copro_proposals_are_the_base_plus_distinct_guidance():
    with dspy.context(lm=writer_lm()):
        p = dspy.Predict(BasicGenerateInstruction, n=3)(basic_instruction=BASE)
    props = p.completions.proposed_instruction
    assert len(set(props)) == 3
    for text in props:
        head, _, tail = text.partition("\n\nStrategy:")
        assert head == BASE and ("Strategy:" + tail) in GUIDANCE
    assert set(p.completions.proposed_prefix_for_output_field) == {"Rates in percent, one per bracket:"}


def test_copro_builds_on_its_best_attempt_without_piling_up_guidance():
    # The best attempt is the full multi-line planner instruction (with a non-ASCII dash in "0–100").
    attempts = ["Instruction #1: Set taxes.", "Prefix #1: a", "Resulting Score #1: 40",
                f"Instruction #2: {BASE}\n\nStrategy: old advice", "Prefix #2: b", "Resulting Score #2: 55"]
    with dspy.context(lm=writer_lm()):
        p = dspy.Predict(GenerateInstructionGivenAttempts)(attempted_instructions=attempts)
    assert p.proposed_instruction.startswith(BASE + "\n\nStrategy:")
    assert p.proposed_instruction.count("Strategy:") == 1


def test_gepa_reflection_summarises_the_feedback_by_hand():
    def fb(yours, best, score):
        return (f"Welfare 1: x (score {score:.3f}). Your rates (percent per bracket): [{', '.join(map(str, yours))}]. "
                f"Best-known rates for this economy (percent per bracket): [{', '.join(map(str, best))}].")

    examples = [{"Inputs": {}, "Generated Outputs": {}, "Feedback": fb([10.0, 50.0, 30.0], [90.0, 60.0, 30.0], 0.4)},
                {"Inputs": {}, "Generated Outputs": {}, "Feedback": fb([20.0, 50.0, 40.0], [70.0, 40.0, 30.0], 0.6)}]
    with dspy.context(lm=writer_lm()):
        p = dspy.Predict(ProposeInstruction)(current_instruction="Do taxes.", examples_with_feedback=examples)
    text = p.new_instruction
    assert text.startswith("Do taxes.\n\nLessons from evaluated proposals")
    # best-known mean: [80, 50, 30]; proposals' mean: [15, 50, 35]; gaps +65, 0, -5; mean score 0.5.
    assert "rates near 80%, 50%, 30% for the 3 brackets" in text
    assert "bracket 1 (too low by about 65 points); bracket 3 (too high by about 5 points)" in text
    assert "50% of the best-known welfare gain" in text


def test_mipro_data_summary_ends_early_and_descriptions_are_fixed():
    class Observe(dspy.Signature):
        """Describe."""

        examples: str = dspy.InputField()
        prior_observations: str = dspy.InputField()
        observations: str = dspy.OutputField()

    with dspy.context(lm=writer_lm()):
        assert dspy.Predict(Observe)(examples="...", prior_observations="...").observations == "COMPLETE"


def test_other_prompts_go_to_the_offline_engine():
    year = PlannerYear(year=0, rates_percent=[10.0, 20.0, 30.0], welfare=1.0, revenue=1.0, mean_hours=40.0,
                       agents_per_bracket=[1, 1, 1])
    with dspy.context(lm=writer_lm()):
        p = dspy.Predict(ProposeTaxSchedule)(cutoffs=[0.0, 90000.0, 159100.0], current_rates_percent=[10.0, 20.0, 30.0],
                                             history=[year], best=[year])
    assert len(p.rates_percent) == 3 and all(0 <= r <= 100 for r in p.rates_percent)


def test_label():
    lm = writer_lm()
    assert lm.budget_label == WRITER_LABEL and "not a language model" in WRITER_LABEL
    assert lm.copy().budget_label == WRITER_LABEL
