"""The article store's SQLite schema and its upgrades from older coverbots."""

from __future__ import annotations

import contextlib
import sqlite3

SCHEMA_VERSION = 3

# passages.vectors: float16 rows, one per sentence of the passage, the model's vector of the
# headline and the sentence (the excerpt ranker's input, index/excerpts.py); NULL in stores
# written before schema 3 until `coverbot reindex`.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    key TEXT PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    published_at TEXT,
    updated_at TEXT,
    author TEXT,
    source TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    category TEXT,
    ext_id TEXT,
    content_hash TEXT NOT NULL,
    indexed_at TEXT NOT NULL,
    first_seen TEXT
);
CREATE INDEX IF NOT EXISTS articles_published ON articles (published_at);
CREATE TABLE IF NOT EXISTS passages (
    id TEXT PRIMARY KEY,
    article_key TEXT NOT NULL REFERENCES articles (key) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    sentences TEXT NOT NULL,
    vectors BLOB
);
CREATE INDEX IF NOT EXISTS passages_article ON passages (article_key, ordinal);
"""


def upgrade(conn: sqlite3.Connection) -> None:
    """Bring a store made by an older coverbot up to this schema, in place."""
    columns = {r["name"] for r in conn.execute("PRAGMA table_info(articles)")}
    if "first_seen" not in columns:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have upgraded the store while this one waited for the lock.
            columns = {r["name"] for r in conn.execute("PRAGMA table_info(articles)")}
            if "first_seen" not in columns:
                conn.execute("ALTER TABLE articles ADD COLUMN first_seen TEXT")
                # Schema 1 kept only the last indexing time ("...T12:00:00+00:00"): the best
                # known arrival, written in first_seen's microsecond form.
                conn.execute(
                    "UPDATE articles SET first_seen = substr(indexed_at, 1, 19) || "
                    "'.000000+00:00' WHERE first_seen IS NULL"
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    conn.execute("CREATE INDEX IF NOT EXISTS articles_first_seen ON articles (first_seen)")
    passage_columns = {r["name"] for r in conn.execute("PRAGMA table_info(passages)")}
    if "vectors" not in passage_columns:
        # Schema 3: sentence vectors. Added empty; `coverbot reindex` fills them, and until then
        # excerpts of those articles are chosen as before (index/answer.py).
        with contextlib.suppress(sqlite3.OperationalError):  # another process added it first
            conn.execute("ALTER TABLE passages ADD COLUMN vectors BLOB")
    conn.execute(
        "UPDATE meta SET value = ? WHERE key = 'schema_version' AND CAST(value AS INTEGER) < ?",
        (str(SCHEMA_VERSION), SCHEMA_VERSION),
    )
