"""The subscription tables of the state database: readers, topics, deliveries, digest runs.

Delivery statuses: ``due`` (planned), ``sending``, ``sent``, ``failed`` and ``uncertain`` (left
``sending`` by a crash; never sent again).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

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
    """The chat follows as many topics as allowed (``limit``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"this chat follows {limit} topics, the most I keep per chat")
        self.limit = limit


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)
