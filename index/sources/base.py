"""What every source returns, and the helpers the kinds share (HTML to text, dates, pages)."""

from __future__ import annotations

import asyncio
import calendar
import codecs
import logging
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..articles import Article, ArticleError, article_from_record, canonical_url, clean_text
from ..fetch import Fetcher, FetchError

log = logging.getLogger(__name__)

Cursor = dict[str, Any]

# Elements whose text is never article text.
_DROP = frozenset(
    "script style noscript iframe svg form button object embed video audio canvas template"
    " select textarea".split()
)
# Elements that start a new paragraph.
_BLOCKS = frozenset(
    "p div section article blockquote pre li ul ol dl dt dd h1 h2 h3 h4 h5 h6 figure"
    " figcaption table tr hr header footer aside address details summary main center".split()
)
# Plugin furniture appended to WordPress content (sharing buttons, related posts).
_JUNK_CLASSES = ("sharedaddy", "jp-relatedposts", "wp-block-buttons", "screen-reader-text")


@dataclass(slots=True)
class SourceBatch:
    """The outcome of one fetch of a source.

    `seen_urls` is every article URL the source lists now (for spotting deletions), or None
    when the source cannot tell or the listing was cut short; `complete` is False when some
    part of the listing could not be fetched.
    """

    articles: list[Article] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    seen_urls: set[str] | None = None
    cursor: Cursor = field(default_factory=dict)
    complete: bool = True
    # Limits that were hit ("read 200 of 100000 feed items (max_items)"), for the report.
    notes: list[str] = field(default_factory=list)

    def reject(self, where: str, reason: str) -> None:
        """Record an item that was skipped, and why."""
        log.info("rejected %s: %s", where, reason)
        self.rejected.append((where, reason))

    def note(self, message: str) -> None:
        """Record a limit that was hit: nothing failed, but not everything was read."""
        log.warning("%s", message)
        self.notes.append(message)


class Source(ABC):
    """One place articles come from; `fetch` returns what is new or changed since `cursor`."""

    kind: ClassVar[str]
    url: str

    @abstractmethod
    async def probe(self, fetcher: Fetcher) -> None:
        """Fetch the entry point once and check it is what this kind says; FetchError if not."""

    @abstractmethod
    async def fetch(
        self, fetcher: Fetcher, cursor: Mapping[str, Any] | None, *, full_listing: bool = False
    ) -> SourceBatch:
        """New and changed articles since `cursor`; `full_listing` asks for `seen_urls` too."""


def html_to_text(html: str) -> str:
    """Rendered HTML to plain text: one paragraph per block element, entities decoded."""
    import lxml.etree
    import lxml.html

    if not html or not html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return clean_text(html)
    paragraphs: list[str] = []
    current: list[str] = []

    def flush() -> None:
        text = "".join(current).strip()
        if text:
            paragraphs.append(text)
        current.clear()

    def walk(el: Any) -> None:
        tag = el.tag.lower()
        classes = el.get("class", "")
        if tag in _DROP or any(c in classes for c in _JUNK_CLASSES):
            if el.tail:
                current.append(el.tail)
            return
        block = tag in _BLOCKS
        if block:
            flush()
        if tag == "br":
            current.append("\n")
        if el.text:
            current.append(el.text)
        for child in el:
            if isinstance(child.tag, str):
                walk(child)
            elif child.tail:  # comments (Gutenberg block markers) keep their tail text
                current.append(child.tail)
        if block:
            flush()
        if el.tail:
            current.append(el.tail)

    walk(root)
    flush()
    return clean_text("\n\n".join(paragraphs))


def inline_text(html: str) -> str:
    """An HTML title or name as one line of text."""
    return " ".join(html_to_text(html).split())


def utc_iso(parsed: Any) -> str | None:
    """A UTC time.struct_time (as feedparser gives) to ISO 8601, or None."""
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat()
    except (TypeError, ValueError, OverflowError):
        return None


def wp_gmt(value: Any) -> str | None:
    """A WordPress `*_gmt` field (naive, UTC) to ISO 8601 with offset."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC).isoformat()
    except ValueError:
        return None


def safe_canonical(url: Any) -> str | None:
    """canonical_url, or None for anything that is not an absolute http(s) URL."""
    if not isinstance(url, str):
        return None
    try:
        return canonical_url(url)
    except ArticleError:
        return None


async def fetch_page_article(fetcher: Fetcher, url: str, fallback: Mapping[str, Any]) -> Article:
    """Fetch an article page (robots.txt respected) and extract it; `fallback` fills gaps.

    The listing's URL wins over the page's own canonical link, so one article keeps one URL
    whichever way it was found. Raises FetchError or ArticleError.
    """
    from ..extract import extract_article

    response = await fetcher.get(url, robots=True, conditional=False)
    html = response.text()
    try:
        record = await asyncio.to_thread(extract_article, html, response.url)
    except ArticleError:
        raise
    except Exception as exc:  # a parser bug on one odd page must not stop the source
        log.exception("extracting %s failed", url)
        raise ArticleError(f"extraction failed ({type(exc).__name__})") from exc
    record["url"] = url
    for key, value in fallback.items():
        if value and not record.get(key):
            record[key] = value
    return article_from_record(record)


def describe(exc: Exception) -> str:
    """A short reason for a rejected record."""
    if isinstance(exc, FetchError):
        return exc.reason
    return str(exc) or type(exc).__name__


_PROLOG = re.compile(rb"\s*(<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)", re.DOTALL | re.IGNORECASE)
_FIRST_TAG = re.compile(rb"\s*<\s*([A-Za-z_][\w:.-]*)")


def root_element(data: bytes) -> str | None:
    """The local name of a document's first element ("rss", "urlset", "html"), lower-cased."""
    head = data[:16384]
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if head.startswith(bom):
            head = head[: len(head) // 2 * 2].decode(codec, "ignore").encode("utf-8")
    head = head.removeprefix(codecs.BOM_UTF8)
    pos = 0
    while match := _PROLOG.match(head, pos):
        pos = match.end()
    match = _FIRST_TAG.match(head, pos)
    if not match:
        return None
    return match.group(1).decode("ascii", "ignore").rsplit(":", 1)[-1].lower()


def gunzip(data: bytes, url: str, limit: int) -> bytes:
    """Decompress a gzip body (a .xml.gz sitemap) without letting it grow past `limit`."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise FetchError(url, "bad gzip data") from exc
    if len(out) > limit:
        raise FetchError(url, f"too large once decompressed (> {limit // (1024 * 1024)} MB)")
    return out
