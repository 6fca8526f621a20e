"""Running the real bot against the sandbox from synchronous tests.

The sandbox (and an in-process bot) live on an event loop in a background thread, so that
Hypothesis tests and tests that drive a subprocess can call into them with ``loop.run(...)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
from telegram import Update
from telegram.ext import BaseRateLimiter

from bot.config import (
    Config,
    DigestsSection,
    IndexSection,
    MetricsSection,
    RefreshSection,
    TelegramSection,
)
from bot.sandbox import BotApiSandbox
from bot.services import BotApplication, BotContext, Services
from bot.telegram.app import build_application, open_services, serve
from index.coverage import CoverageIndex

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Start a coroutine on the loop without waiting."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclasses.dataclass
class InProcessBot:
    """The real application polling a sandbox, on a background loop."""

    loop: LoopThread
    sandbox: BotApiSandbox
    services: Services
    app: BotApplication
    errors: list[BaseException]
    stop: asyncio.Event
    task: Future[None]
    # The errors of handlers of readers' updates only (not of scheduled jobs).
    update_errors: list[BaseException] = dataclasses.field(default_factory=list)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return self.loop.run(coro, timeout)

    async def wait_done(
        self, update: dict[str, Any] | list[dict[str, Any]], timeout: float = 20.0
    ) -> None:
        """Wait until the bot has finished with injected updates."""
        items = update if isinstance(update, list) else [update]
        await self.services.finished.wait([u["update_id"] for u in items], timeout)

    def shutdown(self) -> None:
        self.loop.loop.call_soon_threadsafe(self.stop.set)
        self.task.result(30)
        self.run(self.sandbox.stop())


@pytest.fixture(scope="module", name="loop")
def loop_fixture() -> Iterator[LoopThread]:
    """One event loop thread per test module (import this fixture to use it)."""
    thread = LoopThread()
    yield thread
    thread.close()


def start_bot(
    loop: LoopThread,
    index: CoverageIndex,
    state_dir: Path,
    *,
    rate_limiter: BaseRateLimiter[int] | None = None,
    refresh: RefreshSection | None = None,
    metrics: MetricsSection | None = None,
    digests: DigestsSection | None = None,
    **telegram: Any,
) -> InProcessBot:
    """Start a sandbox and the bot over ``index`` on ``loop``; wait until it polls."""
    sandbox = BotApiSandbox(auto_chats=False)
    loop.run(sandbox.start())
    settings = dataclasses.replace(
        TelegramSection(), token=sandbox.token, api_base_url=sandbox.base_url, **telegram
    )
    config = Config(
        index=IndexSection(data_dir=str(state_dir)),
        telegram=settings,
        refresh=refresh or RefreshSection(),
        metrics=metrics or MetricsSection(),
        digests=digests or DigestsSection(),
    )
    services = open_services(config, index=index)
    app = build_application(services, rate_limiter=rate_limiter)
    errors: list[BaseException] = []
    update_errors: list[BaseException] = []

    async def record(update: object, context: BotContext) -> None:
        assert context.error is not None
        errors.append(context.error)
        if isinstance(update, Update):
            update_errors.append(context.error)

    app.add_error_handler(record)

    async def make_event() -> asyncio.Event:
        return asyncio.Event()

    stop = loop.run(make_event())
    task = loop.submit(serve(app, stop))
    loop.run(_until_polling(sandbox, task), timeout=60)
    return InProcessBot(loop, sandbox, services, app, errors, stop, task, update_errors)


async def _until_polling(sandbox: BotApiSandbox, task: Future[None]) -> None:
    while sandbox.bot_state().poll_generation == 0:  # a long poll has begun
        if task.done():
            task.result()
            raise RuntimeError("the bot stopped before polling")
        await asyncio.sleep(0.02)


def texts(sent: list[dict[str, Any]]) -> list[str]:
    return [m.get("text", "") for m in sent]
