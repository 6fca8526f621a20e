"""Questions turned away before searching: empty ones and ones not written in English."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from index.questions import QuestionProblem, check_question, dominant_script


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "?", " ؟ ", "...!"])
def test_empty_questions(text: str) -> None:
    assert check_question(text) == QuestionProblem("empty")


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("ماذا قال ويتكوف عن وقف إطلاق النار؟", "Arabic"),
        ("ما هو عدد الشاحنات؟ UN", "Arabic"),
        ("Что сказал Уиткофф?", "Cyrillic"),
        ("מה אמר ויטקוף?", "Hebrew"),
        ("停火协议说了什么", "Chinese or Japanese"),
    ],
)
def test_questions_in_another_script(text: str, script: str) -> None:
    problem = check_question(text)
    assert problem == QuestionProblem("language", script)
    assert problem.message() == (
        f"Questions must be in English for now; this one is written in {script} script."
    )


@pytest.mark.parametrize(
    "text",
    [
        "What did Witkoff urge?",
        "What did حماس say about the truce?",  # an English question naming an Arabic word
        "Qu'a dit Witkoff ?",  # Latin letters: the script is all that is checked
        "2025",
        "Ｗｈａｔ ｄｉｄ Ｗｉｔｋｏｆｆ ｕｒｇｅ？",
    ],
)
def test_english_questions_pass(text: str) -> None:
    assert check_question(text) is None


@given(st.text(alphabet=st.characters(codec="ascii"), min_size=1).filter(str.isalnum))
def test_ascii_with_a_letter_or_digit_always_passes(text: str) -> None:
    assert check_question(text) is None
    assert dominant_script(text) in (None, "Latin")
