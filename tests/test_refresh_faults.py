"""The fault matrix at the refresh level: one healthy source, one faulty, one case per fault.

Every case: the refresh finishes, the healthy source is refreshed, the index is intact and
still answers, the faulty source is marked failing with the reason; once the fault is gone
the next refresh of it reports "recovered".
"""

from __future__ import annotations

import pytest

from bot.services import Services
from bot.sources.refresh import refresh
from tests.refresh_helpers import answers, services_fixture
from tests.sources_server import fetcher_fixture, site_fixture
from tests.sources_site import Site

_ = (fetcher_fixture, site_fixture, services_fixture)


async def check_fault(
    services: Services, site: Site, kind: str, path: str, fault: str, reason: str
) -> None:
    """Backfill both sources, break the faulty one, refresh, mend it, refresh it again."""
    registry = services.state.sources
    healthy = registry.add("wordpress", site.url("/"))
    faulty = registry.add(kind, site.url(path))
    first = await refresh(services)
    assert all(s.error is None for s in first.sources), first
    articles = services.index.stats(with_vectors=False).articles

    site.add_post()
    if fault == "404":
        site.missing.add("/post-sitemap2.xml.gz")
        site.edit_post(102, append="A later paragraph.")  # the index now says: fetch it
    else:
        site.faults[path] = fault
    report = await refresh(services)

    good, bad = report.sources
    assert good.source_id == healthy.id and good.error is None and good.added == 1
    assert bad.source_id == faulty.id and bad.error is not None and reason in bad.error
    assert [s.source_id for s in report.started_failing] == [faulty.id]
    assert services.index.stats(with_vectors=False).articles >= articles + 1  # nothing lost
    assert answers(services.index)
    stored = registry.get(faulty.id)
    assert stored is not None and stored.failing and reason in (stored.last_error or "")
    assert stored.next_attempt_at is not None
    assert registry.get(healthy.id).failing is False  # type: ignore[union-attr]

    site.missing.clear()
    site.faults.clear()
    again = await refresh(services, [faulty.id])  # named explicitly: tried despite backoff
    assert [s.source_id for s in again.recovered] == [faulty.id]
    assert registry.get(faulty.id).failing is False  # type: ignore[union-attr]


# The whole matrix waits out real timeouts and retries; the fast suite keeps the
# contained-error cases below.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "path", "fault", "reason"),
    [
        pytest.param("feed", "/feed/", "slow", "timeout", id="timeout"),
        pytest.param("feed", "/feed/", "500", "HTTP 500", id="500"),
        pytest.param(
            "sitemap", "/sitemap_index.xml", "404", "HTTP 404", id="404-on-one-listing-page"
        ),
        pytest.param("feed", "/feed/", "truncated.xml", "malformed XML", id="malformed-xml"),
        pytest.param("feed", "/feed/", "binary", "malformed XML", id="non-utf8-bytes"),
        pytest.param("feed", "/feed/", "huge", "too large", id="20-mb-body"),
        pytest.param(
            "sitemap", "/sitemap_index.xml", "loop-a", "redirect loop", id="redirect-loop"
        ),
        pytest.param("feed", "/feed/", "html-feed", "not a feed", id="feed-that-returns-html"),
    ],
)
async def test_fault(
    services: Services, site: Site, kind: str, path: str, fault: str, reason: str
) -> None:
    await check_fault(services, site, kind, path, fault, reason)


@pytest.mark.parametrize("kind", ["wordpress", "feed", "sitemap"])
async def test_unexpected_error_in_a_source_is_contained(
    services: Services, site: Site, kind: str
) -> None:
    """A source whose options are wrong fails alone, with the reason."""
    registry = services.state.sources
    registry.add("wordpress", site.url("/"))
    bad = registry.add(kind, site.url("/x/"), options={"no_such_option": 1})
    report = await refresh(services)
    assert report.sources[0].added == 6
    assert "unknown option 'no_such_option'" in (report.sources[1].error or "")
    assert registry.get(bad.id).failing  # type: ignore[union-attr]
