"""What stays private on the machine: secrets out of the log, the data dir for its owner only.

The bot token is in every Bot API URL (``.../bot<TOKEN>/getMe``), and PTB, httpx and
friends log those URLs at DEBUG, or in an exception's message at any level. A filter on every
handler of the root logger rewrites each record (message, arguments, traceback) before any
handler writes it, whichever library logged it.

The data dir holds readers' chat ids, questions and feedback (state.sqlite3) and the index;
like PostgreSQL's data directory it is the owner's alone: the process creates files with
umask 077 (0700 directories, 0600 files, SQLite's -wal and -shm follow their database), and
at start whatever is already there is tightened, with a warning naming how many were not.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

REDACTED = "[REDACTED]"
# The shape of a Bot API token (bot id, colon, 35 characters), for tokens we were not told
# about: a second bot, a token pasted into a source URL.
TOKEN_SHAPE = re.compile(r"\d{6,}:[A-Za-z0-9_-]{30,}")
PRIVATE_UMASK = 0o077


class RedactingFilter(logging.Filter):
    """Replaces the given secrets, and anything shaped like a bot token, in every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """Secrets shorter than 6 characters are ignored: they would redact ordinary words."""
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` without secrets."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return TOKEN_SHAPE.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place (later handlers see it clean too); never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler's own error path
            return True
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def redact_logs(secrets: Iterable[str]) -> RedactingFilter:
    """Put one redacting filter on every handler of the root logger (call after configuring
    logging); returns it."""
    redacting = RedactingFilter(secrets)
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(redacting)
    return redacting


def private_files() -> None:
    """From now on this process creates files and directories for its owner only."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)


def tighten(*paths: Path) -> int:
    """Take group and other permissions off ``paths`` and everything under them that this
    user owns (symbolic links are left alone); how many had any. Failures are logged, not
    raised: a read-only data dir still answers."""
    changed, failed = 0, []
    for path in paths:
        if not path.exists():
            continue
        for entry in [path, *path.rglob("*")] if path.is_dir() else [path]:
            try:
                info = entry.lstat()
                mode = info.st_mode
                if stat.S_ISLNK(mode) or not stat.S_IMODE(mode) & PRIVATE_UMASK:
                    continue
                if info.st_uid != os.geteuid():  # someone else's (a file copied in to import)
                    continue
                entry.chmod(stat.S_IMODE(mode) & ~PRIVATE_UMASK)
                changed += 1
            except OSError as exc:
                failed.append(exc)
    if failed:
        log.warning("could not make %d files private, for one: %s", len(failed), failed[0])
    return changed


def protect_data_dir(data_dir: Path, *others: Path) -> int:
    """The process's files private from now on, and ``data_dir`` (and ``others``, such as a
    state database kept elsewhere) tightened now; how many entries were too open."""
    private_files()
    changed = tighten(data_dir, *others)
    if changed:
        log.warning(
            "%s: %d files and directories were readable by other users; now owner-only "
            "(0700 directories, 0600 files)",
            data_dir,
            changed,
        )
    return changed
