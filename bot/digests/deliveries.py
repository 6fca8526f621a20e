"""The delivery log and digest runs: planning rows, moving them through their statuses."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.digests.tables import (
    DUE,
    FAILED,
    SENDING,
    UNCERTAIN,
    aware,
    deliveries,
    digest_runs,
    subscribers,
    topics,
    utc_now,
)
from bot.types import DeliveryCounts, DueItem, PlannedItem

log = logging.getLogger(__name__)


class DeliveryLog:
    """Deliveries and digest runs over one SQLAlchemy engine."""

    engine: Engine

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
                    finished_at=utc_now(),
                    readers=readers,
                    planned=planned,
                    sent=sent,
                    failed=failed,
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
        values: dict[str, object] = {"status": status, "updated_at": utc_now()}
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
                .values(status=FAILED, error=error[:500], updated_at=utc_now())
            )
            return int(result.rowcount)

    def recover_interrupted(self) -> int:
        """Rows a crash left ``sending``: maybe delivered, never sent again (at most once)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                deliveries.update()
                .where(deliveries.c.status == SENDING)
                .values(status=UNCERTAIN, updated_at=utc_now(), error="interrupted while sending")
            )
            count = int(result.rowcount)
        if count:
            log.warning("%d deliveries were being sent when the bot stopped: not resent", count)
        return count

    def counts(
        self, since: timedelta = timedelta(days=1), now: datetime | None = None
    ) -> DeliveryCounts:
        """Readers by cadence and deliveries by status over the last ``since``."""
        after = (now or utc_now()) - since
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
            last_run_at=aware(last_run) if last_run else None,
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
