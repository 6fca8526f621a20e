"""Admin commands: one gatekeeper in front of thin handlers (parse, call, render, reply)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.digests import render as render_digest
from bot.services import BotContext
from bot.sources import operations
from bot.sources.operations import AdminError, NoSuchSource
from bot.sources.refresh import refresh
from bot.telegram import render_admin
from bot.telegram.handlers import reply_target
from bot.telegram.jobs import announce_health, trigger_instant_digests
from bot.telegram.replies import send_parts

log = logging.getLogger(__name__)

Handler = Callable[[Update, BotContext], Coroutine[Any, Any, None]]
# Progress edits of /reindex at most this often (Telegram limits edits per chat).
PROGRESS_EVERY = 2.0


def admin_only(handler: Handler) -> Handler:
    """The one gatekeeper: admins pass; anyone else is refused politely, and it is logged."""

    @functools.wraps(handler)
    async def guarded(update: Update, context: BotContext) -> None:
        user, message = update.effective_user, update.effective_message
        if context.services.is_admin(user.id if user else None):
            await handler(update, context)
            return
        log.warning(
            "refused %r from non-admin user %s in chat %s",
            (message.text or "")[:60] if message else "",
            user.id if user else None,
            message.chat_id if message else None,
        )
        if message is not None:
            await _reply(context, message, [render_admin.not_admin_message()])

    return guarded


async def _reply(context: BotContext, message: Message, parts: list[str]) -> None:
    await send_parts(context, message.chat_id, parts, reply_to=reply_target(message))


def _parts(update: Update, context: BotContext) -> tuple[Message, list[str]]:
    assert update.effective_message is not None
    return update.effective_message, list(context.args or [])


async def on_sources(update: Update, context: BotContext) -> None:
    """/sources: every source with its health."""
    message, _ = _parts(update, context)
    records = await asyncio.to_thread(context.services.state.sources.records)
    await _reply(context, message, render_admin.sources_parts(records, datetime.now(UTC)))


async def on_addsource(update: Update, context: BotContext) -> None:
    """/addsource URL [kind]: detect, refuse private addresses, fetch once, register."""
    message, args = _parts(update, context)
    if not 1 <= len(args) <= 2:
        await _reply(context, message, [render_admin.usage_message("addsource")])
        return
    user_id = update.effective_user.id if update.effective_user else None
    kind = args[1].lower() if len(args) == 2 else None
    try:
        record = await operations.add_source(
            context.services, args[0], kind, added_by=user_id, allow_folder=False
        )
    except AdminError as exc:
        await _reply(context, message, [render_admin.error_message(str(exc))])
        return
    await _reply(context, message, [render_admin.source_added_message(record)])


async def on_removesource(update: Update, context: BotContext) -> None:
    """/removesource ID [purge]."""
    message, args = _parts(update, context)
    if not args or not args[0].lstrip("#").isdigit() or args[1:] not in ([], ["purge"]):
        await _reply(context, message, [render_admin.usage_message("removesource")])
        return
    try:
        record, purged = await operations.remove_source(
            context.services, int(args[0].lstrip("#")), purge=args[1:] == ["purge"]
        )
    except NoSuchSource as exc:
        await _reply(context, message, [render_admin.error_message(f"{exc} /sources lists them.")])
        return
    except AdminError as exc:
        await _reply(context, message, [render_admin.error_message(str(exc))])
        return
    await _reply(context, message, [render_admin.source_removed_message(record, purged)])


async def on_refresh(update: Update, context: BotContext) -> None:
    """/refresh [ID]: refresh now and show the report; other admins hear of health changes."""
    message, args = _parts(update, context)
    if len(args) > 1 or (args and not args[0].lstrip("#").isdigit()):
        await _reply(context, message, [render_admin.usage_message("refresh")])
        return
    ids = [int(args[0].lstrip("#"))] if args else None
    report = await refresh(context.services, ids, wait=False)
    await _reply(context, message, render_admin.refresh_report_parts(report))
    await announce_health(context, report, skip_chat=message.chat_id)
    trigger_instant_digests(context, report.added)


async def on_reindex(update: Update, context: BotContext) -> None:
    """/reindex: rebuild beside the live index, with a progress message edited in place."""
    message, _ = _parts(update, context)
    status = await message.reply_text(render_admin.reindex_progress_message(0, 0))
    progress = ProgressMessage(status, asyncio.get_running_loop())
    try:
        report, seconds = await operations.reindex(context.services, progress.update)
        text = render_admin.reindex_done_message(report, seconds, context.services.index.generation)
    except AdminError as exc:
        text = render_admin.error_message(str(exc))
    await progress.finish(text)


async def on_stats(update: Update, context: BotContext) -> None:
    """/stats: index size, sources, last refresh, answer latency."""
    message, _ = _parts(update, context)
    stats = await operations.gather_stats(context.services)
    await _reply(context, message, [render_admin.stats_message(stats)])


async def on_purge(update: Update, context: BotContext) -> None:
    """/purge URL: remove one article from the index."""
    message, args = _parts(update, context)
    if len(args) != 1:
        await _reply(context, message, [render_admin.usage_message("purge")])
        return
    try:
        found = await operations.purge_url(context.services, args[0])
    except AdminError as exc:
        await _reply(context, message, [render_admin.error_message(str(exc))])
        return
    await _reply(context, message, [render_admin.purge_message(args[0], found)])


async def on_why(update: Update, context: BotContext) -> None:
    """/why QUESTION: retrieved passages with their dense, lexical and fused scores."""
    message, args = _parts(update, context)
    question = " ".join(args)
    if not question:
        await _reply(context, message, [render_admin.usage_message("why")])
        return
    services = context.services
    hits = await services.batcher.call(services.index.debug_hits, question)
    await _reply(context, message, render_admin.why_parts(question, hits))


async def on_subscribers(update: Update, context: BotContext) -> None:
    """/subscribers: readers by cadence; deliveries and failures of the last day."""
    message, _ = _parts(update, context)
    counts = await asyncio.to_thread(context.services.state.subscribers.counts)
    await _reply(context, message, [render_digest.subscribers_message(counts)])


# Admin commands, each behind `admin_only`; not offered in the public command list.
ADMIN_COMMANDS: dict[str, Handler] = {
    "sources": on_sources,  # sources with health
    "addsource": on_addsource,  # detect, check, fetch once, register
    "removesource": on_removesource,  # forget a source (optionally its articles)
    "refresh": on_refresh,  # refresh now, with the per-source report
    "reindex": on_reindex,  # rebuild beside the live index, progress edited in place
    "stats": on_stats,  # counts, disk, last refresh, latency
    "purge": on_purge,  # remove one article
    "subscribers": on_subscribers,  # readers by cadence, deliveries of the last day
    "why": on_why,  # retrieval scores for a question
}


def command_handlers(
    new: filters.BaseFilter,
) -> list[BaseHandler[Update, BotContext, None]]:
    """The admin commands for the handler table, all through the one gatekeeper."""
    return [
        CommandHandler(name, admin_only(handler), filters=new)
        for name, handler in ADMIN_COMMANDS.items()
    ]


class ProgressMessage:
    """A message edited in place with progress reported from another thread."""

    def __init__(self, message: Message, loop: asyncio.AbstractEventLoop) -> None:
        """Edits go through ``loop``, at most every PROGRESS_EVERY seconds."""
        self.message = message
        self.loop = loop
        self._last = 0.0
        self._pending: list[Future[None]] = []

    def update(self, done: int, total: int) -> None:
        """Called from the rebuilding thread."""
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY:
            return
        self._last = now
        text = render_admin.reindex_progress_message(done, total)
        self._pending.append(asyncio.run_coroutine_threadsafe(self._edit(text), self.loop))

    async def finish(self, text: str) -> None:
        """Wait for the progress edits in flight, then show the outcome."""
        await asyncio.gather(*(asyncio.wrap_future(f) for f in self._pending))
        await self._edit(text)

    async def _edit(self, text: str) -> None:
        try:
            await self.message.edit_text(text, parse_mode=ParseMode.HTML)
        except TelegramError as exc:  # "message is not modified", or flood: progress only
            log.info("could not update the progress message: %s", exc)
