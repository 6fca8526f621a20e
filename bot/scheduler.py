"""The refresh schedule: a repeating PTB job (APScheduler underneath) calling `refresh`."""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Job, JobQueue

from . import render_admin
from .config import RefreshSection
from .refresh import RefreshReport, refresh
from .services import BotContext

log = logging.getLogger(__name__)

REFRESH_JOB = "refresh-sources"


def schedule_refresh(job_queue: JobQueue[BotContext], settings: RefreshSection) -> Job[BotContext]:
    """(Re)build the refresh schedule: every `interval_minutes`, first soon after start;
    missed runs coalesce into one and never two run at once."""
    for old in job_queue.get_jobs_by_name(REFRESH_JOB):
        old.schedule_removal()
    return job_queue.run_repeating(
        refresh_job,
        interval=timedelta(minutes=settings.interval_minutes),
        first=timedelta(seconds=settings.first_run_seconds),
        name=REFRESH_JOB,
        job_kwargs={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": settings.misfire_grace_seconds,
        },
    )


async def refresh_job(context: BotContext) -> None:
    """The scheduled refresh; skipped while an admin's refresh or rebuild runs."""
    report = await refresh(context.services, wait=False)
    if report.busy:
        log.info("scheduled refresh skipped: a refresh or rebuild is running")
        return
    await announce_health(context, report)


async def announce_health(
    context: BotContext, report: RefreshReport, skip_chat: int | None = None
) -> None:
    """Tell the admin chats which sources started failing or recovered."""
    message = render_admin.health_changes_message(report)
    if message is None:
        return
    for admin_id in context.services.settings.admin_ids:
        if admin_id == skip_chat:
            continue
        try:
            await context.bot.send_message(admin_id, message, parse_mode=ParseMode.HTML)
        except TelegramError as exc:
            log.warning("could not tell admin %s about source health: %s", admin_id, exc)
