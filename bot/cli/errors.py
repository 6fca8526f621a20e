"""The one place where the CLI turns a failure into one line on stderr and exit code 1.

Commands raise what the core and the storage layers raise; `CoverbotGroup` catches it around
every command and says what failed in words an operator can act on, without a traceback
(`-v` logs the traceback too). click's own errors (usage: exit 2) pass through untouched.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from typing import Any

import click

from bot.config import Config, ConfigError

log = logging.getLogger(__name__)
# Packages whose exceptions carry messages meant for operators (ModelError, StorageError...).
_OURS = frozenset({"bot", "index"})


def _first_line(exc: BaseException) -> str:
    """The first line of an error's message, without SQLAlchemy's background links."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def _state_url(config: Config | None) -> str:
    """The state database URL with its password hidden, for messages."""
    if config is None:
        return "the state database"
    import sqlalchemy as sa

    try:
        return sa.make_url(config.state_url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "[state] url / COVERBOT_STATE_URL"


def describe(exc: Exception, config: Config | None) -> str:
    """One line saying what failed, for an operator."""
    if isinstance(exc, ConfigError):
        return f"config: {exc}"
    if type(exc).__module__.partition(".")[0] in _OURS:
        return _first_line(exc)  # our own errors are written for operators already
    telegram = sys.modules.get("telegram.error")
    if telegram is not None:
        if isinstance(exc, telegram.InvalidToken):
            return f"Telegram refused the bot token: {exc}"
        if isinstance(exc, telegram.NetworkError):
            where = (config.telegram.api_base_url if config else "") or "the Bot API"
            return f"cannot reach {where}: {exc}"
    sqlalchemy = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy is not None and isinstance(exc, sqlalchemy.SQLAlchemyError):
        if isinstance(exc, sqlalchemy.NoSuchModuleError):
            kind = _state_url(config).split(":", 1)[0]
            return f"state database {_state_url(config)}: unknown database kind {kind!r}"
        return f"state database {_state_url(config)}: {_first_line(exc)}"
    data_dir = config.data_dir if config else "the data dir"
    if isinstance(exc, sqlite3.Error):
        return f"index in {data_dir}: {_first_line(exc)} (is the data dir writable?)"
    if isinstance(exc, OSError):
        if exc.filename is not None and exc.strerror:
            return f"{exc.filename}: {exc.strerror}"
        return _first_line(exc)
    chroma_url = config.index.chroma_url if config else None
    if chroma_url and "chroma" in str(exc).lower():
        return f"Chroma server at {chroma_url}: {_first_line(exc)}"
    return f"{type(exc).__name__}: {_first_line(exc)} (unexpected: -v logs the traceback)"


class CoverbotGroup(click.Group):
    """A click group whose commands end in one line, not a traceback, when they fail."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            log.debug("%s failed", ctx.invoked_subcommand, exc_info=True)
            config = ctx.obj if isinstance(ctx.obj, Config) else None
            raise click.ClickException(describe(exc, config)) from exc
