"""Plain report and record dataclasses shared by the stores, operations and renderers.

A leaf: it imports nothing from ``bot`` but the pure ``cadence`` (for ``Schedule``), so the
renderers can take these types without importing databases or operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.digests.cadence import Schedule


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """A count with its noun in the right number: "1 article", "2 articles"."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One registered source with its progress and health."""

    id: int
    kind: str
    url: str
    name: str
    added_by: int | None
    added_at: datetime
    enabled: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    cursor: dict[str, Any] = field(default_factory=dict)
    validators: dict[str, Any] = field(default_factory=dict)
    refreshes: int = 0
    last_refresh_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    next_attempt_at: datetime | None = None
    articles: int = 0

    @property
    def label(self) -> str:
        """The name if it has one, else the URL."""
        return self.name or self.url

    @property
    def failing(self) -> bool:
        """The last attempt failed."""
        return self.consecutive_failures > 0


@dataclass(slots=True)
class SourceReport:
    """What one refresh did to one source."""

    source_id: int
    label: str
    kind: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: int = 0
    seconds: float = 0.0
    error: str | None = None
    skipped_until: datetime | None = None
    consecutive_failures: int = 0
    # Limits the source hit (max_items, max_sitemaps, max_pages): read in part, not failed.
    notes: list[str] = field(default_factory=list)
    # "where: why" of the first records that failed, for the operator.
    rejected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Fetched and imported without a source-level failure."""
        return self.error is None and self.skipped_until is None


@dataclass(slots=True)
class RefreshReport:
    """A refresh of several sources; `busy` when another refresh or rebuild was running."""

    sources: list[SourceReport] = field(default_factory=list)
    started_failing: list[SourceReport] = field(default_factory=list)
    recovered: list[SourceReport] = field(default_factory=list)
    busy: bool = False
    seconds: float = 0.0

    @property
    def added(self) -> int:
        """New articles over all sources (instant digests wait for these)."""
        return sum(s.added for s in self.sources)

    @property
    def health_changed(self) -> bool:
        """Some source started failing or recovered (admins want to know)."""
        return bool(self.started_failing or self.recovered)


@dataclass(frozen=True, slots=True)
class AdminStats:
    """What /stats shows."""

    articles: int
    passages: int
    sources: int
    failing_sources: int
    subscribers: int
    last_refresh: datetime | None
    index_bytes: int
    latency: tuple[float, float] | None
    generation: str


@dataclass(frozen=True, slots=True)
class Topic:
    """One followed topic."""

    id: int
    chat_id: int
    text: str


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A chat that follows topics, with its digest settings and progress."""

    chat_id: int
    chat_type: str
    active: bool
    schedule: Schedule
    created_at: datetime
    watermark: datetime
    last_digest_at: datetime
    deactivated_reason: str | None
    topics: tuple[Topic, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """One article planned for one reader, with the topic that matched and why."""

    url: str
    title: str
    published_at: str | None
    topic: str
    excerpt: str


@dataclass(frozen=True, slots=True)
class DueItem:
    """A delivery row waiting to be sent."""

    id: int
    chat_id: int
    url: str
    title: str
    published_at: str | None
    topic: str
    excerpt: str
    attempts: int


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    """/subscribers: readers by cadence and what the delivery log says about a period."""

    active_by_cadence: dict[str, int]
    inactive: int
    topics: int
    distinct_topics: int
    by_status: dict[str, int]
    last_run_at: datetime | None


@dataclass(slots=True)
class RunReport:
    """What one digest run did."""

    run_id: str
    slot: str
    readers: int = 0
    planned: int = 0
    messages: int = 0
    sent: int = 0
    failed: int = 0
    deactivated: int = 0
    uncertain: int = 0
    retried_after: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        return (
            f"digest run {self.run_id} ({self.slot}): {plural(self.readers, 'reader')} due, "
            f"{plural(self.planned, 'article')} planned, {self.sent} delivered in "
            f"{plural(self.messages, 'message')}, {self.failed} failed, "
            f"{plural(self.deactivated, 'reader')} deactivated, {self.seconds:.1f}s"
        )
