"""The suite's store switch, and the state database on a real PostgreSQL server.

The suite runs twice in CI: embedded (Chroma under the data dir, SQLite state) and against
a Chroma server and PostgreSQL (tests/backends.py). The first test proves each run uses the
stores it asked for; the others need PostgreSQL and skip without COVERBOT_TEST_STATE_URL.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot import state
from bot.config import ENV_CHROMA_URL, Config, IndexSection, load_config
from bot.state import StateDB
from index.coverage import CoverageIndex
from tests.backends import chroma_server_wanted, state_server_url

needs_postgres = pytest.mark.skipif(
    state_server_url() is None, reason="COVERBOT_TEST_STATE_URL names no PostgreSQL server"
)


def test_indexes_and_state_live_where_the_run_asked(
    tmp_path: Path, sample_index: CoverageIndex
) -> None:
    server = chroma_server_wanted()
    assert (sample_index.path / "chroma").is_dir() is not server
    assert load_config(data_dir=tmp_path).index.chroma_url == (
        os.environ[ENV_CHROMA_URL] if server else ""
    )
    url = Config(index=IndexSection(data_dir=str(tmp_path))).state_url
    scheme = "postgresql+psycopg://" if state_server_url() else "sqlite:///"
    assert url.startswith(scheme)
    assert Config(index=IndexSection(data_dir=str(tmp_path / "other"))).state_url != url


@pytest.fixture()
def db(tmp_path: Path) -> StateDB:
    return StateDB(Config(index=IndexSection(data_dir=str(tmp_path))).state_url)


@needs_postgres
def test_schema_is_created_once_on_postgresql(db: StateDB) -> None:
    assert db.engine.dialect.name == "postgresql"
    tables = set(sa.inspect(db.engine).get_table_names())
    assert {"schema_version", "answers", "feedback", "sources", "source_urls"} <= tables
    again = StateDB(db.url)
    assert again.version == again.current_version() == len(state.MIGRATIONS)
    with again.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(state.schema_version)).scalar()
    again.close()


@needs_postgres
def test_big_chat_ids_and_aware_times_survive_the_round_trip(db: StateDB) -> None:
    supergroup = -1001234567890  # beyond 32 bits, as Telegram's supergroup ids are
    answer_id = db.save_answer(supergroup, "What did Witkoff urge?", ("https://a", "https://b"))
    saved = db.get_answer(answer_id)
    assert saved is not None and saved.chat_id == supergroup
    assert saved.created.tzinfo is not None
    assert abs(saved.created - datetime.now(UTC)) < timedelta(minutes=1)
    db.record_feedback(answer_id, 1, 7_000_000_000, "helpful")
    changed = db.record_feedback(answer_id, 1, 7_000_000_000, "wrong_quote")
    assert changed is not None
    assert [(f.user_id, f.kind, f.url) for f in db.feedback()] == [
        (7_000_000_000, "wrong_quote", "https://b")
    ]


@needs_postgres
def test_source_health_round_trips(db: StateDB) -> None:
    source = db.sources.add("feed", "https://news.example/feed/", name="Feed")
    failed_at = datetime(2025, 11, 26, 9, 30, tzinfo=UTC)
    db.sources.record_failure(
        source.id, reason="HTTP 503", at=failed_at, next_attempt_at=failed_at + timedelta(hours=1)
    )
    db.sources.record_success(
        source.id,
        cursor={"after": 5},
        validators={},
        added_urls={"https://news.example/a", "https://news.example/b"},
        removed_urls=(),
        at=failed_at + timedelta(hours=1),
    )
    [again] = db.sources.records()
    assert again.last_error_at == failed_at and again.last_error == "HTTP 503"
    assert again.last_success_at == failed_at + timedelta(hours=1)
    assert again.consecutive_failures == 0 and again.next_attempt_at is None
    assert again.cursor == {"after": 5} and again.articles == 2
