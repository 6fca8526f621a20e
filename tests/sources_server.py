"""The fictional outlet served on 127.0.0.1 by aiohttp, with fault endpoints.

Routes: `/wp-json/wp/v2/posts` (paging headers, `modified_after`, `orderby`, `_embed`,
`_fields`), `/feed/` (full content), `/feed/summary/`, article pages, `/sitemap_index.xml`
(+ `/post-sitemap.xml`, `/post-sitemap2.xml.gz`), `/news-sitemap.xml`, `/robots.txt`
(disallows `/private/`), `/fault/...`, and `/shared/...` for the real samples in ../shared.
Feeds and sitemaps carry an ETag and answer If-None-Match with 304.

Fixtures (import them into a test module): `site` starts a server for one test and yields its
`Site`; `fetcher` is a Fetcher that may reach 127.0.0.1, with short timeouts and quick retries.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path

import pytest_asyncio
from aiohttp import web

from index.fetch import Fetcher, FetchSettings
from tests.sources_site import (
    Post,
    Site,
    news_sitemap,
    page_html,
    post_json,
    rss,
    sitemap_halves,
    sitemap_index,
    urlset,
)

SHARED_FEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "feeds"
ROBOTS = "User-agent: *\nDisallow: /private/\n\nUser-agent: BadBot\nDisallow: /\n"
HUGE_BYTES = 20 * 1024 * 1024
SLOW_SECONDS = 1.0
TRICKLE_SECONDS = 0.05
BIG_FEED_ITEMS = 3000
MANY_SITEMAPS = 500
TEST_SETTINGS = FetchSettings(
    allow_private=True,
    connect_timeout=2.0,
    read_timeout=0.3,
    total_timeout=5.0,
    retries=2,
    backoff=0.01,
    max_backoff=0.05,
)
_TYPES = {
    ".rss": "application/rss+xml",
    ".xml": "application/xml",
    ".atom": "application/atom+xml",
    ".html": "text/html",
    ".json": "application/json",
}
SITE_KEY = web.AppKey("site", Site)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _site(request: web.Request) -> Site:
    return request.app[SITE_KEY]


def xml_response(request: web.Request, body: bytes, content_type: str) -> web.Response:
    """A response with an ETag; a matching If-None-Match gets 304."""
    etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
    if request.headers.get("If-None-Match") == etag:
        _site(request).not_modified[request.path] += 1
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=body, headers={"ETag": etag, "Content-Type": content_type})


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count hits per path, remember user agents, and 404 the paths a test took away."""
    site = _site(request)
    site.hits[request.path] += 1
    site.user_agents.add(request.headers.get("User-Agent", ""))
    if request.path in site.missing:
        raise web.HTTPNotFound()
    if (name := site.faults.get(request.path)) is not None:
        return await serve_fault(request, name)
    return await handler(request)


def _posts_query(site: Site, query: dict[str, str]) -> list[Post]:
    posts = site.public()
    if after := query.get("modified_after"):
        since = datetime.fromisoformat(after.replace("Z", "+00:00"))
        posts = [p for p in posts if p.modified > since]
    orderby = "date" if site.ignore_orderby else query.get("orderby", "date")
    key = {"modified": lambda p: (p.modified, p.id), "id": lambda p: (p.id,)}.get(
        orderby, lambda p: (p.date, p.id)
    )
    order = "desc" if site.ignore_orderby else query.get("order", "desc")
    return sorted(posts, key=key, reverse=order == "desc")


async def wp_posts(request: web.Request) -> web.Response:
    """/wp/v2/posts with WordPress's paging, filtering, _embed and _fields behaviour."""
    site, query = _site(request), dict(request.query)
    per_page, page = int(query.get("per_page", "10")), int(query.get("page", "1"))
    if not 1 <= per_page <= 100:
        return web.json_response({"code": "rest_invalid_param"}, status=400)
    if page == site.fail_wp_page or (site.fail_wp_listing and "_fields" in query):
        return web.json_response({"code": "internal_server_error"}, status=500)
    posts = _posts_query(site, query)
    pages = -(-len(posts) // per_page)
    if page > max(pages, 1):
        return web.json_response({"code": "rest_post_invalid_page_number"}, status=400)
    chosen = posts[(page - 1) * per_page : page * per_page]
    data = [post_json(site, p, "_embed" in query) for p in chosen]
    if fields := query.get("_fields"):
        keep = fields.split(",")
        data = [{k: v for k, v in d.items() if k in keep} for d in data]
    headers = {"X-WP-Total": str(len(posts)), "X-WP-TotalPages": str(pages)}
    return web.json_response(data, headers=headers)


async def article_page(request: web.Request) -> web.Response:
    site = _site(request)
    for post in site.posts.values():
        if post.path == request.path:
            return web.Response(text=page_html(site, post), content_type="text/html")
    raise web.HTTPNotFound()


async def home(request: web.Request) -> web.Response:
    link = f'<{_site(request).url("/wp-json/")}>; rel="https://api.w.org/"'
    return web.Response(
        text="<!DOCTYPE html><html><body><h1>The Harbourside Courier</h1></body></html>",
        content_type="text/html",
        headers={"Link": link},
    )


async def feed(request: web.Request) -> web.Response:
    body = rss(_site(request), full=request.path == "/feed/").encode()
    return xml_response(request, body, "application/rss+xml; charset=UTF-8")


async def sitemap(request: web.Request) -> web.Response:
    site, name = _site(request), request.path
    odd, even = sitemap_halves(site)
    if name == "/sitemap_index.xml":
        return xml_response(request, sitemap_index(site).encode(), "application/xml")
    if name == "/news-sitemap.xml":
        return xml_response(request, news_sitemap(site).encode(), "application/xml")
    if name == "/post-sitemap.xml":
        return xml_response(request, urlset(site, odd).encode(), "application/xml")
    body = gzip.compress(urlset(site, even).encode(), mtime=0)
    return xml_response(request, body, "application/x-gzip")


# -- faults ---------------------------------------------------------------------------------

_LATIN1_RSS = (
    '<?xml version="1.0" encoding="ISO-8859-1"?>\n<rss version="2.0"><channel><title>Notícias'
    "</title><link>{base}/</link><item><title>Previsão: verão começa com calor em São Tomé"
    "</title><link>{base}/2024/03/01/verao/</link><description>Meteorologistas dizem que a"
    " estação será quente.</description><pubDate>Fri, 01 Mar 2024 10:00:00 +0000</pubDate>"
    "</item></channel></rss>"
)
_MALFORMED_RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Broken</title>'
    "<item><title>Half an item</title><link>{base}/2024/03/04/ferry-timetable-"
    "shake-up/</link><descr"
)
_TRUNCATED_RSS = '<?xml version="1.0"?><rss version="2.0"><channel><title>Cut off here'
_MALFORMED_SITEMAP = (
    '<?xml version="1.0"?><urlset><url><loc>/2024/03/04/ferry-timetable-'
    "shake-up/</loc></url><url><loc>/2024/03/05/lib"
)


async def fault(request: web.Request) -> web.StreamResponse:
    """Misbehaving endpoints, one per case in the fault matrix."""
    return await serve_fault(request, request.match_info["name"])


async def serve_fault(request: web.Request, name: str) -> web.StreamResponse:
    """The fault called `name` (also served in place of a path listed in `site.faults`)."""
    site = _site(request)
    if name == "slow":
        await asyncio.sleep(SLOW_SECONDS)
        return web.Response(text="late")
    if name == "busy":  # records how many requests are in flight at once
        site.active += 1
        site.max_active = max(site.max_active, site.active)
        await asyncio.sleep(0.05)
        site.active -= 1
        return web.Response(text="ok")
    if name == "500":
        return web.Response(status=500, text="Internal Server Error")
    if name == "big-feed.rss":  # BIG_FEED_ITEMS items, each with its full text
        return web.Response(text=_big_feed(site), content_type="application/rss+xml")
    if name == "many-sitemaps.xml":  # an index of MANY_SITEMAPS children
        rows = "".join(
            f"<sitemap><loc>{site.url(f'/fault/child-{i}.xml')}</loc>"
            f"<lastmod>2025-01-{1 + i % 28:02d}</lastmod></sitemap>"
            for i in range(MANY_SITEMAPS)
        )
        body = f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</sitemapindex>'
        return web.Response(text=body, content_type="application/xml")
    if name.startswith("child-"):  # one child of many-sitemaps.xml: an empty url set
        site.hits["/fault/child-*"] += 1
        body = '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"></urlset>'
        return web.Response(text=body, content_type="application/xml")
    if name == "trickle":  # a byte every TRICKLE_SECONDS: never idle long enough to time out
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        for _ in range(600):
            await response.write(b" ")
            await asyncio.sleep(TRICKLE_SECONDS)
        return response
    if name == "flaky":
        if site.flaky_failures > 0:
            site.flaky_failures -= 1
            return web.Response(status=503, headers={"Retry-After": "1"})
        return await feed(request)
    if name == "malformed.xml":
        text = _MALFORMED_RSS.format(base=site.base)
        return web.Response(text=text, content_type="application/rss+xml")
    if name == "truncated.xml":
        return web.Response(text=_TRUNCATED_RSS, content_type="application/rss+xml")
    if name == "malformed-sitemap.xml":
        return web.Response(text=_MALFORMED_SITEMAP, content_type="text/xml")
    if name == "not-xml-sitemap.xml":
        return web.Response(text="User-agent: *\nAllow: /\n", content_type="text/plain")
    if name in ("latin1-declared.rss", "latin1-undeclared.rss"):
        text = _LATIN1_RSS.format(base=site.base)
        if name == "latin1-undeclared.rss":
            text = text.split("\n", 1)[1]
        ctype = "application/rss+xml" + ("; charset=ISO-8859-1" if "-declared" in name else "")
        return web.Response(body=text.encode("latin-1"), headers={"Content-Type": ctype})
    if name in ("latin1-page", "latin1-page-undeclared"):
        meta = '<meta charset="iso-8859-1">' if name == "latin1-page" else ""
        doc = f"<html><head>{meta}<title>Café</title></head><body><p>Crème brûlée à São Paulo</p>"
        return web.Response(
            body=(doc + "</body></html>").encode("latin-1"), headers={"Content-Type": "text/html"}
        )
    if name in ("huge", "huge-declared"):
        return await _huge(request, declared=name == "huge-declared")
    if name in ("loop-a", "loop-b"):
        other = "loop-b" if name == "loop-a" else "loop-a"
        raise web.HTTPFound(f"/fault/{other}")
    if name.startswith("chain-"):
        raise web.HTTPFound(f"/fault/chain-{int(name[6:]) + 1}")
    if name == "html-feed":
        return web.Response(
            text="<!DOCTYPE html><html><head><title>Home</title></head><body>"
            "<p>Welcome to our homepage.</p></body></html>",
            content_type="text/html",
        )
    if name == "binary":  # bytes that are not UTF-8 (nor XML), labelled as a UTF-8 feed
        body = bytes(range(128, 256)) * 64
        return web.Response(
            body=body, headers={"Content-Type": "application/rss+xml; charset=utf-8"}
        )
    if name == "local-file":  # a body feedparser would once have opened as a file name
        return web.Response(text=site.local_file, content_type="application/xml")
    raise web.HTTPNotFound()


def _big_feed(site: Site) -> str:
    text = "<p>" + "A harbour story told at length. " * 20 + "</p>"
    items = "".join(
        f"<item><title>Story {i}</title><link>{site.url(f'/big/{i}/')}</link>"
        f"<guid>{site.url(f'/big/{i}/')}</guid><content:encoded><![CDATA[{text}]]>"
        "</content:encoded></item>"
        for i in range(BIG_FEED_ITEMS)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Big</title>'
        f"<link>{site.base}</link>{items}</channel></rss>"
    )


async def _huge(request: web.Request, declared: bool) -> web.StreamResponse:
    """20 MB, in 64 KB chunks; counts what was written before the client gave up."""
    site = _site(request)
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:  # a small send buffer, so "sent" is close to "read by the client"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
    if declared:
        response.content_length = HUGE_BYTES
    await response.prepare(request)
    chunk = b"<!--" + b"x" * (65536 - 7) + b"-->"
    try:
        while site.huge_sent < HUGE_BYTES:
            await response.write(chunk)
            site.huge_sent += len(chunk)
    except (ConnectionError, RuntimeError):
        pass
    return response


async def shared_file(request: web.Request) -> web.StreamResponse:
    """The real samples, byte for byte, with a content type but no charset."""
    path = (SHARED_FEEDS / request.match_info["path"]).resolve()
    if SHARED_FEEDS.resolve() not in path.parents or not path.is_file():
        raise web.HTTPNotFound()
    ctype = _TYPES.get(path.suffix, "application/octet-stream")
    return web.Response(body=path.read_bytes(), headers={"Content-Type": ctype})


async def shared_wp(request: web.Request) -> web.Response:
    """A real /wp/v2/posts sample as one page of a posts endpoint."""
    path = SHARED_FEEDS / "wordpress-rest" / f"{request.match_info['name']}.json"
    if not path.is_file():
        raise web.HTTPNotFound()
    count = len(json.loads(path.read_bytes()))
    return web.Response(
        body=path.read_bytes(),
        headers={
            "Content-Type": "application/json; charset=UTF-8",
            "X-WP-Total": str(count),
            "X-WP-TotalPages": "1",
        },
    )


def make_app(site: Site) -> web.Application:
    """The outlet's routes."""
    app = web.Application(middlewares=[count_requests])
    app[SITE_KEY] = site
    app.router.add_get("/", home)
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/wp-json/", api_root)
    app.router.add_get("/wp-json/wp/v2/posts", wp_posts)
    app.router.add_get("/feed/", feed)
    app.router.add_get("/feed/summary/", feed)
    for name in (
        "/sitemap_index.xml",
        "/news-sitemap.xml",
        "/post-sitemap.xml",
        "/post-sitemap2.xml.gz",
    ):
        app.router.add_get(name, sitemap)
    app.router.add_get("/fault/{name}", fault)
    app.router.add_get("/shared/{path:.+}", shared_file)
    app.router.add_get("/shared-wp/{name}/wp-json/wp/v2/posts", shared_wp)
    app.router.add_get(r"/{y:\d{4}}/{m:\d\d}/{d:\d\d}/{slug}/", article_page)
    app.router.add_get(r"/private/{y:\d{4}}/{m:\d\d}/{d:\d\d}/{slug}/", article_page)
    return app


async def robots(request: web.Request) -> web.Response:
    return web.Response(text=ROBOTS, status=_site(request).robots_status)


async def api_root(request: web.Request) -> web.Response:
    return web.json_response({"name": "The Harbourside Courier", "namespaces": ["wp/v2"]})


async def start_site(site: Site) -> web.AppRunner:
    """Serve `site` on a free port of 127.0.0.1 and set its base URL."""
    runner = web.AppRunner(make_app(site), access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    site.base = f"http://127.0.0.1:{port}"
    return runner


@pytest_asyncio.fixture(name="site", loop_scope="function")
async def site_fixture() -> AsyncIterator[Site]:
    """The outlet, running for one test."""
    site = Site.load()
    runner = await start_site(site)
    yield site
    await runner.cleanup()


@pytest_asyncio.fixture(name="fetcher", loop_scope="function")
async def fetcher_fixture() -> AsyncIterator[Fetcher]:
    """A Fetcher for the local server: private addresses allowed, short timeouts."""
    async with Fetcher(TEST_SETTINGS) as fetcher:
        yield fetcher


__all__ = ["HUGE_BYTES", "SHARED_FEEDS", "fetcher_fixture", "site_fixture"]
