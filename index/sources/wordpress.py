"""WordPress REST API: backfill by pages, then poll with `modified_after`; cheap listings."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from ..articles import ArticleError, article_from_record
from ..fetch import Fetcher, FetchError, FetchResponse
from .base import Source, SourceBatch, html_to_text, inline_text, safe_canonical, wp_gmt

log = logging.getLogger(__name__)

_EMBED = "author,wp:term"
_LIST_FIELDS = "id,link,modified_gmt"


def posts_endpoint(url: str) -> str:
    """The `/wp/v2/posts` URL for a site root, an API root or the endpoint itself."""
    parts = urlsplit(url.strip())
    if "rest_route=" in parts.query:
        return urlunsplit(
            (parts.scheme, parts.netloc, parts.path or "/", "rest_route=/wp/v2/posts", "")
        )
    path = parts.path
    if "/wp-json" in path:
        root = path[: path.index("/wp-json") + len("/wp-json")]
        path = root + "/wp/v2/posts"
    else:
        path = path.rstrip("/") + "/wp-json/wp/v2/posts"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def parse_json(response: FetchResponse) -> Any:
    """JSON from a REST response, tolerating a BOM or PHP notices printed before it."""
    text = response.text().lstrip("\ufeff \r\n\t")
    try:
        return json.loads(text)
    except ValueError:
        start = min((i for i in (text.find("["), text.find("{")) if i >= 0), default=-1)
        if start > 0:
            try:
                return json.loads(text[start:])
            except ValueError:
                pass
    raise FetchError(response.url, "not JSON")


def _rendered(value: Any) -> str:
    """`{"rendered": html}` (or a bare string) to its HTML."""
    if isinstance(value, Mapping):
        value = value.get("rendered")
    return value if isinstance(value, str) else ""


def _terms(post: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Category and tag names from `_embedded`, else the raw ids."""
    groups = (post.get("_embedded") or {}).get("wp:term")
    if isinstance(groups, list):
        cats: list[str] = []
        tags: list[str] = []
        for group in groups:
            for term in group if isinstance(group, list) else []:
                if not isinstance(term, Mapping) or not term.get("name"):
                    continue
                name = inline_text(str(term["name"]))
                if term.get("taxonomy") == "category":
                    cats.append(name)
                elif term.get("taxonomy") == "post_tag":
                    tags.append(name)
        return cats, tags

    def ids(key: str) -> list[str]:
        value = post.get(key)
        return [str(i) for i in value] if isinstance(value, list) else []

    return ids("categories"), ids("tags")


def _author(post: Mapping[str, Any]) -> str | None:
    """The author's display name from `_embedded` or Yoast's metadata."""
    embedded = (post.get("_embedded") or {}).get("author")
    if isinstance(embedded, list) and embedded and isinstance(embedded[0], Mapping):
        name = embedded[0].get("name")  # an error object has "code" and no name
        if isinstance(name, str) and name.strip():
            return name
    yoast = post.get("yoast_head_json")
    if isinstance(yoast, Mapping) and isinstance(yoast.get("author"), str):
        return yoast["author"]
    return None


def post_record(post: Mapping[str, Any]) -> dict[str, Any]:
    """A REST post as a canonical article record; raises ArticleError for unusable posts."""
    status = post.get("status")
    if status is not None and status != "publish":
        raise ArticleError(f"status {status!r}, not published")
    content = post.get("content")
    if isinstance(content, Mapping) and content.get("protected"):
        raise ArticleError("password protected")
    categories, tags = _terms(post)
    return {
        "url": post.get("link"),
        "title": inline_text(_rendered(post.get("title"))),
        "body": html_to_text(_rendered(content)),
        "published_at": wp_gmt(post.get("date_gmt")),
        "updated_at": wp_gmt(post.get("modified_gmt")),
        "author": _author(post),
        "category": categories,
        "tags": tags,
        "id": post.get("id"),
    }


def _total_pages(response: FetchResponse) -> int | None:
    value = response.headers.get("x-wp-totalpages", "")
    return int(value) if value.strip().isdigit() else None


@dataclass(slots=True)
class _Since:
    """The incremental cursor: the latest modified_gmt seen and the post ids at that instant."""

    modified: str | None = None
    ids: frozenset[str] = frozenset()

    def is_old(self, post: Mapping[str, Any]) -> bool:
        """Already delivered by an earlier fetch."""
        mod = str(post.get("modified_gmt") or "")
        if self.modified is None or not mod:
            return False
        return mod < self.modified or (mod == self.modified and str(post.get("id")) in self.ids)

    def advance(self, post: Mapping[str, Any]) -> None:
        """Move past a post that has been handled."""
        mod = str(post.get("modified_gmt") or "")
        if not mod:
            return
        if self.modified is None or mod > self.modified:
            self.modified, self.ids = mod, frozenset({str(post.get("id"))})
        elif mod == self.modified:
            self.ids = self.ids | {str(post.get("id"))}

    def query(self) -> str | None:
        """`modified_after`, one second early: WordPress compares strictly and in seconds."""
        if self.modified is None:
            return None
        try:
            earlier = datetime.fromisoformat(self.modified) - timedelta(seconds=1)
        except ValueError:
            return None
        return earlier.strftime("%Y-%m-%dT%H:%M:%S") + "Z"

    def to_json(self) -> dict[str, Any]:
        return {"modified_after": self.modified, "ids_at": sorted(self.ids)}


@dataclass(slots=True)
class WordPressSource(Source):
    """Posts from `/wp-json/wp/v2/posts`, oldest change first so the cursor moves safely."""

    kind: ClassVar[str] = "wordpress"
    url: str
    per_page: int = 100
    max_pages: int = 500

    @property
    def endpoint(self) -> str:
        """The posts endpoint this source reads."""
        return posts_endpoint(self.url)

    async def probe(self, fetcher: Fetcher) -> None:
        """One post from the endpoint must come back as a posts list."""
        response = await fetcher.get(self.endpoint, params={"per_page": 1, "_fields": "id,link"})
        if not isinstance(parse_json(response), list):
            raise FetchError(self.endpoint, "not a WordPress posts list")

    async def fetch(
        self, fetcher: Fetcher, cursor: Mapping[str, Any] | None, *, full_listing: bool = False
    ) -> SourceBatch:
        """Posts modified since the cursor (all of them the first time)."""
        cursor = cursor or {}
        since = _Since(cursor.get("modified_after"), frozenset(map(str, cursor.get("ids_at", []))))
        # Filter against where we started, not where we got to: a server that ignores
        # orderby=modified must not make later pages look old.
        reached = _Since(since.modified, since.ids)
        batch = SourceBatch()
        params: dict[str, str | int] = {
            "per_page": self.per_page,
            "orderby": "modified",
            "order": "asc",
            "_embed": _EMBED,
        }
        if (after := since.query()) is not None:
            params["modified_after"] = after
        pages, ordered, last = 0, True, ""
        try:
            async for _, posts in self._pages(fetcher, params):
                pages += 1
                for post in posts:
                    if isinstance(post, Mapping) and not since.is_old(post):
                        self._add(post, batch)
                        reached.advance(post)
                        mod = str(post.get("modified_gmt") or "")
                        ordered, last = ordered and mod >= last, max(mod, last)
        except FetchError as exc:
            if pages == 0:
                raise
            batch.complete = False
            batch.reject(exc.url, exc.reason)
            if not ordered:  # unordered pages: what is missing may be older than what came
                reached = since
        batch.cursor = reached.to_json()
        if full_listing:
            batch.seen_urls = await self.listing(fetcher, batch)
        return batch

    def _add(self, post: Mapping[str, Any], batch: SourceBatch) -> None:
        where = str(post.get("link") or f"post {post.get('id')}")
        try:
            batch.articles.append(article_from_record(post_record(post)))
        except ArticleError as exc:
            batch.reject(where, str(exc))

    async def _pages(
        self, fetcher: Fetcher, params: dict[str, str | int]
    ) -> AsyncIterator[tuple[FetchResponse, list[Any]]]:
        """Each page of a posts query, following X-WP-TotalPages; raises FetchError."""
        for page in range(1, self.max_pages + 1):
            try:
                response = await fetcher.get(self.endpoint, params={**params, "page": page})
            except FetchError as exc:
                if page > 1 and exc.status == 400:  # past the end: posts vanished meanwhile
                    return
                raise
            posts = parse_json(response)
            if not isinstance(posts, list):
                raise FetchError(response.url, "not a WordPress posts list")
            yield response, posts
            total = _total_pages(response)
            if (
                not posts
                or (total is not None and page >= total)
                or (total is None and len(posts) < int(params["per_page"]))
            ):
                return
        raise FetchError(self.endpoint, f"more than {self.max_pages} pages")

    async def listing(self, fetcher: Fetcher, batch: SourceBatch) -> set[str] | None:
        """Every published post's URL via a cheap `_fields` listing; None if it was unsure."""
        params: dict[str, str | int] = {
            "per_page": 100,
            "orderby": "id",
            "order": "asc",
            "_fields": _LIST_FIELDS,
        }
        urls: set[str] = set()
        ids: set[str] = set()
        totals: set[str] = set()
        try:
            async for response, posts in self._pages(fetcher, params):
                totals.add(response.headers.get("x-wp-total", ""))
                for post in posts:
                    if isinstance(post, Mapping):
                        ids.add(str(post.get("id")))
                        if url := safe_canonical(post.get("link")):
                            urls.add(url)
        except FetchError as exc:
            batch.complete = False
            batch.reject(f"listing {exc.url}", exc.reason)
            return None
        # Posts published or deleted while paging shift the pages; trust only a steady count.
        total = next(iter(totals)) if len(totals) == 1 else None
        if total is None or (total.isdigit() and int(total) != len(ids)):
            log.warning("listing of %s changed while paging (%s); not used", self.url, totals)
            return None
        return urls
