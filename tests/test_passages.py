"""Sentence splitting and chunking: exact spans, full coverage, stable ids."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from index.passages import make_passages, split_sentences


def texts(body: str) -> list[str]:
    return [body[s.start : s.end] for s in split_sentences(body)]


def test_splits_on_sentence_ends_but_not_abbreviations() -> None:
    body = (
        "Mr. Witkoff met officials in Cairo on Monday. The U.S. envoy said talks were "
        "\u201cconstructive.\u201d Aid rose 3.5% to 1,200 trucks! Was it enough? "
        "J. K. Rowling agreed."
    )
    assert texts(body) == [
        "Mr. Witkoff met officials in Cairo on Monday.",
        "The U.S. envoy said talks were \u201cconstructive.\u201d",
        "Aid rose 3.5% to 1,200 trucks!",
        "Was it enough?",
        "J. K. Rowling agreed.",
    ]


def test_line_breaks_end_sentences() -> None:
    body = "Heading without stop\n\nFirst paragraph. Second sentence\n- a list item\n- another"
    assert texts(body) == [
        "Heading without stop",
        "First paragraph.",
        "Second sentence",
        "- a list item",
        "- another",
    ]


paragraph = st.lists(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"),
        min_size=0,
        max_size=300,
    ),
    min_size=1,
    max_size=8,
).map(lambda parts: ". ".join(parts))
bodies = st.lists(paragraph, min_size=1, max_size=6).map(lambda ps: "\n\n".join(ps))


@settings(max_examples=300, deadline=None)
@given(body=bodies, max_chars=st.integers(min_value=100, max_value=900))
def test_chunks_are_exact_ordered_and_cover_the_text(body: str, max_chars: int) -> None:
    passages = make_passages("k", "Title", body, max_chars)
    covered = [False] * len(body)
    last_end = 0
    for i, p in enumerate(passages):
        assert p.ordinal == i
        assert last_end <= p.start < p.end <= len(body)
        assert p.sentences[0].start == p.start and p.sentences[-1].end == p.end
        assert p.end - p.start <= max_chars or len(p.sentences) == 1
        assert "\n\n" not in body[p.start : p.end]  # never across a paragraph break
        for s in p.sentences:
            assert body[s.start : s.end] == body[s.start : s.end].strip()
            for j in range(s.start, s.end):
                covered[j] = True
        last_end = p.end
    # Every visible character belongs to a passage.
    assert all(c or body[j].isspace() for j, c in enumerate(covered))
    # Ids are stable and unique.
    again = make_passages("k", "Title", body, max_chars)
    assert [p.id for p in again] == [p.id for p in passages]
    assert len({p.id for p in passages}) == len(passages)


def test_long_sentence_is_cut_at_white_space() -> None:
    body = " ".join(["word"] * 400)
    passages = make_passages("k", "", body, 300)
    assert len(passages) > 1
    assert all(p.end - p.start <= 300 for p in passages)
    assert all(not body[p.start : p.end].startswith(" ") for p in passages)


def test_passage_ids_follow_content_not_position() -> None:
    a = make_passages("k", "T", "One sentence here. Two sentences here.", 100)
    b = make_passages("k", "T", "New lead sentence.\n\nOne sentence here. Two sentences here.", 25)
    assert a[0].id != b[0].id
    assert (
        make_passages("k", "T", "One sentence here.", 100)[0].id
        == make_passages("k", "T", "One sentence here.", 100)[0].id
    )
    # A changed headline changes what the model saw, so the id changes.
    assert make_passages("k", "Other", "One sentence here.", 100)[0].id != a[0].id
