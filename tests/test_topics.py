"""Topics readers follow: normalising them, first-seen times, and matching new articles."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.topic_match import ARTICLES, TABLE, load_table, total
from index.articles import Article
from index.coverage import CoverageIndex, IndexSettings
from index.embeddings import Embedder
from index.importers import read_paths
from index.lexical import tokenize
from index.schema import SCHEMA_VERSION
from index.store import ArticleStore, StoredArticle
from index.topics import TopicMatch, TopicSettings, normalize_topic

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SAMPLE_URL = "https://sample.coverbot.example/2025/"
FIXTURE_URL = "https://fixtures.coverbot.example/topics/2025/"


@pytest.fixture(scope="module")
def topic_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> CoverageIndex:
    """The sample coverage and the topic fixtures: the articles of the benchmark table."""
    index = CoverageIndex(tmp_path_factory.mktemp("topics"), IndexSettings(), embedder=embedder)
    index.import_articles(a for a in read_paths(ARTICLES) if isinstance(a, Article))
    return index


@pytest.fixture(scope="module")
def everything(topic_index: CoverageIndex) -> list[StoredArticle]:
    return topic_index.arrivals(EPOCH)


def matches(index: CoverageIndex, topic: str, articles: list[StoredArticle]) -> list[TopicMatch]:
    return index.match_topics([topic], articles)[topic]


# -- normalize_topic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Witkoff ", "Witkoff"),
        ("ceasefire \n\t talks", "ceasefire talks"),
        ("Al-Shifa", "Al-Shifa"),
        ("UN 2720", "UN 2720"),
        ("غزة", "غزة"),
        (
            "hospitals running out of fuel in the north",
            "hospitals running out of fuel in the north",
        ),
    ],
)
def test_normalize_topic_accepts(text: str, expected: str) -> None:
    assert normalize_topic(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        (" \n\t ", "empty"),
        ("x" * 81, "81 characters"),
        ("!!! ??? …", "letters or digits"),
        ("one two three four five six seven eight nine", "at most 8"),
        ("the who", "only common words"),
    ],
)
def test_normalize_topic_rejects_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_topic(text)


# -- first_seen and arrivals ----------------------------------------------------------------


def article(n: int, body: str = "") -> Article:
    return Article(
        url=f"https://example.org/news/{n}",
        title=f"Story {n}",
        body=body or f"The council met on day {n} to discuss the water network.",
        published_at="2025-05-01T10:00:00+00:00",
    )


def test_first_seen_survives_update_and_rebuild(tmp_path: Path, embedder: Embedder) -> None:
    index = CoverageIndex(tmp_path, IndexSettings(), embedder=embedder)
    index.import_articles([article(1), article(2)])
    before = {s.key: s.first_seen for s in index.arrivals(EPOCH)}
    edited = article(1, "The council met again and changed its plans for the water network.")
    report = index.import_articles([edited])
    assert report.updated == 1
    stored = index.store.get(edited.key)
    assert stored is not None and stored.article.body == edited.body
    assert stored.first_seen == before[edited.key]

    fresh, report = index.rebuild()
    assert report.added == 2 and fresh.generation != index.generation
    assert {s.key: s.first_seen for s in fresh.arrivals(EPOCH)} == before
    # After the rebuild a new article is the only arrival since the last known one.
    fresh.import_articles([article(3)])
    assert [s.article.url for s in fresh.arrivals(max(before.values()))] == [article(3).url]


SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE articles (
    key TEXT PRIMARY KEY, url TEXT NOT NULL UNIQUE, title TEXT NOT NULL, body TEXT NOT NULL,
    published_at TEXT, updated_at TEXT, author TEXT, source TEXT,
    tags TEXT NOT NULL DEFAULT '[]', category TEXT, ext_id TEXT,
    content_hash TEXT NOT NULL, indexed_at TEXT NOT NULL
);
CREATE TABLE passages (
    id TEXT PRIMARY KEY, article_key TEXT NOT NULL REFERENCES articles (key) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    sentences TEXT NOT NULL
);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO articles (key, url, title, body, content_hash, indexed_at)
VALUES ('k1', 'https://example.org/old', 'Old', 'An old story.', 'h', '2024-06-01T08:30:00+00:00');
"""


def test_an_old_store_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "articles.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_1)
    store = ArticleStore(path)
    old = store.get("k1")
    assert old is not None
    assert old.first_seen == datetime(2024, 6, 1, 8, 30, tzinfo=UTC)
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    store.close()

    reopened = ArticleStore(path)  # a second open changes nothing
    assert [s.key for s in reopened.arrivals(datetime(2024, 6, 1, 8, 29, tzinfo=UTC))] == ["k1"]
    with sqlite3.connect(path) as conn:
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(articles)")}
    assert "articles_first_seen" in indexes
    reopened.save_articles([(article(1), [])])
    assert len(reopened.arrivals(datetime(2024, 6, 1, 8, 30, tzinfo=UTC))) == 1


def test_arrivals_window_is_open_at_since_and_closed_at_until(tmp_path: Path) -> None:
    store = ArticleStore(tmp_path / "articles.sqlite3")
    store.save_articles([(article(1), [])])
    store.save_articles([(article(2), [])])
    first, second = (store.get(article(n).key) for n in (1, 2))
    assert first is not None and second is not None
    assert first.first_seen < second.first_seen
    assert first.first_seen.tzinfo is not None

    tick = timedelta(microseconds=1)
    assert [s.key for s in store.arrivals(first.first_seen - tick)] == [second.key, first.key]
    assert [s.key for s in store.arrivals(first.first_seen)] == [second.key]
    assert [s.key for s in store.arrivals(EPOCH, until=first.first_seen)] == [first.key]
    assert store.arrivals(second.first_seen) == []
    # Any time zone is accepted; naive times are refused rather than guessed.
    in_gaza = first.first_seen.astimezone(ZoneInfo("Asia/Gaza"))
    assert [s.key for s in store.arrivals(EPOCH, until=in_gaza)] == [first.key]
    with pytest.raises(ValueError, match="timezone"):
        store.arrivals(datetime(2025, 1, 1))


# -- matching -------------------------------------------------------------------------------


def test_words_match_stems_and_any_case(
    topic_index: CoverageIndex, everything: list[StoredArticle]
) -> None:
    for topic in ("aid convoy", "AID CONVOYS"):
        found = {m.url: m for m in matches(topic_index, topic, everything)}
        hit = found[
            f"{SAMPLE_URL}01/27/aid-convoys-surge-through-kerem-shalom-in-first-week-of-truce/"
        ]
        assert hit.how == "words"
        assert hit.topic == topic
    witkoff = matches(topic_index, "witkoff", everything)
    assert {m.how for m in witkoff} == {"words"}
    assert len(witkoff) == 3
    assert all("Witkoff" in m.excerpt for m in witkoff)


def test_words_of_a_name_must_stand_together(
    topic_index: CoverageIndex, everything: list[StoredArticle]
) -> None:
    # The Rafah article has a "Red Crescent" and a "crossing" (stem "cross"), far apart.
    found = {m.url: m.how for m in matches(topic_index, "Red Cross", everything)}
    rafah = f"{SAMPLE_URL}04/06/aid-trucks-wait-at-rafah-as-halt-on-deliveries-enters-second-month/"
    assert found.get(rafah) != "words"
    assert (
        found[
            f"{SAMPLE_URL}02/16/three-hostages-freed-and-369-prisoners-released-in-sixth-exchange/"
        ]
        == "words"
    )
    anywhere = topic_index.match_topics(
        ["Red Cross"], everything, TopicSettings(words_span=None, meaning_threshold=1.0)
    )
    assert rafah in {m.url for m in anywhere["Red Cross"]}


def test_meaning_finds_a_paraphrased_theme(
    topic_index: CoverageIndex, everything: list[StoredArticle]
) -> None:
    # The article says "fishermen", "boats", "nets" and "sardines", never "fishing".
    fishing = {m.url: m for m in matches(topic_index, "fishing", everything)}
    boats = fishing[f"{FIXTURE_URL}02/27/gaza-fishermen-return-to-the-sea-with-patched-boats"]
    assert boats.how == "meaning"
    assert boats.score >= TopicSettings().meaning_threshold
    # The olive-harvest article tells of "attacks by settlers": near, but below the default.
    olives = f"{FIXTURE_URL}10/18/west-bank-farmers-report-attacks-during-olive-harvest"
    assert olives not in {m.url for m in matches(topic_index, "settler violence", everything)}
    looser = topic_index.match_topics(
        ["settler violence"], everything, TopicSettings(meaning_threshold=0.2)
    )
    assert {m.url: m.how for m in looser["settler violence"]}[olives] == "meaning"


def test_unrelated_topics_match_nothing(
    topic_index: CoverageIndex, everything: list[StoredArticle]
) -> None:
    found = topic_index.match_topics(["Taylor Swift", "bitcoin", "earthquake"], everything)
    assert found == {"Taylor Swift": [], "bitcoin": [], "earthquake": []}


def test_every_topic_is_a_key_and_is_matched_once(
    topic_index: CoverageIndex, everything: list[StoredArticle]
) -> None:
    assert topic_index.match_topics([], everything) == {}
    assert topic_index.match_topics(["Witkoff", "UNRWA"], []) == {"Witkoff": [], "UNRWA": []}
    twice = topic_index.match_topics(["Jenin", "Jenin"], everything + everything)
    assert list(twice) == ["Jenin"] and len(twice["Jenin"]) == 1
    match = twice["Jenin"][0]
    stored = {a.article.url: a for a in everything}[match.url]
    assert match.first_seen == stored.first_seen
    assert match.published == datetime(2025, 3, 28, 16, 25, tzinfo=UTC)


def assert_verbatim(match: TopicMatch, body: str, limit: int) -> None:
    """An excerpt is cut from the body, at most `limit` long, at word or sentence bounds."""
    start = body.find(match.excerpt)
    assert match.excerpt and start >= 0, match
    end = start + len(match.excerpt)
    assert len(match.excerpt) <= limit
    assert start == 0 or body[start - 1].isspace(), match.excerpt
    assert end == len(body) or body[end].isspace(), match.excerpt


def test_excerpts_are_verbatim_and_show_the_words(
    topic_index: CoverageIndex, everything: list[StoredArticle]
) -> None:
    bodies = {s.article.url: s.article.body for s in everything}
    topics = [row.topic for row in load_table(TABLE)]
    for topic, found in topic_index.match_topics(topics, everything).items():
        for match in found:
            assert_verbatim(match, bodies[match.url], 280)
            if match.how == "words":
                assert set(tokenize(topic)) & set(tokenize(match.excerpt)), (topic, match)
    short = topic_index.match_topics(topics, everything, TopicSettings(excerpt_chars=60))
    for found in short.values():
        for match in found:
            assert_verbatim(match, bodies[match.url], 60)


@pytest.mark.slow  # 20 generated topics matched with the real model
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_topic_gets_verbatim_excerpts(
    topic_index: CoverageIndex, everything: list[StoredArticle], data: st.DataObject
) -> None:
    source = data.draw(st.sampled_from(everything)).article.body.split()
    start = data.draw(st.integers(0, len(source) - 1))
    topic = " ".join(source[start : start + data.draw(st.integers(1, 4))])
    limit = data.draw(st.integers(40, 280))
    bodies = {s.article.url: s.article.body for s in everything}
    found = topic_index.match_topics([topic], everything, TopicSettings(excerpt_chars=limit))
    for match in found[topic]:
        assert_verbatim(match, bodies[match.url], limit)


def test_quality_floor_on_the_fixture_table(
    topic_index: CoverageIndex, everything: list[StoredArticle]
) -> None:
    rows = load_table(TABLE)
    topics = [r.topic for r in rows]
    found = topic_index.match_topics(topics, everything)
    both = total(rows, [{m.url for m in found[t]} for t in topics])
    words = total(rows, [{m.url for m in found[t] if m.how == "words"} for t in topics])
    # Floors, not targets: P 98.0 / R 71.6 together and R 70.1 by words alone when this
    # was written (benchmarks/topic_match.py). Meaning must add what words miss.
    assert both.precision >= 0.90 and both.recall >= 0.68, both.line()
    assert both.tp > words.tp, (both.line(), words.line())
