"""Core results to Telegram: escaped HTML message parts and keyboards, as pure functions.

Nothing here talks to Telegram. Every message part is built from blocks that carry their
HTML and the length of their visible text in UTF-16 code units (what Telegram's 4096 limit
counts after entity parsing), so a part's size is known without parsing it again.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.telegram import callbacks
from bot.types import plural
from index import Answer, Article, Excerpt, strip_controls

MAX_UNITS = 4096
MAX_TITLE_CHARS = 200
MAX_BUTTON_CHARS = 60
PART_SEPARATOR = "\n\n"


def utf16_units(text: str) -> int:
    """Length of ``text`` as Telegram counts it (UTF-16 code units)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _clean(text: str) -> str:
    """Drop bidi controls and joiners (text stored before they were stripped on the way
    in) and replace lone surrogates, which no Telegram message can carry."""
    text = strip_controls(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


# -- blocks: HTML with its visible length -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """A piece of a message: its HTML and the UTF-16 length of the text it shows."""

    html: str
    units: int

    def __add__(self, other: Block) -> Block:
        return Block(self.html + other.html, self.units + other.units)


def text(value: str) -> Block:
    """Plain text, escaped."""
    value = _clean(value)
    return Block(html.escape(value, quote=False), utf16_units(value))


def tag(name: str, inner: Block, attrs: str = "") -> Block:
    """``inner`` wrapped in a tag; markup does not count towards the limit."""
    return Block(f"<{name}{attrs}>{inner.html}</{name}>", inner.units)


def link(url: str, label: Block) -> Block:
    """A link; the URL is escaped for the attribute and is not visible text."""
    return tag("a", label, f' href="{html.escape(_clean(url), quote=True)}"')


def join(blocks: Iterable[Block], separator: str = "\n") -> Block:
    """Blocks one after another with a plain separator."""
    items = list(blocks)
    sep = text(separator)
    html_ = sep.html.join(b.html for b in items)
    return Block(html_, sum(b.units for b in items) + sep.units * max(0, len(items) - 1))


def split_text(value: str, limit: int) -> list[str]:
    """Cut text into pieces of at most ``limit`` UTF-16 units that join back to ``value``,
    preferring line breaks, then spaces."""
    if limit < 2:
        raise ValueError("limit must be at least 2 units")
    pieces: list[str] = []
    rest = value
    while utf16_units(rest) > limit:
        cut = _fit(rest, limit)
        window = rest[:cut]
        for sep in ("\n", " "):
            at = window.rfind(sep)
            if at > cut // 2:
                cut = at + 1
                break
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def _fit(value: str, limit: int) -> int:
    """Largest prefix length (in characters) whose UTF-16 length is within ``limit``."""
    units = 0
    for i, ch in enumerate(value):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(value)


def pack(
    blocks: Iterable[Block], limit: int = MAX_UNITS, separator: str = PART_SEPARATOR
) -> list[str]:
    """Greedily put blocks into as few message parts as fit under ``limit``."""
    sep = utf16_units(separator)
    parts: list[list[Block]] = []
    size = 0
    for block in blocks:
        if block.units > limit:
            raise ValueError("a block is longer than a message")
        if parts and size + sep + block.units <= limit:
            parts[-1].append(block)
            size += sep + block.units
        else:
            parts.append([block])
            size = block.units
    return [separator.join(b.html for b in part) for part in parts]


def shorten(value: str, limit: int) -> str:
    """Whitespace collapsed; cut at ``limit`` characters with an ellipsis."""
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def format_date(published_at: str | None) -> str | None:
    """``2025-03-05T09:30:00+00:00`` as ``5 March 2025``; odd values as they are."""
    if not published_at:
        return None
    try:
        when = datetime.fromisoformat(published_at.strip())
    except ValueError:
        return shorten(published_at, 40) or None
    return f"{when.day} {when:%B %Y}"


# -- answers -------------------------------------------------------------------------------


def headline(url: str, title: str, published_at: str | None, separator: str = "\n") -> Block:
    """The article's title as a bold link, then its date in italics."""
    label = shorten(title, MAX_TITLE_CHARS) or "(untitled)"
    head = tag("b", link(url, text(label)))
    date = format_date(published_at)
    return join([head, tag("i", text(date))], separator) if date else head


def marked(value: str, offset: int, span: tuple[int, int] | None) -> Block:
    """Text whose part inside ``span`` (offsets into the excerpt; ``value`` starts at
    ``offset``) is bold: the sentence that answers. The text stays verbatim."""
    if span is None:
        return text(value)
    lo, hi = (min(max(at - offset, 0), len(value)) for at in span)
    if lo >= hi:
        return text(value)
    return text(value[:lo]) + tag("b", text(value[lo:hi])) + text(value[hi:])


def excerpt_blocks(excerpt: Excerpt, limit: int = MAX_UNITS) -> list[Block]:
    """Headline and date, then the verbatim excerpt in one or more blockquotes, its
    answering sentence in bold."""
    head = headline(excerpt.url, excerpt.title, excerpt.published_at)
    pieces = split_text(_clean(excerpt.text), limit - head.units - 1)
    span = excerpt.answer_span
    if span is not None:  # into the cleaned text, which has no control characters
        span = (len(_clean(excerpt.text[: span[0]])), len(_clean(excerpt.text[: span[1]])))
    offsets = [sum(len(p) for p in pieces[:i]) for i in range(len(pieces))]
    # A part of only whitespace would be an empty message, which Telegram refuses.
    chunks = [
        (o, c) for i, (o, c) in enumerate(zip(offsets, pieces, strict=True)) if not i or c.strip()
    ]
    quotes = [tag("blockquote", marked(c, o, span)) for o, c in chunks]
    return [join([head, quotes[0]]), *quotes[1:]]


def answer_parts(answer: Answer, start: int = 0, count: int = 3) -> list[str]:
    """Message parts for excerpts ``start`` to ``start + count`` of an answer."""
    blocks = [b for ex in answer.excerpts[start : start + count] for b in excerpt_blocks(ex)]
    return pack(blocks)


def decline_message() -> str:
    """What the bot says when the coverage does not answer."""
    return (
        "I could not find this in our coverage, so I will not guess.\n"
        "Try other words, or see /latest for the newest stories."
    )


def slow_down_message(seconds: float) -> str:
    """Said once when a reader asks faster than their allowance."""
    wait = max(1, round(seconds))
    return (
        "You are asking faster than I can answer everyone. "
        f"Please wait {wait} second{'s' if wait != 1 else ''}, then ask again."
    )


def no_more_message() -> str:
    """A "More" press when there is nothing left (or the answer expired)."""
    return "There are no more excerpts for this question. Ask it again for a fresh answer."


def question_too_long_message(limit: int) -> str:
    """The reader sent a wall of text."""
    return f"That is a long message. Please ask a shorter question (up to {limit} characters)."


def not_a_question_message() -> str:
    """The reader sent something without words: emoji, symbols, a sticker, a photo."""
    return "Send me a question in words. See /help for examples."


def language_message(script: str) -> str:
    """A question in another script than English's: the model understands English only."""
    return (
        f"Questions must be in English for now (this one is written in {html.escape(script)} "
        "script). I cannot search our coverage in other languages yet."
    )


def ask_usage_message() -> str:
    """/ask without a question."""
    return "Put the question after the command: <code>/ask your question</code>"


def unknown_command_message() -> str:
    """A command the bot does not have, in a private chat."""
    return "I do not know that command. Ask a question in plain words, or see /help."


def apology_message() -> str:
    """Sent to the reader when a handler fails."""
    return "Sorry, something went wrong on my side. Please try again in a moment."


# -- keyboards as plain data ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button that sends ``data`` back to the bot."""

    label: str
    data: str


Keyboard = tuple[tuple[Button, ...], ...]


def answer_keyboard(answer_id: str, start: int, shown: int, total: int) -> Keyboard:
    """Feedback for the excerpts shown, and "More" while excerpts are left."""
    feedback = (
        Button("👍 Helpful", callbacks.feedback(answer_id, start, callbacks.HELPFUL)),
        Button("⚠️ Wrong quote", callbacks.feedback(answer_id, start, callbacks.WRONG_QUOTE)),
    )
    left = total - start - shown
    if left <= 0:
        return (feedback,)
    return ((Button(f"More ({left})", callbacks.more(answer_id, start + shown)),), feedback)


def without_more(keyboard: Keyboard) -> Keyboard:
    """The keyboard once "More" has been used."""
    return tuple(row for row in keyboard if not any(callbacks.is_more(b.data) for b in row))


def examples_keyboard(questions: Sequence[str]) -> Keyboard:
    """Up to three example questions, one per row."""
    return tuple(
        (Button(shorten(q, MAX_BUTTON_CHARS), callbacks.example(i)),)
        for i, q in enumerate(questions[:3])
    )


# -- other messages ------------------------------------------------------------------------


def help_message(
    bot_username: str, articles: int, newest: str | None, *, has_examples: bool = True
) -> str:
    """/start and /help: what the bot covers and how to ask."""
    mention = f"@{bot_username}" if bot_username else "me"
    coverage = f"{plural(articles, 'article')} so far"
    newest_date = format_date(newest)
    if newest_date:
        coverage += f", the newest from {newest_date}"
    lines = [
        tag("b", text("Ask me about our news coverage.")),
        text(
            "I answer with quotes from our articles, each linked to the full story, "
            "and I say so when the coverage does not answer."
        ),
        text(""),
        text(
            f"Write a question in plain words. In a group, mention {mention}, reply to me, "
            "or use /ask <question>. /latest lists the newest stories. In any chat you can "
            f"also type {mention} and a question."
        ),
        text(
            "Follow a topic with /follow <topic> (a name, a place, a phrase) and new articles "
            "about it come in a digest; /digest sets when."
        ),
        text(""),
        text(f"{coverage}. Try one of these:" if has_examples else f"{coverage}."),
    ]
    return join(lines).html


def latest_parts(articles: Sequence[Article]) -> list[str]:
    """/latest: the newest headlines as links with their dates."""
    if not articles:
        return ["No stories have been imported yet."]
    items = [text("• ") + headline(a.url, a.title, a.published_at, " · ") for a in articles]
    return pack([tag("b", text("Newest stories")), *items], separator="\n")


def error_report(summary: str, details: str, suppressed: int) -> str:
    """An error report for the admin chats; the traceback's tail if it is long."""
    head = text(summary)
    if suppressed:
        head = join([head, text(f"({suppressed} more errors since the last report)")])
    room = MAX_UNITS - head.units - 1
    details = _clean(details)
    if utf16_units(details) > room:
        pieces = split_text(details, room - 2)
        details = "…\n" + pieces[-1] if len(pieces) > 1 else details
    return join([tag("b", head), tag("pre", text(details))]).html


# -- plain text, for when Telegram rejects our HTML -------------------------------------------

_ANCHOR = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def plain_parts(html_text: str) -> list[str]:
    """Our HTML as plain text (links spelled out, quotes marked), in parts under the limit."""
    value = _ANCHOR.sub(lambda m: f"{m[2]}\n{m[1]}", html_text)
    value = value.replace("<blockquote>", "“").replace("</blockquote>", "”")
    value = html.unescape(_TAG.sub("", value))
    return split_text(value, MAX_UNITS)


# -- button notices and inline results ----------------------------------------------------


def feedback_notice(kind: str | None) -> str:
    """The short notice after a feedback press (None: the answer is gone)."""
    if kind == callbacks.HELPFUL:
        return "Thanks, glad it helped."
    if kind == callbacks.WRONG_QUOTE:
        return "Thanks, we will check these quotes."
    return "This answer has expired. Ask again for a fresh one."


def stale_button_notice() -> str:
    """A press on a button we do not know (any more)."""
    return "This button no longer works. Ask your question again."


def inline_empty_label(asked: bool) -> str:
    """The button above empty inline results: opens a private chat with the bot."""
    return "Not in our coverage. How to ask" if asked else "Ask about our coverage"


@dataclass(frozen=True, slots=True)
class InlineResult:
    """One shareable excerpt for inline mode."""

    id: str
    title: str
    description: str
    html: str


def inline_results(answer: Answer | None, limit: int = 10) -> list[InlineResult]:
    """The answer's excerpts as inline results (none when it declined)."""
    if answer is None or not answer.answered:
        return []
    return [
        InlineResult(
            id=f"{i}-{ex.article_key[:24]}-{ex.start}"[:64],
            title=shorten(ex.title, 100) or "(untitled)",
            description=shorten(_clean(ex.text), 120),
            html=pack(excerpt_blocks(ex))[0],
        )
        for i, ex in enumerate(answer.excerpts[:limit])
    ]
