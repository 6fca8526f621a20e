"""Article text and metadata from an HTML page (trafilatura for text, page metadata for dates)."""

from __future__ import annotations

import json
import logging
from typing import Any

from .articles import ArticleError, lenient_datetime

log = logging.getLogger(__name__)

_PUBLISHED_META = (
    "article:published_time",
    "og:published_time",
    "datePublished",
    "pubdate",
    "publishdate",
    "date",
)
_MODIFIED_META = ("article:modified_time", "og:updated_time", "dateModified")


def _meta_values(tree: Any) -> dict[str, str]:
    """<meta property|name|itemprop=... content=...> as a dict (first value wins)."""
    out: dict[str, str] = {}
    for el in tree.iter("meta"):
        key = el.get("property") or el.get("name") or el.get("itemprop")
        value = el.get("content")
        if key and value and key not in out:
            out[key.strip()] = value.strip()
    return out


def _json_ld(tree: Any) -> list[dict[str, Any]]:
    """Every JSON-LD object on the page, flattened out of lists and @graph."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for n in node:
                walk(n)
        elif isinstance(node, dict):
            found.append(node)
            walk(node.get("@graph"))

    for el in tree.iter("script"):
        if (el.get("type") or "").lower() == "application/ld+json" and el.text:
            try:
                walk(json.loads(el.text))
            except ValueError:
                continue
    return found


def page_metadata(html: str) -> dict[str, Any]:
    """Canonical URL, title, dates and author from the page's own metadata, not from guessing."""
    import lxml.html

    try:
        tree = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return {}
    meta = _meta_values(tree)
    ld = [o for o in _json_ld(tree) if "datePublished" in o or "headline" in o]
    out: dict[str, Any] = {}
    canonical = tree.xpath("//link[@rel='canonical']/@href")
    out["url"] = meta.get("og:url") or (canonical[0].strip() if canonical else None)
    out["title"] = meta.get("og:title") or next((o.get("headline") for o in ld), None)
    out["published_at"] = next((meta[k] for k in _PUBLISHED_META if k in meta), None) or next(
        (o.get("datePublished") for o in ld if o.get("datePublished")), None
    )
    out["updated_at"] = next((meta[k] for k in _MODIFIED_META if k in meta), None) or next(
        (o.get("dateModified") for o in ld if o.get("dateModified")), None
    )
    out["author"] = meta.get("author") or meta.get("article:author")
    out["category"] = meta.get("article:section")
    return {k: v for k, v in out.items() if v}


def extract_article(html: str, url: str | None) -> dict[str, Any]:
    """A canonical article record from an HTML page; raises ArticleError when there is no text."""
    import trafilatura

    if not html.strip():
        raise ArticleError("empty HTML document")
    doc = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        favor_precision=True,
    )
    text = getattr(doc, "text", None)
    if not isinstance(text, str) or not text.strip():
        raise ArticleError("no article text found in the HTML")
    meta = page_metadata(html)
    # One paragraph per line in trafilatura's text; the canonical body separates them by a
    # blank line.
    body = "\n\n".join(line.strip() for line in text.splitlines() if line.strip())
    record: dict[str, Any] = {
        "url": meta.get("url") or url or getattr(doc, "url", None),
        "title": meta.get("title") or getattr(doc, "title", None) or "",
        "body": body,
        "author": meta.get("author") or getattr(doc, "author", None),
        "published_at": lenient_datetime(meta.get("published_at")),
        "updated_at": lenient_datetime(meta.get("updated_at")),
        "category": meta.get("category"),
        "tags": [t for t in (getattr(doc, "tags", None) or []) if isinstance(t, str)],
        "source": getattr(doc, "sitename", None),
    }
    return record
