"""Sitemaps (index, url sets, .xml.gz, Google News): lastmod says which pages to fetch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urljoin

from ..articles import Article, ArticleError, lenient_datetime
from ..fetch import Fetcher, FetchError
from .base import Source, SourceBatch, describe, fetch_page_article, gunzip, safe_canonical

log = logging.getLogger(__name__)

_MAX_DEPTH = 3
# The sitemaps protocol caps a file at 50 MB uncompressed.
_MAX_XML_BYTES = 50 * 1024 * 1024


@dataclass(slots=True)
class ParsedSitemap:
    """One sitemap file: child sitemaps (an index) or pages (a url set), each with a stamp."""

    children: dict[str, str] = field(default_factory=dict)
    pages: dict[str, str] = field(default_factory=dict)
    hints: dict[str, dict[str, Any]] = field(default_factory=dict)
    recovered: bool = False
    is_index: bool = False


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _child_text(el: Any, *names: str) -> str:
    """Stripped text of the first descendant with one of these local names ("" if none)."""
    for child in el.iter():
        if _local(child.tag) in names and child.text and child.text.strip():
            return str(child.text.strip())
    return ""


def _xml_root(data: bytes, url: str) -> tuple[Any, bool]:
    """The parsed root, strictly if possible, else recovered; (root, recovered)."""
    from lxml import etree

    options = {"resolve_entities": False, "no_network": True, "remove_comments": True}
    try:
        return etree.fromstring(data, etree.XMLParser(**options)), False
    except etree.XMLSyntaxError as exc:
        reason = f"malformed XML ({exc.msg})"
    root = etree.fromstring(data, etree.XMLParser(recover=True, **options))
    if root is None:
        raise FetchError(url, reason)
    return root, True


def parse_sitemap(data: bytes, url: str) -> ParsedSitemap:
    """A sitemap index or url set; FetchError when the bytes are neither."""
    root, recovered = _xml_root(gunzip(data, url, _MAX_XML_BYTES), url)
    kind = _local(root.tag)
    out = ParsedSitemap(recovered=recovered, is_index=kind == "sitemapindex")
    if kind not in ("sitemapindex", "urlset"):
        raise FetchError(url, "not a sitemap" if not recovered else "malformed XML")
    for item in root:
        loc = next((c.text.strip() for c in item if _local(c.tag) == "loc" and c.text), "")
        if not loc:
            continue
        loc = urljoin(url, loc)  # some plugins write site-relative locs
        lastmod = _child_text(item, "lastmod")
        if kind == "sitemapindex":
            out.children[loc] = lastmod
            continue
        published = _child_text(item, "publication_date")
        out.pages[loc] = lastmod or published
        title = _child_text(item, "title")
        out.hints[loc] = {
            "title": title,
            "published_at": lenient_datetime(published),
            "updated_at": lenient_datetime(lastmod),
        }
    if recovered and not (out.children or out.pages):
        raise FetchError(url, "malformed XML")
    return out


@dataclass(slots=True)
class _Walk:
    """State of one fetch: the old and new documents, and what the pages' hints say."""

    old: Mapping[str, Any]
    new: dict[str, Any] = field(default_factory=dict)
    hints: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Child sitemaps fetched, and changed ones left for a later fetch by `max_sitemaps`.
    fetched: int = 0
    deferred: int = 0


class _Deferred(Exception):
    """A changed child sitemap over this fetch's `max_sitemaps`: read next time."""


@dataclass(slots=True)
class SitemapSource(Source):
    """A sitemap or sitemap index; pages are fetched when new or when their lastmod moves."""

    kind: ClassVar[str] = "sitemap"
    url: str
    # Pages fetched per refresh; the rest come in later refreshes.
    max_pages: int = 500
    # Child sitemaps fetched per refresh, newest lastmod first (an index of 5,000 children
    # is read in slices, never at once).
    max_sitemaps: int = 50

    async def probe(self, fetcher: Fetcher) -> None:
        """The URL must parse as a sitemap."""
        response = await fetcher.get(self.url)
        parse_sitemap(response.content, response.url)

    async def fetch(
        self, fetcher: Fetcher, cursor: Mapping[str, Any] | None, *, full_listing: bool = False
    ) -> SourceBatch:
        """New and changed pages; a sitemap lists everything, so `seen_urls` is the listing."""
        cursor = cursor or {}
        walk = _Walk(old=dict(cursor.get("sitemaps") or {}))
        batch = SourceBatch()
        await self._visit(fetcher, self.url, "", 0, walk, batch)
        old_pages, listed = _pages(walk.old), _pages(walk.new)
        retry = set(cursor.get("retry") or ())
        todo = [u for u, stamp in listed.items() if u in retry or old_pages.get(u) != stamp]
        results = await asyncio.gather(
            *(self._page(fetcher, u, walk.hints.get(u)) for u in todo[: self.max_pages])
        )
        unfinished = todo[self.max_pages :]
        if unfinished:
            batch.note(
                f"{self.url}: fetched {self.max_pages} of {len(todo)} new or changed pages "
                "(max_pages); the rest next time"
            )
        if walk.deferred:
            batch.note(
                f"{self.url}: read {walk.fetched} of {walk.fetched + walk.deferred} changed "
                "sitemaps (max_sitemaps); the rest next time"
            )
        for url, result in zip(todo, results, strict=False):
            if isinstance(result, Article):
                batch.articles.append(result)
            else:
                batch.reject(url, result)
                unfinished.append(url)
        # Pages that failed or did not fit in this fetch are tried again next time.
        batch.cursor = {"sitemaps": walk.new, "retry": sorted(unfinished)}
        if batch.complete and not walk.deferred:  # a partial listing says nothing of deletions
            batch.seen_urls = {u for u in (safe_canonical(x) for x in listed) if u}
        return batch

    async def _visit(
        self, fetcher: Fetcher, url: str, lastmod: str, depth: int, walk: _Walk, batch: SourceBatch
    ) -> None:
        """Fetch one sitemap file (or reuse the last copy if unchanged), then its children."""
        if url in walk.new:
            return
        if depth >= _MAX_DEPTH:
            batch.complete = False
            batch.reject(url, "sitemaps nested too deep")
            return
        old = walk.old.get(url)
        try:
            doc = await self._document(fetcher, url, lastmod, old, walk, batch, depth)
        except _Deferred:
            walk.deferred += 1
            if old is not None:  # keep its pages listed until it is read again
                walk.new[url] = old
            return
        except FetchError as exc:
            if depth == 0:
                raise
            batch.complete = False
            batch.reject(url, exc.reason)
            if old is not None:  # keep its pages listed, so nothing is taken for deleted
                walk.new[url] = old
            return
        walk.new[url] = doc
        # Newest first, never-read before read, so a capped fetch reads what changed most
        # recently and slices through the rest over later fetches.
        children = sorted(
            doc.get("children", {}).items(),
            key=lambda c: (c[1], c[0] not in walk.old),
            reverse=True,
        )
        await asyncio.gather(
            *(self._visit(fetcher, child, mod, depth + 1, walk, batch) for child, mod in children)
        )

    async def _document(
        self,
        fetcher: Fetcher,
        url: str,
        lastmod: str,
        old: Mapping[str, Any] | None,
        walk: _Walk,
        batch: SourceBatch,
        depth: int = 0,
    ) -> dict[str, Any]:
        """A sitemap file as stored in the cursor: {"lastmod", "children"} or {"pages"}."""
        if old is not None and lastmod and old.get("lastmod") == lastmod:
            return dict(old)  # the index says this child has not changed
        if depth > 0:
            if walk.fetched >= self.max_sitemaps:
                raise _Deferred(url)
            walk.fetched += 1
        if old is None:  # without the last copy a 304 would tell us nothing
            fetcher.validators.forget(url)
        response = await fetcher.get(url, conditional=True)
        if response.not_modified and old is not None:
            return dict(old)
        parsed = parse_sitemap(response.content, response.url)
        if parsed.recovered:
            batch.complete = False
            batch.reject(url, "malformed XML (read what could be recovered)")
        walk.hints.update(parsed.hints)
        if parsed.is_index:
            return {"lastmod": lastmod, "children": parsed.children}
        return {"lastmod": lastmod, "pages": dict(parsed.pages)}

    async def _page(
        self, fetcher: Fetcher, url: str, hints: Mapping[str, Any] | None
    ) -> Article | str:
        """The article on a listed page, or a reason string."""
        try:
            return await fetch_page_article(fetcher, url, hints or {})
        except (FetchError, ArticleError) as exc:
            return describe(exc)


def _pages(docs: Mapping[str, Any]) -> dict[str, str]:
    """Every page listed by a set of stored sitemap files, with its stamp (the latest, if two)."""
    out: dict[str, str] = {}
    for doc in docs.values():
        for url, stamp in ((doc.get("pages") or {}) if isinstance(doc, Mapping) else {}).items():
            out[url] = max(out.get(url, ""), str(stamp or ""))
    return out
