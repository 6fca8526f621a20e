"""Questions from concurrent handlers, answered in batches on one dedicated worker thread.

The model and the index run off the event loop, so a slow question never freezes the bot,
and questions that arrive together share one encoder pass (``CoverageIndex.ask_many``).
Readers take turns (``bot.fairness``): a batch holds one question per reader per round,
each reader has a few questions waiting at most and a steady allowance. Reads go through
the answering thread (``call``); writes (imports, removals) through a thread of their own
(``call_write``), at a lower CPU priority with an encoder of one thread, so answers keep
their latency while the index grows (``CoverageIndex`` lets one thread read while another
writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bot.fairness import FairQueue, ReaderBusy, ReaderLimiter
from bot.ops.metrics import BotMetrics
from index import Answer, CoverageIndex, Embedder

log = logging.getLogger(__name__)

T = TypeVar("T")
Pending = tuple[str, "asyncio.Future[Answer]"]
# The import thread's CPU priority (nice): questions come first on a busy machine.
WRITER_NICE = 10

__all__ = ["AskBatcher", "ReaderBusy"]


class AskBatcher:
    """Collects questions for ``window`` seconds, then answers up to ``max_batch`` at once."""

    def __init__(
        self,
        index: CoverageIndex,
        *,
        window: float = 0.005,
        max_batch: int = 32,
        metrics: BotMetrics | None = None,
        per_minute: float = 0.0,
        burst: int = 5,
        max_waiting: int = 3,
    ):
        """Nothing runs until :meth:`start`; every question is counted in ``metrics``.

        A reader may ask ``per_minute`` questions a minute (``burst`` at once; 0: no limit)
        and have ``max_waiting`` questions waiting at once."""
        self.index = index
        self.metrics = metrics or BotMetrics()
        self.window = window
        self.max_batch = max_batch
        self.max_waiting = max_waiting
        self.limiter = ReaderLimiter(per_minute, burst)
        self.batches = 0
        self.questions = 0
        # Seconds from question to answer of the most recent questions, for /stats.
        self.latencies: deque[float] = deque(maxlen=500)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coverbot-index")
        self._writer = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="coverbot-import", initializer=_lower_priority
        )
        self._import_embedder: Embedder | None = None
        self._queue: FairQueue[Pending] = FairQueue()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start collecting questions (on the running loop)."""
        if self._task is None:
            self._arrived = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="coverbot-batcher")

    async def stop(self) -> None:
        """Stop collecting, fail what is still waiting, and let a running batch finish."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for _, future in self._queue.take(len(self._queue)):
            if not future.done():
                future.set_exception(RuntimeError("the bot is shutting down"))
        await asyncio.to_thread(self._writer.shutdown, True)
        await asyncio.to_thread(self._executor.shutdown, True)

    async def ask(self, question: str, reader: int | None = None) -> Answer:
        """The core's answer to one question, batched with whatever arrives alongside;
        ReaderBusy when `reader` (a user id) is over their allowance or has too many
        questions waiting."""
        if self._arrived is None or self._task is None:
            raise RuntimeError("AskBatcher.start() was not called")
        key = reader if reader is not None else object()  # no reader: a turn of its own
        if reader is not None and self.limiter.per_second > 0:  # 0 a minute: no limits
            if self._queue.waiting(key) >= self.max_waiting:
                raise ReaderBusy(self.window + 1.0, notify=self.limiter.refused(key))
            self.limiter.take(key)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        self._queue.put(key, (question, future))
        self._arrived.set()
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
        """Run any other index read on the answering thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def call_write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run an index write (an import, a removal) on the import thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._write, fn, args)

    def _write(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """On the import thread: imports encode with its own one-thread encoder (made
        here, so its ONNX threads share this thread's lower priority)."""
        index = self.index
        if self._import_embedder is None and index.settings.encoder == "onnx":
            self._import_embedder = Embedder(
                index.settings.model, encoder=index.settings.encoder, threads=1
            )
        index.import_embedder = self._import_embedder
        return fn(*args)

    async def _run(self) -> None:
        assert self._arrived is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            await asyncio.sleep(self.window)
            batch = self._queue.take(self.max_batch)
            if not self._queue:
                self._arrived.clear()
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


def _lower_priority() -> None:
    """Run this thread (and the threads it starts) at a lower CPU priority, where allowed."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICE)
