"""The scheduler lease: one holder at a time, taken over when the holder stops renewing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import Config, IndexSection
from bot.ops.leader import Lease
from bot.state import StateDB


def _url(tmp_path: Path) -> str:
    """SQLite in the data dir, or a fresh PostgreSQL database when the suite runs on one."""
    return Config(index=IndexSection(data_dir=str(tmp_path))).state_url


T0 = datetime(2026, 5, 4, 9, tzinfo=UTC)


def test_one_holder_then_takeover_after_expiry(tmp_path: Path) -> None:
    db = StateDB(_url(tmp_path))
    ttl = timedelta(seconds=30)
    first, second = Lease(db.engine, holder="a", ttl=ttl), Lease(db.engine, holder="b", ttl=ttl)
    assert first.acquire(T0)
    assert not second.acquire(T0 + timedelta(seconds=1))
    assert first.acquire(T0 + timedelta(seconds=10))  # renewed
    assert not second.acquire(T0 + timedelta(seconds=39))  # still within the renewed term
    # The holder dies: no renewal; the lease runs out and the other replica takes it.
    assert second.acquire(T0 + timedelta(seconds=41))
    assert not first.acquire(T0 + timedelta(seconds=42))
    assert not first.held and second.held
    holder, expires = second.current() or ("", T0)
    assert holder == "b" and expires == T0 + timedelta(seconds=71)


def test_release_lets_another_take_over_at_once(tmp_path: Path) -> None:
    db = StateDB(_url(tmp_path))
    first, second = Lease(db.engine, holder="a"), Lease(db.engine, holder="b")
    assert first.acquire(T0)
    first.release()
    assert second.acquire(T0 + timedelta(seconds=1))
