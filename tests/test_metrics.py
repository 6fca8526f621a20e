"""Prometheus metrics: what each counter counts, the endpoint, and the counters moving while
readers load a running bot (real PTB against the sandbox, scraped over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import MetricsSection
from bot.ops.metrics import LATENCY_BUCKETS, BotMetrics
from bot.services import Services
from bot.sources.refresh import refresh
from index.coverage import CoverageIndex
from tests.bot_harness import InProcessBot, LoopThread, loop_fixture, start_bot
from tests.conftest import sample_articles
from tests.refresh_helpers import services_fixture

_ = (loop_fixture, services_fixture)  # fixtures: used by name

ANSWERED = "What did Witkoff urge?"
DECLINED = "Who won the Champions League final?"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample of ``/metrics``, by name and sorted labels."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    response.raise_for_status()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_each_bot_counts_into_its_own_registry() -> None:
    one, other = BotMetrics(), BotMetrics()
    one.observe_answer("answered", 0.02)
    one.observe_answer("declined", 0.3)
    one.observe_answer("failed", 7.0)
    one.observe_refreshes([("Main site", True), ("Main site", False), ("Feed", True)])
    one.observe_delivery(sent=True)
    one.observe_index(16, 113)
    get = one.registry.get_sample_value
    assert get("coverbot_questions_total") == 3
    assert [get("coverbot_answers_total", {"outcome": o}) for o in ("answered", "declined")] == [
        1,
        1,
    ]
    assert get("coverbot_answer_seconds_bucket", {"le": "0.025"}) == 1
    assert get("coverbot_answer_seconds_bucket", {"le": "5.0"}) == 2
    assert get("coverbot_answer_seconds_count") == 3
    assert get("coverbot_refreshes_total", {"source": "Main site", "result": "failed"}) == 1
    assert get("coverbot_refreshes_total", {"source": "Feed", "result": "ok"}) == 1
    assert get("coverbot_deliveries_total", {"result": "sent"}) == 1
    assert get("coverbot_deliveries_total", {"result": "failed"}) == 0  # exists from the start
    assert get("coverbot_index_passages") == 113
    assert other.registry.get_sample_value("coverbot_questions_total") == 0
    assert LATENCY_BUCKETS[0] == 0.01 and LATENCY_BUCKETS[-1] == 5.0


def test_endpoint_serves_only_when_enabled_and_frees_its_port() -> None:
    BotMetrics(MetricsSection(enabled=False, port=0)).start()  # nothing to stop
    metrics = BotMetrics(MetricsSection(enabled=True, port=0))
    assert metrics.port is None
    metrics.start()
    try:
        port = metrics.port
        assert port is not None
        metrics.observe_answer("answered", 0.05)
        assert value(scrape(port), "coverbot_questions_total") == 1
        assert value(scrape(port), "process_resident_memory_bytes") > 0
    finally:
        metrics.stop()
    with pytest.raises(httpx.ConnectError):
        scrape(port)


@pytest.fixture()
def metered_bot(
    loop: LoopThread, sample_index: CoverageIndex, tmp_path: Path
) -> Iterator[InProcessBot]:
    """The bot over the sample coverage with /metrics on a free port."""
    running = start_bot(loop, sample_index, tmp_path, metrics=MetricsSection(True, port=0))
    yield running
    if not running.task.done():
        running.shutdown()


def test_counters_move_while_readers_load_the_bot(metered_bot: InProcessBot) -> None:
    """Two rounds of eight readers' questions, half of them not covered; a scrape before,
    between and after shows each round counted, answered and declined apart; the endpoint
    goes away with the bot."""
    sandbox = metered_bot.sandbox
    port = metered_bot.services.metrics.port
    assert port is not None
    readers = [sandbox.user(f"Reader {i}") for i in range(4)]
    chats = [sandbox.chat(reader) for reader in readers]

    async def round_of_questions() -> None:
        updates = []
        for chat, reader in zip(chats, readers, strict=True):
            for question in (ANSWERED, DECLINED):
                updates.append(await sandbox.inject_message(chat, reader, question))
        await metered_bot.wait_done(updates, timeout=60)

    scrapes = [scrape(port)]
    for _ in range(2):
        metered_bot.run(round_of_questions(), timeout=90)
        scrapes.append(scrape(port))
    assert [value(s, "coverbot_questions_total") for s in scrapes] == [0, 8, 16]
    for outcome in ("answered", "declined"):
        counted = [value(s, "coverbot_answers_total", outcome=outcome) for s in scrapes]
        assert counted == [0, 4, 8], outcome
    assert [value(s, "coverbot_answer_seconds_count") for s in scrapes] == [0, 8, 16]
    assert value(scrapes[-1], "coverbot_answer_seconds_sum") > 0
    assert value(scrapes[-1], "coverbot_index_articles") == len(sample_articles())
    assert metered_bot.errors == []
    metered_bot.shutdown()
    with pytest.raises(httpx.ConnectError):
        scrape(port)


async def test_refresh_counts_results_per_source_and_the_index_size(
    services: Services, tmp_path: Path
) -> None:
    desk = tmp_path / "desk"
    desk.mkdir()
    (desk / "ferry.md").write_text(
        "---\nurl: https://n.example/ferry\n---\nNight ferry returns\n\n"
        "The night ferry runs again from Monday, the harbour office said.\n"
    )
    services.state.sources.add("folder", str(desk), name="Desk")
    services.state.sources.add("folder", str(tmp_path / "missing"), name="Archive")
    for _ in range(2):
        report = await refresh(services, wait=False)
        assert [item.ok for item in report.sources] == [True, False]
    get = services.metrics.registry.get_sample_value
    assert get("coverbot_refreshes_total", {"source": "Desk", "result": "ok"}) == 2
    assert get("coverbot_refreshes_total", {"source": "Archive", "result": "failed"}) == 1
    assert get("coverbot_index_articles") == 1
    assert get("coverbot_index_passages") == services.index.stats(with_vectors=False).passages
