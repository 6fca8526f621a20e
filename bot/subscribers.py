"""Subscribers, their topics and the delivery log: tables of the state database.

The delivery log is what makes digests lose nothing and repeat nothing. Planning a digest
writes one ``deliveries`` row per (reader, article), unique on that pair, in the same
transaction that moves the reader's watermark; sending moves rows from ``due`` through
``sending`` to ``sent``. A run that dies is resumed from the rows still ``due``. A row left
``sending`` by a crash may or may not have reached Telegram (which has no idempotency key);
it becomes ``uncertain`` and is not sent again: a reader may miss that one message, never
get it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .cadence import INSTANT, WEEKLY, Schedule, schedule_of_slot

log = logging.getLogger(__name__)

metadata = sa.MetaData()

DUE, SENDING, SENT, FAILED, UNCERTAIN = "due", "sending", "sent", "failed", "uncertain"

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("chat_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("chat_type", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("cadence", sa.String(8), nullable=False),
    sa.Column("hour", sa.Integer, nullable=False),
    sa.Column("weekday", sa.Integer, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # Articles first seen at or before the watermark were considered for this reader.
    sa.Column("watermark", sa.DateTime(timezone=True), nullable=False),
    # When the last digest was planned (for daily and weekly due times).
    sa.Column("last_digest_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("deactivated_reason", sa.Text, nullable=True),
    sa.Index("subscribers_slot", "active", "cadence", "hour", "weekday", "timezone"),
)

topics = sa.Table(
    "topics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "chat_id",
        sa.BigInteger,
        sa.ForeignKey("subscribers.chat_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("text", sa.Text, nullable=False),
    # Case-folded: "witkoff" and "Witkoff" are one topic.
    sa.Column("folded", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("chat_id", "folded", name="topics_one_per_chat"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("chat_id", sa.BigInteger, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("published_at", sa.Text, nullable=True),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("excerpt", sa.Text, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("message_id", sa.BigInteger, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # Each article reaches a reader at most once, whatever topics and runs found it.
    sa.UniqueConstraint("chat_id", "url", name="deliveries_once"),
    sa.Index("deliveries_status", "status", "chat_id"),
    sa.Index("deliveries_updated", "updated_at"),
)

digest_runs = sa.Table(
    "digest_runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("slot", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("readers", sa.Integer, nullable=False, default=0),
    sa.Column("planned", sa.Integer, nullable=False, default=0),
    sa.Column("sent", sa.Integer, nullable=False, default=0),
    sa.Column("failed", sa.Integer, nullable=False, default=0),
)


def create_subscription_tables(conn: Connection) -> None:
    """Migration 3: subscribers, topics, the delivery log and digest runs."""
    for table in (subscribers, topics, deliveries, digest_runs):
        table.create(conn)


class TooManyTopics(ValueError):
    """The reader follows as many topics as allowed."""


@dataclass(frozen=True, slots=True)
class Topic:
    """One followed topic."""

    id: int
    chat_id: int
    text: str


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A chat that follows topics, with its digest settings and progress."""

    chat_id: int
    chat_type: str
    active: bool
    schedule: Schedule
    created_at: datetime
    watermark: datetime
    last_digest_at: datetime
    deactivated_reason: str | None
    topics: tuple[Topic, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """One article planned for one reader, with the topic that matched and why."""

    url: str
    title: str
    published_at: str | None
    topic: str
    excerpt: str


@dataclass(frozen=True, slots=True)
class DueItem:
    """A delivery row waiting to be sent."""

    id: int
    chat_id: int
    url: str
    title: str
    published_at: str | None
    topic: str
    excerpt: str
    attempts: int


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    """/subscribers: readers by cadence and what the delivery log says about a period."""

    active_by_cadence: dict[str, int]
    inactive: int
    topics: int
    distinct_topics: int
    by_status: dict[str, int]
    last_run_at: datetime | None


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class SubscriberStore:
    """Readers, topics and deliveries over one SQLAlchemy engine."""

    def __init__(self, engine: Engine, max_topics: int = 20) -> None:
        """``max_topics`` per chat."""
        self.engine = engine
        self.max_topics = max_topics

    # -- readers and topics -------------------------------------------------------------

    def follow(
        self,
        chat_id: int,
        chat_type: str,
        text: str,
        default: Schedule,
        now: datetime | None = None,
    ) -> tuple[Topic, bool]:
        """Add a topic (creating or re-activating the reader); (topic, False) if followed
        already. A new or returning reader starts from now: no backlog."""
        now = now or _now()
        folded = text.casefold()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(subscribers.c.active).where(subscribers.c.chat_id == chat_id)
            ).first()
            if row is None:
                conn.execute(
                    subscribers.insert().values(**_new_reader(chat_id, chat_type, default, now))
                )
            elif not row.active:
                conn.execute(_reactivation(chat_id, now))
            existing = conn.execute(
                sa.select(topics.c.id, topics.c.text).where(
                    topics.c.chat_id == chat_id, topics.c.folded == folded
                )
            ).first()
            if existing is not None:
                return Topic(existing.id, chat_id, existing.text), False
            count = conn.execute(
                sa.select(sa.func.count()).where(topics.c.chat_id == chat_id)
            ).scalar_one()
            if count >= self.max_topics:
                raise TooManyTopics(f"you follow {count} topics, the most I keep per chat")
            topic_id = conn.execute(
                topics.insert().values(chat_id=chat_id, text=text, folded=folded, created_at=now)
            ).inserted_primary_key
            assert topic_id is not None
            return Topic(int(topic_id[0]), chat_id, text), True

    def unfollow(self, chat_id: int, topic: int | str) -> Topic | None:
        """Remove a topic by id or by text; the removed topic, or None."""
        condition = (
            topics.c.id == topic if isinstance(topic, int) else topics.c.folded == topic.casefold()
        )
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(topics.c.id, topics.c.text).where(topics.c.chat_id == chat_id, condition)
            ).first()
            if row is None:
                return None
            conn.execute(topics.delete().where(topics.c.id == row.id))
            return Topic(row.id, chat_id, row.text)

    def topics_of(self, chat_id: int) -> list[Topic]:
        """A chat's topics in the order followed."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(topics.c.id, topics.c.text)
                .where(topics.c.chat_id == chat_id)
                .order_by(topics.c.id)
            )
            return [Topic(r.id, chat_id, r.text) for r in rows]

    def get(self, chat_id: int) -> Subscriber | None:
        """One reader with topics, or None."""
        found = self._readers(subscribers.c.chat_id == chat_id)
        return found[0] if found else None

    def set_schedule(
        self, chat_id: int, chat_type: str, schedule: Schedule, now: datetime | None = None
    ) -> Subscriber:
        """Change a reader's cadence, hour, weekday or time zone (creating the reader).

        The next digest comes at the next scheduled time of the new settings; articles
        that arrived since the last digest are kept for it.
        """
        now = now or _now()
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(subscribers.c.chat_id).where(subscribers.c.chat_id == chat_id)
            ).first()
            values = {
                "cadence": schedule.cadence,
                "hour": schedule.hour,
                "weekday": schedule.weekday,
                "timezone": schedule.timezone,
                "last_digest_at": now,
            }
            if exists is None:
                conn.execute(
                    subscribers.insert().values(**_new_reader(chat_id, chat_type, schedule, now))
                )
            else:
                conn.execute(
                    subscribers.update().where(subscribers.c.chat_id == chat_id).values(**values)
                )
        found = self.get(chat_id)
        assert found is not None
        return found

    def active_chat_type(self, chat_id: int) -> str | None:
        """The chat's type ("private", "group", ...) if it is an active reader, else None."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(subscribers.c.chat_type).where(
                    subscribers.c.chat_id == chat_id, subscribers.c.active.is_(True)
                )
            ).scalar()

    def deactivate(self, chat_id: int, reason: str, now: datetime | None = None) -> bool:
        """Stop sending to a chat (blocked, removed from a group); True if it was active."""
        with self.engine.begin() as conn:
            result = conn.execute(
                subscribers.update()
                .where(subscribers.c.chat_id == chat_id, subscribers.c.active.is_(True))
                .values(active=False, deactivated_at=now or _now(), deactivated_reason=reason)
            )
            return bool(result.rowcount)

    def reactivate(self, chat_id: int, now: datetime | None = None) -> bool:
        """The chat is back (unblocked, re-added): resume from now, without a backlog."""
        now = now or _now()
        with self.engine.begin() as conn:
            return bool(conn.execute(_reactivation(chat_id, now)).rowcount)

    def slots(self) -> list[str]:
        """The distinct cadence slots of active readers with topics (one job each)."""
        query = (
            sa.select(
                subscribers.c.cadence,
                subscribers.c.hour,
                subscribers.c.weekday,
                subscribers.c.timezone,
            )
            .where(subscribers.c.active.is_(True))
            .where(sa.exists().where(topics.c.chat_id == subscribers.c.chat_id))
            .distinct()
        )
        with self.engine.connect() as conn:
            return sorted(
                {
                    Schedule(r.cadence, r.hour, r.weekday, r.timezone).slot
                    for r in conn.execute(query)
                }
            )

    def readers_in(self, slot: str | None) -> list[Subscriber]:
        """Active readers with topics, of one slot (None: all slots)."""
        condition: sa.ColumnElement[bool] = subscribers.c.active.is_(True)
        if slot is not None:
            s = schedule_of_slot(slot)
            condition &= subscribers.c.cadence == s.cadence
            if s.cadence != INSTANT:
                condition &= (subscribers.c.hour == s.hour) & (subscribers.c.timezone == s.timezone)
            if s.cadence == WEEKLY:
                condition &= subscribers.c.weekday == s.weekday
        return [r for r in self._readers(condition) if r.topics]

    def _readers(self, condition: sa.ColumnElement[bool]) -> list[Subscriber]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(subscribers).where(condition).order_by(subscribers.c.chat_id)
            ).all()
            ids = [r.chat_id for r in rows]
            by_chat: dict[int, list[Topic]] = {i: [] for i in ids}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for t in conn.execute(
                    sa.select(topics.c.id, topics.c.chat_id, topics.c.text)
                    .where(topics.c.chat_id.in_(chunk))
                    .order_by(topics.c.id)
                ):
                    by_chat[t.chat_id].append(Topic(t.id, t.chat_id, t.text))
        return [
            Subscriber(
                chat_id=r.chat_id,
                chat_type=r.chat_type,
                active=r.active,
                schedule=Schedule(r.cadence, r.hour, r.weekday, r.timezone),
                created_at=_aware(r.created_at),
                watermark=_aware(r.watermark),
                last_digest_at=_aware(r.last_digest_at),
                deactivated_reason=r.deactivated_reason,
                topics=tuple(by_chat[r.chat_id]),
            )
            for r in rows
        ]

    # -- the delivery log ----------------------------------------------------------------

    def start_run(self, run_id: str, slot: str, now: datetime) -> None:
        """Record that a digest run began."""
        with self.engine.begin() as conn:
            conn.execute(digest_runs.insert().values(id=run_id, slot=slot, started_at=now))

    def finish_run(self, run_id: str, readers: int, planned: int, sent: int, failed: int) -> None:
        """Record a run's totals."""
        with self.engine.begin() as conn:
            conn.execute(
                digest_runs.update()
                .where(digest_runs.c.id == run_id)
                .values(
                    finished_at=_now(), readers=readers, planned=planned, sent=sent, failed=failed
                )
            )

    def plan(
        self,
        chat_id: int,
        run_id: str,
        items: Sequence[PlannedItem],
        cutoff: datetime,
        now: datetime,
    ) -> int:
        """Write a reader's due deliveries and move its watermark to ``cutoff``, in one
        transaction; articles already logged for the reader are skipped. Returns how
        many rows were added."""
        added = 0
        with self.engine.begin() as conn:
            if items:
                logged = set(
                    conn.execute(
                        sa.select(deliveries.c.url).where(
                            deliveries.c.chat_id == chat_id,
                            deliveries.c.url.in_([i.url for i in items]),
                        )
                    ).scalars()
                )
                rows = [
                    {
                        "run_id": run_id,
                        "chat_id": chat_id,
                        "url": i.url,
                        "title": i.title,
                        "published_at": i.published_at,
                        "topic": i.topic,
                        "excerpt": i.excerpt,
                        "status": DUE,
                        "attempts": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in items
                    if i.url not in logged
                ]
                if rows:
                    conn.execute(deliveries.insert(), rows)
                added = len(rows)
            conn.execute(
                subscribers.update()
                .where(subscribers.c.chat_id == chat_id)
                .values(watermark=cutoff, last_digest_at=now)
            )
        return added

    def due_chats(self, after: int | None = None, limit: int = 500) -> list[int]:
        """Active chats with deliveries waiting, in chat id order after ``after``."""
        query = (
            sa.select(deliveries.c.chat_id)
            .join(subscribers, subscribers.c.chat_id == deliveries.c.chat_id)
            .where(deliveries.c.status == DUE, subscribers.c.active.is_(True))
            .group_by(deliveries.c.chat_id)
            .order_by(deliveries.c.chat_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(deliveries.c.chat_id > after)
        with self.engine.connect() as conn:
            return [r.chat_id for r in conn.execute(query)]

    def due_items(self, chat_id: int) -> list[DueItem]:
        """A chat's waiting deliveries."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(deliveries)
                .where(deliveries.c.chat_id == chat_id, deliveries.c.status == DUE)
                .order_by(deliveries.c.id)
            )
            return [
                DueItem(
                    r.id, r.chat_id, r.url, r.title, r.published_at, r.topic, r.excerpt, r.attempts
                )
                for r in rows
            ]

    def mark(
        self,
        ids: Iterable[int],
        status: str,
        *,
        message_id: int | None = None,
        error: str | None = None,
        attempt: bool = False,
    ) -> None:
        """Move delivery rows to ``status`` (committed before this returns)."""
        ids = list(ids)
        values: dict[str, object] = {"status": status, "updated_at": _now()}
        if message_id is not None:
            values["message_id"] = message_id
        if error is not None:
            values["error"] = error[:500]
        if attempt:
            values["attempts"] = deliveries.c.attempts + 1
        with self.engine.begin() as conn:
            conn.execute(deliveries.update().where(deliveries.c.id.in_(ids)).values(**values))

    def attempts(self, ids: Iterable[int]) -> int:
        """The most attempts any of these rows has had."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.max(deliveries.c.attempts)).where(deliveries.c.id.in_(list(ids)))
            ).scalar()
        return int(value or 0)

    def fail_chat(self, chat_id: int, error: str) -> int:
        """Every waiting delivery of a chat fails (the chat is gone)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.chat_id == chat_id,
                    deliveries.c.status.in_([DUE, SENDING]),
                )
                .values(status=FAILED, error=error[:500], updated_at=_now())
            )
            return int(result.rowcount)

    def recover_interrupted(self) -> int:
        """Rows a crash left ``sending``: maybe delivered, never sent again (at most once)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                deliveries.update()
                .where(deliveries.c.status == SENDING)
                .values(status=UNCERTAIN, updated_at=_now(), error="interrupted while sending")
            )
            count = int(result.rowcount)
        if count:
            log.warning("%d deliveries were being sent when the bot stopped: not resent", count)
        return count

    def counts(
        self, since: timedelta = timedelta(days=1), now: datetime | None = None
    ) -> DeliveryCounts:
        """Readers by cadence and deliveries by status over the last ``since``."""
        after = (now or _now()) - since
        with self.engine.connect() as conn:
            active = {
                cadence: int(n)
                for cadence, n in conn.execute(
                    sa.select(subscribers.c.cadence, sa.func.count())
                    .where(subscribers.c.active.is_(True))
                    .group_by(subscribers.c.cadence)
                )
            }
            inactive = conn.execute(
                sa.select(sa.func.count()).where(subscribers.c.active.is_(False))
            ).scalar_one()
            topic_count = conn.execute(sa.select(sa.func.count()).select_from(topics)).scalar_one()
            distinct = conn.execute(
                sa.select(sa.func.count(sa.distinct(topics.c.folded)))
            ).scalar_one()
            by_status = {
                status: int(n)
                for status, n in conn.execute(
                    sa.select(deliveries.c.status, sa.func.count())
                    .where(deliveries.c.updated_at >= after)
                    .group_by(deliveries.c.status)
                )
            }
            last_run = conn.execute(sa.select(sa.func.max(digest_runs.c.started_at))).scalar()
        return DeliveryCounts(
            active_by_cadence=active,
            inactive=int(inactive),
            topics=int(topic_count),
            distinct_topics=int(distinct),
            by_status=by_status,
            last_run_at=_aware(last_run) if last_run else None,
        )

    def deliveries_of(self, chat_id: int) -> list[tuple[str, str]]:
        """(url, status) of every delivery to a chat (for tests and support)."""
        with self.engine.connect() as conn:
            return [
                (r.url, r.status)
                for r in conn.execute(
                    sa.select(deliveries.c.url, deliveries.c.status)
                    .where(deliveries.c.chat_id == chat_id)
                    .order_by(deliveries.c.id)
                )
            ]


def _reactivation(chat_id: int, now: datetime) -> sa.Update:
    """Make an inactive reader active again from ``now``: no backlog of what it missed."""
    return (
        subscribers.update()
        .where(subscribers.c.chat_id == chat_id, subscribers.c.active.is_(False))
        .values(
            active=True,
            watermark=now,
            last_digest_at=now,
            deactivated_at=None,
            deactivated_reason=None,
        )
    )


def _new_reader(
    chat_id: int, chat_type: str, schedule: Schedule, now: datetime
) -> dict[str, object]:
    return {
        "chat_id": chat_id,
        "chat_type": chat_type,
        "active": True,
        "cadence": schedule.cadence,
        "hour": schedule.hour,
        "weekday": schedule.weekday,
        "timezone": schedule.timezone,
        "created_at": now,
        "watermark": now,
        "last_digest_at": now,
    }
