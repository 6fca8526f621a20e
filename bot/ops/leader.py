"""Which replica runs the scheduled jobs: a lease row in the shared state database.

Several bot processes may serve one outlet (webhooks behind a proxy, one PostgreSQL).
Each answers readers, but only the holder of the ``scheduler`` lease refreshes sources and
sends digests. The holder renews the lease every ``ttl / 3``; when it dies, the lease runs
out and another replica takes it within ``ttl`` plus one renewal interval. The row works
the same on SQLite and PostgreSQL: taking or renewing it is one conditional UPDATE, which
the database serialises.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

metadata = sa.MetaData()

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
)

SCHEDULER = "scheduler"


def create_lease_table(conn: Connection) -> None:
    """Migration 4: leases."""
    leases.create(conn)


def replica_id() -> str:
    """This process: host, pid and a random tail (a restarted process is a new holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Lease:
    """One named lease, held by at most one replica at a time."""

    def __init__(
        self,
        engine: Engine,
        name: str = SCHEDULER,
        holder: str | None = None,
        ttl: timedelta = timedelta(seconds=30),
    ) -> None:
        """``holder`` identifies this replica (default: host, pid, random)."""
        self.engine = engine
        self.name = name
        self.holder = holder or replica_id()
        self.ttl = ttl
        self.held = False

    def acquire(self, now: datetime | None = None) -> bool:
        """Take or renew the lease; True while this replica holds it."""
        now = now or datetime.now(UTC)
        expires = now + self.ttl
        with self.engine.begin() as conn:
            result = conn.execute(
                leases.update()
                .where(
                    leases.c.name == self.name,
                    sa.or_(leases.c.holder == self.holder, leases.c.expires_at < now),
                )
                .values(holder=self.holder, expires_at=expires)
            )
            taken = bool(result.rowcount)
        if not taken and self.current() is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        leases.insert().values(
                            name=self.name, holder=self.holder, expires_at=expires, acquired_at=now
                        )
                    )
                taken = True
            except sa.exc.IntegrityError:
                taken = False  # another replica created it first
        if taken and not self.held:
            with self.engine.begin() as conn:
                conn.execute(
                    leases.update().where(leases.c.name == self.name).values(acquired_at=now)
                )
        if taken != self.held:
            log.info("%s the %s lease as %s", "took" if taken else "lost", self.name, self.holder)
        self.held = taken
        return taken

    def release(self) -> None:
        """Give the lease up (at shutdown), so another replica need not wait for it."""
        with self.engine.begin() as conn:
            conn.execute(
                leases.update()
                .where(leases.c.name == self.name, leases.c.holder == self.holder)
                .values(expires_at=datetime(1970, 1, 1, tzinfo=UTC))
            )
        self.held = False

    def current(self) -> tuple[str, datetime] | None:
        """(holder, expires_at) of the lease, or None if never taken."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(leases.c.holder, leases.c.expires_at).where(leases.c.name == self.name)
            ).first()
        return (row.holder, _aware(row.expires_at)) if row else None
