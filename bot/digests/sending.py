"""Sending digests: every chat with deliveries waiting gets its digest, part by part.

Sending stays within a global rate and a per-chat spacing (``pacing``) and marks rows
``sending`` before and ``sent`` after each part, so each article reaches a reader at most
once. A whole run (``run_digests``) plans, then sends; runs never overlap: they hold
``Services.digest_lock``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.digests.pacing import SendPacer
from bot.digests.planning import new_run_id, plan
from bot.digests.render import DigestPart, digest_parts
from bot.digests.store import DUE, FAILED, SENDING, SENT, UNCERTAIN
from bot.services import Services
from bot.telegram import render
from bot.types import RunReport

log = logging.getLogger(__name__)

# Telegram's answers that mean the chat is gone for good: stop sending to it.
_GONE = (
    "chat not found",
    "bot was kicked",
    "bot was blocked",
    "user is deactivated",
    "have no rights to send",
    "not enough rights to send",
    "group chat was upgraded",
    "chat_write_forbidden",
)
_NO_PREVIEWS = LinkPreviewOptions(is_disabled=True)


class DigestSender:
    """Sends the waiting digests of one run and logs what became of every part."""

    def __init__(
        self, bot: Bot, services: Services, report: RunReport, pacer: SendPacer | None = None
    ) -> None:
        """``pacer`` defaults to the services' one (shared by every run of this process)."""
        self.bot = bot
        self.services = services
        self.report = report
        self.pacer = pacer or services.pacer
        self.store = services.state.subscribers

    async def deliver(self) -> None:
        """Every waiting digest, chat by chat in id order; a chat whose send failed for now
        is left for the next run."""
        after: int | None = None
        while chats := await asyncio.to_thread(self.store.due_chats, after):
            for chat_id in chats:
                await self.deliver_chat(chat_id)
            after = chats[-1]

    async def deliver_chat(self, chat_id: int) -> None:
        """One chat's waiting deliveries, part by part."""
        items = await asyncio.to_thread(self.store.due_items, chat_id)
        chat_type = await asyncio.to_thread(self.store.active_chat_type, chat_id)
        if not items or chat_type is None:
            return
        group = chat_type != "private"
        for part in digest_parts(items):
            if part.ids and not await self.send_part(chat_id, group, part):
                return

    async def send_part(self, chat_id: int, group: bool, part: DigestPart) -> bool:
        """Send one part and log the outcome; False when the rest of the chat must wait."""
        html_text: str | None = part.html
        while html_text is not None:
            await self.pacer.wait(chat_id, group)
            await self._mark(part, SENDING)
            try:
                message = await self.bot.send_message(
                    chat_id, html_text, parse_mode=ParseMode.HTML, link_preview_options=_NO_PREVIEWS
                )
            except (RetryAfter, Forbidden, NetworkError) as exc:
                html_text = await self._failed(chat_id, part, html_text, exc)
                continue
            await self._mark(part, SENT, message_id=message.message_id)
            self.report.messages += 1
            self.report.sent += len(part.ids)
            self.services.metrics.observe_delivery(True, len(part.ids))
            return True
        return False

    async def _failed(
        self, chat_id: int, part: DigestPart, html_text: str, exc: Exception
    ) -> str | None:
        """Log a failed send; the text to send again now, or None to leave the chat."""
        if isinstance(exc, RetryAfter):
            wait = _seconds(exc.retry_after)
            log.info("digest to %s: Telegram asks to wait %.0fs", chat_id, wait)
            await self._mark(part, DUE)
            self.report.retried_after += 1
            self.pacer.pause(wait)
            return html_text
        if isinstance(exc, Forbidden):
            await self._gone(chat_id, f"forbidden: {exc.message}")
            return None
        if isinstance(exc, BadRequest):
            return await self._bad_request(chat_id, part, html_text, exc)
        if isinstance(exc, TimedOut):
            # The request may have reached Telegram: never send it twice.
            await self._mark(part, UNCERTAIN, error=f"timed out: {exc}")
            self.report.uncertain += len(part.ids)
            return None
        await self._retry_later(part, str(exc))
        return None

    async def _bad_request(
        self, chat_id: int, part: DigestPart, html_text: str, exc: BadRequest
    ) -> str | None:
        """The chat is gone, or our HTML was refused (resend once as plain text), or the
        part fails."""
        lowered = exc.message.lower()
        if any(reason in lowered for reason in _GONE):
            await self._gone(chat_id, f"bad request: {exc.message}")
            return None
        if "can't parse entities" in lowered and html_text == part.html:
            log.warning("digest HTML rejected (%s); resending as plain text", exc.message)
            await self._mark(part, DUE)
            return "\n\n".join(render.plain_parts(part.html))
        await self._mark(part, FAILED, error=exc.message, attempt=True)
        self._count_failed(len(part.ids))
        self.report.errors.append(f"{chat_id}: {exc.message}")
        return None

    async def _gone(self, chat_id: int, reason: str) -> None:
        """The reader blocked the bot or the chat is gone: deactivate, fail what was waiting."""
        failed = await asyncio.to_thread(self.store.fail_chat, chat_id, reason)
        self._count_failed(failed)
        if await asyncio.to_thread(self.store.deactivate, chat_id, reason):
            self.report.deactivated += 1
            log.info("reader %s deactivated: %s", chat_id, reason)

    async def _retry_later(self, part: DigestPart, error: str) -> None:
        """A network failure: due again for the next run, unless it has failed too often."""
        attempts = await asyncio.to_thread(self.store.attempts, part.ids) + 1
        status = FAILED if attempts >= self.services.config.digests.max_attempts else DUE
        await self._mark(part, status, error=error, attempt=True)
        if status == FAILED:
            self._count_failed(len(part.ids))
        self.report.errors.append(error)

    async def _mark(
        self,
        part: DigestPart,
        status: str,
        *,
        message_id: int | None = None,
        error: str | None = None,
        attempt: bool = False,
    ) -> None:
        await asyncio.to_thread(
            self.store.mark, part.ids, status, message_id=message_id, error=error, attempt=attempt
        )

    def _count_failed(self, deliveries: int) -> None:
        self.report.failed += deliveries
        self.services.metrics.observe_delivery(False, deliveries)


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def run_digests(
    bot: Bot, services: Services, slot: str | None, now: datetime | None = None
) -> RunReport:
    """Plan (for ``slot``, or every slot when None) and send; one run at a time."""
    now = now or datetime.now(UTC)
    report = RunReport(new_run_id(slot or "all", now), slot or "all")
    t0 = time.perf_counter()
    async with services.digest_lock:
        store = services.state.subscribers
        await asyncio.to_thread(store.start_run, report.run_id, report.slot, now)
        await plan(services, slot, now, report)
        await DigestSender(bot, services, report).deliver()
        await asyncio.to_thread(
            store.finish_run,
            report.run_id,
            report.readers,
            report.planned,
            report.sent,
            report.failed,
        )
    report.seconds = time.perf_counter() - t0
    if report.readers or report.sent or report.failed:
        log.info(report.summary())
    return report
