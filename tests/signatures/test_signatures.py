"""The signatures' contracts: their fields, and the economics their instructions state."""

from signatures import ChooseLabor, ProposeTaxSchedule, RateSatisfaction, Vote, WritePersona


def test_contract_fields():
    # Prompt order, for prefix reuse: fixed, then yearly, then growing, then what changes every call.
    assert list(ChooseLabor.input_fields) == ["persona", "skill", "schedule", "history", "best", "last_rebate"]
    assert list(ChooseLabor.output_fields) == ["hours"]
    assert list(ProposeTaxSchedule.input_fields) == ["cutoffs", "history", "best", "current_rates_percent"]
    assert list(ProposeTaxSchedule.output_fields) == ["rates_percent"]
    assert list(Vote.input_fields) == ["persona", "history", "cutoffs", "candidates"]
    assert list(Vote.output_fields) == ["candidate"]
    assert list(RateSatisfaction.input_fields) == ["persona", "this_year", "last_year"]
    assert list(RateSatisfaction.output_fields) == ["satisfied"]
    assert list(WritePersona.output_fields) == ["persona"]
    # The docstring is the task an LLM reads: the economics must be in it.
    text = ChooseLabor.instructions
    for phrase in ("skill × hours / 40", "rebate", "utility", "[0, 100]", "history"):
        assert phrase in text
    assert "percent" in ProposeTaxSchedule.instructions and "welfare" in ProposeTaxSchedule.instructions
    assert "[0, 100]" in ChooseLabor.output_fields["hours"].json_schema_extra["desc"]
