"""Following topics and digests through the Bot API sandbox, with the real index and model.

Digest runs are called with given clocks; articles "arrive" by importing them while the
bot runs. What a reader should get is computed independently here: a name topic matches
the articles whose text contains the name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import DigestsSection
from bot.digests import render as render_digest
from bot.digests.cadence import Schedule
from bot.digests.sending import run_digests
from bot.digests.store import DUE, FAILED, SENT, UNCERTAIN, PlannedItem
from bot.sandbox import SandboxChat
from bot.types import RunReport
from index.articles import Article
from index.coverage import CoverageIndex, IndexSettings
from index.embeddings import Embedder
from tests.bot_harness import InProcessBot, LoopThread, loop_fixture, start_bot

_ = loop_fixture

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)  # a Monday


def _article(n: int, title: str, body: str, day: int = 1) -> Article:
    """News of the last few days (older articles are a back catalogue, not news)."""
    published = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5 - day)
    return Article(
        url=f"https://news.example.org/2026/05/{n:02d}/story-{n}/",
        title=title,
        body=body,
        published_at=published.isoformat(),
    )


ARTICLES = [
    _article(
        1,
        "Envoy returns to the region as truce wobbles",
        "US envoy Steve Witkoff arrived in Cairo on Sunday for talks with Egyptian and Qatari "
        "mediators.\n\nWitkoff urged both sides to keep to the ceasefire while the next phase is "
        "negotiated, officials said.",
        day=2,
    ),
    _article(
        2,
        "Aid lorries queue at the crossing",
        "Hundreds of lorries loaded with flour and medicine waited at the Kerem Shalom crossing "
        "on Monday.\n\nAid agencies said the convoys had been held for days by inspections.",
        day=3,
    ),
    _article(
        3,
        "Football club opens new training ground",
        "The club unveiled a training ground with three pitches and a gym on Saturday.\n\n"
        "The manager said the squad would move in before pre-season.",
        day=1,
    ),
    _article(
        4,
        "Mediators press for second phase of Gaza deal",
        "Negotiators met in Doha to discuss the second phase of the agreement.\n\n"
        "Steve Witkoff joined the talks by video link, a diplomat said, and pressed for an "
        "extension of the truce.",
        day=4,
    ),
]


@pytest.fixture()
def bot(loop: LoopThread, tmp_path: Path, embedder: Embedder) -> Iterator[InProcessBot]:
    index = CoverageIndex(tmp_path / "data", IndexSettings(), embedder=embedder)
    running = start_bot(loop, index, tmp_path / "state")
    yield running
    running.shutdown()


def _send(bot: InProcessBot, chat: SandboxChat, text: str) -> list[dict]:
    user = bot.sandbox.users[chat.id]
    before = bot.sandbox.sent_count(chat.id)
    update = bot.run(bot.sandbox.inject_message(chat, user, text))
    bot.run(bot.wait_done(update))
    return bot.sandbox.sent(chat.id)[before:]


def _reader(bot: InProcessBot, name: str) -> SandboxChat:
    return bot.sandbox.chat(bot.sandbox.user(name))


def _arrive(bot: InProcessBot, articles: list[Article]) -> None:
    report = bot.services.index.import_articles(articles)
    assert report.added == len(articles)


def _digest_urls(messages: list[dict]) -> set[str]:
    urls = set()
    for message in messages:
        for entity in message.get("entities", []):
            if entity["type"] == "text_link":
                urls.add(entity["url"])
    return urls


def _run(bot: InProcessBot, slot: str | None, now: datetime) -> RunReport:
    return bot.run(run_digests(bot.app.bot, bot.services, slot, now), timeout=60)


def test_follow_list_and_unfollow_by_button(bot: InProcessBot) -> None:
    chat = _reader(bot, "Reader")
    reply = _send(bot, chat, "/follow   Witkoff ")
    assert "Following Witkoff" in reply[-1]["text"]
    assert "daily at 08:00 (UTC)" in reply[-1]["text"]
    assert "already follow" in _send(bot, chat, "/follow witkoff")[-1]["text"]
    _send(bot, chat, "/follow aid convoys")
    listing = _send(bot, chat, "/following")[-1]
    assert "• Witkoff" in listing["text"] and "• aid convoys" in listing["text"]
    buttons = [b for row in listing["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["text"] for b in buttons] == ["✖ Witkoff", "✖ aid convoys"]

    user = bot.sandbox.users[chat.id]
    answered = len(bot.sandbox.callback_answers)
    bot.run(
        bot.sandbox.press_button(chat, user, listing["message_id"], buttons[0]["callback_data"])
    )
    bot.run(bot.sandbox.wait_for(lambda _: len(bot.sandbox.callback_answers) > answered))
    bot.run(bot.sandbox.wait_for(lambda _: bot.sandbox.calls("editMessageText")))
    (current,) = [
        m for m in bot.sandbox.history(chat.id) if m["message_id"] == listing["message_id"]
    ]
    assert "Witkoff" not in current["text"] and "aid convoys" in current["text"]
    assert [t.text for t in bot.services.state.subscribers.topics_of(chat.id)] == ["aid convoys"]
    assert "do not follow" in _send(bot, chat, "/unfollow Witkoff")[-1]["text"]
    assert "Stopped following" in _send(bot, chat, "/unfollow AID convoys")[-1]["text"]


@pytest.mark.parametrize(
    "text",
    [
        "/follow",
        "/follow !!!",
        "/follow " + "x" * 200,
        "/follow <b>& one two three four five six seven eight</b>",
    ],
)
def test_follow_refuses_odd_topics_with_a_reason(bot: InProcessBot, text: str) -> None:
    chat = _reader(bot, "Odd")
    reply = _send(bot, chat, text)[-1]["text"]
    assert "follow" in reply.lower()
    assert bot.services.state.subscribers.topics_of(chat.id) == []


def test_digest_and_timezone_settings(bot: InProcessBot) -> None:
    chat = _reader(bot, "Settings")
    _send(bot, chat, "/follow ceasefire")
    assert "Comes daily at 08:00 (UTC)" in _send(bot, chat, "/digest")[-1]["text"]
    assert "every Friday at 18:00" in _send(bot, chat, "/digest weekly fri 18")[-1]["text"]
    replies = _send(bot, chat, "/timezone gaza")
    assert "Time zone set to Asia/Gaza" in replies[0]["text"]
    reader = bot.services.state.subscribers.get(chat.id)
    assert reader is not None and reader.schedule == Schedule("weekly", 18, 4, "Asia/Gaza")
    assert "do not know the time zone" in _send(bot, chat, "/timezone Atlantis")[0]["text"]
    assert "I could not read" in _send(bot, chat, "/digest daily 25")[-1]["text"]
    assert "as soon as new articles" in _send(bot, chat, "/digest instant")[-1]["text"]
    jobs = {j.name for j in bot.app.job_queue.jobs()}
    assert {"digest:instant", "digest:weekly:fri:18:Asia/Gaza"} <= jobs


def test_each_reader_gets_exactly_the_matching_articles_once(bot: InProcessBot) -> None:
    store = bot.services.state.subscribers
    both, aid, blocked = _reader(bot, "Both"), _reader(bot, "Aid"), _reader(bot, "Blocked")
    start = NOW - timedelta(hours=2)
    instant = Schedule("instant")
    for chat, topics in (
        (both, ["Witkoff", "ceasefire talks"]),
        (aid, ["aid convoys"]),
        (blocked, ["Witkoff"]),
    ):
        for topic in topics:
            store.follow(chat.id, "private", topic, instant, start)
    _arrive(bot, ARTICLES)
    bot.sandbox.block(blocked.id)
    bot.sandbox.fail_next("sendMessage", count=2, status=429, retry_after=1)

    report = _run(bot, None, datetime.now(UTC))

    witkoff = {a.url for a in ARTICLES if "witkoff" in a.body.lower()}
    got_both = _digest_urls(bot.sandbox.sent(both.id))
    assert witkoff <= got_both  # the name, in two articles
    assert ARTICLES[2].url not in got_both  # football
    assert ARTICLES[1].url in _digest_urls(bot.sandbox.sent(aid.id))  # "lorries", "convoys"
    assert ARTICLES[2].url not in _digest_urls(bot.sandbox.sent(aid.id))
    # Each article once per reader, although two topics matched some of them.
    assert len(store.deliveries_of(both.id)) == len(got_both)
    assert all(status == SENT for _, status in store.deliveries_of(both.id))
    # The blocked reader is deactivated and its delivery failed, not retried.
    reader = store.get(blocked.id)
    assert (
        reader is not None and not reader.active and "blocked" in (reader.deactivated_reason or "")
    )
    assert {s for _, s in store.deliveries_of(blocked.id)} == {FAILED}
    assert report.deactivated == 1
    # The 429s were waited out: one message per reader, each article in it once.
    assert [bot.sandbox.sent_count(c.id) for c in (both, aid, blocked)] == [1, 1, 0]
    assert len(bot.sandbox.calls("sendMessage")) >= 2 + 2

    # A second run finds nothing new: no message at all.
    before = bot.sandbox.sent_count()
    again = _run(bot, None, datetime.now(UTC))
    assert again.sent == 0 and bot.sandbox.sent_count() == before


def test_daily_reader_waits_for_the_hour_and_quiet_days_send_nothing(bot: InProcessBot) -> None:
    store = bot.services.state.subscribers
    chat = _reader(bot, "Daily")
    created = datetime.now(UTC) - timedelta(days=2)
    store.follow(chat.id, "private", "Witkoff", Schedule("daily", 8, 0, "Asia/Gaza"), created)
    _arrive(bot, ARTICLES[:1])
    now = datetime.now(UTC)
    # The last 08:00 in Gaza lies after the reader's creation: due now, once.
    first = _run(bot, "daily:08:Asia/Gaza", now)
    assert first.readers == 1 and first.sent == 1
    assert _run(bot, "daily:08:Asia/Gaza", now + timedelta(minutes=5)).readers == 0
    # Next day, nothing new matched: planned, but no message.
    before = bot.sandbox.sent_count(chat.id)
    quiet = _run(bot, "daily:08:Asia/Gaza", now + timedelta(days=1))
    assert quiet.readers == 1 and quiet.planned == 0 and bot.sandbox.sent_count(chat.id) == before


def test_max_topics_holds_when_a_new_chat_follows_a_hundred_topics_at_once(
    loop: LoopThread, tmp_path: Path, sample_index: CoverageIndex
) -> None:
    """100 /follow at once in a chat the bot has never seen: exactly [digests] max_topics
    are kept, the others are told the limit; nobody gets "Sorry, something went wrong"."""
    running = start_bot(loop, sample_index, tmp_path, digests=DigestsSection(max_topics=5))
    try:
        sandbox = running.sandbox
        reader = sandbox.user("Hasty")
        chat = sandbox.chat(reader)

        async def burst() -> None:
            updates = [
                await sandbox.inject_message(chat, reader, f"/follow topic {i}") for i in range(100)
            ]
            await running.wait_done(updates, timeout=60)

        running.run(burst(), timeout=90)
        replies = [m["text"] for m in sandbox.sent(chat.id)]
        assert len(replies) == 100
        assert sum(r.startswith("Following topic") for r in replies) == 5
        assert sum("follows 5 topics, the most I keep" in r for r in replies) == 95
        assert len(running.services.state.subscribers.topics_of(chat.id)) == 5
        assert running.errors == []
    finally:
        running.shutdown()


def test_kicked_from_group_deactivates_and_return_resumes(bot: InProcessBot) -> None:
    store = bot.services.state.subscribers
    user = bot.sandbox.user("Admin")
    group = bot.sandbox.chat(type="group", title="Newsroom")
    bot.sandbox.set_member_status(group, user, "creator")
    bot.run(bot.sandbox.inject_message(group, user, "/follow Witkoff"))
    bot.run(bot.sandbox.wait_for(1, chat_id=group.id))
    update = bot.run(bot.sandbox.inject_my_chat_member(group, user, "kicked"))
    bot.run(bot.wait_done(update))
    reader = store.get(group.id)
    assert reader is not None and not reader.active
    update = bot.run(bot.sandbox.inject_my_chat_member(group, user, "member"))
    bot.run(bot.wait_done(update))
    reader = store.get(group.id)
    assert reader is not None and reader.active


def test_a_new_sources_back_catalogue_is_not_news(bot: InProcessBot) -> None:
    store = bot.services.state.subscribers
    chat = _reader(bot, "Archive")
    store.follow(chat.id, "private", "Witkoff", Schedule("instant"), NOW - timedelta(days=400))
    old = dataclasses.replace(ARTICLES[0], published_at="2025-01-10T08:00:00+00:00")
    _arrive(bot, [old, ARTICLES[3]])
    _run(bot, None, datetime.now(UTC))
    assert _digest_urls(bot.sandbox.sent(chat.id)) == {ARTICLES[3].url}


def test_preview_logs_nothing(bot: InProcessBot) -> None:
    store = bot.services.state.subscribers
    chat = _reader(bot, "Preview")
    store.follow(chat.id, "private", "Witkoff", Schedule("daily"), NOW - timedelta(days=1))
    assert "Nothing new" in _send(bot, chat, "/digest now")[-1]["text"]
    _arrive(bot, ARTICLES)
    replies = _send(bot, chat, "/digest now")
    assert replies[0]["text"].startswith("Preview: 2 articles")
    assert _digest_urls(replies) == {a.url for a in ARTICLES if "witkoff" in a.body.lower()}
    assert store.deliveries_of(chat.id) == []


def test_interrupted_send_is_not_repeated_and_waiting_rows_resume(bot: InProcessBot) -> None:
    store = bot.services.state.subscribers
    chat, other = _reader(bot, "Crash"), _reader(bot, "Waiting")
    for reader in (chat, other):
        store.follow(reader.id, "private", "Witkoff", Schedule("instant"), NOW)
    item = PlannedItem(ARTICLES[0].url, ARTICLES[0].title, None, "Witkoff", "Witkoff urged")
    store.plan(chat.id, "crashed-run", [item], cutoff=NOW, now=NOW)
    store.plan(other.id, "crashed-run", [item], cutoff=NOW, now=NOW)
    (row,) = store.due_items(chat.id)
    store.mark([row.id], "sending")  # the crash came while this was in flight
    assert store.recover_interrupted() == 1
    report = _run(bot, None, NOW + timedelta(minutes=1))
    assert store.deliveries_of(chat.id) == [(ARTICLES[0].url, UNCERTAIN)]
    assert store.deliveries_of(other.id) == [(ARTICLES[0].url, SENT)]
    assert report.sent == 1 and bot.sandbox.sent_count(chat.id) == 0
    assert DUE not in {s for _, s in store.deliveries_of(other.id)}


def test_subscriber_counts_for_admins(bot: InProcessBot) -> None:
    store = bot.services.state.subscribers
    for n in range(3):
        store.follow(1000 + n, "private", "Witkoff", Schedule("daily"), NOW)
    store.follow(1000, "private", "aid", Schedule("daily"), NOW)
    store.deactivate(1002, "blocked the bot")
    counts = store.counts()
    assert counts.active_by_cadence == {"daily": 2} and counts.inactive == 1
    assert (counts.topics, counts.distinct_topics) == (4, 2)
    text = render_digest.subscribers_message(counts)
    assert "Active: 2 (instant 0, daily 2, weekly 0)" in text
