"""Importers: every bad record is reported with file, line and reason; the rest goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.articles import Article
from index.importers import Rejected, read_paths
from tests.conftest import SHARED


def items(*paths: Path) -> tuple[list[Article], list[Rejected]]:
    got = list(read_paths(paths))
    return ([i for i in got if isinstance(i, Article)], [i for i in got if isinstance(i, Rejected)])


def test_jsonl_bad_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    good = {"url": "https://news.example/a", "title": "A", "body": "Text."}
    lines = [
        json.dumps(good),
        '{"url": "https://news.example/b", "title": "B", "body": "broken',
        json.dumps({"title": "no url", "body": "x"}),
        json.dumps({"url": "https://news.example/c", "title": "C", "body": "   "}),
        "",
        json.dumps({**good, "url": "https://news.example/d"}),
    ]
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    arts, bad = items(path)
    assert [a.url for a in arts] == ["https://news.example/a", "https://news.example/d"]
    assert [(b.line, b.reason.split(":")[0]) for b in bad] == [
        (2, "invalid JSON"),
        (3, "missing url"),
        (4, "empty body"),
    ]
    assert str(bad[0]).startswith(f"{path}:2: invalid JSON")


def test_json_object_and_array(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"url": "https://n.example/1", "title": "T", "body": "B."}))
    many = tmp_path / "many.json"
    many.write_text(
        json.dumps(
            [
                {"url": "https://n.example/2", "title": "T", "body": "B."},
                {"url": "https://n.example/3", "title": "T"},
            ]
        )
    )
    arts, bad = items(one, many)
    assert len(arts) == 2
    assert bad[0].reason == "item 1: missing body"


def test_broken_json_and_binary_junk(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"url": "https://n.example/1", "body": ')
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(bytes(range(256)) * 4)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Caf\xe9 headline\n\nBody".encode("latin-1"))
    odd = tmp_path / "notes.pdf"
    odd.write_bytes(b"%PDF-1.4")
    arts, bad = items(broken, junk, latin, odd, tmp_path / "missing.json")
    assert arts == []
    reasons = [b.reason for b in bad]
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1] == "binary file (NUL bytes), not text"
    assert reasons[2].startswith("not UTF-8 text")
    assert reasons[3] == "unsupported file type '.pdf'"
    assert reasons[4] == "no such file"


def test_markdown_and_text_first_line_is_title(tmp_path: Path) -> None:
    md = tmp_path / "story.md"
    md.write_text(
        "---\nurl: https://news.example/truce\n---\n"
        "# Truce holds in Gaza\n\nFirst paragraph.\n\nSecond paragraph.\n"
    )
    arts, bad = items(md)
    assert not bad
    assert arts[0].title == "Truce holds in Gaza"
    assert arts[0].body == "First paragraph.\n\nSecond paragraph."
    assert arts[0].url == "https://news.example/truce"


def test_front_matter_fields(tmp_path: Path) -> None:
    txt = tmp_path / "story.txt"
    txt.write_text(
        "---\nurl: 'https://news.example/flour'\ntitle: Flour runs out\n"
        "published_at: 2025-03-20T09:00:00Z\ntags: [aid, Gaza]\nlayout: post\n---\n"
        "The agency warned that flour would run out.\n"
    )
    (art,), bad = items(txt)
    assert not bad
    assert (art.url, art.title, art.published_at, art.tags) == (
        "https://news.example/flour",
        "Flour runs out",
        "2025-03-20T09:00:00+00:00",
        ("aid", "Gaza"),
    )
    assert art.body == "The agency warned that flour would run out."


def test_files_without_a_url_are_rejected_not_given_a_made_up_link(tmp_path: Path) -> None:
    (tmp_path / "note.md").write_text("# Flour warning\n\nStocks run out within a week.\n")
    (tmp_path / "page.html").write_text(
        "<html><head><title>Aid</title></head><body><article><h1>Aid resumes</h1>"
        + "<p>Aid trucks crossed at Kerem Shalom on Sunday, officials said.</p>" * 5
        + "</article></body></html>"
    )
    arts, bad = items(tmp_path)
    assert arts == []
    assert [(Path(b.path).name, b.reason.split(":")[0]) for b in bad] == [
        ("note.md", "no url"),
        ("page.html", "no url"),
    ]


def test_base_url_names_files_that_carry_no_url(tmp_path: Path) -> None:
    (tmp_path / "2025").mkdir()
    (tmp_path / "2025" / "flour warning.md").write_text("# Flour\n\nStocks run out.\n")
    own = tmp_path / "own.md"
    own.write_text("---\nurl: https://news.example/own\n---\nOwn\n\nBody.\n")
    got = list(read_paths([tmp_path], base_url="https://news.example/archive/"))
    assert sorted(a.url for a in got if isinstance(a, Article)) == [
        "https://news.example/archive/2025/flour%20warning.md",
        "https://news.example/own",
    ]
    alone = tmp_path / "2025" / "flour warning.md"
    (single,) = read_paths([alone], base_url="https://news.example")
    assert isinstance(single, Article)
    assert single.url == "https://news.example/flour%20warning.md"  # a file alone: its name


def test_empty_files_say_so(tmp_path: Path) -> None:
    for name, text in [("a.jsonl", ""), ("b.jsonl", "\n  \n"), ("c.json", ""), ("d.md", " \n")]:
        (tmp_path / name).write_text(text)
    (tmp_path / "e.json").write_text("[]")
    arts, bad = items(*sorted(tmp_path.iterdir()))
    assert arts == []
    assert [b.reason for b in bad] == ["empty file"] * 4 + ["no records (an empty list)"]


def test_other_files_in_a_folder_are_reported_once_not_failed(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"url": "https://n.example/a", "body": "A."}))
    for name in ("notes.docx", "photo.png", ".DS_Store"):
        (tmp_path / name).write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    arts, bad = items(tmp_path)
    assert len(arts) == 1
    assert [(b.path, b.reason, b.skipped) for b in bad] == [
        (str(tmp_path), "2 files of other types not read (notes.docx, photo.png)", True)
    ]
    (alone,) = items(tmp_path / "notes.docx")[1]
    assert alone.reason == "unsupported file type '.docx'" and not alone.skipped


def test_hostile_html_yields_text_only(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>Aid resumes</title>"
        '<meta property="og:url" content="https://news.example/aid?utm_source=x">'
        '<meta property="article:published_time" content="2025-02-01T08:00:00+02:00">'
        "<script>alert('x')</script><style>p{}</style></head><body><article>"
        "<h1>Aid resumes</h1>"
        + "".join(
            f"<p>Paragraph {i} says aid trucks crossed at Kerem Shalom on day {i}, "
            "officials said on Sunday.</p>"
            for i in range(6)
        )
        + '<p onclick="evil()">Footer &copy; 1999 <iframe src="https://x"></iframe></p>'
        "</article></body></html>"
    )
    arts, bad = items(page)
    assert not bad
    art = arts[0]
    assert art.url == "https://news.example/aid"
    assert art.published_at == "2025-02-01T08:00:00+02:00"
    assert "alert" not in art.body and "<" not in art.body
    assert "Paragraph 0 says aid trucks" in art.body
    assert "\n\n" in art.body


HTML_PAGES = sorted((SHARED / "feeds" / "html").glob("*.html")) if SHARED.exists() else []


@pytest.mark.skipif(not HTML_PAGES, reason="../shared/feeds is absent")
@pytest.mark.parametrize("page", HTML_PAGES, ids=lambda p: p.name)
def test_real_wordpress_pages(page: Path) -> None:
    arts, bad = items(page)
    assert not bad, bad
    art = arts[0]
    assert len(art.body) > 500 and art.title
    assert art.url.startswith("https://")
    assert art.published_at is None or art.published_at[:2] in ("19", "20")


def test_mercury_news_date_comes_from_page_metadata() -> None:
    page = SHARED / "feeds" / "html" / "mercurynews.com.2023.01.16.letters-1119.html"
    if not page.exists():
        pytest.skip("../shared/feeds is absent")
    arts, _ = items(page)
    assert arts[0].published_at == "2023-01-17T00:30:41+00:00"
