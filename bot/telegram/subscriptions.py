"""Telegram handlers for following topics and digest settings; thin, like ``handlers``.

/follow, /unfollow, /following (with a remove button per topic), /digest (cadence, hour,
weekday, preview), /timezone, and ``my_chat_member`` updates, which tell us when a reader
blocks the bot or removes it from a group (and when it is back).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from telegram import CallbackQuery, Chat, ChatMember, Update
from telegram.constants import ParseMode

from bot.digests import render as render_digest
from bot.digests.cadence import DAILY, INSTANT, WEEKDAYS, WEEKLY, Schedule, parse_timezone
from bot.digests.planning import preview
from bot.digests.store import Subscriber, TooManyTopics
from bot.services import BotContext
from bot.telegram import callbacks, group_rights, render
from bot.telegram.jobs import ensure_digest_job, job_queue_of
from bot.telegram.replies import markup, send_parts
from bot.types import Topic
from index import normalize_topic

log = logging.getLogger(__name__)

_Data = TypeVar("_Data")


def _now() -> datetime:
    return datetime.now(UTC)


def default_schedule(context: BotContext) -> Schedule:
    """A new reader's digest settings, from the [digests] section."""
    d = context.services.config.digests
    return Schedule(d.default_cadence, d.default_hour, 0, d.default_timezone)


async def _reader(context: BotContext, chat_id: int) -> Subscriber | None:
    return await asyncio.to_thread(context.services.state.subscribers.get, chat_id)


async def _schedule(context: BotContext, chat_id: int) -> tuple[Subscriber | None, Schedule]:
    """The chat's reader record (None for a new chat) and its schedule, or the default one."""
    reader = await _reader(context, chat_id)
    return reader, reader.schedule if reader else default_schedule(context)


def parse_digest_args(args: list[str], current: Schedule) -> Schedule:
    """``daily [HH]``, ``weekly [day] [HH]``, ``instant`` as new settings; ValueError with a
    reader-facing message otherwise."""
    if not args:
        raise ValueError("Say how often.")
    kind, rest = args[0].lower(), [a.lower() for a in args[1:]]
    aliases = {"now": "now", "instant": INSTANT, "asap": INSTANT, "live": INSTANT}
    cadence = aliases.get(kind, kind)
    if cadence not in (INSTANT, DAILY, WEEKLY):
        raise ValueError(f"I do not know the digest kind “{args[0][:30]}”.")
    weekday, hour = current.weekday, current.hour
    for token in rest:
        if token[:3] in WEEKDAYS and cadence == WEEKLY:
            weekday = WEEKDAYS.index(token[:3])
        elif token.removesuffix(":00").isdigit() and 0 <= int(token.removesuffix(":00")) <= 23:
            hour = int(token.removesuffix(":00"))
        else:
            raise ValueError(f"I could not read “{token[:30]}”: use an hour 0-23 or a weekday.")
    return dataclasses.replace(current, cadence=cadence, hour=hour, weekday=weekday)


async def _change_schedule(
    context: BotContext, chat_id: int, chat_type: str, schedule: Schedule
) -> Subscriber:
    store = context.services.state.subscribers
    reader = await asyncio.to_thread(store.set_schedule, chat_id, chat_type, schedule, _now())
    job_queue = job_queue_of(context)
    if job_queue is not None:
        ensure_digest_job(job_queue, context.services, reader.schedule.slot)
    return reader


async def _argument(
    context: BotContext,
    chat_id: int,
    parse: Callable[[str], str],
    usage: str,
    problem: Callable[[str], str],
) -> str | None:
    """The command's argument through ``parse``; None after telling the reader how to use
    the command (no argument) or what is wrong with it (``parse`` raised ValueError)."""
    raw = " ".join(context.args or [])
    if not raw.strip():
        await send_parts(context, chat_id, [usage])
        return None
    try:
        return parse(raw)
    except ValueError as exc:
        await send_parts(context, chat_id, [problem(str(exc))])
        return None


async def _example_topic(context: BotContext) -> str | None:
    """A topic to suggest: a name the coverage's newest headlines mention most."""
    services = context.services
    return (await services.batcher.call(services.coverage_examples)).topic


async def _following_text(
    context: BotContext, topics: list[Topic], reader: Subscriber | None
) -> str:
    """/following's text; without topics it suggests one from the coverage."""
    example = None if topics else await _example_topic(context)
    schedule = reader.schedule if reader else None
    return render_digest.following_message(topics, schedule, _now(), example)


# -- commands ------------------------------------------------------------------------------


async def on_follow(update: Update, context: BotContext) -> None:
    """/follow <topic>."""
    message, chat = update.effective_message, update.effective_chat
    assert message is not None and chat is not None
    if not await group_rights.allowed(update, context):
        return
    text = await _argument(
        context,
        chat.id,
        normalize_topic,
        render_digest.follow_usage_message(await _example_topic(context)),
        render_digest.topic_problem_message,
    )
    if text is None:
        return
    store = context.services.state.subscribers
    try:
        topic, added = await asyncio.to_thread(
            store.follow, chat.id, chat.type, text, default_schedule(context), _now()
        )
    except TooManyTopics as exc:
        await send_parts(context, chat.id, [render_digest.too_many_topics_message(exc.limit)])
        return
    reader = await _reader(context, chat.id)
    assert reader is not None
    job_queue = job_queue_of(context)
    if job_queue is not None:
        ensure_digest_job(job_queue, context.services, reader.schedule.slot)
    reply = render_digest.followed_message(topic, added, reader.schedule, _now())
    await send_parts(context, chat.id, [reply])


async def on_unfollow(update: Update, context: BotContext) -> None:
    """/unfollow <topic>; without a topic, the list with remove buttons."""
    chat = update.effective_chat
    assert chat is not None
    raw = " ".join(context.args or []).strip()
    if not raw:
        await on_following(update, context)
        return
    if not await group_rights.allowed(update, context):
        return
    removed = await asyncio.to_thread(
        context.services.state.subscribers.unfollow, chat.id, " ".join(raw.split())
    )
    await send_parts(context, chat.id, [render_digest.unfollowed_message(removed, raw)])


async def on_following(update: Update, context: BotContext) -> None:
    """/following: the topics, each with a remove button."""
    chat = update.effective_chat
    assert chat is not None
    reader = await _reader(context, chat.id)
    topics = list(reader.topics) if reader and reader.active else []
    text = await _following_text(context, topics, reader)
    keyboard = render_digest.following_keyboard(topics)
    await send_parts(context, chat.id, [text], keyboard)


async def on_digest(update: Update, context: BotContext) -> None:
    """/digest: settings; /digest daily 7 | weekly fri 18 | instant | now."""
    chat = update.effective_chat
    assert chat is not None
    args = context.args or []
    reader, current = await _schedule(context, chat.id)
    if not args:
        topics = len(reader.topics) if reader else 0
        text = render_digest.digest_settings_message(current, _now(), topics)
        await send_parts(context, chat.id, [text], render_digest.digest_keyboard())
        return
    if args[0].lower() == "now":
        await send_preview(context, chat.id)
        return
    if not await group_rights.allowed(update, context):
        return
    try:
        schedule = parse_digest_args(args, current)
    except ValueError as exc:
        await send_parts(context, chat.id, [render_digest.digest_usage_message(str(exc))])
        return
    reader = await _change_schedule(context, chat.id, chat.type, schedule)
    await send_parts(
        context, chat.id, [render_digest.schedule_changed_message(reader.schedule, _now())]
    )


async def on_timezone(update: Update, context: BotContext) -> None:
    """/timezone Asia/Gaza | Cairo | UTC+2."""
    chat = update.effective_chat
    assert chat is not None
    if context.args and not await group_rights.allowed(update, context):
        return
    name = await _argument(
        context,
        chat.id,
        parse_timezone,
        render_digest.timezone_usage_message(),
        render_digest.timezone_usage_message,
    )
    if name is None:
        return
    _, current = await _schedule(context, chat.id)
    reader = await _change_schedule(
        context, chat.id, chat.type, dataclasses.replace(current, timezone=name)
    )
    await send_parts(
        context,
        chat.id,
        [
            render_digest.timezone_message(name, _now()),
            render_digest.schedule_changed_message(reader.schedule, _now()),
        ],
    )


async def send_preview(context: BotContext, chat_id: int) -> None:
    """/digest now: what the next digest holds, without logging it as delivered."""
    parts = await preview(context.services, chat_id)
    if parts is None:
        example = await _example_topic(context)
        await send_parts(context, chat_id, [render_digest.no_topics_message(example)])
        return
    articles = sum(len(p.ids) for p in parts)
    if not articles:
        reader = await _reader(context, chat_id)
        assert reader is not None
        message = render_digest.nothing_new_message(reader.last_digest_at, reader.schedule.timezone)
        await send_parts(context, chat_id, [message])
        return
    await send_parts(
        context, chat_id, [render_digest.preview_header(articles), *(p.html for p in parts)]
    )


# -- buttons -------------------------------------------------------------------------------


async def _pressed(
    update: Update, parse: Callable[[str | None], _Data | None]
) -> tuple[CallbackQuery, _Data, Chat] | None:
    """The pressed button's query, its parsed data and its chat; None once the reader has
    been told the button is stale (unknown data, or a message too old to carry its chat)."""
    query = update.callback_query
    assert query is not None
    data = parse(query.data)
    chat = query.message.chat if query.message else None
    if data is None or chat is None:
        await query.answer(render.stale_button_notice())
        return None
    return query, data, chat


async def on_unfollow_button(update: Update, context: BotContext) -> None:
    """A remove button under /following: unfollow, then show the list without it."""
    pressed = await _pressed(update, callbacks.parse_unfollow)
    if pressed is None:
        return
    query, topic_id, chat = pressed
    if not await group_rights.allowed(update, context):
        return
    store = context.services.state.subscribers
    removed = await asyncio.to_thread(store.unfollow, chat.id, topic_id)
    await query.answer(f"Stopped following {removed.text}" if removed else "Already removed")
    reader = await _reader(context, chat.id)
    topics = list(reader.topics) if reader else []
    text = await _following_text(context, topics, reader)
    await query.edit_message_text(
        text,
        parse_mode=ParseMode.HTML,
        reply_markup=markup(render_digest.following_keyboard(topics)),
    )


async def on_digest_button(update: Update, context: BotContext) -> None:
    """Cadence and preview buttons under /digest."""
    pressed = await _pressed(update, callbacks.parse_digest)
    if pressed is None:
        return
    query, choice, chat = pressed
    if choice != "now" and not await group_rights.allowed(update, context):
        return
    await query.answer()
    if choice == "now":
        await send_preview(context, chat.id)
        return
    _, current = await _schedule(context, chat.id)
    reader = await _change_schedule(
        context, chat.id, chat.type, dataclasses.replace(current, cadence=choice)
    )
    await send_parts(
        context, chat.id, [render_digest.schedule_changed_message(reader.schedule, _now())]
    )


# -- membership ----------------------------------------------------------------------------


async def on_my_chat_member(update: Update, context: BotContext) -> None:
    """The bot was blocked, kicked or left a chat: stop digests there; back: resume."""
    change = update.my_chat_member
    assert change is not None
    status = change.new_chat_member.status
    store = context.services.state.subscribers
    chat_id = change.chat.id
    if status in (ChatMember.BANNED, ChatMember.LEFT):
        reason = "blocked the bot" if change.chat.type == "private" else f"bot {status}"
        if await asyncio.to_thread(store.deactivate, chat_id, reason, _now()):
            log.info("reader %s deactivated: %s", chat_id, reason)
    elif status in (ChatMember.MEMBER, ChatMember.ADMINISTRATOR) and await asyncio.to_thread(
        store.reactivate, chat_id, _now()
    ):
        log.info("reader %s is back; digests resume", chat_id)


async def on_chat_member(update: Update, context: BotContext) -> None:
    """Someone's status in a group changed (we hear of it as a group admin)."""
    assert update.chat_member is not None
    group_rights.remember(update.chat_member, context)
