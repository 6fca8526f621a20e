"""Every real sample in ../shared/feeds, served from 127.0.0.1, through the parser for its kind."""

from __future__ import annotations

import re

import pytest

from index.fetch import Fetcher, FetchError
from index.sources import FeedSource, SourceBatch, WordPressSource
from index.sources.base import fetch_page_article
from index.sources.feed import parse_feed
from index.sources.sitemap import ParsedSitemap, parse_sitemap
from tests.sources_server import SHARED_FEEDS, fetcher_fixture, site_fixture
from tests.sources_site import Site

_ = (fetcher_fixture, site_fixture)
# Real feeds, sitemaps and pages from ../shared.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SHARED_FEEDS.is_dir(), reason="../shared/feeds is absent"),
]
MOJIBAKE = re.compile("Ã[\u0080-\u00bf]|Â |ï¿½|\ufffd")
# file -> (articles expected, a title that must be among them, or None)
FEEDS = {
    "rss/techcrunch-2011-wordpress-com-feedburner.xml": (
        20,
        "Angie’s List Sets Price Range IPO At $11 To $13 Per Share; Valued At Over $600M",
    ),
    "rss/mysqlperformanceblog-2009-wordpress-2.5.1.xml": (10, "Profiling MySQL stored routines"),
    "rss/guardian-us-2018-summaries.rss": (55, None),
    "rss/jn-pt-2018-iso-8859-1.rss": (36, "Mãe de utente é a nova presidente da Raríssimas"),
    "rss/uol-noticias-2018-undeclared-latin1.rss": (
        11,
        "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno",
    ),
    "atom/heise-developer-2016.atom": (15, "Java-Anwendungsserver: Red Hat gibt WildFly 10 frei"),
    "atom/coryforsyth-2009-wordpress-2.6.3-control-char.atom": (
        10,
        "the greenpoint police stole my bike tire",
    ),
}


async def feed_batch(site: Site, fetcher: Fetcher, name: str) -> SourceBatch:
    # Never follow links to the real sites: the feed's own text is the body here.
    return await FeedSource(site.url(f"/shared/{name}"), fetch_pages="never").fetch(fetcher, None)


@pytest.mark.parametrize("name", sorted(FEEDS))
async def test_real_feeds(site: Site, fetcher: Fetcher, name: str) -> None:
    batch = await feed_batch(site, fetcher, name)
    count, title = FEEDS[name]
    assert len(batch.articles) == count
    assert all(reason == "empty body" for _, reason in batch.rejected)  # empty descriptions
    if title:
        assert title in [a.title for a in batch.articles]
    for article in batch.articles:
        assert article.url.startswith("http") and "utm_" not in article.url
        assert article.title and article.body and "<p>" not in article.body
        assert not MOJIBAKE.search(article.title + article.body), article.title
        assert article.published_at is None or article.published_at.endswith("+00:00")


async def test_real_feed_details(site: Site, fetcher: Fetcher) -> None:
    heise = await feed_batch(site, fetcher, "atom/heise-developer-2016.atom")
    assert not any("wt_mc" in a.url for a in heise.articles)
    wildfly = next(a for a in heise.articles if "WildFly" in a.title)
    assert wildfly.published_at == "2016-02-01T16:22:00+00:00"  # 17:22+01:00
    techcrunch = await feed_batch(site, fetcher, "rss/techcrunch-2011-wordpress-com-feedburner.xml")
    assert min(len(a.body) for a in techcrunch.articles) > 500  # full content:encoded
    assert techcrunch.articles[0].author == "Leena Rao"
    cory = await feed_batch(
        site, fetcher, "atom/coryforsyth-2009-wordpress-2.6.3-control-char.atom"
    )
    assert all(a.url.startswith("http://coryforsyth.com/") for a in cory.articles)


@pytest.mark.parametrize(
    "name",
    [
        "rss/feedparser-illformed-chardet-windows1255.xml",
        "rss/feedparser-illformed-rss_incomplete_cdata.xml",
    ],
)
async def test_ill_formed_samples_do_not_raise(site: Site, fetcher: Fetcher, name: str) -> None:
    batch = await feed_batch(site, fetcher, name)
    assert batch.articles == []
    assert [reason for _, reason in batch.rejected] == ["no usable link"]  # items lack links


async def test_undeclared_windows_1255_is_detected(site: Site, fetcher: Fetcher) -> None:
    response = await fetcher.get(
        site.url("/shared/rss/feedparser-illformed-chardet-windows1255.xml")
    )
    parsed = parse_feed(response)
    assert parsed.entries[0].summary.startswith("האם תדפיס נייר של אתר אינטרנט")


async def test_real_sitemaps(site: Site, fetcher: Fetcher) -> None:
    async def parse(name: str) -> ParsedSitemap:
        response = await fetcher.get(site.url(f"/shared/sitemaps/{name}"))
        return parse_sitemap(response.content, response.url)

    urlset = await parse("sitemaps-org-urlset.xml")
    assert not urlset.is_index and len(urlset.pages) == 84
    assert urlset.pages["https://www.sitemaps.org/"] == "2016-11-21"
    index = await parse("sitemapindex-protocol-example-cdata.xml")
    assert index.is_index and index.children == {
        "http://www.example.com/sitemap1.xml.gz": "2004-10-01T18:23:17+00:00",
        "http://www.example.com/sitemap2.xml.gz": "2005-01-01",
    }
    news = await parse("shinpaideshou-wordpress-com-news-sitemap.xml")
    assert len(news.pages) == 3
    url = "https://shinpaideshou.wordpress.com/2017/04/25/job-opening-reischauer-policy-research-fellow/"
    assert news.pages[url] == "2017-04-25T10:00:36+00:00"  # no lastmod: publication date
    assert news.hints[url]["title"] == "Job Opening: Reischauer Policy Research Fellow"


async def test_real_wordpress_rest_with_embed(site: Site, fetcher: Fetcher) -> None:
    source = WordPressSource(site.url("/shared-wp/demo-worona-org-posts-category-7-embed/"))
    batch = await source.fetch(fetcher, None, full_listing=True)
    assert len(batch.articles) == 5 and not batch.rejected
    garden = next(a for a in batch.articles if a.id == "57")
    assert garden.url == "https://demo.worona.org/shinjuku-gyoen-national-garden/"
    assert garden.author == "Reyes Martinez"
    assert garden.category == "Nature, Photography"
    assert garden.tags == ("Japan", "National Garden", "Tokyo")  # not the "latest" taxonomy
    assert "新宿御苑" in garden.body and "Meiji Restoration" in garden.body
    assert garden.published_at == "2016-10-25T18:25:24+00:00"
    assert batch.seen_urls == {a.url for a in batch.articles}


async def test_real_wordpress_rest_gutenberg_and_yoast(site: Site, fetcher: Fetcher) -> None:
    source = WordPressSource(site.url("/shared-wp/blog-fontawesome-com-posts-2024-yoast-jetpack/"))
    (post,) = (await source.fetch(fetcher, None)).articles
    assert post.title == "It’s Official. Font Awesome 6 is Coming in February 2022!"
    assert post.published_at == "2021-12-07T17:35:48+00:00"  # date_gmt, not the UTC-6 date
    assert post.updated_at == "2021-12-07T17:36:05+00:00"
    assert post.author == "Matt Johnson"  # no _embedded: Yoast's metadata
    assert post.category == "1"  # no _embedded: the term id is all there is
    assert "you’re sure to find what you need" in post.body
    assert "\n\nMore Icons\n\n" in post.body
    assert "<" not in post.body and "&#" not in post.body and "&nbsp;" not in post.body


@pytest.mark.parametrize(
    ("name", "title", "published"),
    [
        (
            "mercurynews.com.2023.01.16.letters-1119.html",
            "Letters: Coddling criminals",
            "2023-01-17T00:30:41+00:00",
        ),
        (
            "correctiv.org.zusage.html",
            "„Wir haben bereits die Zusage“",
            "2019-05-14T12:34:08+00:00",
        ),
        (
            "boingboing.net.millenials.html",
            "Hating Millennials - the prejudice you're allowed",
            "2013-07-19T17:08:44+00:00",
        ),
        (
            "vancouversun.com.microsoft.html",
            "Microsoft moves to erase its carbon footprint",
            "2020-01-16T18:02:53+00:00",
        ),
    ],
)
async def test_real_article_pages(
    site: Site, fetcher: Fetcher, name: str, title: str, published: str
) -> None:
    url = site.url(f"/shared/html/{name}")
    article = await fetch_page_article(fetcher, url, {})
    assert article.url == url  # the listing's URL wins over the page's canonical link
    assert article.title.startswith(title)
    assert article.published_at == published
    assert len(article.body) > 1500 and not MOJIBAKE.search(article.body)


async def test_sample_pages_are_not_feeds(site: Site, fetcher: Fetcher) -> None:
    source = FeedSource(site.url("/shared/html/boingboing.net.millenials.html"))
    with pytest.raises(FetchError, match="not a feed"):
        await source.fetch(fetcher, None)
