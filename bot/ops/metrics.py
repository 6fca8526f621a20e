"""Prometheus metrics of one running bot, served on ``/metrics`` when ``[metrics]`` enables it.

Each `BotMetrics` has its own registry (not prometheus_client's global one), so two bots in
one process, as in the tests, never count into each other's metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

from bot.config import MetricsSection

log = logging.getLogger(__name__)

# Answers take ~10 ms from a warm index and seconds when the model queues behind an import.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
OUTCOMES = ("answered", "declined", "failed")
DELIVERY_RESULTS = ("sent", "failed")


class BotMetrics:
    """Counters, histograms and gauges of one bot, and the HTTP server that exposes them."""

    def __init__(self, settings: MetricsSection | None = None) -> None:
        """Create the metrics; nothing is served until :meth:`start`."""
        self.settings = settings or MetricsSection()
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.questions = Counter(
            "coverbot_questions", "Questions the core was asked.", registry=self.registry
        )
        self.answers = Counter(
            "coverbot_answers",
            "Questions by outcome: answered with excerpts, declined, or failed with an error.",
            ["outcome"],
            registry=self.registry,
        )
        self.answer_seconds = Histogram(
            "coverbot_answer_seconds",
            "Seconds from a question to the core's answer (batching included).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.refreshes = Counter(
            "coverbot_refreshes",
            "Source refreshes by source and result (ok or failed); back-offs are not counted.",
            ["source", "result"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "coverbot_deliveries",
            "Digest deliveries by result (sent or failed).",
            ["result"],
            registry=self.registry,
        )
        self.index_articles = Gauge(
            "coverbot_index_articles", "Articles in the serving index.", registry=self.registry
        )
        self.index_passages = Gauge(
            "coverbot_index_passages", "Passages in the serving index.", registry=self.registry
        )
        # Labelled series exist from the start, so a rate() over them is never undefined.
        for outcome in OUTCOMES:
            self.answers.labels(outcome)
        for result in DELIVERY_RESULTS:
            self.deliveries.labels(result)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- recording -------------------------------------------------------------------------

    def observe_answer(self, outcome: str, seconds: float) -> None:
        """One question and what came of it (one of OUTCOMES) after ``seconds``."""
        self.questions.inc()
        self.answers.labels(outcome).inc()
        self.answer_seconds.observe(seconds)

    def observe_refreshes(self, results: Iterable[tuple[str, bool]]) -> None:
        """(source label, succeeded) for every source a refresh attempted."""
        for source, ok in results:
            self.refreshes.labels(source, "ok" if ok else "failed").inc()

    def observe_delivery(self, sent: bool, count: int = 1) -> None:
        """Digest deliveries (articles to readers), sent or failed."""
        self.deliveries.labels("sent" if sent else "failed").inc(count)

    def observe_index(self, articles: int, passages: int) -> None:
        """The serving index's size."""
        self.index_articles.set(articles)
        self.index_passages.set(passages)

    # -- serving ---------------------------------------------------------------------------

    @property
    def port(self) -> int | None:
        """The port ``/metrics`` is served on (the one chosen when configured as 0)."""
        return None if self._server is None else int(self._server.server_address[1])

    def start(self) -> None:
        """Serve ``/metrics`` on a daemon thread when enabled; a second call does nothing."""
        if not self.settings.enabled or self._server is not None:
            return
        self._server, self._thread = start_http_server(
            self.settings.port, addr=self.settings.listen, registry=self.registry
        )
        log.info("metrics served on http://%s:%d/metrics", self.settings.listen, self.port)

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None
