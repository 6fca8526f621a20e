"""Planning digests: which readers are due, which new articles match their topics.

Planning (per cadence slot, at a given clock) finds the readers that are due, the articles
that arrived since each reader's watermark, and which of them match the reader's topics; it
writes the delivery log and moves the watermark in one transaction per reader, so a crash
re-plans only readers not yet planned. The index is read on the index thread (the batcher).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from bot.digests.cadence import is_due
from bot.digests.render import DigestPart, digest_parts
from bot.services import Services
from bot.types import DueItem, PlannedItem, RunReport, Subscriber
from index import StoredArticle, TopicMatch


def new_run_id(slot: str, now: datetime) -> str:
    """Sortable and unique: time, slot kind, random tail."""
    return f"{now:%Y%m%dT%H%M%S}-{slot.split(':')[0]}-{secrets.token_hex(3)}"


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
        services.index.match_topics, sorted(distinct.values()), articles, services.config.topics
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
        articles = await services.batcher.call(services.index.arrivals, since, now)
    matches = await match(services, [t.text for r in readers for t in r.topics], articles)

    def write() -> int:
        planned = 0
        for reader in readers:
            items = choose_items(
                reader, matches, services.config.digests.max_articles, _max_age(services)
            )
            planned += store.plan(reader.chat_id, report.run_id, items, cutoff=now, now=now)
        return planned

    report.planned = await asyncio.to_thread(write)


def _max_age(services: Services) -> timedelta:
    return timedelta(days=services.config.digests.max_age_days)


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
    articles = await services.batcher.call(services.index.arrivals, reader.watermark, now)
    waiting = await asyncio.to_thread(store.due_items, chat_id)
    matches = await match(services, [t.text for t in reader.topics], articles)
    logged = {url for url, _ in await asyncio.to_thread(store.deliveries_of, chat_id)}
    items = list(waiting)
    for n, item in enumerate(
        choose_items(reader, matches, services.config.digests.max_articles, _max_age(services))
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
