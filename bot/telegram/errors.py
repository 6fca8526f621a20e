"""The error handler: log with the update, apologise to the reader, report to the admins."""

from __future__ import annotations

import json
import logging
import traceback

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import Forbidden, TelegramError

from bot.services import BotContext
from bot.telegram import render
from bot.telegram.replies import send_parts

log = logging.getLogger(__name__)


def describe(update: object, whole: bool = False) -> str:
    """The update for the log: its id, kind and chat; with ``whole`` (logging at DEBUG) all
    of it as JSON, readers' names and texts included."""
    if not isinstance(update, Update):
        return repr(update)[:4000] if whole else type(update).__name__
    if whole:
        return json.dumps(update.to_dict(), ensure_ascii=False)[:4000]
    kind = next((k for k in Update.ALL_TYPES if getattr(update, k, None) is not None), "unknown")
    chat = update.effective_chat
    where = f" in {chat.type} chat {chat.id}" if chat else ""
    return f"update {update.update_id} ({kind}){where}"


def summary(update: object, error: BaseException) -> str:
    """One line for the admins: what failed, where."""
    where = ""
    if isinstance(update, Update):
        chat = update.effective_chat.id if update.effective_chat else None
        user = update.effective_user.id if update.effective_user else None
        where = f" in update {update.update_id} (chat {chat}, user {user})"
    return f"{type(error).__name__}{where}: {error}"[:500]


async def on_error(update: object, context: BotContext) -> None:
    """Log the failure with its update; a short apology to the reader; a report to admins."""
    error = context.error
    assert error is not None
    if isinstance(error, Forbidden):
        log.info("not allowed to write to a chat any more: %s", error)
        return  # the reader blocked the bot or removed it from the group
    whole = log.isEnabledFor(logging.DEBUG)
    log.error("update failed: %s", describe(update, whole), exc_info=error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await send_parts(context, update.effective_chat.id, [render.apology_message()])
        except TelegramError as exc:
            log.warning("could not apologise in chat %s: %s", update.effective_chat.id, exc)
    await report_to_admins(context, summary(update, error), error)


async def report_to_admins(context: BotContext, line: str, error: BaseException) -> None:
    """Send an error report to every admin chat, at most one per configured interval."""
    services = context.services
    held_back = services.reports.allow()
    if held_back is None or not services.config.telegram.admin_ids:
        return
    details = "".join(traceback.format_exception(error))
    report = render.error_report(line, details, held_back)
    for admin_id in services.config.telegram.admin_ids:
        try:
            await context.bot.send_message(admin_id, report, parse_mode=ParseMode.HTML)
        except TelegramError as exc:
            log.warning("could not report the error to admin %s: %s", admin_id, exc)
