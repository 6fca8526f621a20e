"""Pacing digest sends within Telegram's limits: a global rate and a gap per chat."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bot.config import DigestsSection


class SendPacer:
    """Spacing between digest messages: a global rate and a gap per chat."""

    def __init__(
        self,
        settings: DigestsSection,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Rates from the [digests] section."""
        self.interval = 1.0 / settings.messages_per_second
        self.chat_gap = settings.chat_seconds
        self.group_gap = settings.group_seconds
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0
        self._chat_next: dict[int, float] = {}

    async def wait(self, chat_id: int, group: bool) -> None:
        """Return when a message to ``chat_id`` may go out."""
        now = self.clock()
        start = max(now, self._next, self._chat_next.get(chat_id, 0.0))
        self._next = start + self.interval
        self._chat_next[chat_id] = start + (self.group_gap if group else self.chat_gap)
        if start > now:
            await self.sleep(start - now)

    def pause(self, seconds: float) -> None:
        """Telegram asked us to wait (429): nothing goes out before then."""
        self._next = max(self._next, self.clock() + seconds)
