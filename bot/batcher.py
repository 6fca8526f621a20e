"""Questions from concurrent handlers, answered in batches on one dedicated worker thread.

The model and the index run off the event loop, so a slow question never freezes the bot,
and questions that arrive together share one encoder pass (``CoverageIndex.ask_many``).
Every other index call goes through the same thread (``call``), so the index is only ever
used from one thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bot.ops.metrics import BotMetrics
from index import Answer, CoverageIndex

log = logging.getLogger(__name__)

T = TypeVar("T")
Pending = tuple[str, "asyncio.Future[Answer]"]


class AskBatcher:
    """Collects questions for ``window`` seconds, then answers up to ``max_batch`` at once."""

    def __init__(
        self,
        index: CoverageIndex,
        *,
        window: float = 0.005,
        max_batch: int = 32,
        metrics: BotMetrics | None = None,
    ):
        """Nothing runs until :meth:`start`; every question is counted in ``metrics``."""
        self.index = index
        self.metrics = metrics or BotMetrics()
        self.window = window
        self.max_batch = max_batch
        self.batches = 0
        self.questions = 0
        # Seconds from question to answer of the most recent questions, for /stats.
        self.latencies: deque[float] = deque(maxlen=500)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coverbot-index")
        self._queue: asyncio.Queue[Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start collecting questions (on the running loop)."""
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(), name="coverbot-batcher")

    async def stop(self) -> None:
        """Stop collecting, fail what is still waiting, and let a running batch finish."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while self._queue is not None and not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the bot is shutting down"))
        await asyncio.to_thread(self._executor.shutdown, True)

    async def ask(self, question: str) -> Answer:
        """The core's answer to one question, batched with whatever arrives alongside."""
        if self._queue is None or self._task is None:
            raise RuntimeError("AskBatcher.start() was not called")
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        self._queue.put_nowait((question, future))
        try:
            answer = await future
        except Exception:
            self.metrics.observe_answer("failed", time.perf_counter() - started)
            raise
        seconds = time.perf_counter() - started
        self.latencies.append(seconds)
        self.metrics.observe_answer("answered" if answer.answered else "declined", seconds)
        return answer

    def latency_percentiles(self) -> tuple[float, float] | None:
        """(p50, p95) of recent answer times in seconds, or None before any question."""
        if not self.latencies:
            return None
        values = sorted(self.latencies)
        if len(values) == 1:
            return values[0], values[0]
        cuts = statistics.quantiles(values, n=20, method="inclusive")
        return statistics.median(values), cuts[18]

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run any other index call on the worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(self.window)
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(q, f) for q, f in batch if not f.done()]
            if not live:
                continue
            questions = list(dict.fromkeys(q for q, _ in live))
            results = await loop.run_in_executor(self._executor, self._answer_all, questions)
            self.batches += 1
            self.questions += len(live)
            by_question = dict(zip(questions, results, strict=True))
            for question, future in live:
                if future.done():
                    continue  # the handler gave up (cancelled)
                result = by_question[question]
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _answer_all(self, questions: list[str]) -> list[Answer | Exception]:
        """On the worker thread: one batch, or one by one if the batch fails, so a bad
        question fails alone."""
        try:
            return list(self.index.ask_many(questions))
        except Exception:
            log.exception("batch of %d questions failed; answering one by one", len(questions))
        results: list[Answer | Exception] = []
        for question in questions:
            try:
                results.append(self.index.ask(question))
            except Exception as exc:
                results.append(exc)
        return results
