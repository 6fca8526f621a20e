"""Callback data: what inline buttons send back, one prefix per kind of button.

Telegram hands a pressed button's data back verbatim (at most 64 bytes), so the strings are
a protocol between the renderers that write them and the handlers that read them. Every
prefix is declared here once, with its encoder and its parser; the handler table routes by
``pattern(prefix)``. Parsers return None for anything we did not send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CALLBACK_BYTES = 64

MORE = "m"
FEEDBACK = "f"
EXAMPLE = "x"
UNFOLLOW = "u"
DIGEST = "d"
PREFIXES = (MORE, FEEDBACK, EXAMPLE, UNFOLLOW, DIGEST)

HELPFUL, WRONG_QUOTE = "helpful", "wrong_quote"
_KIND_CODES = {"h": HELPFUL, "w": WRONG_QUOTE}
_CODE_OF_KIND = {kind: code for code, kind in _KIND_CODES.items()}
DIGEST_CHOICES = ("instant", "daily", "weekly", "now")


def pattern(prefix: str) -> str:
    """The regular expression a ``CallbackQueryHandler`` routes ``prefix`` buttons with."""
    return rf"^{prefix}:"


@dataclass(frozen=True, slots=True)
class MorePress:
    """The "More" button: show excerpts from ``start`` of a saved answer."""

    answer_id: str
    start: int


@dataclass(frozen=True, slots=True)
class FeedbackPress:
    """A feedback button on the message showing excerpts from ``start``."""

    answer_id: str
    start: int
    kind: str


@dataclass(frozen=True, slots=True)
class ExamplePress:
    """An example question from /help was tapped."""

    index: int


Press = MorePress | FeedbackPress | ExamplePress


def more(answer_id: str, start: int) -> str:
    """Data of the "More" button."""
    return f"{MORE}:{answer_id}:{start}"


def feedback(answer_id: str, start: int, kind: str) -> str:
    """Data of a feedback button; ``kind`` is HELPFUL or WRONG_QUOTE."""
    return f"{FEEDBACK}:{answer_id}:{start}:{_CODE_OF_KIND[kind]}"


def example(index: int) -> str:
    """Data of the ``index``-th example question."""
    return f"{EXAMPLE}:{index}"


def unfollow(topic_id: int) -> str:
    """Data of a topic's remove button."""
    return f"{UNFOLLOW}:{topic_id}"


def digest(choice: str) -> str:
    """Data of a /digest button; ``choice`` is one of DIGEST_CHOICES."""
    return f"{DIGEST}:{choice}"


def is_more(data: str) -> bool:
    """Whether ``data`` is a "More" button's."""
    return data.startswith(f"{MORE}:")


_ANSWER_ID = r"[A-Za-z0-9_-]{1,16}"
_PRESS_PATTERNS = (
    (re.compile(rf"{MORE}:({_ANSWER_ID}):(\d{{1,3}})"), lambda m: MorePress(m[1], int(m[2]))),
    (
        re.compile(rf"{FEEDBACK}:({_ANSWER_ID}):(\d{{1,3}}):([hw])"),
        lambda m: FeedbackPress(m[1], int(m[2]), _KIND_CODES[m[3]]),
    ),
    (re.compile(rf"{EXAMPLE}:(\d{{1,2}})"), lambda m: ExamplePress(int(m[1]))),
)
_UNFOLLOW = re.compile(rf"^{UNFOLLOW}:(\d{{1,12}})$")
_DIGEST = re.compile(rf"^{DIGEST}:({'|'.join(DIGEST_CHOICES)})$")


def parse_press(data: str | None) -> Press | None:
    """The answer button behind callback data (More, feedback, example), or None."""
    for regex, make in _PRESS_PATTERNS:
        match = regex.fullmatch(data or "")
        if match:
            return make(match)
    return None


def parse_unfollow(data: str | None) -> int | None:
    """The topic id of a remove button, or None."""
    match = _UNFOLLOW.match(data or "")
    return int(match.group(1)) if match else None


def parse_digest(data: str | None) -> str | None:
    """The choice of a /digest button, or None."""
    match = _DIGEST.match(data or "")
    return match.group(1) if match else None
