"""RSS and Atom feeds via feedparser; pages are fetched when an item carries only a summary."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..articles import Article, ArticleError, article_from_record, clean_text
from ..fetch import Fetcher, FetchError, FetchResponse, decode_body
from .base import (
    Source,
    SourceBatch,
    describe,
    fetch_page_article,
    html_to_text,
    inline_text,
    root_element,
    safe_canonical,
    utc_iso,
)

log = logging.getLogger(__name__)

_HTML_TYPES = ("text/html", "application/xhtml+xml")


def parse_feed(response: FetchResponse) -> Any:
    """feedparser's result for a response; FetchError when it is not a feed at all."""
    import feedparser

    if root_element(response.content) == "html":
        raise FetchError(response.url, "not a feed")
    # A BytesIO, never bytes: feedparser opens a bytes "document" as a local file name.
    parsed = feedparser.parse(
        io.BytesIO(_utf8_if_undeclared(response)),
        response_headers={"content-type": response.headers.get("content-type", "")},
    )
    if not parsed.entries and (parsed.get("bozo") or not parsed.get("version")):
        if parsed.get("bozo"):
            detail = str(parsed.get("bozo_exception") or "").splitlines()[0:1]
            raise FetchError(response.url, "malformed XML" + (f" ({detail[0]})" if detail else ""))
        raise FetchError(response.url, "not a feed")
    if parsed.get("bozo"):
        log.warning(
            "feed %s is not well-formed (%s); using what could be read",
            response.url,
            parsed.get("bozo_exception"),
        )
    return parsed


def _utf8_if_undeclared(response: FetchResponse) -> bytes:
    """The body, re-encoded as UTF-8 when it is not UTF-8 and declares no charset anywhere.

    feedparser falls back to windows-1252 in that case; our detector does better (Hebrew in
    windows-1255, Cyrillic), and still picks windows-1252 for undeclared Latin-1.
    """
    data = response.content
    head = data[:1024].lstrip()
    if response.charset or (head.startswith(b"<?xml") and b"encoding" in head.split(b"?>")[0]):
        return data
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError:
        text = decode_body(data)
    return re.sub(r"^\s*<\?xml[^>]*\?>", '<?xml version="1.0" encoding="utf-8"?>', text).encode()


def _raw(entry: Mapping[str, Any], key: str) -> Any:
    """An entry field without feedparser's deprecated updated -> published fallback."""
    return dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)


def _as_text(detail: Mapping[str, Any] | None, value: str | None) -> str:
    """A feed text construct as plain text, honouring its declared type."""
    if not value:
        return ""
    kind = (detail or {}).get("type", "text/html")
    return html_to_text(value) if kind in _HTML_TYPES else clean_text(value)


def entry_link(entry: Mapping[str, Any]) -> str | None:
    """The article URL of an entry: FeedBurner's original link, the link, a permalink guid."""
    for candidate in (entry.get("feedburner_origlink"), entry.get("link"), entry.get("id")):
        url = safe_canonical(candidate)
        if url:
            return url
    return None


def entry_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Title, dates, author and tags of an entry as article record fields."""
    title = entry.get("title") or ""
    if (entry.get("title_detail") or {}).get("type") in _HTML_TYPES:
        title = inline_text(title)
    author = (entry.get("author_detail") or {}).get("name") or entry.get("author")
    return {
        "title": " ".join(str(title).split()),
        "published_at": utc_iso(_raw(entry, "published_parsed")),
        "updated_at": utc_iso(_raw(entry, "updated_parsed")),
        "author": author if isinstance(author, str) else None,
        "tags": [t.get("term") for t in entry.get("tags") or [] if t.get("term")],
    }


def entry_texts(entry: Mapping[str, Any]) -> tuple[str, str]:
    """(full content, summary) of an entry as plain text; either may be empty."""
    contents = [_as_text(c, c.get("value")) for c in entry.get("content") or []]
    content = max(contents, key=len, default="")
    summary = _as_text(entry.get("summary_detail"), entry.get("summary"))
    return content, summary


def entry_stamp(entry: Mapping[str, Any]) -> str:
    """A fingerprint of what the feed says about an entry, to notice edits."""
    h = hashlib.sha1()
    for key in ("title", "summary", "published", "updated"):
        h.update(str(_raw(entry, key) or "").encode("utf-8", "replace") + b"\x1e")
    for content in entry.get("content") or []:
        h.update(str(content.get("value") or "").encode("utf-8", "replace"))
    return h.hexdigest()[:16]


@dataclass(slots=True)
class FeedSource(Source):
    """An RSS or Atom feed. `fetch_pages`: "auto" (when only a summary), "always", "never"."""

    kind: ClassVar[str] = "feed"
    url: str
    fetch_pages: Literal["auto", "always", "never"] = "auto"
    min_content_chars: int = 400
    remember: int = 2000
    # Items read per poll, newest first as feeds list them: a feed of 100,000 items must not
    # turn into 100,000 page requests.
    max_items: int = 200

    async def probe(self, fetcher: Fetcher) -> None:
        """The URL must parse as a feed."""
        parse_feed(await fetcher.get(self.url))

    async def fetch(
        self, fetcher: Fetcher, cursor: Mapping[str, Any] | None, *, full_listing: bool = False
    ) -> SourceBatch:
        """New and changed items; a feed lists only its latest, so `seen_urls` stays None."""
        known: dict[str, str] = dict((cursor or {}).get("entries") or {})
        if not known:  # without the last listing a 304 would tell us nothing
            fetcher.validators.forget(self.url)
        response = await fetcher.get(self.url, conditional=True)
        if response.not_modified:
            return SourceBatch(cursor={"entries": known})
        parsed = parse_feed(response)
        batch = SourceBatch()
        entries = parsed.entries
        if len(entries) > self.max_items:
            batch.note(
                f"{self.url} lists {len(entries)} items; read the first {self.max_items} "
                "(max_items)"
            )
            entries = entries[: self.max_items]
        todo: dict[str, tuple[str, Any]] = {}
        for i, entry in enumerate(entries):
            link = entry_link(entry)
            if link is None:
                batch.reject(f"{self.url} item {i + 1}", "no usable link")
                continue
            stamp = entry_stamp(entry)
            if known.get(link) != stamp:
                todo.setdefault(link, (stamp, entry))
        results = await asyncio.gather(
            *(self._article(fetcher, u, e) for u, (_, e) in todo.items())
        )
        for (link, (stamp, _)), result in zip(todo.items(), results, strict=True):
            if isinstance(result, Article):
                batch.articles.append(result)
                known.pop(link, None)
                known[link] = stamp  # failures are not remembered, so they are tried again
            else:
                batch.reject(link, result)
        batch.cursor = {"entries": dict(list(known.items())[-self.remember :])}
        return batch

    async def _article(self, fetcher: Fetcher, link: str, entry: Any) -> Article | str:
        """The article for an entry, from the feed or its page; a reason string on failure."""
        fields = entry_fields(entry)
        content, summary = entry_texts(entry)
        own_text = content if len(content) >= self.min_content_chars else ""
        try:
            if self.fetch_pages == "never" or (self.fetch_pages == "auto" and own_text):
                return article_from_record({**fields, "url": link, "body": content or summary})
            try:
                return await fetch_page_article(fetcher, link, fields)
            except (FetchError, ArticleError) as exc:
                if not content:  # a summary is not the article; better nothing than that
                    raise
                log.info("page %s unusable (%s); using the feed's content", link, describe(exc))
                return article_from_record({**fields, "url": link, "body": content})
        except (FetchError, ArticleError) as exc:
            return describe(exc)
