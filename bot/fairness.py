"""Fair turns between readers: a queue per reader served in rotation, and a rate limit each.

One reader sending 300 questions must not make another wait: questions are taken one per
reader in turn (round robin), a reader may have only a few waiting at once, and each reader
gets a steady allowance of questions (a token bucket) beyond which the bot says, once, to
slow down.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class ReaderBusy(Exception):
    """A reader is over their allowance; `notify` is True for the first refusal in a row
    (say so once, then stay quiet), `retry_after` is seconds until the next question fits."""

    def __init__(self, retry_after: float, notify: bool) -> None:
        super().__init__(f"over the allowance; next question in {retry_after:.0f}s")
        self.retry_after = retry_after
        self.notify = notify


class FairQueue(Generic[T]):
    """Items per reader, taken one reader at a time in rotation."""

    def __init__(self) -> None:
        """Empty."""
        self._queues: OrderedDict[Hashable, deque[T]] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def waiting(self, reader: Hashable) -> int:
        """How many items of `reader` wait."""
        queue = self._queues.get(reader)
        return len(queue) if queue else 0

    def put(self, reader: Hashable, item: T) -> None:
        """Queue an item behind the reader's earlier ones."""
        self._queues.setdefault(reader, deque()).append(item)
        self._size += 1

    def take(self, limit: int) -> list[T]:
        """Up to `limit` items, one per reader per round, readers in rotation."""
        taken: list[T] = []
        while self._queues and len(taken) < limit:
            reader, queue = next(iter(self._queues.items()))
            taken.append(queue.popleft())
            self._size -= 1
            del self._queues[reader]
            if queue:  # to the back of the line
                self._queues[reader] = queue
        return taken


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float
    refused: bool = False


class ReaderLimiter:
    """A token bucket per reader: `per_minute` questions a minute, `burst` at once."""

    def __init__(
        self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """`per_minute` 0 lets everything through."""
        self.per_second = per_minute / 60.0
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}

    def take(self, reader: Hashable) -> None:
        """Spend one question of `reader`'s allowance, or raise ReaderBusy."""
        if self.per_second <= 0:
            if reader in self._buckets:
                self._buckets[reader].refused = False
            return
        now = self.clock()
        bucket = self._buckets.get(reader)
        if bucket is None:
            bucket = self._buckets[reader] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.per_second)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.refused = False
            return
        raise ReaderBusy((1.0 - bucket.tokens) / self.per_second, self.refused(reader))

    def refused(self, reader: Hashable) -> bool:
        """Note a refusal of `reader`; True when it is the first since their last question
        got through (tell them once, not at every message of a flood)."""
        bucket = self._buckets.get(reader)
        if bucket is None:
            bucket = self._buckets[reader] = _Bucket(float(self.burst), self.clock())
        first, bucket.refused = not bucket.refused, True
        return first

    def forget_idle(self) -> None:
        """Drop buckets that are full again (readers who stopped asking)."""
        now = self.clock()
        full = [
            reader
            for reader, b in self._buckets.items()
            if b.tokens + (now - b.stamp) * self.per_second >= self.burst
        ]
        for reader in full:
            del self._buckets[reader]
