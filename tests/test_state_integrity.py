"""A damaged state database is refused with the fix, never silently recreated (#12 item 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.digests.cadence import Schedule
from bot.state import StateDamaged, StateDB
from tests import backends
from tests.conftest import ROOT

NOW = datetime(2026, 5, 4, 9, tzinfo=UTC)
pytestmark = pytest.mark.skipif(
    backends.state_server_url() is not None, reason="damages a SQLite file"
)
DAMAGE: list[tuple[Callable[[bytes], bytes], str]] = [
    (lambda data: b"", "is empty (0 bytes)"),
    (lambda data: b"\x00garbage header" + data[16:], "is not a SQLite database"),
    (lambda data: data[:4096] + b"\xa5" * 4096 + data[8192:], "damaged"),
]


def _damaged(data_dir: Path, damage: Callable[[bytes], bytes]) -> Path:
    """A state database with several pages of readers, then damaged."""
    path = data_dir / "state.sqlite3"
    db = StateDB(f"sqlite:///{path}")
    for chat in range(300):
        db.subscribers.follow(chat, "private", f"topic {chat} " + "x" * 200, Schedule(), NOW)
    db.close()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.write_bytes(damage(path.read_bytes()))
    return path


@pytest.mark.parametrize(("damage", "says"), DAMAGE)
def test_a_damaged_state_database_is_refused_not_recreated(
    tmp_path: Path, damage: Callable[[bytes], bytes], says: str
) -> None:
    # A garbage header gave a raw traceback, a zero-length file was silently recreated
    # empty (every subscriber lost), page damage went unnoticed at start.
    path = _damaged(tmp_path, damage)
    damaged = path.read_bytes()
    with pytest.raises(StateDamaged) as info:
        StateDB(f"sqlite:///{path}")
    assert says in str(info.value) and "restore it from a backup" in str(info.value)
    assert path.read_bytes() == damaged  # left as it was, for the operator


def test_the_cli_says_so_in_one_line(tmp_path: Path) -> None:
    _damaged(tmp_path, DAMAGE[0][0])
    for path in (tmp_path, *tmp_path.iterdir()):  # private already: no notice about it
        path.chmod(0o700 if path.is_dir() else 0o600)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COVERBOT_STATE_URL": ""}
    command = ["--data-dir", str(tmp_path), "digests", "status"]
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *command], capture_output=True, text=True, env=env
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"Error: state database {tmp_path}/state.sqlite3 is empty (0 bytes): restore it from a "
        "backup (see README, Operating safely), or move it away to start with no subscribers"
    ]
