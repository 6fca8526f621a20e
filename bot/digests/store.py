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

from bot.digests.deliveries import DeliveryLog
from bot.digests.readers import ReaderStore
from bot.digests.tables import (
    DUE,
    FAILED,
    SENDING,
    SENT,
    UNCERTAIN,
    TooManyTopics,
    create_subscription_tables,
    deliveries,
)
from bot.types import DeliveryCounts, DueItem, PlannedItem, Subscriber, Topic

__all__ = [
    "DUE",
    "FAILED",
    "SENDING",
    "SENT",
    "UNCERTAIN",
    "DeliveryCounts",
    "DueItem",
    "PlannedItem",
    "Subscriber",
    "SubscriberStore",
    "TooManyTopics",
    "Topic",
    "create_subscription_tables",
    "deliveries",
]


class SubscriberStore(ReaderStore, DeliveryLog):
    """Readers, topics and deliveries over one SQLAlchemy engine (``StateDB.subscribers``)."""
