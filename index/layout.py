"""Index generations under the data directory, so a rebuild can switch over atomically.

    data_dir/
      CURRENT              name of the generation that serves ("gen-20251126T101500-3f2a")
      gen-.../             articles.sqlite3, chroma/, bm25/ of one generation
      .rebuild.lock        held by the one process writing the index (a refresh or a rebuild)

A rebuild writes a new generation beside the live one and then replaces CURRENT in one
rename. A crash before that leaves CURRENT pointing at the old generation; the half-built
one is removed by `cleanup` at the next start.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

_CURRENT = "CURRENT"
_LOCK = ".rebuild.lock"
_PREFIX = "gen-"


class RebuildInProgress(RuntimeError):
    """Another writer (a rebuild or a refresh, maybe in another process) holds the index."""


def _new_name() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{_PREFIX}{stamp}-{secrets.token_hex(4)}"


def serving_generation(data_dir: Path) -> str | None:
    """The name in CURRENT, without creating anything (None for a new data dir)."""
    try:
        return (data_dir / _CURRENT).read_text().strip() or None
    except FileNotFoundError:
        return None


def current_generation(data_dir: Path) -> str:
    """Name of the serving generation, created on first use."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pointer = data_dir / _CURRENT
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        name = ""
    if not name or not (data_dir / name).is_dir():
        name = _new_name()
        (data_dir / name).mkdir()
        switch_to(data_dir, name)
    return name


def new_generation(data_dir: Path) -> str:
    """Create an empty generation folder beside the live one."""
    name = _new_name()
    (data_dir / name).mkdir(parents=True)
    return name


def switch_to(data_dir: Path, name: str) -> None:
    """Make `name` the serving generation in one atomic rename."""
    tmp = data_dir / f".{_CURRENT}.{secrets.token_hex(4)}"
    tmp.write_text(name + "\n")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, data_dir / _CURRENT)
    log.info("index generation %s now serves", name)


@contextlib.contextmanager
def rebuild_lock(data_dir: Path) -> Iterator[None]:
    """Hold the writer lock across processes, or raise RebuildInProgress at once.

    A rebuild copies the serving generation's articles; a refresh writing to that generation
    meanwhile (say the bot's, while `coverbot reindex` runs) would be lost at the switch, so
    refreshes and rebuilds take this one lock.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / _LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RebuildInProgress(
                f"the index in {data_dir} is being rebuilt or refreshed by another process"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def stale_generations(data_dir: Path) -> list[str]:
    """Generations other than the serving one (left by a crash, or replaced by a rebuild)."""
    if not data_dir.is_dir():
        return []
    try:
        live = (data_dir / _CURRENT).read_text().strip()
    except FileNotFoundError:
        return []
    return sorted(
        p.name
        for p in data_dir.iterdir()
        if p.is_dir() and p.name.startswith(_PREFIX) and p.name != live
    )


def cleanup(data_dir: Path) -> list[str]:
    """Remove stale generations unless a rebuild is running; returns what was removed."""
    try:
        with rebuild_lock(data_dir):
            removed = stale_generations(data_dir)
            for name in removed:
                shutil.rmtree(data_dir / name, ignore_errors=True)
                log.info("removed stale index generation %s", name)
            return removed
    except RebuildInProgress:
        return []
