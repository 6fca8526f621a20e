"""The one refresh against the local outlet: backfill, then new, edited and deleted posts;
the shared lock; backoff; the schedule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio

from bot.config import Config, IndexSection, SourceEntry
from bot.services import Services
from bot.sources.refresh import RefreshReport, backoff_delay, refresh
from bot.telegram.app import open_services
from index.coverage import CoverageIndex
from tests.refresh_helpers import answers, make_services
from tests.sources_server import fetcher_fixture, site_fixture
from tests.sources_site import Site

_ = (fetcher_fixture, site_fixture)
EDIT = "Update: the operator has since agreed to run a 6.15am water taxi for hospital staff."


@pytest_asyncio.fixture(loop_scope="function")
async def services(tmp_path: Path, fresh_index: CoverageIndex) -> AsyncIterator[Services]:
    """Services over an empty index; deletions are looked for on every refresh."""
    services = make_services(tmp_path, fresh_index, full_listing_every=1)
    yield services
    await services.batcher.stop()
    services.state.close()


def counts(report: RefreshReport) -> tuple[int, int, int, int]:
    [item] = report.sources
    assert item.error is None, item.error
    return item.added, item.updated, item.removed, item.unchanged


async def backfill_then_changes(
    services: Services, site: Site, kind: str, url: str
) -> list[object]:
    """Backfill, a quiet refresh, then one new, one edited and one deleted post."""
    services.state.sources.add(kind, url)
    first = await refresh(services)
    quiet = await refresh(services)
    new = site.add_post()
    site.edit_post(101, append=EDIT)
    deleted = site.delete_post(104)
    third = await refresh(services)
    articles = {s.article.url: s.article for s in services.index.store.iter_articles()}
    assert site.link(new) in articles
    assert articles[site.link(site.posts[101])].body.endswith(EDIT)
    assert answers(services.index)
    return [counts(first), counts(quiet), counts(third), site.link(deleted) in articles]


async def test_wordpress_backfill_then_new_edited_deleted(services: Services, site: Site) -> None:
    result = await backfill_then_changes(services, site, "wordpress", site.url("/"))
    assert result == [(6, 0, 0, 0), (0, 0, 0, 0), (1, 1, 1, 0), False]
    [record] = services.state.sources.records()
    assert record.articles == 6 and record.last_success_at and not record.failing


async def test_sitemap_backfill_then_new_edited_deleted(services: Services, site: Site) -> None:
    result = await backfill_then_changes(services, site, "sitemap", site.url("/sitemap_index.xml"))
    assert result == [(6, 0, 0, 0), (0, 0, 0, 0), (1, 1, 1, 0), False]


async def test_rss_backfill_then_new_edited_and_deletion_not_guessed(
    services: Services, site: Site
) -> None:
    """A feed lists only its latest items, so a missing item is not taken for a deletion."""
    result = await backfill_then_changes(services, site, "feed", site.url("/feed/"))
    assert result == [(6, 0, 0, 0), (0, 0, 0, 0), (1, 1, 0, 0), True]


async def test_article_held_by_two_sources_stays_until_neither_lists_it(
    services: Services, site: Site
) -> None:
    registry = services.state.sources
    registry.add("wordpress", site.url("/"))
    registry.add("sitemap", site.url("/sitemap_index.xml"))
    await refresh(services)
    gone = site.link(site.delete_post(104))
    first = await refresh(services)  # the sitemap index's lastmod for the even half is unmoved
    assert [s.removed for s in first.sources] == [1, 0]
    assert gone in {s.article.url for s in services.index.store.iter_articles()}
    site.edit_post(106, append=EDIT)  # now the even half's lastmod moves
    second = await refresh(services)
    assert [s.removed for s in second.sources] == [0, 1]
    urls = {s.article.url for s in services.index.store.iter_articles()}
    assert gone not in urls and len(urls) == 5


async def test_two_refreshes_never_overlap(services: Services, site: Site) -> None:
    services.state.sources.add("wordpress", site.url("/"))
    site.faults["/wp-json/wp/v2/posts"] = "busy"  # every request takes a moment
    first = asyncio.create_task(refresh(services))
    async with asyncio.timeout(10):  # the first refresh has taken the lock
        while not services.index_lock.locked():
            await asyncio.sleep(0)
    told = await refresh(services, wait=False)  # the scheduled job: told, not queued
    assert told.busy and told.sources == []
    waited = await refresh(services)  # the CLI: waits its turn
    assert first.done() and not (await first).busy and not waited.busy
    assert site.max_active == 1


async def test_backoff_doubles_is_capped_and_skips_until_due(
    services: Services, site: Site
) -> None:
    settings = services.config.refresh
    assert backoff_delay(1, settings) == timedelta(minutes=30)
    assert backoff_delay(3, settings) == timedelta(hours=2)
    assert backoff_delay(10, settings) == timedelta(hours=6)
    record = services.state.sources.add("feed", site.url("/feed/"))
    site.faults["/feed/"] = "500"
    now = datetime.now(UTC)
    first = await refresh(services, now=now)
    assert [s.source_id for s in first.started_failing] == [record.id]
    second = await refresh(services, now=now + timedelta(minutes=30))
    assert second.sources[0].consecutive_failures == 2 and not second.started_failing
    skipped = await refresh(services, now=now + timedelta(minutes=45))
    assert skipped.sources[0].skipped_until == now + timedelta(minutes=90)
    del site.faults["/feed/"]
    recovered = await refresh(services, now=now + timedelta(minutes=91))
    assert [s.source_id for s in recovered.recovered] == [record.id]
    [after] = services.state.sources.records()
    assert not after.failing and after.next_attempt_at is None and after.last_error == "HTTP 500"


def test_sources_are_seeded_from_the_config_once(
    tmp_path: Path, fresh_index: CoverageIndex
) -> None:
    entry = SourceEntry("feed", "https://news.example.com/feed/", "Main feed")
    config = Config(index=IndexSection(data_dir=str(tmp_path)), sources=(entry,))
    for _ in range(2):  # a restart adds nothing twice
        services = open_services(config, index=fresh_index)
        records = services.state.sources.records()
        services.state.close()
    assert [(r.kind, r.url, r.label, r.added_by) for r in records] == [
        ("feed", entry.url, "Main feed", None)
    ]


async def test_refresh_waits_for_a_writer_in_another_process_then_follows_its_switch(
    services: Services, site: Site
) -> None:
    """`coverbot reindex` in another process holds the writer lock, then switches generation."""
    from index import layout

    services.state.sources.add("wordpress", site.url("/"))
    data_dir = services.index.data_dir
    with layout.rebuild_lock(data_dir):  # a separate open file: as another process would
        assert (await refresh(services)).busy
    await refresh(services)
    other = CoverageIndex(data_dir, services.index.settings, services.index.embedder)
    rebuilt, _ = other.rebuild()
    assert services.index.generation != rebuilt.generation
    await refresh(services)
    assert services.index.generation == rebuilt.generation
    assert services.batcher.index is services.index
    assert answers(services.index)
