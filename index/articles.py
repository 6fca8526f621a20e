"""The canonical article: one shape for every source, validated on the way in."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that identify a campaign or a click, never an article.
_TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|yclid|_ga|wt_mc|wt_zmc"
    r"|ocid|cmpid|ncid|rss|ref|ref_src|share|amp)$",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Control characters, zero-width space and BOM; and the invisible bidi and joining controls
# (Trojan Source, CVE-2021-42574): embeddings and overrides U+202A-202E, isolates
# U+2066-2069, marks U+200E/200F/061C, joiners U+200C/200D. From a source they only serve to
# disguise text ("Invoice \u202efdp.exe"), so they never reach the index or a reader.
_CONTROL_CHARS = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\u061c\ufeff]"
)
_BLANK_LINES = re.compile(r"\n\s*\n+")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


class ArticleError(ValueError):
    """A record that cannot become an article; the message says why."""


@dataclass(frozen=True, slots=True)
class Article:
    """A news article in canonical form; `body` paragraphs are separated by blank lines."""

    url: str
    title: str
    body: str
    published_at: str | None = None
    updated_at: str | None = None
    author: str | None = None
    source: str | None = None
    tags: tuple[str, ...] = ()
    category: str | None = None
    id: str | None = None

    @property
    def key(self) -> str:
        """Stable internal key, derived from the canonical URL."""
        return article_key(self.url)

    @property
    def content_hash(self) -> str:
        """Hash of everything stored for the article, to tell changed from unchanged."""
        h = hashlib.sha256()
        for part in (
            self.url,
            self.title,
            self.body,
            self.published_at or "",
            self.updated_at or "",
            self.author or "",
            self.source or "",
            "\x1f".join(self.tags),
            self.category or "",
            self.id or "",
        ):
            h.update(part.encode("utf-8"))
            h.update(b"\x1e")
        return h.hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping in the canonical field order."""
        return {
            "url": self.url,
            "title": self.title,
            "body": self.body,
            "published_at": self.published_at,
            "updated_at": self.updated_at,
            "author": self.author,
            "source": self.source,
            "tags": list(self.tags),
            "category": self.category,
            "id": self.id,
        }


def article_key(url: str) -> str:
    """Short stable key for a canonical URL."""
    return hashlib.sha1(url.encode("utf-8")).hexdigest()[:16]


def canonical_url(url: str) -> str:
    """Normalise a URL so one article is one article: lower-case host, no fragment, no tracking."""
    raw = url.strip()
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ArticleError(f"url must be an absolute http(s) URL, got {raw[:200]!r}")
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:  # an IPv6 literal keeps its brackets (RFC 3986 section 3.2.2)
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError as exc:
        raise ArticleError(f"url has an invalid port: {raw[:200]!r}") from exc
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING_PARAMS.match(k)
        ]
    )
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, query, ""))


def strip_controls(text: str) -> str:
    """Text without control, bidi and joining characters (for text stored before they were
    stripped on the way in, on its way to a reader)."""
    return _CONTROL_CHARS.sub("", text)


def clean_text(text: str) -> str:
    """Normalise whitespace and drop control characters; paragraphs stay blank-line separated."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL_CHARS.sub("", text)
    paragraphs = []
    for para in _BLANK_LINES.split(text):
        lines = [_SPACES.sub(" ", line).strip() for line in para.split("\n")]
        joined = "\n".join(line for line in lines if line)
        if joined:
            paragraphs.append(joined)
    return "\n\n".join(paragraphs)


def parse_datetime(value: Any) -> str | None:
    """ISO 8601 text (or a datetime) to a normalised ISO string; naive times are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ArticleError(f"not an ISO 8601 date: {value[:60]!r}") from exc
    else:
        raise ArticleError(f"date must be a string, got {type(value).__name__}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.isoformat()


def lenient_datetime(value: Any) -> str | None:
    """Like `parse_datetime`, but also RFC 2822 dates, and None for anything unreadable."""
    try:
        return parse_datetime(value)
    except ArticleError:
        pass
    if isinstance(value, str):
        from email.utils import parsedate_to_datetime

        try:
            return parse_datetime(parsedate_to_datetime(value.strip()))
        except (TypeError, ValueError, IndexError):
            return None
    return None


def _optional_str(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ArticleError(f"{name} must be a string, got {type(value).__name__}")
    value = clean_text(value).replace("\n", " ")
    return value or None


def _tags(record: Mapping[str, Any]) -> tuple[str, ...]:
    value = record.get("tags")
    if value is None:
        return ()
    if isinstance(value, str):
        value = [t for t in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ArticleError("tags must be a list of strings")
    seen: dict[str, None] = {}
    for tag in value:
        tag = " ".join(_CONTROL_CHARS.sub("", tag).split())
        if tag:
            seen.setdefault(tag, None)
    return tuple(seen)


@dataclass(slots=True)
class ArticleDefaults:
    """Values a source fills in where a record has none."""

    source: str | None = None
    extra_tags: tuple[str, ...] = field(default_factory=tuple)


def article_from_record(
    record: Mapping[str, Any], defaults: ArticleDefaults | None = None
) -> Article:
    """Validate a mapping in the canonical shape and build an `Article` from it."""
    if not isinstance(record, Mapping):
        raise ArticleError(f"record must be a JSON object, got {type(record).__name__}")
    url = record.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ArticleError("missing url")
    body = record.get("body")
    if body is None:
        body = record.get("text") or record.get("content")
    if not isinstance(body, str):
        raise ArticleError("missing body" if body is None else "body must be a string")
    body = clean_text(body)
    if not body:
        raise ArticleError("empty body")
    title = _optional_str(record, "title") or ""
    category = record.get("category")
    if isinstance(category, list):
        category = ", ".join(str(c) for c in category if c)
    if isinstance(category, str):
        category = _CONTROL_CHARS.sub("", category)
    raw_id = record.get("id")
    defaults = defaults or ArticleDefaults()
    tags = _tags(record)
    if defaults.extra_tags:
        tags = tuple(dict.fromkeys(tags + defaults.extra_tags))
    return Article(
        url=canonical_url(url),
        title=title,
        body=body,
        published_at=parse_datetime(record.get("published_at")),
        updated_at=parse_datetime(record.get("updated_at")),
        author=_optional_str(record, "author"),
        source=_optional_str(record, "source") or defaults.source,
        tags=tags,
        category=str(category).strip() or None if category else None,
        id=str(raw_id) if raw_id not in (None, "") else None,
    )
