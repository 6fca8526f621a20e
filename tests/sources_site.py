"""The fictional outlet's content and how its WordPress renders it (REST, pages, RSS, sitemaps).

Everything lives in a mutable `Site`, so a test can publish, edit or delete a post between two
fetches and check that the next fetch notices. `tests/sources_server.py` serves it.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
_TEXTURIZE = {"’": "&#8217;", "‘": "&#8216;", "“": "&#8220;", "”": "&#8221;", "–": "&#8211;"}
_LOCAL_OFFSET = timedelta(hours=1)  # the site's clock runs at UTC+1; *_gmt fields are UTC


def wp_escape(text: str) -> str:
    """Text as WordPress renders it: HTML-escaped, curly quotes as numeric entities."""
    out = html.escape(text, quote=False)
    for char, entity in _TEXTURIZE.items():
        out = out.replace(char, entity)
    return out


@dataclass
class Post:
    """One fictional article; `blocks` are Gutenberg-like paragraphs, headings, lists."""

    id: int
    slug: str
    title: str
    blocks: list[dict[str, Any]]
    author: str
    category: str
    tags: list[str]
    date: datetime
    modified: datetime
    private: bool = False

    @property
    def path(self) -> str:
        prefix = "/private" if self.private else ""
        return f"{prefix}/{self.date:%Y/%m/%d}/{self.slug}/"

    def paragraphs(self, captions: bool = True) -> list[str]:
        """The article text, one item per paragraph, as a reader sees it."""
        out: list[str] = []
        for block in self.blocks:
            for kind, value in block.items():
                if captions or kind != "figcaption":
                    out.extend(value if kind == "ul" else [value])
        return out

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs())

    def content_html(self, gutenberg: bool = True) -> str:
        """content.rendered: Gutenberg comments around each block, entities like WordPress."""
        parts = []
        for block in self.blocks:
            ((kind, value),) = block.items()
            if kind == "ul":
                items = "".join(f"<li>{wp_escape(i)}</li>" for i in value)
                inner, name = f'<ul class="wp-block-list">{items}</ul>', "list"
            elif kind == "quote":
                inner = f'<blockquote class="wp-block-quote"><p>{wp_escape(value)}</p></blockquote>'
                name = "quote"
            elif kind == "figcaption":
                inner = (
                    '<figure class="wp-block-image"><img src="/pic.jpg" alt=""/>'
                    f'<figcaption class="wp-element-caption">{wp_escape(value)}</figcaption>'
                    "</figure>"
                )
                name = "image"
            else:
                tag = "h2" if kind == "h2" else "p"
                inner, name = f"<{tag}>{wp_escape(value)}</{tag}>", kind
            parts.append(
                f"<!-- wp:{name} -->\n{inner}\n<!-- /wp:{name} -->" if gutenberg else inner
            )
        return "\n\n\n\n".join(parts)


@dataclass
class Site:
    """The outlet's state, mutable by tests, plus fault switches and request counters."""

    posts: dict[int, Post]
    clock: datetime
    base: str = ""
    include_private: bool = False
    missing: set[str] = field(default_factory=set)
    faults: dict[str, str] = field(default_factory=dict)  # path -> fault served instead
    hits: Counter[str] = field(default_factory=Counter)
    not_modified: Counter[str] = field(default_factory=Counter)
    user_agents: set[str] = field(default_factory=set)
    huge_sent: int = 0
    robots_status: int = 200
    fail_wp_page: int | None = None
    fail_wp_listing: bool = False
    ignore_orderby: bool = False
    local_file: str = ""
    active: int = 0
    max_active: int = 0
    flaky_failures: int = 1
    extra: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls) -> Site:
        data = json.loads((FIXTURES / "articles.json").read_text(encoding="utf-8"))
        posts = {}
        for a in data["articles"]:
            date = datetime.fromisoformat(a["date"]).replace(tzinfo=UTC)
            posts[a["id"]] = Post(
                a["id"],
                a["slug"],
                a["title"],
                a["blocks"],
                a["author"],
                a["category"],
                a["tags"],
                date,
                date + timedelta(minutes=5),
                a.get("private", False),
            )
        return cls(posts, clock=datetime(2024, 3, 20, 9, 0, tzinfo=UTC), extra=data["extra"])

    def url(self, path: str) -> str:
        return self.base + path

    def link(self, post: Post) -> str:
        return self.url(post.path)

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=7)
        return self.clock

    def public(self) -> list[Post]:
        return [p for p in self.posts.values() if self.include_private or not p.private]

    def add_post(self, **overrides: Any) -> Post:
        """Publish the spare fixture article (or a variant of it) now."""
        spec = {**self.extra[0], **overrides}
        now = self.tick()
        post = Post(
            max(self.posts) + 1,
            spec["slug"],
            spec["title"],
            spec["blocks"],
            spec["author"],
            spec["category"],
            spec["tags"],
            now,
            now,
        )
        self.posts[post.id] = post
        return post

    def edit_post(
        self, post_id: int, *, title: str | None = None, append: str | None = None
    ) -> Post:
        """Change a post's title and/or add a paragraph; its modified time moves on."""
        post = self.posts[post_id]
        if title is not None:
            post.title = title
        if append is not None:
            post.blocks = [*post.blocks, {"p": append}]
        post.modified = self.tick()
        return post

    def delete_post(self, post_id: int) -> Post:
        return self.posts.pop(post_id)


# -- rendering ------------------------------------------------------------------------------


def post_json(site: Site, post: Post, embed: bool) -> dict[str, Any]:
    """A post as /wp/v2/posts returns it (the fields coverbot and the quirks care about)."""
    local = (post.date + _LOCAL_OFFSET).replace(tzinfo=None)
    content = post.content_html()
    if post.id % 2:  # some sites store CRLF, and plugins append their furniture
        content = content.replace("\n", "\r\n")
    content += (
        '\n<div class="sharedaddy sd-sharing-enabled"><h3 class="sd-title">Share this:'
        "</h3><ul><li>Facebook</li></ul></div>"
    )
    out: dict[str, Any] = {
        "id": post.id,
        "date": local.isoformat(),
        "date_gmt": post.date.replace(tzinfo=None).isoformat(),
        "guid": {"rendered": site.url(f"/?p={post.id}")},
        "modified": (post.modified + _LOCAL_OFFSET).replace(tzinfo=None).isoformat(),
        "modified_gmt": post.modified.replace(tzinfo=None).isoformat(),
        "slug": post.slug,
        "status": "publish",
        "type": "post",
        "link": site.link(post),
        "title": {"rendered": wp_escape(post.title)},
        "content": {"rendered": content, "protected": False},
        "excerpt": {"rendered": f"<p>{wp_escape(post.paragraphs()[0])}</p>\n", "protected": False},
        "author": 7 + len(post.author),
        "categories": [_term_id(post.category)],
        "tags": [_term_id(t) for t in post.tags],
        "yoast_head_json": {"title": post.title, "author": post.author},
    }
    if embed:
        out["_embedded"] = {
            "author": [{"id": out["author"], "name": post.author}],
            "wp:term": [
                [
                    {
                        "id": _term_id(post.category),
                        "name": wp_escape(post.category),
                        "taxonomy": "category",
                    }
                ],
                [
                    {"id": _term_id(t), "name": wp_escape(t), "taxonomy": "post_tag"}
                    for t in post.tags
                ],
                [{"id": "post", "name": "Posts", "taxonomy": "latest"}],
            ],
        }
    return out


def _term_id(name: str) -> int:
    return int(hashlib.sha1(name.encode()).hexdigest()[:4], 16)


def page_html(site: Site, post: Post) -> str:
    """The article page as a WordPress theme serves it, with navigation and sidebar."""
    url, title = site.link(post), html.escape(post.title)
    return f"""<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8">
<title>{title} – The Harbourside Courier</title>
<link rel="canonical" href="{url}"><meta property="og:url" content="{url}">
<meta property="og:title" content="{title}">
<meta property="article:published_time" content="{post.date.isoformat()}">
<meta property="article:modified_time" content="{post.modified.isoformat()}">
<meta name="author" content="{html.escape(post.author)}">
<meta property="article:section" content="{html.escape(post.category)}">
<link rel="https://api.w.org/" href="{site.url("/wp-json/")}">
</head><body>
<header><nav><a href="/">Home</a> | <a href="/news/">News</a> | <a href="/sport/">Sport</a></nav>
</header>
<main><article><h1>{title}</h1><p class="byline">By {html.escape(post.author)}</p>
<div class="entry-content">{post.content_html(gutenberg=False)}</div></article></main>
<aside><h2>Most read</h2><ul><li><a href="/x/">Tide tables for the week ahead</a></li></ul>
</aside><footer><p>© The Harbourside Courier. All rights reserved.</p></footer>
</body></html>"""


def rss(site: Site, full: bool) -> str:
    """The ten latest posts as RSS 2.0, with full content:encoded or summaries only."""
    items = []
    latest = sorted(site.public(), key=lambda p: p.date, reverse=True)[:10]
    for post in latest:
        summary = f"<p>{html.escape(post.paragraphs()[0])}</p><p>Continue reading…</p>"
        body = (
            f"<description><![CDATA[{summary}]]></description>"
            f"<content:encoded><![CDATA[{post.content_html()}]]></content:encoded>"
            if full
            else f"<description>{html.escape(summary)}</description>"
        )
        items.append(
            f"<item><title>{html.escape(post.title)}</title>"
            f"<link>{site.link(post)}?utm_source=rss&amp;utm_medium=rss</link>"
            f"<dc:creator><![CDATA[{post.author}]]></dc:creator>"
            f"<pubDate>{format_datetime(post.date)}</pubDate>"
            f"<category><![CDATA[{post.category}]]></category>"
            f'<guid isPermaLink="false">{site.url(f"/?p={post.id}")}</guid>{body}</item>'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>The Harbourside Courier</title><link>{site.url('/')}</link>"
        f"<description>News from the harbour</description>{''.join(items)}</channel></rss>"
    )


def urlset(site: Site, posts: list[Post]) -> str:
    """A url set; the first loc is wrapped in CDATA as some generators do."""
    rows = []
    for i, post in enumerate(sorted(posts, key=lambda p: p.id)):
        loc = f"<![CDATA[{site.link(post)}]]>" if i == 0 else site.link(post)
        rows.append(
            f"\n  <url>\n    <loc>{loc}</loc>\n"
            f"    <lastmod>{post.modified.isoformat()}</lastmod>\n  </url>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"{''.join(rows)}\n</urlset>\n"
    )


def sitemap_halves(site: Site) -> tuple[list[Post], list[Post]]:
    """Odd ids in post-sitemap.xml, even ids in post-sitemap2.xml.gz."""
    posts = site.public()
    return [p for p in posts if p.id % 2], [p for p in posts if not p.id % 2]


def sitemap_index(site: Site) -> str:
    rows = []
    for name, posts in zip(
        ("/post-sitemap.xml", "/post-sitemap2.xml.gz"), sitemap_halves(site), strict=True
    ):
        lastmod = max((p.modified for p in posts), default=site.clock).isoformat()
        rows.append(f"<sitemap><loc>{site.url(name)}</loc><lastmod>{lastmod}</lastmod></sitemap>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex '
        f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{"".join(rows)}</sitemapindex>'
    )


def news_sitemap(site: Site) -> str:
    """A Google News sitemap: no lastmod, news:title and news:publication_date instead."""
    rows = "".join(
        f"<url><loc>{site.link(p)}</loc><news:news><news:publication><news:name>The Harbourside"
        f" Courier</news:name><news:language>en</news:language></news:publication>"
        f"<news:publication_date>{p.date.isoformat()}</news:publication_date>"
        f"<news:title>{html.escape(p.title)}</news:title></news:news></url>"
        for p in site.public()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><urlset '
        'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{rows}</urlset>'
    )
