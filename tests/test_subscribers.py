"""The subscriber store and the delivery log; upgrading older state databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import state
from bot.config import Config, IndexSection
from bot.digests.cadence import Schedule
from bot.digests.store import DUE, SENDING, SENT, UNCERTAIN, PlannedItem, TooManyTopics
from bot.state import StateDB
from bot.telegram.callbacks import HELPFUL


def _url(tmp_path: Path) -> str:
    """SQLite in the data dir, or a fresh PostgreSQL database when the suite runs on one."""
    return Config(index=IndexSection(data_dir=str(tmp_path))).state_url


NOW = datetime(2026, 5, 4, 9, tzinfo=UTC)


def _item(n: int, topic: str = "Witkoff") -> PlannedItem:
    return PlannedItem(f"https://news.example.org/{n}", f"Story {n}", None, topic, "quote")


def test_first_schema_version_is_upgraded_without_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _url(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(state, "MIGRATIONS", state.MIGRATIONS[:1])  # the first release
        old = StateDB(url)
        assert old.current_version() == 1
        answer_id = old.save_answer(7, "What did Witkoff urge?", ("https://a", "https://b"))
        old.record_feedback(answer_id, 0, 99, HELPFUL)
        old.close()
    db = StateDB(url)
    assert db.current_version() == len(state.MIGRATIONS) == 4
    saved = db.get_answer(answer_id)
    assert saved is not None and saved.urls == ("https://a", "https://b")
    assert [(f.user_id, f.kind, f.url) for f in db.feedback()] == [(99, HELPFUL, "https://a")]
    # The new tables work on the upgraded database.
    topic, added = db.subscribers.follow(7, "private", "Witkoff", Schedule(), NOW)
    assert added and db.subscribers.topics_of(7) == [topic]
    assert db.sources.records() == []


def test_second_schema_version_keeps_its_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _url(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(state, "MIGRATIONS", state.MIGRATIONS[:2])
        old = StateDB(url)
        old.sources.seed([("feed", "https://news.example.org/feed/", "Main")])
        old.close()
    db = StateDB(url)
    assert [(r.kind, r.url, r.name) for r in db.sources.records()] == [
        ("feed", "https://news.example.org/feed/", "Main")
    ]


@pytest.fixture()
def db(tmp_path: Path) -> StateDB:
    return StateDB(_url(tmp_path))


def test_topics_are_case_insensitive_limited_and_removable(db: StateDB) -> None:
    store = db.subscribers
    store.max_topics = 2
    first, added = store.follow(1, "private", "Witkoff", Schedule(), NOW)
    assert added
    assert store.follow(1, "private", "WITKOFF", Schedule(), NOW) == (first, False)
    store.follow(1, "private", "aid convoys", Schedule(), NOW)
    with pytest.raises(TooManyTopics):
        store.follow(1, "private", "ceasefire", Schedule(), NOW)
    assert store.unfollow(1, "witkoff") == first
    assert store.unfollow(1, first.id) is None
    assert store.unfollow(2, "aid convoys") is None  # another chat's topic is not ours


def test_topic_limit_holds_under_concurrent_follows_of_a_new_chat(tmp_path: Path) -> None:
    """Many threads follow at once in a chat with no subscriber row yet: one row is created
    without an IntegrityError, and exactly ``max_topics`` topics are kept (SQLite, or
    PostgreSQL when the suite runs on it)."""
    db = StateDB(_url(tmp_path))
    db.subscribers.max_topics = 7
    outcomes: list[str] = []

    def follow(i: int) -> None:
        try:
            db.subscribers.follow(-100, "supergroup", f"topic {i}", Schedule(), NOW)
            outcomes.append("added")
        except TooManyTopics:
            outcomes.append("limit")

    def change(i: int) -> None:
        db.subscribers.set_schedule(-200, "group", Schedule("daily", i % 24), NOW)
        outcomes.append("schedule")

    with ThreadPoolExecutor(16) as pool:
        for future in [pool.submit(follow, i) for i in range(60)]:
            future.result()
        for future in [pool.submit(change, i) for i in range(20)]:
            future.result()
    assert outcomes.count("added") == 7 and outcomes.count("limit") == 53
    assert len(db.subscribers.topics_of(-100)) == 7
    assert outcomes.count("schedule") == 20 and db.subscribers.get(-200) is not None
    db.close()


def test_plan_is_once_per_reader_and_article(db: StateDB) -> None:
    store = db.subscribers
    store.follow(1, "private", "Witkoff", Schedule("instant"), NOW)
    assert store.plan(1, "run-1", [_item(1), _item(2)], cutoff=NOW, now=NOW) == 2
    # A later run (or another topic) that finds the same article adds nothing.
    assert store.plan(1, "run-2", [_item(2, "ceasefire"), _item(3)], cutoff=NOW, now=NOW) == 1
    assert [u for u, _ in store.deliveries_of(1)] == [
        "https://news.example.org/1",
        "https://news.example.org/2",
        "https://news.example.org/3",
    ]
    reader = store.get(1)
    assert reader is not None and reader.watermark == NOW


def test_statuses_recovery_and_deactivation(db: StateDB) -> None:
    store = db.subscribers
    for chat in (1, 2):
        store.follow(chat, "private", "Witkoff", Schedule("instant"), NOW)
        store.plan(chat, "run", [_item(1), _item(2)], cutoff=NOW, now=NOW)
    assert store.due_chats() == [1, 2]
    one, two = store.due_items(1)
    store.mark([one.id], SENT, message_id=5)
    store.mark([two.id], SENDING)
    assert store.recover_interrupted() == 1
    assert store.deliveries_of(1) == [
        ("https://news.example.org/1", SENT),
        ("https://news.example.org/2", UNCERTAIN),
    ]
    assert store.due_chats() == [2]
    assert store.deactivate(2, "blocked the bot")
    assert not store.deactivate(2, "again")
    assert store.due_chats() == []  # inactive readers are not sent to
    assert store.fail_chat(2, "blocked") == 2
    assert store.reactivate(2, NOW + timedelta(days=1))
    reader = store.get(2)
    assert reader is not None and reader.active and reader.watermark == NOW + timedelta(days=1)
    assert {s for _, s in store.deliveries_of(2)} == {"failed"}
    assert DUE not in {s for _, s in store.deliveries_of(1)}


def test_slots_and_readers_by_slot(db: StateDB) -> None:
    store = db.subscribers
    store.follow(1, "private", "a", Schedule("daily", 8, 0, "Asia/Gaza"), NOW)
    store.follow(2, "private", "b", Schedule("daily", 8, 0, "Asia/Gaza"), NOW)
    store.follow(3, "private", "c", Schedule("weekly", 18, 4, "UTC"), NOW)
    store.follow(4, "private", "d", Schedule("instant"), NOW)
    store.set_schedule(5, "private", Schedule("daily", 6, 0, "UTC"), NOW)  # no topics: no slot
    assert store.slots() == ["daily:08:Asia/Gaza", "instant", "weekly:fri:18:UTC"]
    assert [r.chat_id for r in store.readers_in("daily:08:Asia/Gaza")] == [1, 2]
    assert [r.chat_id for r in store.readers_in(None)] == [1, 2, 3, 4]
