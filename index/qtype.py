"""What kind of answer a question asks for, and whether a text offers one.

A reader's "How many trucks...?" is answered by the sentence with a number in it, not by the
one that repeats the question's words. This is the search engine's old answer-type trick,
kept small: numbers, people, times and places, in English.
"""

from __future__ import annotations

import re

NUMBER, AMOUNT, PERSON, TIME, PLACE = "number", "amount", "person", "time", "place"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        TIME,
        re.compile(
            r"^(when|what (year|month|date|day|time)|which (years?|month|date|day)|by when|"
            r"since when|how long ago)\b"
        ),
    ),
    (
        # "How much was he fined?" wants a sum, a share or a figure, not "two front teeth".
        AMOUNT,
        re.compile(
            r"^(how much|by how much|what (is the |was the )?(price|cost|fee|sum|value|"
            r"budget|salary|fine|percentage|proportion|share)|what (percentage|proportion))\b"
        ),
    ),
    (
        NUMBER,
        re.compile(
            r"^(how (many|much|long|big|large|far|old|high|fast|often|tall|heavy)|by how much|"
            r"what (is the |was the )?(percentage|proportion|share|number|amount|price|cost|"
            r"figure|fee|sum|value|size|total|rate|budget|salary|fine|score|margin|age)|"
            r"what (percentage|proportion|share|fraction))\b"
        ),
    ),
    (
        PERSON,
        re.compile(
            r"^(who|whom|whose|which (man|woman|person|people|player|actor|"
            r"actress|singer|star|official|minister|director|executive|boss|"
            r"manager|coach|leader|politician|mp|member))\b"
        ),
    ),
    (
        PLACE,
        re.compile(
            r"^(where|which (country|countries|city|cities|town|place|region|"
            r"state|nation|venue|stadium))\b"
        ),
    ),
)
_LEADING = re.compile(r"^\W*(and|so|but|ok|okay|please|tell me|do you know)?\W*", re.I)

_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|"
    r"thirty|forty|fifty|hundred|thousand|million|billion|trillion|dozen|half|"
    r"third|quarter|double|twice|triple"
)
_HAS = {
    NUMBER: re.compile(rf"\d|\b({_NUMBER_WORDS})\b|%|£|\$|€", re.I),
    AMOUNT: re.compile(r"\d|%|£|\$|€|\b(half|third|quarter|double|twice|million|billion)\b", re.I),
    TIME: re.compile(
        r"\b(1[89]\d\d|20\d\d|january|february|march|april|may|june|july|august|september|"
        r"october|november|december|monday|tuesday|wednesday|thursday|friday|saturday|"
        r"sunday|yesterday|today|tomorrow|week|month|year|decade|century)s?\b",
        re.I,
    ),
    PERSON: re.compile(r"\b(Mr|Mrs|Ms|Dr|Sir|Lord|Lady|Prof)\b\.?|\b[A-Z][a-z]+ [A-Z][a-z'-]+"),
    PLACE: re.compile(r"\b(in|at|from|to) [A-Z][a-z]+"),
}


def answer_type(question: str) -> str | None:
    """The kind of answer a question wants, or None when it does not say."""
    q = _LEADING.sub("", question.strip().lower(), count=1)
    for kind, pattern in _PATTERNS:
        if pattern.match(q):
            return kind
    return None


def offers(kind: str | None, text: str, question: str) -> bool:
    """True when the text holds an answer of that kind that the question does not already."""
    if kind is None:
        return False
    q_low = question.lower()
    return any(m.group(0).lower() not in q_low for m in _HAS[kind].finditer(text))
