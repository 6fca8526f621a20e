"""What a storage failure means to an operator: a full disk or a read-only data dir."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

_FULL = ("database or disk is full", "no space left on device", "disk quota exceeded")
_READ_ONLY = ("readonly database", "read-only file system", "permission denied")


def _free_bytes(path: Path) -> int:
    for folder in (path, *path.parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return 1 << 62


def storage_error(exc: BaseException, path: Path) -> str | None:
    """One line naming a full or read-only disk behind `exc` (or its causes) and the fix;
    None for any other error."""
    seen: BaseException | None = exc
    full = read_only = False
    while seen is not None:
        code = getattr(seen, "errno", None)
        text = str(seen).lower()
        full = full or code in (errno.ENOSPC, errno.EDQUOT) or any(t in text for t in _FULL)
        read_only = (
            read_only
            or code in (errno.EROFS, errno.EACCES, errno.EPERM)
            or any(t in text for t in _READ_ONLY)
        )
        seen = seen.__cause__ or seen.__context__
    if read_only or any(t in str(exc).lower() for t in ("disk i/o error", "unable to open")):
        full = full or _free_bytes(path) < 1024 * 1024  # SQLite often reports a full disk so
    if full:
        return (
            f"the disk holding {path} is full: free some space, then try again "
            "(the index still serves what it held before)"
        )
    if read_only:
        return (
            f"{path} is read-only or not writable by this user: make it writable to change "
            "the index (answering works read-only)"
        )
    return None


def unwritable(path: Path) -> str:
    """storage_error's line for a store that could not be opened for writing."""
    return storage_error(OSError(errno.EROFS, "read-only"), path) or f"{path} cannot be written"
