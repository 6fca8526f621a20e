"""Digests for 1,000 readers through the Bot API sandbox, as an operator runs them.

The scenario is benchmarks/digest_delivery.py's: readers follow one to three of five topics
(some only a topic nothing matches), with mixed cadences and time zones, all from an hour
before 20 articles (tests/fixtures/digest_articles/, dated in the hours before) arrive
through `coverbot refresh` from a folder source. `coverbot digests run --now T1`, eight
days later so that every reader is due, sends in a subprocess to the sandbox running in
this process (``auto_chats``: a positive chat id is a private chat). 5% of the readers have
blocked the bot, and the sandbox answers a burst of 429s a quarter of the way through.

What each reader should get is computed here, without the bot's matcher: an article
matches a topic when every word of the topic, or its plural, occurs in its headline or
body. The articles keep that unambiguous: topic words stand together, and the six
unrelated articles (sport, technology, weather) share no word with any topic.

The articles are imported once for the module; each test runs on its own copy of the index
with fresh readers.
"""

from __future__ import annotations

import json
import re
import signal
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from benchmarks.digest_delivery import (
    ARTICLES,
    BURST,
    QUIET_TOPIC,
    TOKEN,
    TOPICS,
    DeliveryRun,
    Reader,
    SendWatch,
    copy_coverage,
    make_readers,
    refresh,
    run_digests,
    stage_articles,
    state_url,
    subscribe,
    write_config,
)
from bot.digests.store import FAILED, SENT, UNCERTAIN, deliveries
from bot.sandbox import BotApiSandbox
from bot.state import StateDB
from tests.backends import servers_toml
from tests.bot_harness import LoopThread, loop_fixture

# 1,000 readers, delivery in a subprocess killed halfway.
pytestmark = pytest.mark.slow

_ = loop_fixture

READERS = make_readers(1000)
# Fast enough for a test; the pacer still spaces the messages.
MESSAGES_PER_SECOND = 200.0


@dataclass(frozen=True)
class Arrived:
    """An index the fixture articles arrived in, and when the readers subscribed."""

    data_dir: Path
    subscribed_at: datetime


def _articles() -> dict[str, str]:
    """url -> lower-cased headline and body, read straight from the fixture files."""
    texts = {}
    for path in sorted(ARTICLES.glob("*.json")):
        article = json.loads(path.read_text(encoding="utf-8"))
        texts[article["url"]] = f"{article['title']}\n{article['body']}".lower()
    return texts


def _matches(topic: str, text: str) -> bool:
    return all(
        re.search(rf"\b{re.escape(word.removesuffix('s'))}s?\b", text)
        for word in topic.lower().split()
    )


def _expected(readers: list[Reader]) -> dict[int, set[str]]:
    """Each reader's articles: those matching any of its topics."""
    texts = _articles()
    by_topic = {
        topic: {url for url, text in texts.items() if _matches(topic, text)}
        for topic in (*TOPICS, QUIET_TOPIC)
    }
    return {r.chat_id: set().union(*(by_topic[t] for t in r.topics)) for r in readers}


EXPECTED = _expected(READERS)
RECEIVING = [r.chat_id for r in READERS if EXPECTED[r.chat_id] and not r.blocked]


def test_the_scenario_is_the_one_the_issue_describes() -> None:
    texts = _articles()
    matched = {url for url in texts if any(_matches(t, texts[url]) for t in TOPICS)}
    assert len(texts) == 20 and len(matched) == 14
    assert all(len([u for u in texts if _matches(t, texts[u])]) >= 2 for t in TOPICS)
    assert not any(_matches(QUIET_TOPIC, text) for text in texts.values())
    assert [r.chat_id for r in READERS] == list(range(1, 1001))
    assert sum(r.blocked for r in READERS) == 50
    assert {r.schedule.cadence for r in READERS} == {"instant", "daily", "weekly"}
    zones = {r.schedule.timezone for r in READERS}
    assert {"Asia/Gaza", "UTC+05:30"} <= zones
    assert sum(1 for r in READERS if not EXPECTED[r.chat_id]) >= 40  # only the quiet topic


@pytest.fixture(scope="module")
def arrived(tmp_path_factory: pytest.TempPathFactory) -> Arrived:
    """The 20 articles, brought in by `coverbot refresh` from a folder source."""
    root = tmp_path_factory.mktemp("arrivals")
    data_dir = root / "data"
    subscribed_at = datetime.now(UTC) - timedelta(hours=1)
    source = stage_articles(root / "articles", subscribed_at)
    config = write_config(root / "coverbot.toml", "", 25.0, source, servers_toml(data_dir))
    out = refresh(config, data_dir)
    assert "digest fixtures: added 20, updated 0, removed 0, unchanged 0, failed 0" in out
    assert "1 source refreshed in" in out
    return Arrived(data_dir, subscribed_at)


@pytest.fixture()
def sandbox(loop: LoopThread) -> Iterator[BotApiSandbox]:
    """A sandbox that takes any reader's chat id; the blocked readers answer 403."""
    server = BotApiSandbox(TOKEN, auto_chats=True)
    loop.run(server.start())
    for reader in READERS:
        if reader.blocked:
            server.block(reader.chat_id)
    yield server
    loop.run(server.stop())


def _prepare(arrived: Arrived, tmp_path: Path, sandbox: BotApiSandbox) -> tuple[Path, Path]:
    """A copy of the index with the 1,000 readers, and a config pointing at the sandbox."""
    data_dir = copy_coverage(arrived.data_dir, tmp_path / "data")
    subscribe(state_url(data_dir), READERS, arrived.subscribed_at)
    extra = servers_toml(data_dir)
    config = write_config(
        tmp_path / "coverbot.toml", sandbox.base_url, MESSAGES_PER_SECOND, extra=extra
    )
    return data_dir, config


def _digest_run(
    loop: LoopThread, config: Path, data_dir: Path, arrived: Arrived, watch: SendWatch
) -> DeliveryRun:
    now = arrived.subscribed_at + timedelta(days=8)
    return loop.run(run_digests(config, data_dir, now, watch), timeout=900)


def _report(name: str, run: DeliveryRun) -> None:
    print(
        f"\n{name}: {run.messages} messages in {run.seconds:.1f}s wall (model load included), "
        f"sending {run.send_seconds:.1f}s = {run.rate:.1f} messages/s; "
        f"{run.throttled} answered 429; {run.stdout.strip()}"
    )


def _received(sandbox: BotApiSandbox) -> dict[int, list[dict[str, Any]]]:
    by_chat: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for message in sandbox.sent():
        by_chat[message["chat"]["id"]].append(message)
    return by_chat


def _check_received(sandbox: BotApiSandbox) -> None:
    """Every reader that follows a matching topic and has not blocked the bot got one digest
    (one header, each expected article linked once, nothing else); the others got nothing."""
    received = _received(sandbox)
    assert set(received) <= set(EXPECTED)
    wrong = {}
    for chat_id, expected in EXPECTED.items():
        messages = received.get(chat_id, [])
        if chat_id not in RECEIVING:
            if messages:
                wrong[chat_id] = f"expected nothing, got {len(messages)} messages"
            continue
        headers = [m["text"].split("\n")[0] for m in messages if m["text"].startswith("Your ")]
        links = sorted(
            e["url"] for m in messages for e in m.get("entities", []) if e["type"] == "text_link"
        )
        count = len(expected)
        header = f"Your digest: {count} new {'article' if count == 1 else 'articles'}"
        if headers != [header] or links != sorted(expected):
            wrong[chat_id] = f"headers {headers}, links {links}, expected {sorted(expected)}"
    assert not wrong, f"{len(wrong)} readers got the wrong digest, e.g. {list(wrong.items())[:3]}"


def _delivery_log(data_dir: Path) -> tuple[dict[int, list[tuple[str, str]]], dict[int, bool]]:
    """(chat -> [(url, status)], chat -> active) from the state database."""
    state = StateDB(state_url(data_dir))
    try:
        logged: dict[int, list[tuple[str, str]]] = defaultdict(list)
        with state.engine.connect() as conn:
            query = sa.select(deliveries.c.chat_id, deliveries.c.url, deliveries.c.status)
            for chat_id, url, status in conn.execute(query):
                logged[chat_id].append((url, status))
        active = {}
        for reader in READERS:
            subscriber = state.subscribers.get(reader.chat_id)
            assert subscriber is not None
            active[reader.chat_id] = subscriber.active
        return logged, active
    finally:
        state.close()


def _check_log(data_dir: Path, uncertain_chat: int | None = None) -> None:
    """Each (reader, article) logged once; sent, or failed for blocked readers, who are now
    inactive if a digest was tried; ``uncertain_chat``'s rows may be uncertain instead."""
    logged, active = _delivery_log(data_dir)
    wrong = {}
    for reader in READERS:
        rows = logged.get(reader.chat_id, [])
        expected = EXPECTED[reader.chat_id]
        status = FAILED if reader.blocked else SENT
        allowed = {status, UNCERTAIN} if reader.chat_id == uncertain_chat else {status}
        if sorted(url for url, _ in rows) != sorted(expected):
            wrong[reader.chat_id] = f"logged {sorted(rows)}, expected {sorted(expected)}"
        elif not {s for _, s in rows} <= allowed:
            wrong[reader.chat_id] = f"statuses {sorted({s for _, s in rows})}"
        elif active[reader.chat_id] == (reader.blocked and bool(expected)):
            wrong[reader.chat_id] = f"active {active[reader.chat_id]}"
    assert not wrong, f"{len(wrong)} readers' delivery log is wrong, e.g. {list(wrong.items())[:3]}"


def test_each_reader_gets_one_digest_with_exactly_its_articles(
    loop: LoopThread, arrived: Arrived, sandbox: BotApiSandbox, tmp_path: Path
) -> None:
    data_dir, config = _prepare(arrived, tmp_path, sandbox)
    watch = SendWatch(sandbox, burst_at=len(RECEIVING) // 4)

    run = _digest_run(loop, config, data_dir, arrived, watch)

    assert run.returncode == 0, run.stderr[-3000:]
    _report("1,000 readers", run)
    _check_received(sandbox)
    _check_log(data_dir)
    blocked = [r.chat_id for r in READERS if r.blocked]
    assert run.counts() == {
        "readers": len(READERS),
        "planned": sum(len(urls) for urls in EXPECTED.values()),
        "sent": sum(len(EXPECTED[c]) for c in RECEIVING),
        "messages": len(RECEIVING),
        "failed": sum(len(EXPECTED[c]) for c in blocked),
        "deactivated": sum(1 for c in blocked if EXPECTED[c]),
    }
    assert run.throttled == BURST and run.messages == len(RECEIVING)


def test_sigkill_halfway_then_restart_repeats_and_skips_no_one(
    loop: LoopThread, arrived: Arrived, sandbox: BotApiSandbox, tmp_path: Path
) -> None:
    data_dir, config = _prepare(arrived, tmp_path, sandbox)
    half = len(RECEIVING) // 2
    watch = SendWatch(sandbox, burst_at=len(RECEIVING) // 4, kill_at=half)

    killed = _digest_run(loop, config, data_dir, arrived, watch)
    assert watch.killed and killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    # The sandbox got the half-th message; the sender died before it heard back.
    assert killed.messages == half and killed.throttled == BURST
    in_flight = sandbox.sent()[-1]["chat"]["id"]

    restarted = _digest_run(loop, config, data_dir, arrived, watch)

    assert restarted.returncode == 0, restarted.stderr[-3000:]
    _report("killed at half", killed)
    _report("restarted", restarted)
    assert restarted.counts()["planned"] == 0  # everything was planned before the kill
    assert killed.messages + restarted.messages == len(RECEIVING)
    _check_received(sandbox)
    # The message in flight is "uncertain", not resent: its reader did receive it.
    _check_log(data_dir, uncertain_chat=in_flight)
    logged, _ = _delivery_log(data_dir)
    uncertain = {c for c, rows in logged.items() for _, s in rows if s == UNCERTAIN}
    assert uncertain == {in_flight}
    assert {s for _, s in logged[in_flight]} == {UNCERTAIN}
