"""Digests and subscription settings as Telegram HTML, as pure functions.

A digest groups a reader's new articles by the topic that matched, newest first: headline
as a link, date, and one short verbatim excerpt that shows why it matched. Parts stay
within Telegram's limit and each knows which delivery rows it carries, so a digest that is
cut off half-way is resumed from the first part not sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.digests.cadence import DAILY, INSTANT, Schedule, next_due, zone_of
from bot.telegram import callbacks
from bot.telegram.render import (
    MAX_UNITS,
    PART_SEPARATOR,
    Block,
    Button,
    Keyboard,
    format_date,
    headline,
    join,
    shorten,
    tag,
    text,
    utf16_units,
)
from bot.types import DeliveryCounts, DueItem, Topic

MAX_EXCERPT_CHARS = 280
MAX_TOPIC_BUTTON_CHARS = 40
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class DigestPart:
    """One message of a digest and the delivery rows it carries."""

    html: str
    ids: tuple[int, ...]


def _sort_key(item: DueItem) -> tuple[str, int]:
    return (item.published_at or "", item.id)


def digest_parts(items: Sequence[DueItem], limit: int = MAX_UNITS) -> list[DigestPart]:
    """A reader's due items as message parts: topics in the order of their newest article,
    articles newest first; never a part without an article."""
    if not items:
        return []
    by_topic: dict[str, list[DueItem]] = {}
    for item in sorted(items, key=_sort_key, reverse=True):
        by_topic.setdefault(item.topic, []).append(item)
    count = len(items)
    title = f"Your digest: {count} new {'article' if count == 1 else 'articles'}"
    header = tag("b", text(title))
    sep = utf16_units(PART_SEPARATOR)
    parts: list[tuple[list[Block], list[int]]] = []
    size = 0

    def add(block: Block, ids: list[int], new_part: bool = False) -> None:
        nonlocal size
        if parts and not new_part and size + sep + block.units <= limit:
            parts[-1][0].append(block)
            parts[-1][1].extend(ids)
            size += sep + block.units
        else:
            parts.append(([block], list(ids)))
            size = block.units

    add(header, [])
    for topic, group in by_topic.items():
        heading = tag("b", text(f"🔎 {shorten(topic, 80)}"))
        for i, item in enumerate(group):
            block = article_block(item)
            if i == 0:
                # A topic heading never ends a part on its own.
                both = join([heading, block], "\n")
                add(both, [item.id])
            else:
                add(block, [item.id])
    return [
        DigestPart(PART_SEPARATOR.join(b.html for b in blocks), tuple(ids)) for blocks, ids in parts
    ]


def article_block(item: DueItem) -> Block:
    """Headline as a link with its date, then the excerpt that matched."""
    head = headline(item.url, item.title, item.published_at, " · ")
    excerpt = shorten(item.excerpt, MAX_EXCERPT_CHARS)
    if not excerpt:
        return head
    return join([head, tag("blockquote", text(excerpt))], "\n")


# -- settings and topics ---------------------------------------------------------------------


def describe_schedule(schedule: Schedule, now: datetime) -> str:
    """ "daily at 08:00 (Asia/Gaza), next on 27 March at 08:00"."""
    if schedule.cadence == INSTANT:
        return "as soon as new articles are published"
    when = f"at {schedule.hour:02d}:00 ({schedule.timezone})"
    every = "daily" if schedule.cadence == DAILY else f"every {_DAY_NAMES[schedule.weekday]}"
    upcoming = next_due(schedule, now)
    assert upcoming is not None
    local = upcoming.astimezone(zone_of(schedule.timezone))
    return f"{every} {when}; the next one on {local.day} {local:%B} at {local:%H:%M}"


def followed_message(topic: Topic, added: bool, schedule: Schedule, now: datetime) -> str:
    """After /follow."""
    name = tag("b", text(topic.text))
    if not added:
        return join([text("You already follow ") + name + text(".")]).html
    lines = [
        text("Following ") + name + text("."),
        text(
            "New articles about it come in your digest, "
            f"{describe_schedule(schedule, now)}. Quiet days stay quiet."
        ),
        text("/following lists your topics; /digest changes when digests come."),
    ]
    return join(lines).html


def _try_following(example: str | None) -> str:
    """A nudge to follow a topic; `example` is a name from the coverage's headlines."""
    if example is None:
        return "Follow a name, a place or a phrase with /follow and the topic."
    return f"Try /follow {example}."


def follow_usage_message(example: str | None) -> str:
    """/follow without a topic."""
    lines = [text("Tell me what to follow: a name, a place or a phrase.")]
    if example is not None:
        lines.append(text(f"For example: /follow {example}"))
    return join(lines).html


def topic_problem_message(problem: str) -> str:
    """A topic we cannot follow, and why."""
    return text(f"I cannot follow that: {problem}.").html


def too_many_topics_message(limit: int) -> str:
    """/follow when the chat follows ``limit`` topics already."""
    return text(
        f"This chat follows {limit} topics, the most I keep. "
        "Stop following one first: /following lists them with remove buttons."
    ).html


def group_admins_only_message() -> str:
    """A group member who is not one of its admins tried to change its topics or digests."""
    return text(
        "Only this group's admins can change what it follows and when its digests come. "
        "/following and /digest show the current settings."
    ).html


def group_admins_only_notice() -> str:
    """The same, as the short notice under a pressed button (plain text)."""
    return "Only this group's admins can change this."


def unfollowed_message(topic: Topic | None, asked: str) -> str:
    """After /unfollow or its button."""
    if topic is None:
        return text(f"You do not follow “{shorten(asked, 80)}”. /following lists your topics.").html
    return join([text("Stopped following ") + tag("b", text(topic.text)) + text(".")]).html


def following_message(
    topics: Sequence[Topic], schedule: Schedule | None, now: datetime, example: str | None
) -> str:
    """/following: the list (the keyboard has a remove button per topic)."""
    if not topics:
        return text(f"You follow no topics yet. {_try_following(example)}").html
    lines = [tag("b", text("You follow:"))]
    lines += [text(f"• {t.text}") for t in topics]
    if schedule is not None:
        lines += [text(""), text(f"Digests come {describe_schedule(schedule, now)}.")]
    lines.append(text("Press a topic below to stop following it."))
    return join(lines).html


def following_keyboard(topics: Sequence[Topic]) -> Keyboard:
    """One remove button per topic."""
    return tuple(
        (Button(f"✖ {shorten(t.text, MAX_TOPIC_BUTTON_CHARS)}", callbacks.unfollow(t.id)),)
        for t in topics
    )


def digest_settings_message(schedule: Schedule, now: datetime, topics: int) -> str:
    """/digest without arguments: the current settings and how to change them."""
    lines = [
        tag("b", text("Your digest")),
        text(f"Comes {describe_schedule(schedule, now)}."),
        text(f"You follow {topics} {'topic' if topics == 1 else 'topics'}."),
        text(""),
        text("Change it with the buttons, or:"),
        text("/digest daily 7 — every day at 07:00"),
        text("/digest weekly fri 18 — Fridays at 18:00"),
        text("/digest instant — as soon as articles are published"),
        text("/digest now — a preview of your next digest"),
        text("/timezone Asia/Gaza — your time zone (a city or UTC+2 works too)"),
    ]
    return join(lines).html


def digest_keyboard() -> Keyboard:
    """Cadence buttons and a preview."""
    return (
        (
            Button("As published", callbacks.digest("instant")),
            Button("Daily", callbacks.digest("daily")),
            Button("Weekly", callbacks.digest("weekly")),
        ),
        (Button("Preview now", callbacks.digest("now")),),
    )


def digest_usage_message(problem: str) -> str:
    """A /digest argument we could not read."""
    return join(
        [
            text(problem),
            text("Try /digest daily 8, /digest weekly mon 9, /digest instant or /digest now."),
        ]
    ).html


def schedule_changed_message(schedule: Schedule, now: datetime) -> str:
    """After a cadence, hour or time zone change."""
    return text(f"Done: your digest comes {describe_schedule(schedule, now)}.").html


def timezone_message(name: str, now: datetime) -> str:
    """After /timezone."""
    local = now.astimezone(zone_of(name))
    return text(f"Time zone set to {name}; it is {local:%H:%M} there now.").html


def timezone_usage_message(problem: str | None = None) -> str:
    """/timezone without an argument, or with one we do not know."""
    hint = "Send /timezone and a place: /timezone Asia/Gaza, /timezone Cairo or /timezone UTC+2."
    return join([text(problem), text(hint)]).html if problem else text(hint).html


def preview_header(count: int) -> str:
    """Above a /digest now preview."""
    return tag(
        "i",
        text(f"Preview: {count} {'article' if count == 1 else 'articles'} for your next digest."),
    ).html


def nothing_new_message(since: datetime, timezone_name: str) -> str:
    """/digest now when nothing matched since the last digest."""
    local = since.astimezone(zone_of(timezone_name))
    return text(
        f"Nothing new on your topics since {local.day} {local:%B} {local:%H:%M} ({timezone_name})."
    ).html


def no_topics_message(example: str | None) -> str:
    """/digest now without topics."""
    return text(
        f"You follow no topics yet, so there is nothing to preview. {_try_following(example)}"
    ).html


def subscribers_message(counts: DeliveryCounts) -> str:
    """/subscribers for admins: readers by cadence, deliveries of the last day."""
    active = sum(counts.active_by_cadence.values())
    by_cadence = ", ".join(
        f"{k} {counts.active_by_cadence.get(k, 0)}" for k in ("instant", "daily", "weekly")
    )
    status = counts.by_status
    last = format_date(counts.last_run_at.isoformat()) if counts.last_run_at else "never"
    lines = [
        tag("b", text("Subscribers")),
        text(f"Active: {active} ({by_cadence}); inactive (blocked or left): {counts.inactive}"),
        text(f"Topics: {counts.topics} ({counts.distinct_topics} distinct)"),
        tag("b", text("Last 24 hours")),
        text(
            f"Delivered: {status.get('sent', 0)}; waiting: {status.get('due', 0)}; "
            f"failed: {status.get('failed', 0)}; uncertain (interrupted): "
            f"{status.get('uncertain', 0)}"
        ),
        text(f"Last digest run: {last}"),
    ]
    return join(lines).html
