"""Where the bot's sources live: the `sources` and `source_urls` tables of the state database.

A source row holds what to fetch (kind, URL, options), where the last fetch got to (cursor
and HTTP validators, written only after its articles were imported) and its health. The
URLs a source currently holds let a refresh remove articles the source no longer lists.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bot.types import SourceRecord

log = logging.getLogger(__name__)

metadata = sa.MetaData()

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("url", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False, default=""),
    sa.Column("options", sa.Text, nullable=False, default="{}"),
    # None: seeded from the config file; else the admin's Telegram id (0 for the CLI).
    sa.Column("added_by", sa.BigInteger, nullable=True),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("cursor", sa.Text, nullable=False, default="{}"),
    sa.Column("validators", sa.Text, nullable=False, default="{}"),
    sa.Column("refreshes", sa.Integer, nullable=False, default=0),
    sa.Column("last_refresh_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
)

source_urls = sa.Table(
    "source_urls",
    metadata,
    sa.Column(
        "source_id",
        sa.Integer,
        sa.ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("url", sa.Text, primary_key=True),
    sa.Index("source_urls_url", "url"),
)


def create_source_tables(conn: Connection) -> None:
    """Migration 2: the source registry."""
    sources.create(conn)
    source_urls.create(conn)


# What a partial fetch achieved: its cursor, HTTP validators and the URLs it delivered.
Progress = tuple[dict[str, Any], dict[str, Any], Iterable[str]]


class DuplicateSource(ValueError):
    """A source with this URL is already registered."""


def _utc(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _record(row: Any, articles: int) -> SourceRecord:
    return SourceRecord(
        id=row.id,
        kind=row.kind,
        url=row.url,
        name=row.name,
        added_by=row.added_by,
        added_at=_utc(row.added_at) or datetime.now(UTC),
        enabled=bool(row.enabled),
        options=json.loads(row.options or "{}"),
        cursor=json.loads(row.cursor or "{}"),
        validators=json.loads(row.validators or "{}"),
        refreshes=row.refreshes,
        last_refresh_at=_utc(row.last_refresh_at),
        last_success_at=_utc(row.last_success_at),
        last_error=row.last_error,
        last_error_at=_utc(row.last_error_at),
        consecutive_failures=row.consecutive_failures,
        next_attempt_at=_utc(row.next_attempt_at),
        articles=articles,
    )


class SourceRegistry:
    """Sources, their cursors, health and held URLs, over the state database's engine."""

    def __init__(self, engine: Engine) -> None:
        """Use the tables created by migration 2."""
        self.engine = engine

    def add(
        self,
        kind: str,
        url: str,
        *,
        name: str = "",
        options: dict[str, Any] | None = None,
        added_by: int | None = None,
    ) -> SourceRecord:
        """Register a source; DuplicateSource if its URL is already there."""
        with self.engine.begin() as conn:
            if conn.execute(sa.select(sources.c.id).where(sources.c.url == url)).first():
                raise DuplicateSource(f"{url} is already a source")
            result = conn.execute(
                sources.insert().values(
                    kind=kind,
                    url=url,
                    name=name,
                    options=json.dumps(options or {}),
                    added_by=added_by,
                    added_at=datetime.now(UTC),
                    enabled=True,
                    cursor="{}",
                    validators="{}",
                    refreshes=0,
                    consecutive_failures=0,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            source_id = int(key[0])
        record = self.get(source_id)
        assert record is not None
        return record

    def seed(self, entries: Iterable[tuple[str, str, str]]) -> list[SourceRecord]:
        """Add (kind, url, name) entries from the config whose URL is not registered yet."""
        added = []
        for kind, url, name in entries:
            try:
                added.append(self.add(kind, url, name=name))
            except DuplicateSource:
                continue
            log.info("source %s (%s) added from the config", url, kind)
        return added

    def records(self, ids: Iterable[int] | None = None) -> list[SourceRecord]:
        """Registered sources in id order (only `ids` when given)."""
        counts = (
            sa.select(source_urls.c.source_id, sa.func.count().label("n"))
            .group_by(source_urls.c.source_id)
            .subquery()
        )
        query = (
            sa.select(sources, sa.func.coalesce(counts.c.n, 0).label("held"))
            .outerjoin(counts, counts.c.source_id == sources.c.id)
            .order_by(sources.c.id)
        )
        if ids is not None:
            query = query.where(sources.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return [_record(row, row.held) for row in conn.execute(query)]

    def get(self, source_id: int) -> SourceRecord | None:
        """One source, or None."""
        found = self.records([source_id])
        return found[0] if found else None

    def remove(self, source_id: int) -> tuple[SourceRecord, set[str]] | None:
        """Forget a source; returns it with the URLs only it held (None if unknown)."""
        record = self.get(source_id)
        if record is None:
            return None
        only_here = self.held_urls(source_id) - self.held_elsewhere(
            source_id, self.held_urls(source_id)
        )
        with self.engine.begin() as conn:
            conn.execute(source_urls.delete().where(source_urls.c.source_id == source_id))
            conn.execute(sources.delete().where(sources.c.id == source_id))
        return record, only_here

    # -- held URLs -------------------------------------------------------------------------

    def held_urls(self, source_id: int) -> set[str]:
        """Article URLs this source delivered and still lists."""
        query = sa.select(source_urls.c.url).where(source_urls.c.source_id == source_id)
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def held_elsewhere(self, source_id: int, urls: Iterable[str]) -> set[str]:
        """Those of `urls` that another source also holds (so they stay in the index)."""
        wanted = list(urls)
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                query = sa.select(source_urls.c.url).where(
                    source_urls.c.source_id != source_id,
                    source_urls.c.url.in_(wanted[start : start + 500]),
                )
                found.update(conn.execute(query).scalars())
        return found

    def forget_url(self, url: str) -> int:
        """Drop a URL from every source (after /purge); returns how many held it."""
        with self.engine.begin() as conn:
            result = conn.execute(source_urls.delete().where(source_urls.c.url == url))
        return int(result.rowcount or 0)

    # -- outcomes of a refresh -------------------------------------------------------------

    def record_success(
        self,
        source_id: int,
        *,
        cursor: dict[str, Any],
        validators: dict[str, Any],
        added_urls: Iterable[str],
        removed_urls: Iterable[str],
        at: datetime,
    ) -> None:
        """Persist progress after an import committed, and mark the source healthy."""
        with self.engine.begin() as conn:
            self._move_urls(conn, source_id, added_urls, removed_urls)
            conn.execute(
                sources.update()
                .where(sources.c.id == source_id)
                .values(
                    cursor=json.dumps(cursor),
                    validators=json.dumps(validators),
                    refreshes=sources.c.refreshes + 1,
                    last_refresh_at=at,
                    last_success_at=at,
                    consecutive_failures=0,
                    next_attempt_at=None,
                )
            )

    def record_failure(
        self,
        source_id: int,
        *,
        reason: str,
        at: datetime,
        next_attempt_at: datetime | None,
        progress: Progress | None = None,
    ) -> None:
        """Count a failure; `progress` (cursor, validators, added URLs) of a partial fetch
        whose articles were imported is kept too."""
        values: dict[str, Any] = {
            "refreshes": sources.c.refreshes + 1,
            "last_refresh_at": at,
            "last_error": reason[:500],
            "last_error_at": at,
            "consecutive_failures": sources.c.consecutive_failures + 1,
            "next_attempt_at": next_attempt_at,
        }
        with self.engine.begin() as conn:
            if progress is not None:
                cursor, validators, added = progress
                values.update(cursor=json.dumps(cursor), validators=json.dumps(validators))
                self._move_urls(conn, source_id, added, ())
            conn.execute(sources.update().where(sources.c.id == source_id).values(**values))

    @staticmethod
    def _move_urls(
        conn: Connection, source_id: int, added: Iterable[str], removed: Iterable[str]
    ) -> None:
        gone = list(removed)
        for start in range(0, len(gone), 500):
            conn.execute(
                source_urls.delete().where(
                    source_urls.c.source_id == source_id,
                    source_urls.c.url.in_(gone[start : start + 500]),
                )
            )
        held = set(
            conn.execute(
                sa.select(source_urls.c.url).where(source_urls.c.source_id == source_id)
            ).scalars()
        )
        new = [{"source_id": source_id, "url": u} for u in set(added) - held]
        if new:
            conn.execute(source_urls.insert(), new)
