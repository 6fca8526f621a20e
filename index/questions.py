"""Questions turned away before any search: empty ones, and ones not written in English.

The bundled model and the BM25 stemmer are English-only, so a question in Arabic (the seed
outlet's readers' language) would only ever be declined with the generic "the coverage does
not answer". Until a multilingual model is available, the reader is told plainly instead.
What is detected is the writing system (Unicode script of the letters), not the language: a
French question in Latin letters still goes through, as it did before.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Literal

LATIN = "Latin"

# Unicode character names start with the script for most scripts; these read better.
_SCRIPT_NAMES = {
    "CJK": "Chinese or Japanese",
    "HIRAGANA": "Japanese",
    "KATAKANA": "Japanese",
    "HANGUL": "Korean",
    "FULLWIDTH": LATIN,
}


@dataclass(frozen=True, slots=True)
class QuestionProblem:
    """Why a question is not searched: `empty`, or `language` (with the script found)."""

    kind: Literal["empty", "language"]
    script: str | None = None

    def message(self) -> str:
        """One plain-text sentence for the reader or the operator."""
        if self.kind == "empty":
            return "The question is empty: ask it in words."
        return f"Questions must be in English for now; this one is written in {self.script} script."


def letter_script(char: str) -> str | None:
    """The script of one letter ("Latin", "Arabic", ...), or None for anything but a letter."""
    if not char.isalpha():
        return None
    try:
        first = unicodedata.name(char).split(" ", 1)[0]
    except ValueError:  # unnamed code points (private use, unassigned)
        return None
    return _SCRIPT_NAMES.get(first, first.title())


def dominant_script(text: str) -> str | None:
    """The script most of the text's letters are written in, or None when it has none.

    Latin wins ties and any half share, so an English question naming "حماس" stays English.
    """
    counts = Counter(s for s in map(letter_script, text) if s is not None)
    if not counts:
        return None
    latin = counts.pop(LATIN, 0)
    if not counts or 2 * latin >= latin + sum(counts.values()):
        return LATIN
    return counts.most_common(1)[0][0]


def check_question(text: str) -> QuestionProblem | None:
    """None when the question can be searched; otherwise why not."""
    if not any(ch.isalnum() for ch in text):
        return QuestionProblem("empty")
    script = dominant_script(text)
    if script not in (None, LATIN):
        return QuestionProblem("language", script)
    return None
