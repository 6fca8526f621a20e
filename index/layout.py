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
import fcntl
import logging
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_CURRENT = "CURRENT"
_LOCK = ".rebuild.lock"
_OPEN_LOCK = ".open.lock"
_PREFIX = "gen-"
_NAME = re.compile(r"^gen-[0-9A-Za-z-]{1,64}$")


class RebuildInProgress(RuntimeError):
    """Another writer (a rebuild or a refresh, maybe in another process) holds the index."""


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
    except FileNotFoundError:
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


def current_generation(data_dir: Path) -> str:
    """Name of the serving generation; a new data dir gets its first one.

    A data dir with generations but no CURRENT is repaired only when there is exactly one
    generation (nothing else it could be); otherwise IndexPointerError.
    """
    name = serving_generation(data_dir)
    if name is not None:
        return name
    data_dir.mkdir(parents=True, exist_ok=True)
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
            (data_dir / name).mkdir()
        switch_to(data_dir, name)
    return name


def new_generation(data_dir: Path) -> str:
    """Create an empty generation folder beside the live one."""
    name = _new_name()
    (data_dir / name).mkdir(parents=True)
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


# -- the writer lock --------------------------------------------------------------------------


@dataclass(slots=True)
class _Held:
    fh: IO[str]
    depth: int


_held: dict[Path, _Held] = {}
_held_guard = threading.Lock()


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {text})" if text else ""


def _flock(fh: IO[str], mode: int, wait: float, what: str, path: Path) -> bool:
    """Take a flock now or within `wait` seconds; False when it stays taken."""
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(fh, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            if not told:
                log.warning("waiting for the index writer%s before %s", _holder(path), what)
                told = True
            time.sleep(0.2)


@contextlib.contextmanager
def writer_lock(data_dir: Path, *, wait: float = 0.0, what: str = "writing") -> Iterator[None]:
    """Be the one writer of the data dir's index, across processes; RebuildInProgress if
    another process stays in the way for `wait` seconds.

    Re-entrant within a process: a refresh holding it may import on another thread.
    """
    key = data_dir.resolve()
    with _held_guard:
        held = _held.get(key)
        if held is not None:
            held.depth += 1
    if held is None:
        with _exclusive_file(data_dir, wait, what):
            yield
        return
    try:
        yield
    finally:
        with _held_guard:
            held.depth -= 1


@contextlib.contextmanager
def rebuild_lock(data_dir: Path) -> Iterator[None]:
    """The writer lock, taken at once or RebuildInProgress, even within this process.

    A rebuild copies the serving generation's articles; a refresh writing to that generation
    meanwhile (say the bot's, while `coverbot reindex` runs) would be lost at the switch, so
    refreshes and rebuilds take this one lock. Imports in this process while it is held
    (on any thread) share it (`writer_lock`).
    """
    with _exclusive_file(data_dir, 0.0, "rebuilding"):
        yield


@contextlib.contextmanager
def _exclusive_file(data_dir: Path, wait: float, what: str) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / _LOCK
    fh = open(path, "a+")  # noqa: SIM115 - held across the yield
    try:
        if not _flock(fh, fcntl.LOCK_EX, wait, what, path):
            raise RebuildInProgress(
                f"the index in {data_dir} is being written by another process{_holder(path)} "
                "(an import, refresh or reindex); try again when it has finished"
            )
        with contextlib.suppress(OSError):  # who holds it, for the messages above
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}, {what}\n")
            fh.flush()
        key = data_dir.resolve()
        with _held_guard:
            outer = _held.get(key)
            _held[key] = _Held(fh, 1)
        try:
            yield
        finally:
            with _held_guard:
                if outer is None:
                    _held.pop(key, None)
                else:
                    _held[key] = outer
            with contextlib.suppress(OSError):
                fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


def writer_held(data_dir: Path) -> bool:
    """Whether this process holds the data dir's writer lock."""
    with _held_guard:
        return data_dir.resolve() in _held


# -- who has a generation open ----------------------------------------------------------------


@dataclass(slots=True)
class _Open:
    fh: IO[str] | None  # None: the lock file cannot be made (read-only data dir): no writer
    readers: int = 0


_open: dict[Path, _Open] = {}
_open_guard = threading.Lock()


def _open_entry(path: Path) -> _Open:
    key = path.resolve()
    entry = _open.get(key)
    if entry is None:
        try:
            fh: IO[str] | None = open(path / _OPEN_LOCK, "a+")  # noqa: SIM115
        except OSError:
            fh = None
        entry = _open[key] = _Open(fh)
    return entry


def _drop_entry(path: Path, entry: _Open) -> None:
    if entry.readers == 0:
        _open.pop(path.resolve(), None)
        if entry.fh is not None:
            fcntl.flock(entry.fh, fcntl.LOCK_UN)
            entry.fh.close()


def open_generation(path: Path, wait: float = 3600.0) -> None:
    """Register this process as a reader of a generation; waits while another process
    writes it in place (an import started while nothing served). Pair with close_generation."""
    with _open_guard:
        entry = _open_entry(path)
        entry.readers += 1
        if entry.readers > 1 or entry.fh is None:
            return
        fh = entry.fh
    if not _flock(fh, fcntl.LOCK_SH, wait, f"opening {path.name}", path.parent / _LOCK):
        close_generation(path)
        raise RebuildInProgress(f"{path} is being written by another process")


def close_generation(path: Path) -> None:
    """This process no longer reads the generation."""
    with _open_guard:
        entry = _open.get(path.resolve())
        if entry is None:
            return
        entry.readers -= 1
        _drop_entry(path, entry)


@contextlib.contextmanager
def exclusive_generation(path: Path) -> Iterator[bool]:
    """Yields True while no other process has the generation open (new readers wait until
    the block ends), or False at once when one has: then write a copy instead."""
    with _open_guard:
        entry = _open_entry(path)
        entry.readers += 1  # keeps the entry while this block runs
    fh = entry.fh
    alone = fh is None
    if fh is not None:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # converts this process's shared lock
            alone = True
        except BlockingIOError:
            if entry.readers > 1:  # the failed conversion may have dropped our shared lock
                fcntl.flock(fh, fcntl.LOCK_SH)
    try:
        yield alone
    finally:
        with _open_guard:
            entry.readers -= 1
            if fh is not None and entry.readers > 0:
                fcntl.flock(fh, fcntl.LOCK_SH)
            _drop_entry(path, entry)


def in_use(path: Path) -> bool:
    """Whether any process (this one included) has the generation open."""
    with _open_guard:
        if path.resolve() in _open:
            return True
    try:
        with open(path / _OPEN_LOCK, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


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
