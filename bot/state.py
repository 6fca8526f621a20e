"""The bot's own database (SQLAlchemy Core): answers behind "More", readers' feedback.

The schema grows by migrations: ``MIGRATIONS[i]`` takes the schema from version ``i`` to
``i + 1`` and runs in the same transaction as the version bump. Later issues append to the
list (subscriptions, delivery log, sources); never edit a migration that has shipped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bot.digests.store import SubscriberStore, create_subscription_tables
from bot.ops.leader import create_lease_table
from bot.sources.registry import SourceRegistry, create_source_tables

log = logging.getLogger(__name__)

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

answers = sa.Table(
    "answers",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("chat_id", sa.BigInteger, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    # URLs of the excerpts in the order shown, so feedback names the article without
    # asking the index again.
    sa.Column("urls", sa.Text, nullable=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False, index=True),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("answer_id", sa.String(16), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("chat_id", sa.BigInteger, nullable=False),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    # One vote per reader and message: pressing again changes the vote.
    sa.UniqueConstraint("answer_id", "position", "user_id", name="feedback_one_vote"),
)


def _v1_answers_and_feedback(conn: Connection) -> None:
    """Answers kept for "More", and feedback presses."""
    answers.create(conn)
    feedback.create(conn)


def _v2_sources(conn: Connection) -> None:
    """The source registry: sources with cursor and health, and the URLs each holds."""
    create_source_tables(conn)


def _v3_subscriptions(conn: Connection) -> None:
    """Subscribers, their topics, the digest delivery log and digest runs."""
    create_subscription_tables(conn)


def _v4_leases(conn: Connection) -> None:
    """The lease that picks the one replica running scheduled jobs."""
    create_lease_table(conn)


# When a later migration alters a table above, keep the old definition for the earlier
# migration's use instead of changing what it creates.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_answers_and_feedback,
    _v2_sources,
    _v3_subscriptions,
    _v4_leases,
]


@dataclass(frozen=True, slots=True)
class SavedAnswer:
    """What "More" and feedback need to know about an answer that was sent."""

    id: str
    chat_id: int
    question: str
    urls: tuple[str, ...]
    created: datetime


@dataclass(frozen=True, slots=True)
class Feedback:
    """One reader's verdict on the excerpts of one message."""

    answer_id: str
    position: int
    chat_id: int
    user_id: int
    question: str
    url: str
    kind: str
    at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


class StateDB:
    """The state database behind one SQLAlchemy URL (SQLite by default)."""

    def __init__(self, url: str, *, max_topics: int = 20) -> None:
        """Check a SQLite file before use, connect and bring the schema up to date;
        ``max_topics`` per chat."""
        if url.startswith("sqlite:///"):
            check_sqlite_file(Path(url.removeprefix("sqlite:///")))
        self.url = url
        # A failed statement's parameters (readers' questions, chat ids) stay out of error
        # messages, hence out of the log and the admins' reports, unless logging at DEBUG.
        hide = not log.isEnabledFor(logging.DEBUG)
        self.engine: Engine = sa.create_engine(url, hide_parameters=hide)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.version = self.migrate()
        self.sources = SourceRegistry(self.engine)
        self.subscribers = SubscriberStore(self.engine, max_topics)

    def migrate(self) -> int:
        """Apply pending migrations, each with its version bump in one transaction."""
        with self.engine.begin() as conn:
            schema_version.create(conn, checkfirst=True)
            rows = conn.execute(sa.select(sa.func.count()).select_from(schema_version))
            if rows.scalar_one() == 0:
                conn.execute(schema_version.insert().values(version=0))
        version = self.current_version()
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"state database {self.url} has schema version {version}, newer than this "
                f"coverbot knows ({len(MIGRATIONS)})"
            )
        for target, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.engine.begin() as conn:
                migration(conn)
                conn.execute(schema_version.update().values(version=target))
            log.info("state database migrated to version %d", target)
        return len(MIGRATIONS)

    def current_version(self) -> int:
        """The schema version recorded in the database."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(schema_version.c.version)).scalar_one())

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    # -- answers -----------------------------------------------------------------------

    def save_answer(self, chat_id: int, question: str, urls: tuple[str, ...]) -> str:
        """Keep an answer for its buttons; returns its short id."""
        answer_id = secrets.token_urlsafe(6)
        with self.engine.begin() as conn:
            conn.execute(
                answers.insert().values(
                    id=answer_id,
                    chat_id=chat_id,
                    question=question,
                    urls=json.dumps(list(urls)),
                    created=_now(),
                )
            )
        return answer_id

    def get_answer(self, answer_id: str) -> SavedAnswer | None:
        """A saved answer, or None when unknown or pruned."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(answers).where(answers.c.id == answer_id)).first()
        if row is None:
            return None
        return SavedAnswer(
            row.id, row.chat_id, row.question, tuple(json.loads(row.urls)), row.created
        )

    def prune_answers(self, older_than: timedelta) -> int:
        """Forget answers older than ``older_than``; their buttons then say so."""
        with self.engine.begin() as conn:
            result = conn.execute(answers.delete().where(answers.c.created < _now() - older_than))
        return int(result.rowcount or 0)

    # -- feedback ----------------------------------------------------------------------

    def record_feedback(
        self, answer_id: str, position: int, user_id: int, kind: str
    ) -> Feedback | None:
        """Store a reader's vote on the message showing excerpts from ``position``;
        None when the answer is unknown."""
        saved = self.get_answer(answer_id)
        if saved is None or not 0 <= position < len(saved.urls):
            return None
        item = Feedback(
            answer_id,
            position,
            saved.chat_id,
            user_id,
            saved.question,
            saved.urls[position],
            kind,
            _now(),
        )
        with self.engine.begin() as conn:
            conn.execute(
                feedback.delete().where(
                    feedback.c.answer_id == answer_id,
                    feedback.c.position == position,
                    feedback.c.user_id == user_id,
                )
            )
            conn.execute(feedback.insert().values(**_fields(item)))
        return item

    def feedback(self, limit: int = 100) -> list[Feedback]:
        """Latest feedback first (for admins)."""
        query = sa.select(feedback).order_by(feedback.c.at.desc(), feedback.c.id.desc())
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [
            Feedback(r.answer_id, r.position, r.chat_id, r.user_id, r.question, r.url, r.kind, r.at)
            for r in rows
        ]


def _fields(item: Feedback) -> dict[str, object]:
    return {name: getattr(item, name) for name in Feedback.__dataclass_fields__}


class StateDamaged(RuntimeError):
    """The state database file is not a healthy SQLite database; the message says the fix."""


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_sqlite_file(path: Path) -> None:
    """Refuse a damaged state database instead of silently starting a new, empty one.

    A missing file is created (and given its schema at once, so an empty file is never
    coverbot's own); an existing one must be a SQLite file that passes `PRAGMA quick_check`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fix = (
        "restore it from a backup (see README, Operating safely), or move it away to start "
        "with no subscribers"
    )
    if not path.exists():
        return
    with open(path, "rb") as fh:
        header = fh.read(len(_SQLITE_HEADER))
    if not header:  # never left empty by coverbot: it writes its schema on creation
        raise StateDamaged(f"state database {path} is empty (0 bytes): {fix}")
    if header != _SQLITE_HEADER:
        raise StateDamaged(f"state database {path} is not a SQLite database: {fix}")
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
            result = [row[0] for row in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise StateDamaged(f"state database {path} cannot be read ({exc}): {fix}") from exc
    if result != ["ok"]:
        raise StateDamaged(f"state database {path} is damaged ({result[0][:120]}): {fix}")


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL: the bot reads while a writer commits; busy_timeout: wait instead of failing.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
