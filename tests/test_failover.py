"""Two replicas on one state database: one runs the scheduled jobs; when it is SIGKILLed
half-way through a digest run, the other takes over and every reader gets one copy.

Both replicas are `coverbot run` subprocesses in webhook mode (as behind a reverse proxy)
against the sandbox, sharing the data directory and the state database (PostgreSQL when
the suite runs on one, else one SQLite file).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.config import Config, IndexSection
from bot.digests.cadence import Schedule
from bot.sandbox import BotApiSandbox
from bot.sandbox.server import RequestRecord
from bot.state import StateDB
from tests.bot_harness import LoopThread

# Two `coverbot run` subprocesses, one killed.
pytestmark = pytest.mark.slow

TOKEN = "555111:replica-token"
READERS = 120
LEASE_SECONDS = 8


def _coverbot() -> list[str]:
    script = Path(sys.executable).with_name("coverbot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _articles(folder: Path) -> set[str]:
    """Three fresh articles naming Witkoff and one about something else."""
    folder.mkdir()
    now = datetime.now(UTC).replace(microsecond=0)
    stories = [
        ("Witkoff lands in Cairo", "Steve Witkoff arrived in Cairo for talks on the truce."),
        ("Envoy meets mediators", "The envoy Witkoff met Qatari mediators in Doha on Monday."),
        ("Families see Witkoff", "Relatives of hostages met Witkoff, who promised progress."),
        ("Storm closes harbour", "A winter storm closed the fishing harbour for two days."),
    ]
    urls = set()
    for n, (title, body) in enumerate(stories):
        url = f"https://news.example.org/failover/{n}/"
        record = {
            "url": url,
            "title": title,
            "body": f"{body}\n\nOfficials said more meetings would follow this week.",
            "published_at": (now - timedelta(hours=n)).isoformat(),
        }
        (folder / f"{n}.json").write_text(json.dumps(record))
        if "Witkoff" in body:
            urls.add(url)
    return urls


def _holder_pid(engine: sa.Engine) -> int | None:
    with engine.connect() as conn:
        holder = conn.execute(
            sa.text("SELECT holder FROM leases WHERE name = 'scheduler'")
        ).scalar()
    return int(holder.split(":")[1]) if holder else None


def test_scheduler_fails_over_and_digests_stay_exactly_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    expected = _articles(tmp_path / "articles")
    state_url = Config(index=IndexSection(data_dir=str(data_dir))).state_url
    db = StateDB(state_url)
    joined = datetime.now(UTC) - timedelta(minutes=5)
    for chat_id in range(1, READERS + 1):
        db.subscribers.follow(chat_id, "private", "Witkoff", Schedule("instant"), joined)
    db.close()

    loop = LoopThread()
    sandbox = BotApiSandbox(TOKEN, auto_chats=True)
    loop.run(sandbox.start())

    def config(port: int) -> Path:
        path = tmp_path / f"replica-{port}.toml"
        path.write_text(
            f'[telegram]\napi_base_url = "{sandbox.base_url}"\nmode = "webhook"\n'
            f'webhook_listen = "127.0.0.1"\nwebhook_port = {port}\n'
            f'webhook_url = "http://127.0.0.1:{port}/hook"\nwebhook_secret = "replica-secret"\n'
            f"[state]\nlease_seconds = {LEASE_SECONDS}\n"
            "[refresh]\nfirst_run_seconds = 3600\n"
            f'[[sources]]\nkind = "folder"\nurl = "{tmp_path / "articles"}"\n'
        )
        return path

    env = {
        **os.environ,
        "TELEGRAM_TOKEN": TOKEN,
        "COVERBOT_CONFIG": str(config(_free_port())),
        "COVERBOT_DATA_DIR": str(data_dir),
        "COVERBOT_STATE_URL": state_url,
    }
    # The articles arrive by refresh before the replicas start.
    refreshed = subprocess.run(
        [*_coverbot(), "refresh"], env=env, capture_output=True, text=True, timeout=300
    )
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr

    engine = sa.create_engine(state_url)
    killed: dict[str, Any] = {}
    sends = 0

    def kill_leader_half_way(record: RequestRecord) -> None:
        nonlocal sends
        if record.method != "sendMessage" or killed:
            return
        sends += 1
        if sends == READERS // 2:
            pid = _holder_pid(engine)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            killed.update(pid=pid, at=time.monotonic())

    sandbox.add_listener(kill_leader_half_way)
    processes: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for n in range(2):
            port = _free_port()
            log = tmp_path / f"replica-{n}.log"
            logs.append(log)
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [*_coverbot(), "run"],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env={**env, "COVERBOT_CONFIG": str(config(port))},
                    )
                )
        deadline = time.monotonic() + 180
        while not (killed and _all_served(sandbox)):
            assert time.monotonic() < deadline, _story(logs, sandbox)
            time.sleep(0.2)
        takeover = _takeover_seconds(engine, killed)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        loop.run(sandbox.stop())
        loop.close()

    # One copy for every reader, with exactly the matching articles.
    for chat_id in range(1, READERS + 1):
        sent = sandbox.sent(chat_id)
        assert len(sent) == 1, (chat_id, [m["text"][:60] for m in sent])
        links = {e["url"] for e in sent[0].get("entities", []) if e["type"] == "text_link"}
        assert links == expected
    # The scheduler ran on one replica at a time: the killed one, then the survivor.
    pids = [p.pid for p in processes]
    survivor = _holder_pid(engine)
    assert killed["pid"] in pids and survivor in pids and survivor != killed["pid"]
    took = [log.read_text().count("took the scheduler lease") for log in logs]
    assert sorted(took) == [1, 1], _story(logs, sandbox)
    assert takeover < 60
    print(f"takeover after SIGKILL: {takeover:.1f}s (lease {LEASE_SECONDS}s)")
    engine.dispose()


def _all_served(sandbox: BotApiSandbox) -> bool:
    return all(sandbox.sent_count(chat_id) >= 1 for chat_id in range(1, READERS + 1))


def _takeover_seconds(engine: sa.Engine, killed: dict[str, Any]) -> float:
    """Seconds from the kill to the survivor's lease (its acquired_at), via wall clocks."""
    with engine.connect() as conn:
        acquired = conn.execute(
            sa.text("SELECT acquired_at FROM leases WHERE name = 'scheduler'")
        ).scalar()
    if isinstance(acquired, str):
        acquired = datetime.fromisoformat(acquired)
    if acquired.tzinfo is None:
        acquired = acquired.replace(tzinfo=UTC)
    killed_at = datetime.now(UTC) - timedelta(seconds=time.monotonic() - killed["at"])
    return (acquired - killed_at).total_seconds()


def _story(logs: list[Path], sandbox: BotApiSandbox) -> str:
    served = sum(1 for chat_id in range(1, READERS + 1) if sandbox.sent_count(chat_id))
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)
    return f"{served}/{READERS} readers served\n{tails}"
