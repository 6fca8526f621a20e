"""Sources against the fictional outlet on 127.0.0.1: backfill, then new, edited, deleted."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from index.articles import Article, ArticleError
from index.fetch import Fetcher, FetchError
from index.sources import (
    FeedSource,
    FolderSource,
    SitemapSource,
    SourceBatch,
    WordPressSource,
    detect_kind,
    html_to_text,
    make_source,
)
from index.sources.wordpress import post_record, posts_endpoint
from tests.sources_server import TEST_SETTINGS, fetcher_fixture, site_fixture
from tests.sources_site import Post, Site

_ = (fetcher_fixture, site_fixture)
EDIT = "Update: the operator has since agreed to run a 6.15am water taxi for hospital staff."


def by_url(batch: SourceBatch) -> dict[str, Article]:
    return {a.url: a for a in batch.articles}


def public_posts(site: Site) -> list[Post]:
    return [p for p in site.posts.values() if not p.private]


def assert_matches(article: Article, site: Site, post: Post, exact_body: bool) -> None:
    """An article carries its post's URL, title, text, author and publication time."""
    assert article.url == site.link(post)
    assert article.title == post.title
    assert article.published_at == post.date.isoformat()
    assert article.author == post.author
    if exact_body:
        assert article.body == post.text
    else:  # extracted from a page: every paragraph verbatim (trafilatura drops captions)
        for paragraph in post.paragraphs(captions=False):
            assert paragraph in article.body


async def change_site(site: Site) -> tuple[Post, Post, Post]:
    """Publish a post, edit another and delete a third."""
    new = site.add_post()
    edited = site.edit_post(101, append=EDIT)
    deleted = site.delete_post(104)
    return new, edited, deleted


# -- WordPress ------------------------------------------------------------------------------


async def test_wordpress_backfill_then_new_edited_deleted(site: Site, fetcher: Fetcher) -> None:
    source = WordPressSource(site.url("/"), per_page=2)  # 6 posts: 3 pages
    first = await source.fetch(fetcher, None, full_listing=True)
    assert site.hits["/wp-json/wp/v2/posts"] == 3 + 1  # the listing takes 100 a page
    posts = public_posts(site)
    assert first.complete and not first.rejected
    assert set(by_url(first)) == {site.link(p) for p in posts} == first.seen_urls
    for post in posts:
        article = by_url(first)[site.link(post)]
        assert_matches(article, site, post, exact_body=True)
        assert article.updated_at == post.modified.isoformat()
        assert article.category == post.category and list(article.tags) == post.tags
        assert article.id == str(post.id)
    assert "Share this" not in by_url(first)[site.link(site.posts[101])].body

    quiet = await source.fetch(fetcher, first.cursor)
    assert quiet.articles == [] and quiet.seen_urls is None

    new, edited, deleted = await change_site(site)
    second = await source.fetch(fetcher, json.loads(json.dumps(quiet.cursor)), full_listing=True)
    assert [a.url for a in second.articles] == [site.link(new), site.link(edited)]
    assert by_url(second)[site.link(edited)].body.endswith(EDIT)
    assert site.link(deleted) not in (second.seen_urls or set())
    assert second.seen_urls == {site.link(p) for p in public_posts(site)}
    assert (await source.fetch(fetcher, second.cursor)).articles == []


async def test_wordpress_posts_changed_in_the_same_second(site: Site, fetcher: Fetcher) -> None:
    source = WordPressSource(site.url("/"))
    first = await source.fetch(fetcher, None)
    a = site.edit_post(102, title="Library reopens with rooftop reading room")
    b = site.edit_post(103, append="The vote will be reviewed in a year.")
    b.modified = a.modified
    second = await source.fetch(fetcher, first.cursor)
    assert sorted(x.id or "" for x in second.articles) == ["102", "103"]
    assert second.cursor["ids_at"] == ["102", "103"]
    assert (await source.fetch(fetcher, second.cursor)).articles == []


async def test_wordpress_failing_later_page_keeps_what_came(site: Site, fetcher: Fetcher) -> None:
    source = WordPressSource(site.url("/"), per_page=2)
    site.fail_wp_page = 2
    partial = await source.fetch(fetcher, None)
    assert len(partial.articles) == 2 and not partial.complete
    assert partial.rejected[0][1] == "HTTP 500"
    site.fail_wp_page = None
    rest = await source.fetch(fetcher, partial.cursor)
    assert len(rest.articles) == 4
    assert {a.url for a in partial.articles + rest.articles} == {
        site.link(p) for p in public_posts(site)
    }


async def test_wordpress_server_ignoring_orderby(site: Site, fetcher: Fetcher) -> None:
    site.ignore_orderby = True  # newest first, as old WordPress or a cache might answer
    site.edit_post(101, append=EDIT)  # the oldest post is now the most recently modified
    source = WordPressSource(site.url("/"), per_page=2)
    site.fail_wp_page = 3
    partial = await source.fetch(fetcher, None)
    assert len(partial.articles) == 4 and partial.cursor["modified_after"] is None
    site.fail_wp_page = None
    full = await source.fetch(fetcher, partial.cursor)
    assert len(full.articles) == 6 and full.complete
    assert (
        full.cursor["modified_after"] == site.posts[101].modified.replace(tzinfo=None).isoformat()
    )


async def test_wordpress_first_page_failing_fails_the_source(site: Site, fetcher: Fetcher) -> None:
    site.fail_wp_page = 1
    with pytest.raises(FetchError, match="HTTP 500"):
        await WordPressSource(site.url("/")).fetch(fetcher, None)


async def test_wordpress_listing_failure_means_no_deletions(site: Site, fetcher: Fetcher) -> None:
    source = WordPressSource(site.url("/"))
    first = await source.fetch(fetcher, None)
    site.fail_wp_listing = True
    site.add_post()
    batch = await source.fetch(fetcher, first.cursor, full_listing=True)
    assert len(batch.articles) == 1
    assert batch.seen_urls is None and not batch.complete


def test_wordpress_post_record_skips_unpublished_and_protected() -> None:
    base = {
        "link": "https://n.example/a/",
        "title": {"rendered": "A"},
        "content": {"rendered": "<p>Text.</p>"},
    }
    assert post_record({**base, "status": "publish"})["body"] == "Text."
    with pytest.raises(ArticleError, match="not published"):
        post_record({**base, "status": "draft"})
    with pytest.raises(ArticleError, match="password"):
        post_record({**base, "content": {"rendered": "", "protected": True}})


@pytest.mark.parametrize(
    ("given", "endpoint"),
    [
        ("https://n.example", "https://n.example/wp-json/wp/v2/posts"),
        ("https://n.example/news/", "https://n.example/news/wp-json/wp/v2/posts"),
        ("https://n.example/wp-json/", "https://n.example/wp-json/wp/v2/posts"),
        (
            "https://n.example/wp-json/wp/v2/posts?per_page=5",
            "https://n.example/wp-json/wp/v2/posts",
        ),
        ("https://n.example/?rest_route=/", "https://n.example/?rest_route=/wp/v2/posts"),
    ],
)
def test_posts_endpoint(given: str, endpoint: str) -> None:
    assert posts_endpoint(given) == endpoint


def test_html_to_text_keeps_paragraphs_and_drops_furniture() -> None:
    html = (
        "<!-- wp:paragraph -->\r\n<p>It&#8217;s <strong>here</strong> &amp; now.</p>\r\n"
        "<!-- /wp:paragraph --><ul><li>One</li><li>Two</li></ul><p>Line<br>break</p>"
        "<script>var x = 1;</script><figure><img src='x'><figcaption>Cap</figcaption>"
        "</figure><div class='sharedaddy'><h3>Share this:</h3></div>"
    )
    assert html_to_text(html) == "It’s here & now.\n\nOne\n\nTwo\n\nLine\nbreak\n\nCap"


# -- RSS ------------------------------------------------------------------------------------


async def test_rss_full_content_then_new_and_edited(site: Site, fetcher: Fetcher) -> None:
    source = FeedSource(site.url("/feed/"))
    first = await source.fetch(fetcher, None)
    posts = public_posts(site)
    assert not first.rejected and first.seen_urls is None
    assert set(by_url(first)) == {site.link(p) for p in posts}  # utm_* dropped
    for post in posts:
        assert_matches(by_url(first)[site.link(post)], site, post, exact_body=True)
    assert all(site.hits[p.path] == 0 for p in posts)  # full content: no page fetches

    unchanged = await source.fetch(fetcher, first.cursor)
    assert unchanged.articles == [] and site.not_modified["/feed/"] == 1

    new, edited, _ = await change_site(site)
    second = await source.fetch(fetcher, json.loads(json.dumps(unchanged.cursor)))
    assert {a.url for a in second.articles} == {site.link(new), site.link(edited)}
    assert by_url(second)[site.link(edited)].body.endswith(EDIT)
    assert second.seen_urls is None  # a feed cannot tell a deletion from an old post
    assert (await source.fetch(fetcher, second.cursor)).articles == []


async def test_rss_summaries_fetch_pages_and_respect_robots(site: Site, fetcher: Fetcher) -> None:
    site.include_private = True
    source = FeedSource(site.url("/feed/summary/"))
    batch = await source.fetch(fetcher, None)
    posts = public_posts(site)
    for post in posts:
        article = by_url(batch)[site.link(post)]
        assert_matches(article, site, post, exact_body=False)
        assert "Continue reading" not in article.body and "Most read" not in article.body
        assert site.hits[post.path] == 1
    private = next(p for p in site.posts.values() if p.private)
    assert batch.rejected == [(site.link(private), "blocked by robots.txt")]
    assert site.hits[private.path] == 0
    site.edit_post(105, title="Storm damage closes coastal path for the spring")
    again = await source.fetch(fetcher, batch.cursor)
    assert [a.title for a in again.articles] == ["Storm damage closes coastal path for the spring"]
    assert again.rejected == batch.rejected  # a failed item is tried again next time


async def test_rss_never_fetching_pages_uses_the_summary(site: Site, fetcher: Fetcher) -> None:
    batch = await FeedSource(site.url("/feed/summary/"), fetch_pages="never").fetch(fetcher, None)
    assert all(a.body.endswith("Continue reading…") for a in batch.articles)
    assert sum(site.hits[p.path] for p in site.posts.values()) == 0


# -- sitemaps -------------------------------------------------------------------------------


async def test_sitemap_backfill_then_new_edited_deleted(site: Site, fetcher: Fetcher) -> None:
    source = SitemapSource(site.url("/sitemap_index.xml"))
    first = await source.fetch(fetcher, None)
    posts = public_posts(site)
    assert first.complete and not first.rejected
    assert set(by_url(first)) == {site.link(p) for p in posts} == first.seen_urls
    for post in posts:
        assert_matches(by_url(first)[site.link(post)], site, post, exact_body=False)
    assert site.hits["/post-sitemap2.xml.gz"] == 1

    unchanged = await source.fetch(fetcher, first.cursor)
    assert unchanged.articles == [] and unchanged.seen_urls == first.seen_urls
    assert site.not_modified["/sitemap_index.xml"] == 1
    assert site.hits["/post-sitemap.xml"] == 1  # its lastmod in the index did not move

    new, edited, deleted = await change_site(site)
    second = await source.fetch(fetcher, json.loads(json.dumps(unchanged.cursor)))
    assert {a.url for a in second.articles} == {site.link(new), site.link(edited)}
    assert EDIT in by_url(second)[site.link(edited)].body
    assert second.seen_urls == {site.link(p) for p in public_posts(site)}
    assert site.link(deleted) not in second.seen_urls
    assert site.hits[site.posts[102].path] == 1  # unchanged pages are not fetched again


async def test_sitemap_404_on_one_page_others_still_come(site: Site, fetcher: Fetcher) -> None:
    gone = site.posts[103]
    site.missing.add(gone.path)
    source = SitemapSource(site.url("/sitemap_index.xml"))
    batch = await source.fetch(fetcher, None)
    assert batch.rejected == [(site.link(gone), "HTTP 404")]
    assert len(batch.articles) == len(public_posts(site)) - 1
    assert batch.complete and site.link(gone) in (batch.seen_urls or set())
    site.missing.clear()
    retry = await source.fetch(fetcher, batch.cursor)
    assert [a.url for a in retry.articles] == [site.link(gone)]
    assert (await source.fetch(fetcher, retry.cursor)).articles == []
    assert site.hits[gone.path] == 2


async def test_sitemap_backfill_in_slices(site: Site, fetcher: Fetcher) -> None:
    source = SitemapSource(site.url("/sitemap_index.xml"), max_pages=4)
    first = await source.fetch(fetcher, None)
    assert len(first.articles) == 4 and len(first.cursor["retry"]) == 2
    assert first.seen_urls == {site.link(p) for p in public_posts(site)}  # listing is whole
    second = await source.fetch(fetcher, first.cursor)
    assert len(second.articles) == 2 and second.cursor["retry"] == []
    assert {a.url for a in first.articles + second.articles} == first.seen_urls


async def test_sitemap_failing_child_keeps_its_pages_listed(site: Site, fetcher: Fetcher) -> None:
    source = SitemapSource(site.url("/sitemap_index.xml"))
    first = await source.fetch(fetcher, None)
    site.edit_post(102, title="Library reopens")  # moves the .gz child's lastmod
    site.missing.add("/post-sitemap2.xml.gz")
    batch = await source.fetch(fetcher, first.cursor)
    assert batch.rejected[0] == (site.url("/post-sitemap2.xml.gz"), "HTTP 404")
    assert not batch.complete and batch.seen_urls is None
    assert site.url("/post-sitemap2.xml.gz") in batch.cursor["sitemaps"]


async def test_google_news_sitemap(site: Site, fetcher: Fetcher) -> None:
    batch = await SitemapSource(site.url("/news-sitemap.xml")).fetch(fetcher, None)
    assert len(batch.articles) == len(public_posts(site))
    stamps = batch.cursor["sitemaps"][site.url("/news-sitemap.xml")]["pages"]
    assert stamps[site.link(site.posts[101])] == site.posts[101].date.isoformat()


# -- the fault matrix: each ends in a FetchError reason or a rejected record ----------------


async def fails(source: FeedSource | SitemapSource | WordPressSource, fetcher: Fetcher) -> str:
    with pytest.raises(FetchError) as info:
        await source.fetch(fetcher, None)
    return info.value.reason


async def test_fault_timeout(site: Site, fetcher: Fetcher) -> None:
    assert await fails(FeedSource(site.url("/fault/slow")), fetcher) == "timeout"


async def test_fault_500_after_retries(site: Site, fetcher: Fetcher) -> None:
    assert await fails(SitemapSource(site.url("/fault/500")), fetcher) == "HTTP 500"
    assert site.hits["/fault/500"] == TEST_SETTINGS.retries + 1


async def test_fault_404_on_one_feed_page(site: Site, fetcher: Fetcher) -> None:
    gone = site.posts[106]
    site.missing.add(gone.path)
    batch = await FeedSource(site.url("/feed/summary/")).fetch(fetcher, None)
    assert batch.rejected == [(site.link(gone), "HTTP 404")]
    assert len(batch.articles) == len(public_posts(site)) - 1


async def test_fault_malformed_feed(site: Site, fetcher: Fetcher) -> None:
    batch = await FeedSource(site.url("/fault/malformed.xml")).fetch(fetcher, None)
    assert [a.url for a in batch.articles] == [site.link(site.posts[101])]  # what was readable
    reason = await fails(FeedSource(site.url("/fault/truncated.xml")), fetcher)
    assert reason.startswith("malformed XML (")


async def test_fault_malformed_sitemap(site: Site, fetcher: Fetcher) -> None:
    url = site.url("/fault/malformed-sitemap.xml")
    batch = await SitemapSource(url).fetch(fetcher, None)
    assert batch.rejected[0] == (url, "malformed XML (read what could be recovered)")
    assert [r for _, r in batch.rejected[1:]] == ["HTTP 404"]  # the torn last <loc>
    assert not batch.complete and batch.seen_urls is None  # a torn listing deletes nothing
    assert [a.url for a in batch.articles] == [site.link(site.posts[101])]
    reason = await fails(SitemapSource(site.url("/fault/not-xml-sitemap.xml")), fetcher)
    assert reason.startswith("malformed XML")


@pytest.mark.parametrize("name", ["latin1-declared.rss", "latin1-undeclared.rss"])
async def test_fault_latin1_feed(site: Site, fetcher: Fetcher, name: str) -> None:
    source = FeedSource(site.url(f"/fault/{name}"), fetch_pages="never")
    batch = await source.fetch(fetcher, None)
    assert [a.title for a in batch.articles] == ["Previsão: verão começa com calor em São Tomé"]
    assert batch.articles[0].body == "Meteorologistas dizem que a estação será quente."


async def test_fault_20_mb_body(site: Site, fetcher: Fetcher) -> None:
    assert await fails(FeedSource(site.url("/fault/huge")), fetcher) == "too large (> 10 MB)"


async def test_fault_redirect_loop(site: Site, fetcher: Fetcher) -> None:
    assert await fails(SitemapSource(site.url("/fault/loop-a")), fetcher) == "redirect loop"


async def test_fault_feed_that_returns_html(site: Site, fetcher: Fetcher) -> None:
    assert await fails(FeedSource(site.url("/fault/html-feed")), fetcher) == "not a feed"
    assert await fails(FeedSource(site.url("/")), fetcher) == "not a feed"


async def test_fault_other_kinds_given_the_wrong_document(site: Site, fetcher: Fetcher) -> None:
    assert await fails(WordPressSource(site.url("/feed/?rest_route=/")), fetcher) == "not JSON"
    assert await fails(SitemapSource(site.url("/feed/")), fetcher) == "not a sitemap"


async def test_fault_feed_body_naming_a_local_file(
    site: Site, fetcher: Fetcher, tmp_path: Path
) -> None:
    # feedparser.parse(bytes) would open a file of that name and parse it; the source must not
    secret = tmp_path / "secret.rss"
    secret.write_text(
        '<rss version="2.0"><channel><item><title>Local secret</title>'
        "<link>https://n.example/s</link><description>x</description></item>"
        "</channel></rss>"
    )
    site.local_file = str(secret)
    reason = await fails(FeedSource(site.url("/fault/local-file")), fetcher)
    assert reason.startswith("malformed XML")


# -- folder ---------------------------------------------------------------------------------


async def test_folder_changes_and_deletions(tmp_path: Path, fetcher: Fetcher) -> None:
    one, two = tmp_path / "one.md", tmp_path / "two.jsonl"
    one.write_text(
        "---\nurl: https://n.example/a\n---\n# Tide gauge fixed\n\n"
        "The harbour tide gauge works again.\n"
    )
    two.write_text(json.dumps({"url": "https://n.example/b", "title": "B", "body": "Bee."}) + "\n")
    source = FolderSource(str(tmp_path))
    first = await source.fetch(fetcher, None)
    assert len(first.articles) == 2 and len(first.seen_urls or ()) == 2
    assert (await source.fetch(fetcher, first.cursor)).articles == []
    one.write_text(
        "---\nurl: https://n.example/a\n---\n# Tide gauge fixed\n\n"
        "The harbour tide gauge works again, engineers say.\n"
    )
    os.utime(one, ns=(1, 1))
    two.unlink()
    second = await source.fetch(fetcher, first.cursor)
    assert [a.title for a in second.articles] == ["Tide gauge fixed"]
    assert second.seen_urls == {second.articles[0].url}
    with pytest.raises(FetchError, match="no such"):
        await FolderSource(str(tmp_path / "gone")).fetch(fetcher, None)


# -- kinds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "wordpress"),
        ("/wp-json/", "wordpress"),
        ("/feed/", "feed"),
        ("/sitemap_index.xml", "sitemap"),
        ("/post-sitemap2.xml.gz", "sitemap"),
    ],
)
async def test_detect_kind(site: Site, fetcher: Fetcher, path: str, kind: str) -> None:
    assert await detect_kind(fetcher, site.url(path)) == kind


async def test_detect_kind_of_a_plain_page_and_a_folder(
    site: Site, fetcher: Fetcher, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match="not a feed, sitemap or WordPress site"):
        await detect_kind(fetcher, site.url("/fault/html-feed"))
    assert await detect_kind(fetcher, str(tmp_path)) == "folder"


def test_make_source() -> None:
    source = make_source("rss", "https://n.example/feed/", fetch_pages="never")
    assert isinstance(source, FeedSource) and source.kind == "feed"
    with pytest.raises(ValueError, match="unknown source kind 'gopher'"):
        make_source("gopher", "https://n.example/")
    with pytest.raises(ValueError, match="unknown option 'per_page' for a sitemap source"):
        make_source("sitemap", "https://n.example/s.xml", per_page=5)
    wordpress = make_source("wordpress", "https://n.example/", per_page=50)
    assert isinstance(wordpress, WordPressSource)
    assert dataclasses.asdict(wordpress) == {
        "url": "https://n.example/",
        "per_page": 50,
        "max_pages": 500,
    }


# -- fan-out caps (#12 item 10) --------------------------------------------------------------


async def test_a_huge_feed_is_read_up_to_max_items_and_says_so(
    site: Site, fetcher: Fetcher
) -> None:
    source = FeedSource(site.url("/fault/big-feed.rss"), max_items=50)
    batch = await source.fetch(fetcher, None)
    assert len(batch.articles) == 50
    assert [a.title for a in batch.articles[:2]] == ["Story 0", "Story 1"]  # newest first
    assert batch.notes == [f"{source.url} lists 3000 items; read the first 50 (max_items)"]
    assert FeedSource(site.url("/feed/")).max_items == 200


async def test_a_sitemap_index_of_500_children_is_read_in_slices(
    site: Site, fetcher: Fetcher
) -> None:
    source = SitemapSource(site.url("/fault/many-sitemaps.xml"), max_sitemaps=20)
    batch = await source.fetch(fetcher, None)
    assert site.hits["/fault/child-*"] == 20
    assert batch.notes == [
        f"{source.url}: read 20 of 500 changed sitemaps (max_sitemaps); the rest next time"
    ]
    assert batch.seen_urls is None  # a partial listing must not delete anything
    assert batch.complete
    again = await source.fetch(fetcher, batch.cursor)  # the next 20, not the same ones
    assert site.hits["/fault/child-*"] == 40
    assert len(again.cursor["sitemaps"]) == 1 + 40
    assert SitemapSource(site.url("/sitemap_index.xml")).max_sitemaps == 50
