"""Readers and their topics: follow, unfollow, schedules, deactivation, who is due."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from bot.digests.cadence import INSTANT, WEEKLY, Schedule, schedule_of_slot
from bot.digests.tables import (
    TooManyTopics,
    aware,
    subscribers,
    topics,
    utc_now,
)
from bot.types import Subscriber, Topic


class ReaderStore:
    """Readers and topics over one SQLAlchemy engine."""

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
        now = now or utc_now()
        folded = text.casefold()
        with self.engine.begin() as conn:
            # Concurrent follows of one chat queue here, so the count below is the count the
            # insert sees: the subscriber row is created if missing, then locked.
            active = _locked_reader(conn, chat_id, _new_reader(chat_id, chat_type, default, now))
            if not active:
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
                raise TooManyTopics(self.max_topics)
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
        now = now or utc_now()
        with self.engine.begin() as conn:
            _insert_if_missing(conn, _new_reader(chat_id, chat_type, schedule, now))
            conn.execute(
                subscribers.update()
                .where(subscribers.c.chat_id == chat_id)
                .values(
                    cadence=schedule.cadence,
                    hour=schedule.hour,
                    weekday=schedule.weekday,
                    timezone=schedule.timezone,
                    last_digest_at=now,
                )
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
                .values(active=False, deactivated_at=now or utc_now(), deactivated_reason=reason)
            )
            return bool(result.rowcount)

    def reactivate(self, chat_id: int, now: datetime | None = None) -> bool:
        """The chat is back (unblocked, re-added): resume from now, without a backlog."""
        now = now or utc_now()
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
                created_at=aware(r.created_at),
                watermark=aware(r.watermark),
                last_digest_at=aware(r.last_digest_at),
                deactivated_reason=r.deactivated_reason,
                topics=tuple(by_chat[r.chat_id]),
            )
            for r in rows
        ]


def _insert_if_missing(conn: Connection, values: dict[str, object]) -> bool:
    """Insert a subscriber row unless the chat has one (another request may be creating it
    right now: no IntegrityError either way); True if this call inserted it."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        statement: sa.Insert = postgresql.insert(subscribers).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(subscribers).on_conflict_do_nothing()
    else:  # pragma: no cover - the two databases coverbot supports
        raise RuntimeError(f"no insert-or-ignore for {dialect}")
    return bool(conn.execute(statement.values(**values)).rowcount)


def _locked_reader(conn: Connection, chat_id: int, values: dict[str, object]) -> bool:
    """Create the chat's subscriber row if missing and lock it until the transaction ends;
    whether the reader is active.

    On PostgreSQL the row lock (FOR UPDATE) queues other transactions of the same chat. On
    SQLite the insert, this transaction's first statement, takes the database's write lock
    (the driver begins the transaction at it), which queues every other writer; FOR UPDATE
    renders as nothing there.
    """
    _insert_if_missing(conn, values)
    return bool(
        conn.execute(
            sa.select(subscribers.c.active)
            .where(subscribers.c.chat_id == chat_id)
            .with_for_update()
        ).scalar_one()
    )


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
