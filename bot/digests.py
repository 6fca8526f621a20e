"""Digest runs: plan what each due reader gets, then send it, exactly once per article.

A run has two phases. Planning (per cadence slot, at a given clock) finds the readers that
are due, the articles that arrived since each reader's watermark, and which of them match
the reader's topics; it writes the delivery log and moves the watermark in one transaction
per reader, so a crash re-plans only readers not yet planned. Sending takes every chat
with deliveries waiting, renders its digest and sends it part by part, within a global
rate and a per-chat spacing, marking rows ``sending`` before and ``sent`` after each part.
Runs never overlap: they hold ``Services.digest_lock``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from index.store import StoredArticle
from index.topics import TopicMatch

from . import render
from .cadence import is_due
from .pacing import SendPacer
from .render_digest import DigestPart, digest_parts
from .services import Services
from .subscribers import (
    DUE,
    FAILED,
    SENDING,
    SENT,
    UNCERTAIN,
    DueItem,
    PlannedItem,
    Subscriber,
)

log = logging.getLogger(__name__)

# Telegram's answers that mean the chat is gone for good: stop sending to it.
_GONE = (
    "chat not found",
    "bot was kicked",
    "bot was blocked",
    "user is deactivated",
    "have no rights to send",
    "not enough rights to send",
    "group chat was upgraded",
    "chat_write_forbidden",
)


@dataclass(slots=True)
class RunReport:
    """What one digest run did."""

    run_id: str
    slot: str
    readers: int = 0
    planned: int = 0
    messages: int = 0
    sent: int = 0
    failed: int = 0
    deactivated: int = 0
    uncertain: int = 0
    retried_after: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        return (
            f"digest run {self.run_id} ({self.slot}): {self.readers} readers due, "
            f"{self.planned} articles planned, {self.sent} delivered in {self.messages} "
            f"messages, {self.failed} failed, {self.deactivated} readers deactivated, "
            f"{self.seconds:.1f}s"
        )


def new_run_id(slot: str, now: datetime) -> str:
    """Sortable and unique: time, slot kind, random tail."""
    return f"{now:%Y%m%dT%H%M%S}-{slot.split(':')[0]}-{secrets.token_hex(3)}"


# -- planning ---------------------------------------------------------------------------------


def due_readers(readers: Sequence[Subscriber], now: datetime) -> list[Subscriber]:
    """The readers whose digest is due at ``now``."""
    return [r for r in readers if is_due(r.schedule, r.last_digest_at, now)]


def choose_items(
    reader: Subscriber,
    matches: dict[str, list[TopicMatch]],
    limit: int,
    max_age: timedelta = timedelta(days=7),
) -> list[PlannedItem]:
    """A reader's new articles: each once (under the first of its topics that matched),
    only those that arrived after the reader's watermark and were published at most
    ``max_age`` before they arrived, the newest ``limit``."""
    chosen: dict[str, PlannedItem] = {}
    seen: dict[str, datetime] = {}
    for topic in reader.topics:
        for match in matches.get(topic.text.casefold(), ()):
            if match.first_seen <= reader.watermark or match.url in chosen:
                continue
            if match.published and match.published < match.first_seen - max_age:
                continue  # back catalogue of a new source, not news
            published = match.published.isoformat() if match.published else None
            chosen[match.url] = PlannedItem(
                match.url, match.title, published, topic.text, match.excerpt
            )
            seen[match.url] = match.published or match.first_seen
    newest = sorted(chosen, key=lambda url: seen[url], reverse=True)[:limit]
    return [chosen[url] for url in newest]


async def match(
    services: Services, topics: Iterable[str], articles: Sequence[StoredArticle]
) -> dict[str, list[TopicMatch]]:
    """Which articles match each topic, keyed by the case-folded topic; each distinct topic
    is matched once, on the model's thread."""
    if not articles:
        return {}
    distinct = {topic.casefold(): topic for topic in topics}
    found = await services.batcher.call(
        services.index.match_topics, sorted(distinct.values()), articles, services.topic_settings
    )
    return {topic.casefold(): items for topic, items in found.items()}


async def plan(services: Services, slot: str | None, now: datetime, report: RunReport) -> None:
    """Write the delivery log for every reader of ``slot`` (None: all) due at ``now``."""
    store = services.state.subscribers
    readers = due_readers(await asyncio.to_thread(store.readers_in, slot), now)
    report.readers = len(readers)
    if not readers:
        return
    since = min(r.watermark for r in readers)
    # Under the index lock no refresh is half-way through writing: every article first
    # seen before ``now`` is visible.
    async with services.index_lock:
        articles = await asyncio.to_thread(services.index.arrivals, since, now)
    matches = await match(services, [t.text for r in readers for t in r.topics], articles)

    def write() -> int:
        planned = 0
        for reader in readers:
            items = choose_items(reader, matches, services.digests.max_articles, _max_age(services))
            planned += store.plan(reader.chat_id, report.run_id, items, cutoff=now, now=now)
        return planned

    report.planned = await asyncio.to_thread(write)


# -- sending ----------------------------------------------------------------------------------


async def deliver(bot: Bot, services: Services, pacer: SendPacer, report: RunReport) -> None:
    """Send every waiting digest, chat by chat in id order; a chat whose send failed for
    now is left for the next run."""
    store = services.state.subscribers
    after: int | None = None
    while chats := await asyncio.to_thread(store.due_chats, after):
        for chat_id in chats:
            await deliver_chat(bot, services, pacer, chat_id, report)
        after = chats[-1]


async def deliver_chat(
    bot: Bot, services: Services, pacer: SendPacer, chat_id: int, report: RunReport
) -> None:
    """One chat's waiting deliveries, part by part."""
    store = services.state.subscribers
    items = await asyncio.to_thread(store.due_items, chat_id)
    chat_type = await asyncio.to_thread(store.active_chat_type, chat_id)
    if not items or chat_type is None:
        return
    group = chat_type != "private"
    for part in digest_parts(items):
        if not part.ids:
            continue
        if not await send_part(bot, services, pacer, chat_id, group, part, report):
            return


async def send_part(
    bot: Bot,
    services: Services,
    pacer: SendPacer,
    chat_id: int,
    group: bool,
    part: DigestPart,
    report: RunReport,
) -> bool:
    """Send one part and log the outcome; False when the rest of the chat must wait."""
    store = services.state.subscribers
    previews = LinkPreviewOptions(is_disabled=True)
    html_text = part.html
    while True:
        await pacer.wait(chat_id, group)
        await asyncio.to_thread(store.mark, part.ids, SENDING)
        try:
            message = await bot.send_message(
                chat_id, html_text, parse_mode=ParseMode.HTML, link_preview_options=previews
            )
        except RetryAfter as exc:
            wait = _seconds(exc.retry_after)
            log.info("digest to %s: Telegram asks to wait %.0fs", chat_id, wait)
            await asyncio.to_thread(store.mark, part.ids, DUE)
            report.retried_after += 1
            pacer.pause(wait)
            continue
        except Forbidden as exc:
            await _gone(services, chat_id, part, f"forbidden: {exc.message}", report)
            return False
        except BadRequest as exc:
            lowered = exc.message.lower()
            if any(reason in lowered for reason in _GONE):
                await _gone(services, chat_id, part, f"bad request: {exc.message}", report)
                return False
            if "can't parse entities" in lowered and html_text == part.html:
                log.warning("digest HTML rejected (%s); resending as plain text", exc.message)
                html_text = "\n\n".join(render.plain_parts(part.html))
                await asyncio.to_thread(store.mark, part.ids, DUE)
                continue
            await asyncio.to_thread(store.mark, part.ids, FAILED, error=exc.message, attempt=True)
            report.failed += len(part.ids)
            services.metrics.observe_delivery(False, len(part.ids))
            report.errors.append(f"{chat_id}: {exc.message}")
            return False
        except TimedOut as exc:
            # The request may have reached Telegram: never send it twice.
            await asyncio.to_thread(store.mark, part.ids, UNCERTAIN, error=f"timed out: {exc}")
            report.uncertain += len(part.ids)
            return False
        except NetworkError as exc:
            await _retry_later(services, part, str(exc), report)
            return False
        await asyncio.to_thread(store.mark, part.ids, SENT, message_id=message.message_id)
        report.messages += 1
        report.sent += len(part.ids)
        services.metrics.observe_delivery(True, len(part.ids))
        return True


async def _gone(
    services: Services, chat_id: int, part: DigestPart, reason: str, report: RunReport
) -> None:
    """The reader blocked the bot or the chat is gone: deactivate, fail what was waiting."""
    store = services.state.subscribers
    failed = await asyncio.to_thread(store.fail_chat, chat_id, reason)
    report.failed += failed
    services.metrics.observe_delivery(False, failed)
    if await asyncio.to_thread(store.deactivate, chat_id, reason):
        report.deactivated += 1
        log.info("reader %s deactivated: %s", chat_id, reason)


async def _retry_later(services: Services, part: DigestPart, error: str, report: RunReport) -> None:
    """A network failure: due again for the next run, unless it has failed too often."""
    store = services.state.subscribers
    attempts = await asyncio.to_thread(store.attempts, part.ids) + 1
    status = FAILED if attempts >= services.digests.max_attempts else DUE
    await asyncio.to_thread(store.mark, part.ids, status, error=error, attempt=True)
    if status == FAILED:
        report.failed += len(part.ids)
        services.metrics.observe_delivery(False, len(part.ids))
    report.errors.append(error)


def _max_age(services: Services) -> timedelta:
    return timedelta(days=services.digests.max_age_days)


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# -- a whole run ------------------------------------------------------------------------------


async def run_digests(
    bot: Bot, services: Services, slot: str | None, now: datetime | None = None
) -> RunReport:
    """Plan (for ``slot``, or every slot when None) and send; one run at a time."""
    now = now or datetime.now(UTC)
    report = RunReport(new_run_id(slot or "all", now), slot or "all")
    t0 = time.perf_counter()
    async with services.digest_lock:
        store = services.state.subscribers
        await asyncio.to_thread(store.start_run, report.run_id, report.slot, now)
        await plan(services, slot, now, report)
        await deliver(bot, services, services.pacer, report)
        await asyncio.to_thread(
            store.finish_run,
            report.run_id,
            report.readers,
            report.planned,
            report.sent,
            report.failed,
        )
    report.seconds = time.perf_counter() - t0
    if report.readers or report.sent or report.failed:
        log.info(report.summary())
    return report


async def preview(
    services: Services, chat_id: int, now: datetime | None = None
) -> list[DigestPart] | None:
    """What the next digest of a reader would hold now (nothing is logged); None when the
    reader follows nothing."""
    now = now or datetime.now(UTC)
    store = services.state.subscribers
    reader = await asyncio.to_thread(store.get, chat_id)
    if reader is None or not reader.topics:
        return None
    articles = await asyncio.to_thread(services.index.arrivals, reader.watermark, now)
    waiting = await asyncio.to_thread(store.due_items, chat_id)
    matches = await match(services, [t.text for t in reader.topics], articles)
    logged = {url for url, _ in await asyncio.to_thread(store.deliveries_of, chat_id)}
    items = list(waiting)
    for n, item in enumerate(
        choose_items(reader, matches, services.digests.max_articles, _max_age(services))
    ):
        if item.url not in logged:
            items.append(
                DueItem(
                    -1 - n,
                    chat_id,
                    item.url,
                    item.title,
                    item.published_at,
                    item.topic,
                    item.excerpt,
                    0,
                )
            )
    return digest_parts(items)
