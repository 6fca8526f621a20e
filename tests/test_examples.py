"""Examples for /start come from the index's own coverage: only questions it answers."""

from __future__ import annotations

from index.coverage import CoverageIndex
from index.examples import example_questions, example_topic, names_in_headlines


def test_names_in_headlines() -> None:
    titles = [
        "Aid convoys surge through Kerem Shalom in first week of truce",
        "UNRWA warns flour stocks in Gaza will run out within weeks",
        "Gaza hospitals ration generator fuel as repairs begin",
        "Mediators Step Up Efforts To Keep Gaza Truce Alive",  # Title Case: skipped
        "Talks with Witkoff's team: what the US said in Gaza",
        "Steve Witkoff urges calm",
        "Cairo talks stall",  # a first word alone may be a name or not: left out
    ]
    assert names_in_headlines(titles) == [
        "Gaza",
        "Kerem Shalom",
        "UNRWA",
        "Witkoff",
        "US",
        "Steve Witkoff",
    ]
    assert names_in_headlines([]) == []


def test_example_questions_are_ones_the_index_answers(sample_index: CoverageIndex) -> None:
    configured = ["Who won the Champions League final?", "What did Witkoff urge?"]
    examples = example_questions(sample_index, configured)
    assert examples[0] == "What did Witkoff urge?"
    assert "Who won the Champions League final?" not in examples
    assert len(examples) == 3
    assert all(a.answered for a in sample_index.ask_many(examples))
    assert example_topic(sample_index) == "Gaza"


def test_an_empty_index_offers_no_examples(fresh_index: CoverageIndex) -> None:
    assert example_questions(fresh_index, ["What did Witkoff urge?"]) == []
    assert example_topic(fresh_index) is None
