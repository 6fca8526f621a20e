"""The canonical article: URLs, text, dates, and clear errors."""

from __future__ import annotations

import pytest

from index.articles import ArticleError, article_from_record, canonical_url, clean_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "HTTPS://Example.COM:443/a/b?utm_source=rss&p=61125#comments",
            "https://example.com/a/b?p=61125",
        ),
        ("http://example.com", "http://example.com/"),
        ("https://example.com:8443/x?fbclid=1&wt_mc=rss.x", "https://example.com:8443/x"),
        ("https://daysofpalestine.ps/?p=61125", "https://daysofpalestine.ps/?p=61125"),
    ],
)
def test_canonical_url(raw: str, expected: str) -> None:
    assert canonical_url(raw) == expected


@pytest.mark.parametrize("bad", ["ftp://x.org/a", "/relative/path", "javascript:alert(1)", ""])
def test_canonical_url_rejects(bad: str) -> None:
    with pytest.raises(ArticleError):
        canonical_url(bad)


def test_clean_text_keeps_paragraphs_and_drops_control_chars() -> None:
    raw = "  First\x03 line \r\n\r\n\r\n Second\u00a0\u00a0para\ttext \n\n\n"
    assert clean_text(raw) == "First line\n\nSecond para text"


def test_record_validation_messages() -> None:
    with pytest.raises(ArticleError, match="missing url"):
        article_from_record({"title": "x", "body": "y"})
    with pytest.raises(ArticleError, match="empty body"):
        article_from_record({"url": "https://a.example/1", "body": " \n\n "})
    with pytest.raises(ArticleError, match="ISO 8601"):
        article_from_record({"url": "https://a.example/1", "body": "b", "published_at": "soon"})
    with pytest.raises(ArticleError, match="JSON object"):
        article_from_record(["not", "a", "dict"])  # type: ignore[arg-type]


def test_record_normalises_fields() -> None:
    a = article_from_record(
        {
            "url": "https://A.example/1?utm_medium=x",
            "title": " Title\n here ",
            "body": "Body.",
            "published_at": "2025-03-05T09:30:00Z",
            "tags": "aid, ceasefire,aid",
            "id": 7,
        }
    )
    assert a.url == "https://a.example/1"
    assert a.title == "Title here"
    assert a.published_at == "2025-03-05T09:30:00+00:00"
    assert a.tags == ("aid", "ceasefire")
    assert a.id == "7"
    assert a.content_hash == article_from_record(a.to_dict()).content_hash


def test_canonical_url_keeps_ipv6_brackets() -> None:
    assert canonical_url("http://[::1]:18080/p/3") == "http://[::1]:18080/p/3"
    assert canonical_url("https://[2001:DB8::1]:443/a") == "https://[2001:db8::1]/a"
    assert canonical_url(canonical_url("http://[::1]/x")) == "http://[::1]/x"


BIDI_AND_JOINERS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200c\u200d\u200e\u200f"


def test_bidi_controls_and_joiners_never_reach_the_article() -> None:
    article = article_from_record(
        {
            "url": "https://example.com/a",
            "title": "Invoice \u202efdp.exe",
            "body": "Pay \u2066now\u2069 or \u200dlater\u200c.\n\nSecond \u202dpara.",
            "author": "A\u200fB",
            "tags": ["x\u202ey"],
            "category": "c\u2067d",
        }
    )
    fields = [article.title, article.body, article.author or "", article.category or ""]
    for text in [*fields, *article.tags]:
        assert not set(text) & set(BIDI_AND_JOINERS), repr(text)
    assert article.title == "Invoice fdp.exe"
    assert article.body == "Pay now or later.\n\nSecond para."
