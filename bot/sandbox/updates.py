"""Per-bot state: the update queue, long polling, webhook delivery and flood control."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .models import StoredMessage
from .params import ApiError, too_many_requests

logger = logging.getLogger(__name__)

DEFAULT_ALLOWED = frozenset(
    {"message", "edited_message", "channel_post", "edited_channel_post", "inline_query"}
    | {"chosen_inline_result", "callback_query", "shipping_query", "pre_checkout_query"}
    | {"poll", "poll_answer", "my_chat_member", "chat_join_request", "business_connection"}
    | {"business_message", "edited_business_message", "deleted_business_messages"}
    | {"message_reaction", "message_reaction_count", "chat_boost", "removed_chat_boost"}
    | {"purchased_paid_media"}
) - {"message_reaction", "message_reaction_count"}
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)


@dataclass
class BotState:
    """Everything the sandbox keeps for one bot token."""

    token: str
    user: dict[str, Any]
    updates: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 1
    allowed_updates: frozenset[str] = DEFAULT_ALLOWED
    webhook_url: str = ""
    webhook_secret: str | None = None
    webhook_max_connections: int = 40
    webhook_last_error: tuple[int, str] | None = None
    webhook_task: asyncio.Task[None] | None = None
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    histories: dict[int, dict[int, StoredMessage]] = field(default_factory=dict)
    next_message_id: dict[int, int] = field(default_factory=dict)
    open_callbacks: set[str] = field(default_factory=set)
    open_inline_queries: set[str] = field(default_factory=set)
    member_status: dict[int, str] = field(default_factory=dict)
    poll_generation: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def sender(self) -> dict[str, Any]:
        """The bot as a message author (``User`` without the getMe-only fields)."""
        keys = ("id", "is_bot", "first_name", "username")
        return {key: self.user[key] for key in keys if key in self.user}

    def allocate_message_id(self, chat_id: int) -> int:
        """Next message id in ``chat_id`` (increasing per chat)."""
        message_id = self.next_message_id.get(chat_id, 1)
        self.next_message_id[chat_id] = message_id + 1
        return message_id

    def store(self, stored: StoredMessage) -> None:
        """Add a message to its chat history."""
        self.histories.setdefault(stored.chat_id, {})[stored.message_id] = stored

    def find(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """A live (not deleted) message, or None."""
        stored = self.histories.get(chat_id, {}).get(message_id)
        return None if stored is None or stored.deleted else stored

    async def push(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue an update (``payload`` without ``update_id``) and wake pollers."""
        update = {"update_id": self.next_update_id, **payload}
        self.next_update_id += 1
        self.updates.append(update)
        async with self.changed:
            self.changed.notify_all()
        return update

    async def wake(self) -> None:
        """Wake every poller and webhook worker so they re-check their state."""
        async with self.changed:
            self.changed.notify_all()

    def confirm(self, offset: int | None) -> None:
        """Forget updates confirmed by ``offset`` (negative: keep only the last -offset)."""
        if offset is None:
            return
        if offset < 0:
            del self.updates[: max(0, len(self.updates) + offset)]
        else:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

    def take(self, limit: int) -> list[dict[str, Any]]:
        """Pending allowed updates (up to ``limit``); disallowed ones are dropped."""
        self.updates = [u for u in self.updates if _kind(u) in self.allowed_updates]
        return self.updates[:limit]

    async def long_poll(
        self, offset: int | None, limit: int, timeout: float, closing: asyncio.Event
    ) -> list[dict[str, Any]]:
        """``getUpdates``: confirm, then wait up to ``timeout`` seconds for updates."""
        if self.webhook_url:
            raise ApiError(409, WEBHOOK_CONFLICT)
        self.poll_generation += 1
        generation = self.poll_generation
        await self.wake()
        self.confirm(offset)
        deadline = time.monotonic() + max(0.0, timeout)
        async with self.changed:
            while True:
                if generation != self.poll_generation:
                    raise ApiError(409, POLL_CONFLICT)
                if self.webhook_url:
                    raise ApiError(409, WEBHOOK_CONFLICT)
                batch = self.take(limit)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0 or closing.is_set():
                    return batch
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), remaining)


def _kind(update: dict[str, Any]) -> str:
    """The update type: its one key besides ``update_id``."""
    return next((key for key in update if key != "update_id"), "")


async def run_webhook(
    bot: BotState,
    session: aiohttp.ClientSession,
    deliveries: list[dict[str, Any]],
    retries: int,
    retry_delay: float,
) -> None:
    """Deliver queued updates to ``bot.webhook_url`` one by one until the webhook is removed."""
    while bot.webhook_url:
        async with bot.changed:
            while bot.webhook_url and not bot.take(1):
                await bot.changed.wait()
        if not bot.webhook_url:
            return
        update = bot.updates[0]
        await _deliver(bot, session, update, deliveries, retries, retry_delay)
        if bot.updates and bot.updates[0] is update:
            bot.updates.pop(0)


async def _deliver(
    bot: BotState,
    session: aiohttp.ClientSession,
    update: dict[str, Any],
    deliveries: list[dict[str, Any]],
    retries: int,
    retry_delay: float,
) -> bool:
    """POST one update, retrying with backoff; record every attempt."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": bot.webhook_secret} if bot.webhook_secret else {}
    for attempt in range(1, retries + 2):
        status, error = 0, ""
        try:
            async with session.post(bot.webhook_url, json=update, headers=headers) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"Connection failed: {exc!r}"
        deliveries.append(
            {"url": bot.webhook_url, "update_id": update["update_id"], "status": status}
            | {"attempt": attempt, "error": error, "at": time.time()}
        )
        if 200 <= status < 300:
            return True
        bot.webhook_last_error = (
            int(time.time()),
            error or f"Wrong response from the webhook: {status}",
        )
        logger.info(
            "webhook delivery of update %s failed: %s", update["update_id"], error or status
        )
        if attempt <= retries:
            await asyncio.sleep(retry_delay * 2 ** (attempt - 1))
    return False


class FloodControl:
    """Sliding one-second windows per chat and globally, answering 429 like Telegram."""

    def __init__(self, per_chat: float | None, global_limit: float | None) -> None:
        """Limits are messages per second; None disables that limit."""
        self.per_chat = per_chat
        self.global_limit = global_limit
        self._chat_sends: dict[int, deque[float]] = {}
        self._global_sends: deque[float] = deque()

    def check(self, chat_id: int) -> None:
        """Raise a 429 ApiError if sending to ``chat_id`` now exceeds a limit; else count it."""
        now = time.monotonic()
        chat_window = self._chat_sends.setdefault(chat_id, deque())
        waits = [
            _wait(window, limit, now)
            for window, limit in (
                (chat_window, self.per_chat),
                (self._global_sends, self.global_limit),
            )
            if limit is not None
        ]
        wait = max(waits, default=0.0)
        if wait > 0:
            raise too_many_requests(max(1, math.ceil(wait)))
        chat_window.append(now)
        self._global_sends.append(now)


def _wait(window: deque[float], limit: float, now: float) -> float:
    """Seconds until ``window`` (timestamps of the last second) has room for one more."""
    while window and now - window[0] >= 1.0:
        window.popleft()
    if len(window) < limit:
        return 0.0
    return 1.0 - (now - window[0])
