"""The state database (migrations, answers, feedback) and the micro-batcher."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot import state
from bot.batcher import AskBatcher
from bot.services import ReportLimiter
from bot.state import StateDB
from index.coverage import CoverageIndex

QUESTION = "What did Witkoff urge?"


def test_migrations_run_once_and_record_the_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    db = StateDB(url)
    assert db.version == len(state.MIGRATIONS) == db.current_version()
    answer_id = db.save_answer(7, QUESTION, ("https://a", "https://b"))
    db.close()
    again = StateDB(url)  # reopening migrates nothing and keeps the data
    assert again.get_answer(answer_id) is not None
    with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (len(state.MIGRATIONS),)
        ]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"schema_version", "answers", "feedback", "sources", "source_urls"} <= tables


def test_a_later_migration_is_applied_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    StateDB(url).close()
    notes = sa.Table("notes", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    monkeypatch.setattr(state, "MIGRATIONS", [*state.MIGRATIONS, notes.create])
    db = StateDB(url)
    assert db.current_version() == len(state.MIGRATIONS)
    with db.engine.connect() as conn:
        assert sa.inspect(conn).has_table("notes")
    monkeypatch.setattr(state, "MIGRATIONS", state.MIGRATIONS[:1])
    with pytest.raises(RuntimeError, match="newer than this coverbot"):
        StateDB(url)


def test_feedback_is_one_vote_per_reader_and_message(tmp_path: Path) -> None:
    db = StateDB(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    answer_id = db.save_answer(-100, QUESTION, ("https://a", "https://b", "https://c"))
    assert db.record_feedback(answer_id, 0, 1, "helpful") is not None
    changed = db.record_feedback(answer_id, 0, 1, "wrong_quote")
    assert changed is not None and changed.url == "https://a" and changed.chat_id == -100
    db.record_feedback(answer_id, 2, 1, "helpful")
    db.record_feedback(answer_id, 0, 2, "helpful")
    assert db.record_feedback("unknown", 0, 1, "helpful") is None
    assert db.record_feedback(answer_id, 9, 1, "helpful") is None
    votes = {(f.user_id, f.position, f.kind, f.url) for f in db.feedback()}
    assert votes == {
        (1, 0, "wrong_quote", "https://a"),
        (1, 2, "helpful", "https://c"),
        (2, 0, "helpful", "https://a"),
    }


def test_old_answers_are_pruned(tmp_path: Path) -> None:
    db = StateDB(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    answer_id = db.save_answer(1, QUESTION, ("https://a",))
    assert db.prune_answers(timedelta(days=1)) == 0
    assert db.prune_answers(timedelta(seconds=-1)) == 1
    assert db.get_answer(answer_id) is None


def test_report_limiter_holds_back_and_counts() -> None:
    now = [0.0]
    limiter = ReportLimiter(60, clock=lambda: now[0])
    assert limiter.allow() == 0
    assert limiter.allow() is None and limiter.allow() is None
    now[0] = 61
    assert limiter.allow() == 2


async def test_batcher_answers_concurrent_questions_in_few_batches_off_the_loop(
    sample_index: CoverageIndex,
) -> None:
    """Twenty concurrent questions: answered as ask() would, in far fewer encoder passes,
    all on the one worker thread (never the event loop's)."""
    batcher = AskBatcher(sample_index, window=0.02)
    await batcher.start()
    try:
        questions = [QUESTION, "Who won the Champions League final?"] * 10
        answers = await asyncio.gather(*(batcher.ask(q) for q in questions))
        thread = await batcher.call(lambda: threading.current_thread().name)
    finally:
        await batcher.stop()
    assert [a.answered for a in answers] == [True, False] * 10
    assert "Witkoff urged Israel to uphold the ceasefire" in answers[0].excerpts[0].text
    assert batcher.questions == 20 and batcher.batches <= 2
    assert thread.startswith("coverbot-index")
    assert thread != threading.current_thread().name
    with pytest.raises(RuntimeError):
        await batcher.ask(QUESTION)
