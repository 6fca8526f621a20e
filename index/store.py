"""Articles and passages in an SQLite file beside the vector index."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .articles import Article
from .passages import Passage, Span
from .schema import SCHEMA, SCHEMA_VERSION, upgrade
from .sentence_store import SentenceVectorReads, blob
from .storage import storage_error

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """An article as stored, with its internal key."""

    key: str
    article: Article
    content_hash: str
    indexed_at: str
    # When the article's key was first saved; kept through updates and rebuilds.
    first_seen: datetime


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _stamp(moment: datetime) -> str:
    """A first_seen value: UTC to the microsecond, so arrival windows compare as text."""
    if moment.tzinfo is None:
        raise ValueError("first_seen times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _row_to_article(row: sqlite3.Row) -> StoredArticle:
    article = Article(
        url=row["url"],
        title=row["title"],
        body=row["body"],
        published_at=row["published_at"],
        updated_at=row["updated_at"],
        author=row["author"],
        source=row["source"],
        tags=tuple(json.loads(row["tags"])),
        category=row["category"],
        id=row["ext_id"],
    )
    first_seen = datetime.fromisoformat(row["first_seen"] or row["indexed_at"])
    return StoredArticle(row["key"], article, row["content_hash"], row["indexed_at"], first_seen)


def _row_to_passage(row: sqlite3.Row) -> Passage:
    spans = tuple(Span(s, e) for s, e in json.loads(row["sentences"]))
    return Passage(row["id"], row["article_key"], row["ordinal"], row["start"], row["end"], spans)


class ArticleStore(SentenceVectorReads):
    """SQLite store; one connection per thread, WAL so readers never wait for a writer."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # this user's only; SQLite gives -wal/-shm the same
            os.close(os.open(path, os.O_CREAT | os.O_RDONLY, 0o600))
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        self._local = threading.local()
        # Set when the files cannot be written (read-only data dir): reads still work.
        self.read_only = False
        conn = self._conn()
        if self._schema_version(conn) != str(SCHEMA_VERSION) and not self.read_only:
            conn.executescript(SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            upgrade(conn)

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> str | None:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else str(row[0])

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        if not self.read_only:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                conn.row_factory = sqlite3.Row
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                # A WAL store in a read-only folder cannot even be opened for reading.
                cannot_open = any(t in str(exc) for t in ("unable to open", "disk I/O error"))
                if not self.path.is_file() or not (cannot_open or storage_error(exc, self.path)):
                    raise
                log.warning("%s cannot be written (%s): reading it as it is", self.path, exc)
                self.read_only = True
        # Nothing can change a read-only store, so SQLite may skip its WAL locking.
        uri = self.path.resolve().as_uri() + "?immutable=1"
        conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- meta -------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A stored setting, or None."""
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting."""
        self._conn().execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def revision(self) -> int:
        """Bumped on every change of passages, so caches built from them know they are stale."""
        return int(self.get_meta("revision") or 0)

    # -- articles ---------------------------------------------------------------------

    def get(self, key: str) -> StoredArticle | None:
        """An article by key."""
        row = self._conn().execute("SELECT * FROM articles WHERE key = ?", (key,)).fetchone()
        return None if row is None else _row_to_article(row)

    def get_many(self, keys: Iterable[str]) -> dict[str, StoredArticle]:
        """Articles by key; missing keys are left out."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, StoredArticle] = {}
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            for row in self._conn().execute(f"SELECT * FROM articles WHERE key IN ({marks})", part):
                stored = _row_to_article(row)
                out[stored.key] = stored
        return out

    def content_hash(self, key: str) -> str | None:
        """The stored content hash of an article, or None when it is not stored."""
        row = (
            self._conn()
            .execute("SELECT content_hash FROM articles WHERE key = ?", (key,))
            .fetchone()
        )
        return None if row is None else str(row[0])

    def passage_ids(self, article_key: str) -> list[str]:
        """Ids of an article's stored passages."""
        return [
            r[0]
            for r in self._conn().execute(
                "SELECT id FROM passages WHERE article_key = ? ORDER BY ordinal", (article_key,)
            )
        ]

    def save_articles(
        self,
        items: Sequence[tuple[Article, Sequence[Passage]]],
        sentence_vectors: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Insert or replace articles and all their passages (with their sentences' vectors,
        by passage id) in one transaction."""
        vectors = sentence_vectors or {}
        conn = self._conn()
        now = _now()
        first_seen = _stamp(datetime.now(UTC))
        conn.execute("BEGIN IMMEDIATE")
        try:
            for article, passages in items:
                conn.execute("DELETE FROM passages WHERE article_key = ?", (article.key,))
                # first_seen is written on the first insert only: an edit is not an arrival.
                conn.execute(
                    "INSERT INTO articles (key, url, title, body, published_at, updated_at, "
                    "author, source, tags, category, ext_id, content_hash, indexed_at, "
                    "first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET "
                    "url=excluded.url, title=excluded.title, body=excluded.body, "
                    "published_at=excluded.published_at, updated_at=excluded.updated_at, "
                    "author=excluded.author, source=excluded.source, tags=excluded.tags, "
                    "category=excluded.category, ext_id=excluded.ext_id, "
                    "content_hash=excluded.content_hash, indexed_at=excluded.indexed_at",
                    (
                        article.key,
                        article.url,
                        article.title,
                        article.body,
                        article.published_at,
                        article.updated_at,
                        article.author,
                        article.source,
                        json.dumps(list(article.tags), ensure_ascii=False),
                        article.category,
                        article.id,
                        article.content_hash,
                        now,
                        first_seen,
                    ),
                )
                conn.executemany(
                    'INSERT INTO passages (id, article_key, ordinal, start, "end", sentences, '
                    "vectors) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            p.id,
                            p.article_key,
                            p.ordinal,
                            p.start,
                            p.end,
                            json.dumps([[s.start, s.end] for s in p.sentences]),
                            blob(vectors.get(p.id)),
                        )
                        for p in passages
                    ],
                )
            self._bump(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def delete_article(self, key: str) -> list[str]:
        """Remove an article; returns the ids of the passages it had."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = [
                r[0] for r in conn.execute("SELECT id FROM passages WHERE article_key = ?", (key,))
            ]
            conn.execute("DELETE FROM articles WHERE key = ?", (key,))
            self._bump(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return ids

    def _bump(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('revision', '1') ON CONFLICT (key) "
            "DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
        )

    # -- passages ---------------------------------------------------------------------

    def get_passages(self, ids: Iterable[str]) -> dict[str, Passage]:
        """Passages by id; missing ids (stale vectors) are left out."""
        ids = list(dict.fromkeys(ids))
        out: dict[str, Passage] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            for row in self._conn().execute(f"SELECT * FROM passages WHERE id IN ({marks})", part):
                out[row["id"]] = _row_to_passage(row)
        return out

    def article_passages(self, article_key: str) -> list[Passage]:
        """All passages of one article in order."""
        rows = self._conn().execute(
            "SELECT * FROM passages WHERE article_key = ? ORDER BY ordinal", (article_key,)
        )
        return [_row_to_passage(r) for r in rows]

    def iter_passage_texts(self) -> Iterator[tuple[str, str, str]]:
        """(passage id, article title, passage text) for every passage, in a stable order."""
        rows = self._conn().execute(
            'SELECT p.id, a.title, substr(a.body, p.start + 1, p."end" - p.start) '
            "FROM passages p JOIN articles a ON a.key = p.article_key ORDER BY p.id"
        )
        yield from rows

    def iter_articles(self) -> Iterator[StoredArticle]:
        """Every stored article, in key order, read in pages."""
        last = ""
        while True:
            rows = (
                self._conn()
                .execute("SELECT * FROM articles WHERE key > ? ORDER BY key LIMIT 500", (last,))
                .fetchall()
            )
            if not rows:
                return
            for row in rows:
                yield _row_to_article(row)
            last = rows[-1]["key"]

    def all_article_keys(self) -> list[str]:
        """Every stored article key."""
        return [r[0] for r in self._conn().execute("SELECT key FROM articles ORDER BY key")]

    def all_passage_ids(self) -> set[str]:
        """Every stored passage id."""
        return {r[0] for r in self._conn().execute("SELECT id FROM passages")}

    def passage_id_sample(self, limit: int) -> list[str]:
        """Up to `limit` passage ids, the same ones on every call for the same store.

        Ids begin with a hash of the article's URL, so the first ones in id order are
        passages of articles spread evenly over the whole coverage.
        """
        rows = self._conn().execute("SELECT id FROM passages ORDER BY id LIMIT ?", (limit,))
        return [r[0] for r in rows]

    # -- listing ----------------------------------------------------------------------

    def latest(self, limit: int = 10) -> list[Article]:
        """Newest articles by publication date (undated ones last)."""
        rows = self._conn().execute(
            "SELECT * FROM articles ORDER BY published_at IS NULL, published_at DESC, "
            "indexed_at DESC LIMIT ?",
            (limit,),
        )
        return [_row_to_article(r).article for r in rows]

    def arrivals(self, since: datetime, until: datetime | None = None) -> list[StoredArticle]:
        """Articles first seen in (since, until], newest first; `until` defaults to now."""
        rows = self._conn().execute(
            "SELECT * FROM articles WHERE first_seen > ? AND first_seen <= ? "
            "ORDER BY first_seen DESC, key",
            (_stamp(since), _stamp(until or datetime.now(UTC))),
        )
        return [_row_to_article(r) for r in rows]

    def copy_first_seen(self, other: ArticleStore) -> None:
        """Take each article's first_seen from `other` (the generation a rebuild started from)."""
        times = [
            (r[0], r[1]) for r in other._conn().execute("SELECT first_seen, key FROM articles")
        ]
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("UPDATE articles SET first_seen = ? WHERE key = ?", times)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def counts(self) -> dict[str, int]:
        """Numbers of articles, passages (and of those without sentence vectors) and
        distinct sources."""
        conn = self._conn()
        passages = conn.execute("SELECT count(*) FROM passages").fetchone()[0]
        try:
            unranked = conn.execute("SELECT count(*) FROM passages WHERE vectors IS NULL")
            without = unranked.fetchone()[0]
        except sqlite3.OperationalError:  # a schema-2 store read as it is
            without = passages
        return {
            "articles": conn.execute("SELECT count(*) FROM articles").fetchone()[0],
            "passages": passages,
            "without_sentence_vectors": without,
            "sources": conn.execute(
                "SELECT count(DISTINCT source) FROM articles WHERE source IS NOT NULL"
            ).fetchone()[0],
        }
