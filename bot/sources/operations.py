"""Admin operations shared by the admin commands and the CLI: sources, purge, stats, reindex.

Each takes the services, does one thing, and raises ``AdminError`` with a message meant for
the admin when it cannot.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from bot.services import Services
from bot.sources.refresh import remove_articles
from bot.sources.registry import DuplicateSource, SourceRecord
from bot.types import AdminStats
from index import (
    ArticleError,
    Fetcher,
    FetchError,
    ImportReport,
    RebuildInProgress,
    canonical_url,
    check_public_url,
    detect_source,
    make_source,
)

log = logging.getLogger(__name__)


class AdminError(Exception):
    """An admin request that cannot be carried out; the message says why, for people."""


class NoSuchSource(AdminError):
    """No registered source has that id (each adapter says where the list is)."""


# What can change a refusal of `check_public_url`, by the start of its reason.
_REFUSAL_HINTS = {
    "private address": "allowed only with [refresh] allow_private_addresses = true",
    "cannot resolve": "check the address, and that this machine can resolve names",
}


def is_web_url(url: str) -> bool:
    """An http(s) URL, as opposed to a local folder."""
    return url.lower().startswith(("http://", "https://"))


async def add_source(
    services: Services,
    url: str,
    kind: str | None = None,
    *,
    added_by: int | None = None,
    allow_folder: bool = True,
) -> SourceRecord:
    """Detect (or take) the kind, refuse private addresses, fetch once, then register."""
    url = url.strip()
    if not is_web_url(url) or kind == "folder":
        if not allow_folder:
            raise AdminError("Only http(s) sources can be added here; folders need the CLI.")
    else:
        try:
            await check_public_url(url, services.config.fetch.allow_private)
        except FetchError as exc:
            hint = next((h for k, h in _REFUSAL_HINTS.items() if exc.reason.startswith(k)), "")
            raise AdminError(f"Refused {url}: {exc.reason}{f' ({hint})' if hint else ''}.") from exc
    try:
        async with Fetcher(services.config.fetch) as fetcher:
            source = make_source(kind, url) if kind else await detect_source(fetcher, url)
            await source.probe(fetcher)
    except FetchError as exc:
        raise AdminError(f"Cannot use {url} as a source: {exc.reason}.") from exc
    except ValueError as exc:
        raise AdminError(str(exc)) from exc
    registry = services.state.sources
    try:
        record = await asyncio.to_thread(registry.add, source.kind, source.url, added_by=added_by)
    except DuplicateSource as exc:
        raise AdminError(f"{source.url} is already a source.") from exc
    log.info("source #%d %s (%s) added by %s", record.id, record.url, record.kind, added_by)
    return record


async def remove_source(
    services: Services, source_id: int, *, purge: bool = False
) -> tuple[SourceRecord, int]:
    """Forget a source; with `purge`, also remove the articles no other source holds."""
    removed = await asyncio.to_thread(services.state.sources.remove, source_id)
    if removed is None:
        raise NoSuchSource(f"There is no source #{source_id}.")
    record, only_here = removed
    purged = 0
    if purge and only_here:
        purged = await services.batcher.call_write(remove_articles, services.index, only_here)
    log.info("source #%d %s removed (%d articles purged)", record.id, record.url, purged)
    return record, purged


async def purge_url(services: Services, url: str) -> bool:
    """Remove one article from the index and from every source's holdings."""
    try:
        url = canonical_url(url.strip())
    except ArticleError as exc:
        raise AdminError(f"Not an article URL: {exc}.") from exc
    found = await services.batcher.call_write(services.index.remove, url)
    await asyncio.to_thread(services.state.sources.forget_url, url)
    log.info("purged %s (%s)", url, "removed" if found else "was not indexed")
    return bool(found)


def disk_usage(path: Path) -> int:
    """Bytes used by the files under a folder."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                continue
    return total


async def gather_stats(services: Services) -> AdminStats:
    """Index counts, sources and their health, disk use and recent answer latency."""
    index = services.index
    stats = await services.batcher.call(index.stats, False)
    records = await asyncio.to_thread(services.state.sources.records)
    refreshed = [r.last_refresh_at for r in records if r.last_refresh_at is not None]
    counts = await asyncio.to_thread(services.state.subscribers.counts)
    return AdminStats(
        articles=stats.articles,
        passages=stats.passages,
        sources=len(records),
        failing_sources=sum(1 for r in records if r.failing),
        subscribers=sum(counts.active_by_cadence.values()),
        last_refresh=max(refreshed, default=None),
        index_bytes=await asyncio.to_thread(disk_usage, index.path),
        latency=services.batcher.latency_percentiles(),
        generation=index.generation,
    )


async def reindex(
    services: Services, progress: Callable[[int, int], None] | None = None
) -> tuple[ImportReport, float]:
    """Rebuild beside the live index, then serve from the new one; readers are answered from
    the old one meanwhile. Refreshes wait; a second rebuild is refused."""
    if services.index_lock.locked():
        raise AdminError("A refresh or rebuild is running; try again when it has finished.")
    t0 = time.perf_counter()
    async with services.index_lock:
        try:
            # Not on the index thread: that one keeps answering from the old generation.
            fresh, report = await asyncio.to_thread(services.index.rebuild, progress)
        except RebuildInProgress as exc:
            raise AdminError("Another process is rebuilding this index.") from exc
        old = services.swap_index(fresh)
        await services.batcher.call(old.close)
    log.info("index rebuilt as %s: %s", fresh.generation, report.summary())
    return report, time.perf_counter() - t0
