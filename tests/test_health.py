"""`coverbot health`: passes beside a serving bot, and names each check that fails."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bot import state
from bot.cli.main import cli
from bot.config import Config, RefreshSection, load_config
from bot.ops.health import check_index, check_refresh, check_state
from bot.sources.registry import SourceRecord
from bot.state import StateDB
from index.coverage import CoverageIndex

NOW = datetime(2025, 11, 26, 12, 0, tzinfo=UTC)
EVERY_30_MIN = RefreshSection(interval_minutes=30)


@pytest.fixture()
def served(tmp_path: Path, sample_index: CoverageIndex) -> Config:
    """A data dir as a running bot leaves it: the sample index and a migrated state DB."""
    data_dir = tmp_path / "data"
    shutil.copytree(sample_index.data_dir, data_dir)
    config = load_config(data_dir=data_dir)
    StateDB(config.state_url).close()
    return config


def health(config: Config, *options: str) -> tuple[int, list[str]]:
    args = ["--data-dir", str(config.data_dir)]
    if config.path:
        args = ["--config", config.path, *args]
    result = CliRunner().invoke(cli, [*args, "health", *options])
    return result.exit_code, result.output.splitlines()


def test_health_passes_beside_a_serving_bot(served: Config) -> None:
    code, lines = health(served)
    assert code == 0, lines
    assert [line.split(":")[0] for line in lines] == [
        "ok   state",
        "ok   index",
        "ok   model",
        "ok   refresh",
    ]
    assert f"schema version {len(state.MIGRATIONS)}" in lines[0]
    assert "16 articles" in lines[1] and "384 dimensions" in lines[2]
    assert lines[3].endswith("no sources registered")


def test_every_failing_check_is_named(tmp_path: Path) -> None:
    config_file = tmp_path / "coverbot.toml"
    config_file.write_text(f'[index]\nmodel = "{tmp_path / "no-model"}"\n')
    config = load_config(config_file, data_dir=tmp_path / "empty")
    code, lines = health(config)
    assert code == 1
    assert [line.split(":")[0] for line in lines] == [
        "FAIL state",
        "FAIL index",
        "FAIL model",
        "FAIL refresh",
    ]
    assert "no index in" in lines[1] and "ModelError" in lines[2]
    assert not (tmp_path / "empty").exists()  # health created nothing


def test_a_schema_from_a_newer_coverbot_fails(served: Config) -> None:
    engine = sa.create_engine(served.state_url)
    with engine.begin() as conn:
        conn.execute(state.schema_version.update().values(version=len(state.MIGRATIONS) + 1))
    engine.dispose()
    check, records = check_state(served)
    assert not check.ok and records is None
    assert f"expects {len(state.MIGRATIONS)}" in check.detail


def test_an_unreachable_chroma_server_fails_the_index(served: Config) -> None:
    index = dataclasses.replace(served.index, chroma_url="http://127.0.0.1:9")
    check = check_index(dataclasses.replace(served, index=index))
    assert not check.ok and "http://127.0.0.1:9" in check.detail


def test_overdue_sources_read_from_the_state_database_fail(served: Config) -> None:
    db = StateDB(served.state_url)
    fresh = db.sources.add("feed", "https://news.example/feed/", name="Feed")
    stale = db.sources.add("sitemap", "https://news.example/sitemap.xml", name="Sitemap")
    db.sources.record_success(
        fresh.id, cursor={}, validators={}, added_urls=(), removed_urls=(), at=NOW
    )
    db.sources.record_success(
        stale.id,
        cursor={},
        validators={},
        added_urls=(),
        removed_urls=(),
        at=NOW - timedelta(hours=2),
    )
    db.close()
    _, records = check_state(served)
    assert records is not None
    check = check_refresh(records, EVERY_30_MIN, NOW)
    assert not check.ok
    assert check.detail.startswith("1 of 2 sources overdue; Sitemap by 30 min")
    assert check_refresh(records, EVERY_30_MIN, NOW, stale_after=5).ok


def record(**fields: object) -> SourceRecord:
    base: dict[str, object] = {
        "id": 1,
        "kind": "feed",
        "url": "https://news.example/feed/",
        "name": "Feed",
        "added_by": None,
        "added_at": NOW - timedelta(days=3),
    }
    return SourceRecord(**{**base, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "ok"),
    [
        (record(last_refresh_at=NOW - timedelta(minutes=89)), True),
        (record(last_refresh_at=NOW - timedelta(minutes=91)), False),
        # Never refreshed: due one interval after it was added.
        (record(added_at=NOW - timedelta(minutes=10)), True),
        (record(), False),
        # Resting after failures: late only well after the back-off ends.
        (
            record(
                last_refresh_at=NOW - timedelta(hours=5),
                next_attempt_at=NOW + timedelta(hours=1),
                consecutive_failures=4,
            ),
            True,
        ),
        (
            record(
                last_refresh_at=NOW - timedelta(hours=5),
                next_attempt_at=NOW - timedelta(minutes=61),
                consecutive_failures=4,
            ),
            False,
        ),
        # A disabled source is nobody's concern.
        (record(enabled=False), True),
    ],
)
def test_refresh_is_late_after_three_intervals(source: SourceRecord, ok: bool) -> None:
    assert check_refresh([source], EVERY_30_MIN, NOW).ok is ok


def test_a_damaged_current_fails_the_index_check_with_the_fix(served: Config) -> None:
    # #12 item 3: `coverbot health` (the image's HEALTHCHECK) must name a damaged pointer,
    # not crash on it, and must never repair or remove anything.
    (served.data_dir / "CURRENT").write_text("garbage\n")
    check = check_index(served)
    assert not check.ok and "CURRENT is damaged" in check.detail and "echo gen-" in check.detail
