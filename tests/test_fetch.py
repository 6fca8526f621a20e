"""The fetcher against a real HTTP server on 127.0.0.1: limits, retries, robots.txt, SSRF."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time

import pytest

from index.fetch import (
    DEFAULT_USER_AGENT,
    Fetcher,
    FetchError,
    FetchSettings,
    ValidatorCache,
    check_public_url,
    decode_body,
)
from tests.sources_server import HUGE_BYTES, TEST_SETTINGS, fetcher_fixture, site_fixture
from tests.sources_site import Site

_ = (fetcher_fixture, site_fixture)


async def reason(fetcher: Fetcher, url: str, robots: bool = False) -> str:
    """The FetchError reason for a GET that must fail."""
    with pytest.raises(FetchError) as info:
        await fetcher.get(url, robots=robots)
    return info.value.reason


async def test_user_agent_is_sent(site: Site, fetcher: Fetcher) -> None:
    await fetcher.get(site.url("/feed/"))
    assert site.user_agents == {DEFAULT_USER_AGENT}
    custom = dataclasses.replace(TEST_SETTINGS, user_agent="coverbot-test/9")
    async with Fetcher(custom) as other:
        await other.get(site.url("/feed/"))
    assert "coverbot-test/9" in site.user_agents


async def test_timeout_is_retried_then_reported(site: Site, fetcher: Fetcher) -> None:
    started = time.monotonic()
    assert await reason(fetcher, site.url("/fault/slow")) == "timeout"
    assert site.hits["/fault/slow"] == TEST_SETTINGS.retries + 1
    assert time.monotonic() - started < 3


async def test_500_is_retried_then_reported(site: Site, fetcher: Fetcher) -> None:
    with pytest.raises(FetchError) as info:
        await fetcher.get(site.url("/fault/500"))
    assert (info.value.reason, info.value.status) == ("HTTP 500", 500)
    assert site.hits["/fault/500"] == TEST_SETTINGS.retries + 1


async def test_404_is_not_retried(site: Site, fetcher: Fetcher) -> None:
    assert await reason(fetcher, site.url("/nowhere/")) == "HTTP 404"
    assert site.hits["/nowhere/"] == 1


async def test_retry_after_is_honoured(site: Site, fetcher: Fetcher) -> None:
    started = time.monotonic()
    response = await fetcher.get(site.url("/fault/flaky"))
    assert response.status == 200 and b"<rss" in response.content
    assert site.hits["/fault/flaky"] == 2
    assert time.monotonic() - started >= 0.9  # Retry-After: 1, not the 10 ms backoff


async def test_retry_after_beyond_the_cap_gives_up_at_once(site: Site) -> None:
    impatient = dataclasses.replace(TEST_SETTINGS, max_retry_after=0.5)
    async with Fetcher(impatient) as fetcher:
        assert await reason(fetcher, site.url("/fault/flaky")) == "HTTP 503"
    assert site.hits["/fault/flaky"] == 1


async def test_body_over_the_limit_is_aborted_while_streaming(site: Site, fetcher: Fetcher) -> None:
    assert await reason(fetcher, site.url("/fault/huge")) == "too large (> 10 MB)"
    await asyncio.sleep(0.2)  # let the server notice the closed connection
    assert site.huge_sent < HUGE_BYTES


async def test_declared_length_over_the_limit_is_refused_unread(
    site: Site, fetcher: Fetcher
) -> None:
    assert await reason(fetcher, site.url("/fault/huge-declared")) == "too large (> 10 MB)"
    await asyncio.sleep(0.2)
    assert site.huge_sent < HUGE_BYTES // 2


async def test_small_limit_is_reported_in_bytes(site: Site) -> None:
    async with Fetcher(dataclasses.replace(TEST_SETTINGS, max_bytes=100)) as fetcher:
        assert await reason(fetcher, site.url("/feed/")) == "too large (> 100 bytes)"


async def test_redirect_loop_is_named(site: Site, fetcher: Fetcher) -> None:
    assert await reason(fetcher, site.url("/fault/loop-a")) == "redirect loop"


async def test_redirects_are_bounded(site: Site, fetcher: Fetcher) -> None:
    assert await reason(fetcher, site.url("/fault/chain-0")) == "too many redirects (> 5)"
    assert site.hits["/fault/chain-6"] == 0


async def test_conditional_get_gets_304(site: Site, fetcher: Fetcher) -> None:
    first = await fetcher.get(site.url("/feed/"), conditional=True)
    second = await fetcher.get(site.url("/feed/"), conditional=True)
    assert first.status == 200 and first.content
    assert second.not_modified and second.content == b""
    assert site.not_modified["/feed/"] == 1
    site.add_post()
    third = await fetcher.get(site.url("/feed/"), conditional=True)
    assert third.status == 200 and b"lifeboat" in third.content


async def test_validators_survive_json(site: Site, fetcher: Fetcher) -> None:
    await fetcher.get(site.url("/sitemap_index.xml"), conditional=True)
    saved = json.dumps(fetcher.validators.to_json())
    restored = ValidatorCache.from_json(json.loads(saved))
    async with Fetcher(TEST_SETTINGS, validators=restored) as again:
        response = await again.get(site.url("/sitemap_index.xml"), conditional=True)
    assert response.not_modified
    assert ValidatorCache.from_json({"u": "junk", "v": {"etag": 1, "x": 2}}).entries == {
        "v": {"etag": "1"}
    }


async def test_robots_txt_blocks_pages_not_named_urls(site: Site, fetcher: Fetcher) -> None:
    post = next(p for p in site.posts.values() if p.private)
    private = site.link(post)
    assert await reason(fetcher, private, robots=True) == "blocked by robots.txt"
    assert site.hits[post.path] == 0
    assert (await fetcher.get(private)).status == 200  # an admin-named URL is not a crawl
    await asyncio.gather(
        *(fetcher.get(site.link(p), robots=True) for p in site.posts.values() if not p.private)
    )
    assert site.hits["/robots.txt"] == 1


@pytest.mark.parametrize(("status", "allowed"), [(404, True), (500, False)])
async def test_robots_txt_missing_or_failing(
    site: Site, fetcher: Fetcher, status: int, allowed: bool
) -> None:
    site.robots_status = status
    assert await fetcher.allowed_by_robots(site.url("/private/x/")) is allowed


async def test_per_host_concurrency_is_limited(site: Site) -> None:
    async with Fetcher(dataclasses.replace(TEST_SETTINGS, per_host=2)) as fetcher:
        await asyncio.gather(*(fetcher.get(site.url("/fault/busy")) for _ in range(6)))
    assert site.hits["/fault/busy"] == 6
    assert site.max_active == 2


@pytest.mark.parametrize("path", ["/fault/latin1-page", "/fault/latin1-page-undeclared"])
async def test_text_is_decoded_declared_or_not(site: Site, fetcher: Fetcher, path: str) -> None:
    response = await fetcher.get(site.url(path))
    assert "Crème brûlée à São Paulo" in response.text()


def test_decode_body_order() -> None:
    assert decode_body("é".encode("utf-16")) == "é"
    assert decode_body("naïve".encode(), "iso-8859-1") == "naÃ¯ve"  # the header is believed
    assert decode_body("naïve".encode("latin-1"), "utf-8") == "naïve"  # unless it cannot be
    assert decode_body(
        '<?xml version="1.0" encoding="windows-1252"?><a>“x”</a>'.encode("cp1252")
    ).endswith("<a>“x”</a>")
    assert decode_body(b"<meta charset='koi8-r'>" + "Мир".encode("koi8-r")).endswith("Мир")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1/feed", "127.0.0.1: loopback"),
        ("http://10.0.0.1/feed", "10.0.0.1: private"),
        ("http://[::1]/", "::1: loopback"),
        ("http://localhost:8080/wp-json/", "localhost resolves to"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::ffff:192.168.1.1]/", "private"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://100.64.0.1/", "not globally routable"),
    ],
)
async def test_check_public_url_refuses_private_addresses(url: str, problem: str) -> None:
    with pytest.raises(FetchError) as info:
        await check_public_url(url)
    assert info.value.reason.startswith("private address (")
    assert problem in info.value.reason
    await check_public_url(url, allow_private=True)


async def test_check_public_url_accepts_public_literals_without_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_lookup(*args: object, **kwargs: object) -> object:
        raise AssertionError("a literal address needs no lookup")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    await check_public_url("http://93.184.216.34/news/")
    await check_public_url("https://[2606:2800:220:1:248:1893:25c8:1946]/feed")


@pytest.mark.parametrize("url", ["ftp://93.184.216.34/x", "file:///etc/passwd", "not a url"])
async def test_check_public_url_refuses_other_schemes(url: str) -> None:
    with pytest.raises(FetchError, match="not an http"):
        await check_public_url(url)


async def test_default_fetcher_refuses_the_local_server(site: Site) -> None:
    async with Fetcher(FetchSettings(retries=0)) as strict:
        assert (await reason(strict, site.url("/feed/"))).startswith("private address")
    assert site.hits["/feed/"] == 0


async def test_a_trickling_server_costs_one_deadline_not_one_per_retry(site: Site) -> None:
    # A byte every 50 ms never trips the 0.3 s read timeout; retries must not multiply the
    # 1 s deadline of one fetch (#12 item 9: 4 x 120 s + backoff = 486 s before).
    settings = dataclasses.replace(TEST_SETTINGS, total_timeout=1.0, retries=3)
    async with Fetcher(settings) as fetcher:
        started = time.monotonic()
        assert (await reason(fetcher, site.url("/fault/trickle"))).startswith("timeout")
        assert time.monotonic() - started < 1.8


async def test_one_deadline_for_everything_a_fetcher_does(site: Site) -> None:
    settings = dataclasses.replace(TEST_SETTINGS, total_timeout=0.6, deadline=1.0, retries=0)
    async with Fetcher(settings) as fetcher:
        started = time.monotonic()
        for _ in range(3):
            with pytest.raises(FetchError):
                await fetcher.get(site.url("/fault/trickle"))
        assert "deadline" in await reason(fetcher, site.url("/feed/"))
        assert time.monotonic() - started < 1.6
    assert site.hits["/feed/"] == 0


async def test_the_fetcher_connects_to_the_address_it_checked(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding (#12 item 8): the first answer is public, every later one is this
    # machine. The fetcher must connect to what it checked, never look the name up again.
    real = socket.getaddrinfo
    port = int(site.base.rsplit(":", 1)[1])
    lookups: list[str] = []

    def rebinding(host: str | bytes, *args: object, **kwargs: object) -> object:
        name = host.decode() if isinstance(host, bytes) else host  # anyio passes bytes
        if name != "news.rebind.test":
            return real(host, *args, **kwargs)  # type: ignore[arg-type]
        lookups.append(name)
        address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    async with Fetcher(FetchSettings(retries=0, connect_timeout=1.0)) as strict:
        # The connection goes to the checked public address (refused offline: tests never
        # leave this machine); before the fix it went to 127.0.0.1 and fetched the feed.
        with pytest.raises(FetchError):
            await strict.get(f"http://news.rebind.test:{port}/feed/")
    assert site.hits["/feed/"] == 0
    assert lookups == ["news.rebind.test"]


async def test_a_host_resolving_to_a_private_address_is_refused_at_connect(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(site.base.rsplit(":", 1)[1])

    def loopback(host: str, *args: object, **kwargs: object) -> object:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", loopback)
    async with Fetcher(FetchSettings(retries=0)) as strict:
        found = await reason(strict, f"http://inside.example:{port}/feed/")
    assert found == "private address (inside.example resolves to 127.0.0.1: loopback)"
    assert site.hits["/feed/"] == 0
