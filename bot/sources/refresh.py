"""The one refresh: fetch every due source, import what changed, drop what is gone.

Used alike by the scheduled job, `/refresh` and `coverbot refresh`. One lock
(``Services.index_lock``) makes refreshes and rebuilds take turns. Per source, the cursor and
HTTP validators are saved only after its articles were imported, so a crash in between means
the next refresh fetches the same changes again, never that it skips them. One failing source
never stops the others and never touches the index.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from bot.config import RefreshSection
from bot.services import Services
from bot.sources.registry import Progress, SourceRecord
from bot.types import RefreshReport, SourceReport
from index import (
    CoverageIndex,
    Fetcher,
    FetchError,
    ImportReport,
    RebuildInProgress,
    SourceBatch,
    ValidatorCache,
    make_source,
    rebuild_lock,
)

log = logging.getLogger(__name__)

# Sources fetched at once (each politely limits itself per host as well).
PARALLEL_SOURCES = 4
# A due time this close counts as due: the job fires a moment before a backoff computed from
# the previous run's start would end.
DUE_SLACK = timedelta(seconds=30)


def backoff_delay(failures: int, settings: RefreshSection) -> timedelta:
    """How long a source rests after `failures` failures in a row: doubling, capped."""
    interval = timedelta(minutes=settings.interval_minutes)
    cap = timedelta(hours=settings.max_backoff_hours)
    return min(cap, interval * 2 ** max(0, failures - 1))


def failure_reason(exc: Exception) -> str:
    """A short reason for admins."""
    if isinstance(exc, FetchError):
        return exc.reason
    if isinstance(exc, ValueError):
        return str(exc)[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


async def refresh(
    services: Services,
    source_ids: Sequence[int] | None = None,
    *,
    wait: bool = True,
    now: datetime | None = None,
) -> RefreshReport:
    """Refresh the enabled sources (or just `source_ids`, even while backing off).

    With ``wait=False`` a refresh or rebuild already running makes this return at once with
    ``busy`` set; otherwise it waits its turn.
    """
    lock = services.index_lock
    if not wait and lock.locked():
        return RefreshReport(busy=True)
    async with lock:
        t0 = time.perf_counter()
        try:
            with rebuild_lock(services.index.data_dir):
                await follow_generation(services)
                report = await _refresh_locked(services, source_ids, now or datetime.now(UTC))
        except RebuildInProgress:
            log.info("refresh skipped: another process is writing the index")
            return RefreshReport(busy=True)
        report.seconds = time.perf_counter() - t0
        stats = await services.batcher.call(services.index.stats, False)
    services.metrics.observe_index(stats.articles, stats.passages)
    services.metrics.observe_refreshes(
        (item.label, item.ok) for item in report.sources if item.skipped_until is None
    )
    for item in report.sources:
        log.info("refresh %s: %s", item.label, summary_line(item))
    return report


async def follow_generation(services: Services) -> None:
    """Serve the generation another process (`coverbot reindex`, `coverbot import` beside
    the bot) switched to, if any; on the answering thread, which owns the connections.
    The index also does this itself before every answer."""
    await services.batcher.call(services.index.follow)


async def _refresh_locked(
    services: Services, source_ids: Sequence[int] | None, now: datetime
) -> RefreshReport:
    registry = services.state.sources
    records = await asyncio.to_thread(registry.records, source_ids)
    forced = source_ids is not None
    if not forced:
        records = [r for r in records if r.enabled]
    limit = asyncio.Semaphore(PARALLEL_SOURCES)

    async def one(record: SourceRecord) -> SourceReport:
        async with limit:
            return await refresh_source(services, record, now, forced)

    report = RefreshReport(sources=list(await asyncio.gather(*(one(r) for r in records))))
    threshold = services.config.refresh.notify_after_failures
    for record, item in zip(records, report.sources, strict=True):
        if item.skipped_until is not None:
            continue
        if item.error is not None and item.consecutive_failures == threshold:
            report.started_failing.append(item)
        elif item.error is None and record.consecutive_failures >= threshold:
            report.recovered.append(item)
    return report


async def refresh_source(
    services: Services, record: SourceRecord, now: datetime, forced: bool = False
) -> SourceReport:
    """Fetch one source, import its articles, remove what it no longer lists, save progress."""
    report = SourceReport(record.id, record.label, record.kind)
    due = record.next_attempt_at
    if not forced and due is not None and due > now + DUE_SLACK:
        report.skipped_until, report.consecutive_failures = due, record.consecutive_failures
        return report
    t0 = time.perf_counter()
    validators = ValidatorCache.from_json(record.validators)
    full = record.refreshes % services.config.refresh.full_listing_every == 0
    try:
        options = {**services.config.refresh.source_limits(record.kind), **record.options}
        source = make_source(record.kind, record.url, **options)
        async with Fetcher(services.config.fetch, validators=validators) as fetcher:
            batch = await source.fetch(fetcher, record.cursor, full_listing=full)
        imported = await services.batcher.call_write(services.index.import_articles, batch.articles)
    except Exception as exc:  # one source's failure, whatever it is, stays with that source
        if not isinstance(exc, FetchError | ValueError):
            log.exception("refreshing source %s failed", record.url)
        report.error = failure_reason(exc)
        await _save_failure(services, record, report, now, None)
        report.seconds = time.perf_counter() - t0
        return report
    _count(report, imported, batch)
    added = {a.url for a in batch.articles}
    if not batch.complete:
        where, reason = batch.rejected[0] if batch.rejected else (record.url, "unknown")
        report.error = f"incomplete listing ({reason} at {where})"
        progress = (batch.cursor, validators.to_json(), added)
        await _save_failure(services, record, report, now, progress)
    else:
        gone = await _remove_gone(services, record, batch)
        report.removed = len(gone)
        await asyncio.to_thread(
            services.state.sources.record_success,
            record.id,
            cursor=batch.cursor,
            validators=validators.to_json(),
            added_urls=added,
            removed_urls=gone,
            at=now,
        )
    report.seconds = time.perf_counter() - t0
    return report


_REJECTIONS_KEPT = 5


def _count(report: SourceReport, imported: ImportReport, batch: SourceBatch) -> None:
    report.added, report.updated = imported.added, imported.updated
    report.unchanged = imported.unchanged
    report.failed = imported.failed + len(batch.rejected)
    report.notes = list(batch.notes)
    reasons = [f"{where}: {why}" for where, why in batch.rejected] + imported.errors
    report.rejected = reasons[:_REJECTIONS_KEPT]


async def _save_failure(
    services: Services,
    record: SourceRecord,
    report: SourceReport,
    now: datetime,
    progress: Progress | None,
) -> None:
    failures = record.consecutive_failures + 1
    report.consecutive_failures = failures
    next_attempt = now + backoff_delay(failures, services.config.refresh)
    await asyncio.to_thread(
        services.state.sources.record_failure,
        record.id,
        reason=report.error or "failed",
        at=now,
        next_attempt_at=next_attempt,
        progress=progress,
    )


async def _remove_gone(services: Services, record: SourceRecord, batch: SourceBatch) -> set[str]:
    """Articles this source held but no longer lists: out of the index unless another source
    still holds them. Only a complete listing counts; an empty one is not believed."""
    if batch.seen_urls is None:
        return set()
    registry = services.state.sources
    held = await asyncio.to_thread(registry.held_urls, record.id)
    gone = held - batch.seen_urls - {a.url for a in batch.articles}
    if not gone:
        return set()
    if not batch.seen_urls:
        log.warning("%s listed nothing; not removing its %d articles", record.url, len(held))
        return set()
    keep = await asyncio.to_thread(registry.held_elsewhere, record.id, gone)
    await services.batcher.call_write(remove_articles, services.index, gone - keep)
    return gone


def remove_articles(index: CoverageIndex, urls: Iterable[str]) -> int:
    """Remove articles by URL (on the index thread); returns how many were there."""
    return sum(1 for url in sorted(urls) if index.remove(url))


def summary_line(item: SourceReport) -> str:
    """One line of plain text about a source's refresh, for the log and the CLI."""
    if item.skipped_until is not None:
        return f"backing off until {item.skipped_until:%Y-%m-%d %H:%M} UTC"
    counts = (
        f"added {item.added}, updated {item.updated}, removed {item.removed}, "
        f"unchanged {item.unchanged}, failed {item.failed} in {item.seconds:.1f}s"
    )
    notes = "".join(f"; {note}" for note in item.notes)
    return counts + notes + (f"; FAILING: {item.error}" if item.error else "")
