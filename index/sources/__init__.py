"""Where articles come from: one small module per kind behind the `Source` interface."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import fields
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..fetch import Fetcher, FetchError
from .base import Cursor, Source, SourceBatch, gunzip, html_to_text, root_element
from .feed import FeedSource
from .folder import FolderSource
from .sitemap import SitemapSource
from .wordpress import WordPressSource

log = logging.getLogger(__name__)

__all__ = [
    "SOURCE_KINDS",
    "SOURCE_KIND_NAMES",
    "WEB_SOURCE_KINDS",
    "Cursor",
    "FeedSource",
    "FolderSource",
    "SitemapSource",
    "Source",
    "SourceBatch",
    "WordPressSource",
    "detect_kind",
    "detect_source",
    "html_to_text",
    "make_source",
]

SOURCE_KINDS: dict[str, type[Source]] = {
    "wordpress": WordPressSource,
    "feed": FeedSource,
    "rss": FeedSource,
    "atom": FeedSource,
    "sitemap": SitemapSource,
    "folder": FolderSource,
}
# The one list of kinds, in the order people are shown them (aliases left out).
SOURCE_KIND_NAMES: tuple[str, ...] = tuple(dict.fromkeys(c.kind for c in SOURCE_KINDS.values()))
# The kinds fetched over HTTP, as opposed to a folder on this machine.
WEB_SOURCE_KINDS: tuple[str, ...] = tuple(k for k in SOURCE_KIND_NAMES if k != FolderSource.kind)
_WP_REL = "https://api.w.org/"
_WP_LINK_HEADER = re.compile(r'<([^>]+)>\s*;\s*rel="?https://api\.w\.org/"?')
_WP_LINK_TAG = re.compile(rb"""<link[^>]+rel=["']https://api\.w\.org/["'][^>]*>""", re.IGNORECASE)
_HREF = re.compile(rb"""href=["']([^"']+)["']""", re.IGNORECASE)


def make_source(kind: str, url: str, **options: Any) -> Source:
    """A source of the given kind; unknown kinds and options are refused by name."""
    cls = SOURCE_KINDS.get(kind.strip().lower())
    if cls is None:
        raise ValueError(
            f"unknown source kind {kind!r}; expected one of {', '.join(sorted(SOURCE_KINDS))}"
        )
    allowed = sorted(f.name for f in fields(cls) if f.name != "url")  # type: ignore[arg-type]
    for name in options:
        if name not in allowed:
            raise ValueError(
                f"unknown option {name!r} for a {cls.kind} source "
                f"(allowed: {', '.join(allowed) or 'none'})"
            )
    return cls(url=url, **options)  # type: ignore[call-arg]


def _is_local(url: str) -> bool:
    return url.startswith("file://") or urlsplit(url).scheme not in ("http", "https")


def _wordpress_api(response_url: str, link_header: str, body: bytes) -> str | None:
    """The REST API root a WordPress site advertises (Link header or <link> tag), if any."""
    if match := _WP_LINK_HEADER.search(link_header):
        return urljoin(response_url, match.group(1))
    if (tag := _WP_LINK_TAG.search(body[:262144])) and (href := _HREF.search(tag.group(0))):
        return urljoin(response_url, href.group(1).decode("utf-8", "replace"))
    return None


def _looks_like_posts(body: bytes) -> bool:
    """A JSON list of WordPress posts."""
    try:
        data = json.loads(body.decode("utf-8-sig", "replace"))
    except ValueError:
        return False
    return isinstance(data, list) and all(
        isinstance(p, dict) and "link" in p and "content" in p for p in data[:3]
    )


async def detect_source(fetcher: Fetcher, url: str) -> Source:
    """Probe a URL once and build the source it is: WordPress, feed, sitemap or folder."""
    if _is_local(url):
        return FolderSource(url)
    parts = urlsplit(url)
    if "/wp-json" in parts.path or "rest_route=" in parts.query:
        return WordPressSource(url)
    response = await fetcher.get(url)
    body = gunzip(response.content, response.url, fetcher.settings.max_bytes)
    root = root_element(body)
    if root in ("rss", "feed", "rdf"):
        return FeedSource(url)
    if root in ("sitemapindex", "urlset"):
        return SitemapSource(url)
    api = _wordpress_api(response.url, response.headers.get("link", ""), body)
    if api is not None:
        return WordPressSource(api)
    if _looks_like_posts(body):
        return WordPressSource(url)
    raise FetchError(url, "not a feed, sitemap or WordPress site")


async def detect_kind(fetcher: Fetcher, url: str) -> str:
    """The kind of source a URL is ("wordpress", "feed", "sitemap", "folder")."""
    return (await detect_source(fetcher, url)).kind
