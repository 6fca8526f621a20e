"""Cross-process locks of a data dir: the one writer, and who has a generation open.

flock(2) locks, released by the kernel when a process dies, so a crash never leaves a
data dir locked. Held per process (a registry below), since flock treats two open files of
one process as two owners.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_LOCK = ".rebuild.lock"
_OPEN_LOCK = ".open.lock"


class RebuildInProgress(RuntimeError):
    """Another writer (a rebuild or a refresh, maybe in another process) holds the index."""


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
