"""What handlers get besides the update: typed services on a custom context."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot, JobQueue

from bot.batcher import AskBatcher
from bot.config import DigestsSection, RefreshSection, TelegramSection
from bot.digests.pacing import SendPacer
from bot.ops.leader import Lease
from bot.ops.metrics import BotMetrics
from bot.state import StateDB
from index import CoverageIndex, FetchSettings, TopicSettings, example_questions, example_topic


class ReportLimiter:
    """At most one admin report per ``interval`` seconds; counts the ones held back."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        """``interval`` 0 lets every report through."""
        self.interval = interval
        self.clock = clock
        self._last: float | None = None
        self._held_back = 0

    def allow(self) -> int | None:
        """None when a report now would be too soon; else how many were held back since."""
        now = self.clock()
        if self._last is not None and now - self._last < self.interval:
            self._held_back += 1
            return None
        self._last, held_back, self._held_back = now, self._held_back, 0
        return held_back


class MemberStatuses:
    """Group members' statuses from getChatMember, kept ``ttl`` seconds, at most ``size``.

    A busy group asks about the same few people again and again; one lookup per member and
    few minutes is enough, and lookups already under way are shared, not repeated.
    """

    def __init__(
        self, ttl: float = 300.0, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``ttl`` in seconds; the least recently used entry goes first when full."""
        self.ttl, self.size, self.clock = ttl, size, clock
        self._known: OrderedDict[tuple[int, int], tuple[float, str]] = OrderedDict()
        self._pending: dict[tuple[int, int], asyncio.Future[str]] = {}

    async def status(self, chat_id: int, user_id: int, lookup: Callable[[], Awaitable[str]]) -> str:
        """The member's status: cached, or from ``lookup()`` (whose errors are not kept)."""
        key = (chat_id, user_id)
        found = self._known.get(key)
        if found is not None and self.clock() < found[0]:
            self._known.move_to_end(key)
            return found[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            status = await lookup()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            del self._pending[key]
        future.set_result(status)
        self.remember(chat_id, user_id, status)
        return status

    def remember(self, chat_id: int, user_id: int, status: str) -> None:
        """Keep a status learnt otherwise (a ``chat_member`` update)."""
        self._known[(chat_id, user_id)] = (self.clock() + self.ttl, status)
        self._known.move_to_end((chat_id, user_id))
        while len(self._known) > self.size:
            self._known.popitem(last=False)


class FinishedUpdates:
    """Ids of updates whose handlers (and error handlers) have all finished.

    Lets `coverbot chat` and tests wait for the bot's reaction to an update, including the
    reaction of staying silent.
    """

    def __init__(self, keep: int = 10_000) -> None:
        """Remember the last ``keep`` ids."""
        self.count = 0
        self._ids: set[int] = set()
        self._order: deque[int] = deque()
        self._keep = keep
        self._changed = asyncio.Condition()

    async def mark(self, update_id: int) -> None:
        """Record that ``update_id`` is done."""
        self.count += 1
        self._ids.add(update_id)
        self._order.append(update_id)
        if len(self._order) > self._keep:
            self._ids.discard(self._order.popleft())
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, update_ids: int | list[int], timeout: float = 10.0) -> None:
        """Wait until every id in ``update_ids`` is done; TimeoutError after ``timeout``."""
        wanted = {update_ids} if isinstance(update_ids, int) else set(update_ids)
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: wanted <= self._ids)


@dataclass(frozen=True, slots=True)
class CoverageExamples:
    """What /start offers and /follow suggests, taken from the index's own coverage."""

    # (generation, store revision) of the index they were worked out for.
    key: tuple[str, int]
    questions: tuple[str, ...] = ()
    topic: str | None = None


@dataclass
class ServiceConfig:
    """The configuration sections the services act on (read-only while the bot runs)."""

    telegram: TelegramSection
    refresh: RefreshSection = field(default_factory=RefreshSection)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    digests: DigestsSection = field(default_factory=DigestsSection)
    topics: TopicSettings = field(default_factory=TopicSettings)


@dataclass
class Services:
    """Everything a handler may use, built once by the composition root.

    Live services are attributes; configuration sections are under ``config``.
    """

    index: CoverageIndex
    batcher: AskBatcher
    state: StateDB
    config: ServiceConfig
    reports: ReportLimiter
    finished: FinishedUpdates
    # The one counted by the batcher too (open_services passes the same to both).
    metrics: BotMetrics = field(default_factory=BotMetrics)
    # Held by a refresh and by a rebuild: one writer of the index at a time.
    index_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Group members' statuses, for who may change a group's topics and digests.
    members: MemberStatuses = field(default_factory=MemberStatuses)
    # Held by a digest run: runs never overlap.
    digest_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pacer: SendPacer = field(init=False)
    # None: the only replica, always in charge of scheduled jobs.
    lease: Lease | None = None
    _examples: CoverageExamples | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.pacer = SendPacer(self.config.digests)

    def swap_index(self, index: CoverageIndex) -> CoverageIndex:
        """Serve from ``index`` from now on; returns the one it replaces."""
        old, self.index = self.index, index
        self.batcher.index = index
        return old

    def coverage_examples(self) -> CoverageExamples:
        """Example questions the index answers and a topic its headlines name; worked out
        again only when the index has changed. Call on the index thread (it asks)."""
        index = self.index
        key = (index.generation, index.store.revision)
        if self._examples is None or self._examples.key != key:
            configured = self.config.telegram.example_questions
            self._examples = CoverageExamples(
                key, tuple(example_questions(index, configured)), example_topic(index)
            )
        return self._examples

    @property
    def leads(self) -> bool:
        """Whether this replica runs the scheduled jobs (refresh, digests)."""
        return self.lease is None or self.lease.held

    def is_admin(self, user_id: int | None) -> bool:
        """The one gatekeeper for admin rights: the user ids listed in the config."""
        return user_id is not None and user_id in self.config.telegram.admin_ids


class BotData:
    """``bot_data``: holds the services; set once, before the bot starts."""

    def __init__(self) -> None:
        """PTB creates this empty; the composition root fills it."""
        self.services: Services | None = None


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """The context every handler gets: ``context.services`` instead of casting ``bot_data``."""

    @property
    def services(self) -> Services:
        """The bot's services."""
        services = self.bot_data.services
        if services is None:
            raise RuntimeError("services were not attached to the application")
        return services


BotApplication = Application[
    ExtBot[None], BotContext, dict[Any, Any], dict[Any, Any], BotData, JobQueue[BotContext]
]
