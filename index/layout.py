"""Index generations under the data directory: one writer, atomic switches, safe cleanup.

    data_dir/
      CURRENT              name of the generation that serves ("gen-20251126T101500-3f2a01bc")
      gen-.../             articles.sqlite3, chroma/, bm25/ of one generation
        .open.lock         shared-locked by every process that has this generation's vectors open
      .rebuild.lock        held by the one process writing the index (import, refresh, rebuild)

One writer at a time, across processes (`writer_lock`). A writer changes a generation in
place only when no other process has it open (an exclusive `.open.lock`); otherwise it
writes a copy and switches CURRENT to it, and readers follow CURRENT before their next
answer. A process never sees another process write the files it has open: embedded Chroma
crashes (SIGSEGV) or fails ("Error finding id") when it does.

CURRENT is replaced in one rename. When it is missing, empty or names no generation, nothing
is created or removed: the error says which generations exist and how to point CURRENT at one.
A generation is removed only when it is not CURRENT, no process has it open and no writer runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from .locks import (
    _OPEN_LOCK,
    RebuildInProgress,
    close_generation,
    exclusive_generation,
    in_use,
    open_generation,
    rebuild_lock,
    writer_held,
    writer_lock,
)

log = logging.getLogger(__name__)

__all__ = [
    "IndexPointerError",
    "RebuildInProgress",
    "cleanup",
    "close_generation",
    "copy_generation",
    "current_generation",
    "exclusive_generation",
    "generations",
    "in_use",
    "new_generation",
    "open_generation",
    "rebuild_lock",
    "serving_generation",
    "stale_generations",
    "switch_to",
    "writer_held",
    "writer_lock",
]

_CURRENT = "CURRENT"
_PREFIX = "gen-"
_NAME = re.compile(r"^gen-[0-9A-Za-z-]{1,64}$")


class IndexPointerError(RuntimeError):
    """CURRENT is missing, damaged or names no generation; the message says how to fix it."""


def _new_name() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{_PREFIX}{stamp}-{secrets.token_hex(4)}"


def generations(data_dir: Path) -> list[str]:
    """Names of the generation folders in the data dir."""
    if not data_dir.is_dir():
        return []
    return sorted(p.name for p in data_dir.iterdir() if p.is_dir() and _NAME.match(p.name))


def _pointer_error(data_dir: Path, problem: str) -> IndexPointerError:
    found = generations(data_dir)
    if not found:
        return IndexPointerError(f"{data_dir / _CURRENT} {problem}, and {data_dir} holds no index")
    newest = max(found, key=lambda n: (data_dir / n).stat().st_mtime)
    return IndexPointerError(
        f"{data_dir / _CURRENT} {problem}; generations here: {', '.join(found)}. "
        f"Nothing was changed. Point it at the one to serve, e.g. "
        f"`echo {newest} > {data_dir / _CURRENT}` (the newest)"
    )


def serving_generation(data_dir: Path) -> str | None:
    """The name in CURRENT, without creating anything (None when there is no CURRENT).

    Raises IndexPointerError when CURRENT is not a generation name or names a missing one.
    """
    try:
        raw = (data_dir / _CURRENT).read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # no data dir yet (or a file in its way)
        return None
    name = raw.decode("utf-8", "replace").strip()
    if not _NAME.match(name):
        shown = repr(name[:40]) if name else "empty"
        return _raise(_pointer_error(data_dir, f"is damaged ({shown})"))
    if not (data_dir / name).is_dir():
        return _raise(_pointer_error(data_dir, f"names {name}, which does not exist"))
    return name


def _raise(error: Exception) -> str:
    raise error


def private_dir(path: Path) -> None:
    """Create `path` readable by this user only (0700), or tighten an existing one: the data
    dir holds readers' questions and chat ids (the state database) besides the index."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077 and path.stat().st_uid == os.getuid():
            path.chmod(0o700)
            log.info("%s was readable by others (%o); now 0700", path, mode)
    except OSError:  # a read-only data dir stays as it is
        pass


def current_generation(data_dir: Path) -> str:
    """Name of the serving generation; a new data dir gets its first one.

    A data dir with generations but no CURRENT is repaired only when there is exactly one
    generation (nothing else it could be); otherwise IndexPointerError.
    """
    name = serving_generation(data_dir)
    if name is not None:
        private_dir(data_dir)
        return name
    private_dir(data_dir)
    with writer_lock(data_dir, wait=30.0, what="creating the index"):
        name = serving_generation(data_dir)
        if name is not None:
            return name
        found = generations(data_dir)
        if len(found) > 1:
            raise _pointer_error(data_dir, "is missing")
        if found:
            log.warning("CURRENT was missing; pointing it at the only generation, %s", found[0])
            name = found[0]
        else:
            name = _new_name()
            (data_dir / name).mkdir(mode=0o700)
        switch_to(data_dir, name)
    return name


def new_generation(data_dir: Path) -> str:
    """Create an empty generation folder beside the live one."""
    name = _new_name()
    private_dir(data_dir)
    (data_dir / name).mkdir(mode=0o700)
    return name


def switch_to(data_dir: Path, name: str) -> None:
    """Make `name` the serving generation in one atomic rename (file and folder synced)."""
    if not _NAME.match(name) or not (data_dir / name).is_dir():
        raise ValueError(f"not a generation of {data_dir}: {name!r}")
    tmp = data_dir / f".{_CURRENT}.{secrets.token_hex(4)}"
    with open(tmp, "w") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, data_dir / _CURRENT)
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        fd = os.open(data_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    log.info("index generation %s now serves", name)


def copy_generation(data_dir: Path, source: str) -> str:
    """A new generation holding a consistent copy of `source` (hold the writer lock).

    SQLite files are copied with SQLite's backup API (consistent even while other processes
    read them); the rest (HNSW files, BM25) is only written under the writer lock.
    """
    name = new_generation(data_dir)
    src, dst = data_dir / source, data_dir / name
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        target = dst / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.name == _OPEN_LOCK or path.name.endswith(("-wal", "-shm", "-journal")):
            continue
        elif path.suffix == ".sqlite3":
            target.parent.mkdir(parents=True, exist_ok=True)
            with (
                contextlib.closing(sqlite3.connect(path, timeout=30)) as a,
                contextlib.closing(sqlite3.connect(target)) as b,
            ):
                a.backup(b)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return name


# -- cleanup ----------------------------------------------------------------------------------


def stale_generations(data_dir: Path) -> list[str]:
    """Generations other than the serving one (left by a crash, or replaced by a switch);
    none at all while CURRENT is missing or damaged."""
    try:
        live = serving_generation(data_dir)
    except IndexPointerError:
        return []
    if live is None:
        return []
    return [name for name in generations(data_dir) if name != live]


def cleanup(data_dir: Path) -> list[str]:
    """Remove stale generations no process has open, unless a writer runs; returns them."""
    if not data_dir.is_dir():
        return []
    try:
        with writer_lock(data_dir, what="removing stale generations"):
            removed = []
            for name in stale_generations(data_dir):
                if in_use(data_dir / name):
                    log.info("stale index generation %s is still open; kept for now", name)
                    continue
                shutil.rmtree(data_dir / name, ignore_errors=True)
                log.info("removed stale index generation %s", name)
                removed.append(name)
            return removed
    except (RebuildInProgress, OSError):
        return []
