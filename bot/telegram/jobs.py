"""The schedules: the source refresh, and one digest job per cadence slot.

PTB's JobQueue (APScheduler underneath) runs them. Digest jobs have stable ids
(``digest:daily:08:Asia/Gaza``), are rebuilt from the subscriber store at start, and are
added when a reader picks a slot nobody had; a job whose slot has emptied finds nobody due.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import cast

from apscheduler.triggers.cron import CronTrigger
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Job, JobQueue

from bot.config import RefreshSection
from bot.digests.cadence import INSTANT, WEEKDAYS, WEEKLY, schedule_of_slot, zone_of
from bot.digests.sending import run_digests
from bot.services import BotContext, Services
from bot.sources.refresh import RefreshReport, refresh
from bot.telegram import render_admin

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
    """The scheduled refresh; skipped while an admin's refresh or rebuild runs, and on
    replicas that do not hold the scheduler lease."""
    if not context.services.leads:
        return
    report = await refresh(context.services, wait=False)
    if report.busy:
        log.info("scheduled refresh skipped: a refresh or rebuild is running")
        return
    await announce_health(context, report)
    trigger_instant_digests(context, report.added)


def trigger_instant_digests(context: BotContext, added: int) -> None:
    """New articles arrived: the instant digests go out now, in a job of their own."""
    job_queue = job_queue_of(context)
    if added and context.services.config.digests.enabled and job_queue is not None:
        job_queue.run_once(digest_job, when=0, data=INSTANT, name="digest:instant:now")


def job_queue_of(context: BotContext) -> JobQueue[BotContext] | None:
    """The application's job queue, typed for our context."""
    return cast("JobQueue[BotContext] | None", context.job_queue)


LEASE_JOB = "scheduler-lease"


async def schedule_lease(job_queue: JobQueue[BotContext], services: Services) -> None:
    """Try for the scheduler lease now (so a lone replica is in charge from the start),
    then renew or retry every third of its time."""
    if services.lease is None:
        await take_charge(job_queue, services)
        return
    if await asyncio.to_thread(services.lease.acquire):
        await take_charge(job_queue, services)
    job_queue.run_repeating(
        lease_job,
        interval=services.lease.ttl / 3,
        first=services.lease.ttl / 3,
        name=LEASE_JOB,
        job_kwargs={"coalesce": True, "max_instances": 1},
    )


async def lease_job(context: BotContext) -> None:
    """Renew the lease; on taking it over, finish what the last holder left."""
    services = context.services
    lease = services.lease
    job_queue = job_queue_of(context)
    assert lease is not None and job_queue is not None
    was_held = lease.held
    if await asyncio.to_thread(lease.acquire) and not was_held:
        await take_charge(job_queue, services)


async def take_charge(job_queue: JobQueue[BotContext], services: Services) -> None:
    """This replica now runs the jobs: deliveries cut off mid-send are settled, and the
    digests due meanwhile (or left waiting) go out."""
    if not services.config.digests.enabled:
        return
    await asyncio.to_thread(services.state.subscribers.recover_interrupted)
    job_queue.run_once(catch_up_digests, when=0, name="digest:catch-up")


async def catch_up_digests(context: BotContext) -> None:
    """Every slot's readers that are due, and deliveries left waiting."""
    if context.services.leads:
        await run_digests(context.bot, context.services, None)


def digest_job_id(slot: str) -> str:
    """The stable job id of a cadence slot."""
    return f"digest:{slot}"


def ensure_digest_job(
    job_queue: JobQueue[BotContext], services: Services, slot: str
) -> Job[BotContext] | None:
    """The job serving ``slot``, added if it is not scheduled yet."""
    if not services.config.digests.enabled:
        return None
    name = digest_job_id(slot)
    existing = job_queue.get_jobs_by_name(name)
    if existing:
        return existing[0]
    settings = services.config.digests
    job_kwargs: dict[str, object] = {
        "id": name,
        "replace_existing": True,
        "coalesce": True,
        "max_instances": 1,
        "misfire_grace_time": settings.misfire_grace_seconds,
    }
    if slot == INSTANT:
        return job_queue.run_repeating(
            digest_job,
            interval=timedelta(minutes=settings.instant_check_minutes),
            first=timedelta(minutes=settings.instant_check_minutes),
            name=name,
            data=slot,
            job_kwargs=job_kwargs,
        )
    schedule = schedule_of_slot(slot)
    trigger = CronTrigger(
        day_of_week=WEEKDAYS[schedule.weekday] if schedule.cadence == WEEKLY else "*",
        hour=schedule.hour,
        minute=0,
        timezone=zone_of(schedule.timezone),
    )
    return job_queue.run_custom(
        digest_job, job_kwargs={"trigger": trigger, **job_kwargs}, name=name, data=slot
    )


def schedule_digests(job_queue: JobQueue[BotContext], services: Services) -> list[str]:
    """One job per cadence slot that has readers, plus the instant slot; returns the slots."""
    slots = sorted({INSTANT, *services.state.subscribers.slots()})
    for slot in slots:
        ensure_digest_job(job_queue, services, slot)
    return slots


async def digest_job(context: BotContext) -> None:
    """A slot's scheduled run: plan for its due readers at this moment, then send."""
    assert context.job is not None
    if not context.services.leads:
        return
    slot = str(context.job.data)
    await run_digests(context.bot, context.services, slot, datetime.now(UTC))


async def announce_health(
    context: BotContext, report: RefreshReport, skip_chat: int | None = None
) -> None:
    """Tell the admin chats which sources started failing or recovered."""
    message = render_admin.health_changes_message(report)
    if message is None:
        return
    for admin_id in context.services.config.telegram.admin_ids:
        if admin_id == skip_chat:
            continue
        try:
            await context.bot.send_message(admin_id, message, parse_mode=ParseMode.HTML)
        except TelegramError as exc:
            log.warning("could not tell admin %s about source health: %s", admin_id, exc)
