"""Digest delivery to many readers through the Bot API sandbox: wall time and messages/s.

    python benchmarks/digest_delivery.py [--readers 1000] [--telegram-limit 30] [--work-dir DIR]

The scenario, shared with tests/test_digest_delivery.py: readers (chat ids 1..N) follow one
to three of five topics, a few only a topic no article matches, with cadences as published,
daily and weekly at various hours and time zones. Their clocks are set an hour before 20
articles (tests/fixtures/digest_articles/, dated in the hours before) arrive through
`coverbot refresh` from a folder source. 5% of the readers have blocked the bot (the
sandbox answers 403), and a quarter of the way through the sandbox answers a burst of three
429s. `coverbot digests run --now T1`, eight days later so that every reader is due, plans
and sends in a subprocess, as an operator runs it, against the sandbox in this process.

The articles are imported once; each rate then runs on a fresh copy of the index with fresh
readers: the product default (messages_per_second = 25) and unthrottled. With
``--telegram-limit`` the sandbox also answers 429 like Telegram's flood control above that
many messages a second in all, or one a second to one chat (0: no limit), which is what an
unthrottled sender meets.
Prints, per rate: the subprocess's wall time (model load included), the sending window
(first to last message delivered) and messages/s over it, digests delivered, articles
delivered, readers deactivated and 429s waited out. Figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.config import ENV_TOKEN, Config, IndexSection
from bot.digests.cadence import DAILY, INSTANT, WEEKLY, Schedule
from bot.sandbox import BotApiSandbox
from bot.sandbox.models import RequestRecord
from bot.state import StateDB

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = ROOT / "tests" / "fixtures" / "digest_articles"
TOPICS = ("Witkoff", "aid convoys", "hostages", "desalination plant", "olive harvest")
# Followed by some readers (alone or beside others); no article of the fixture matches it.
QUIET_TOPIC = "volcanic eruption"
ZONES = ("UTC", "Asia/Gaza", "UTC+05:30", "America/New_York", "Europe/Berlin")
TOKEN = "424242:digest-delivery"
BLOCKED_SHARE = 0.05
BURST = 3  # 429s in a row, a quarter of the way through
UNTHROTTLED = 1_000_000.0
_SUMMARY = re.compile(
    r"(?P<readers>\d+) readers due, (?P<planned>\d+) articles planned, (?P<sent>\d+) delivered "
    r"in (?P<messages>\d+) messages, (?P<failed>\d+) failed, (?P<deactivated>\d+) readers "
    r"deactivated, (?P<seconds>[\d.]+)s"
)


@dataclass(frozen=True, slots=True)
class Reader:
    """One subscriber of the scenario."""

    chat_id: int
    topics: tuple[str, ...]
    schedule: Schedule
    blocked: bool


def make_readers(count: int, seed: int = 5) -> list[Reader]:
    """``count`` readers with chat ids 1..count, the same for the same seed.

    One in twenty follows only the quiet topic; the others follow one to three of TOPICS,
    one in ten of them the quiet topic too. Cadences rotate as published / daily / weekly,
    with random hours, weekdays and time zones; BLOCKED_SHARE of the readers, drawn among
    all, have blocked the bot.
    """
    rng = random.Random(seed)
    blocked = set(rng.sample(range(1, count + 1), round(count * BLOCKED_SHARE)))
    readers = []
    for chat_id in range(1, count + 1):
        if chat_id % 20 == 0:
            topics: tuple[str, ...] = (QUIET_TOPIC,)
        else:
            topics = tuple(rng.sample(TOPICS, rng.randint(1, 3)))
            if rng.random() < 0.1:
                topics += (QUIET_TOPIC,)
        cadence = (INSTANT, DAILY, WEEKLY)[chat_id % 3]
        schedule = Schedule(cadence, rng.randrange(24), rng.randrange(7), rng.choice(ZONES))
        readers.append(Reader(chat_id, topics, schedule, chat_id in blocked))
    return readers


def state_url(data_dir: Path) -> str:
    """The state database a `coverbot --data-dir data_dir` uses (without a [state] url)."""
    return Config(index=IndexSection(data_dir=str(data_dir))).state_url


def subscribe(url: str, readers: Sequence[Reader], at: datetime) -> None:
    """Write the readers and their topics as if they had followed at ``at``."""
    state = StateDB(url)
    if state.engine.dialect.name == "sqlite":
        # Setup only: a thousand readers are ~2,000 commits, and each would wait for an
        # fsync (10-20 s here). The bot's own connections keep SQLite's durable default.
        sa.event.listen(state.engine, "connect", _unsynced)
        state.engine.dispose()
    try:
        for reader in readers:
            for topic in reader.topics:
                state.subscribers.follow(reader.chat_id, "private", topic, reader.schedule, at)
    finally:
        state.close()


def _unsynced(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


def stage_articles(folder: Path, now: datetime) -> Path:
    """The fixture articles as a source folder, published in the 20 hours before ``now``.

    The dates are given here, not in the files: a digest leaves out articles published more
    than [digests] max_age_days before they arrive (a new source's back catalogue).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for hours, path in enumerate(sorted(ARTICLES.glob("*.json")), start=1):
        article = json.loads(path.read_text(encoding="utf-8"))
        article["published_at"] = (now - timedelta(hours=hours)).isoformat(timespec="seconds")
        (folder / path.name).write_text(json.dumps(article, ensure_ascii=False), "utf-8")
    return folder


def write_config(
    path: Path,
    api_base_url: str,
    messages_per_second: float,
    source: Path | None = None,
    extra: str = "",
) -> Path:
    """A config file: the sandbox as Telegram, the send rate and ``source`` as a folder
    source (if given); ``extra`` is appended (the test session's server settings)."""
    text = f'[telegram]\napi_base_url = "{api_base_url}"\n'
    text += f"[digests]\nmessages_per_second = {messages_per_second}\n"
    if source is not None:
        text += f'[[sources]]\nkind = "folder"\nurl = "{source}"\nname = "digest fixtures"\n'
    path.write_text(text + extra)
    return path


def coverbot_command() -> list[str]:
    """The installed `coverbot` beside this Python, else the module."""
    script = Path(sys.executable).with_name("coverbot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


def environment() -> dict[str, str]:
    """The subprocess environment: offline, no telemetry, the sandbox's token."""
    return {
        **os.environ,
        ENV_TOKEN: TOKEN,
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
    }


def refresh(config: Path, data_dir: Path) -> str:
    """`coverbot refresh`: the folder source's articles arrive; its stdout."""
    done = subprocess.run(
        [*coverbot_command(), "--config", str(config), "--data-dir", str(data_dir), "refresh"],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"coverbot refresh failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return done.stdout


def copy_coverage(source: Path, target: Path) -> Path:
    """The index of ``source`` without its state database: readers start afresh."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("state.sqlite3*"))
    return target


class SendWatch:
    """A sandbox listener: counts delivered and throttled digest messages, answers a burst
    of 429s after ``burst_at`` deliveries, and kills the sender with SIGKILL when the
    ``kill_at``-th message has been received (before the sender hears back)."""

    def __init__(self, sandbox: BotApiSandbox, burst_at: int, kill_at: int | None = None) -> None:
        """Attach to ``sandbox``; set ``pid`` once the sender runs."""
        self.sandbox = sandbox
        self.burst_at = burst_at
        self.kill_at = kill_at
        self.pid: int | None = None
        self.delivered = 0
        self.throttled = 0
        self.killed = False
        self.first: float | None = None
        self.last: float | None = None
        sandbox.add_listener(self)

    def __call__(self, record: RequestRecord) -> None:
        if record.method != "sendMessage":
            return
        if record.status == 429:
            self.throttled += 1
        if not record.ok:
            return
        self.delivered += 1
        self.first = self.first or record.at
        self.last = record.at
        if self.delivered == self.burst_at:
            self.sandbox.fail_next("sendMessage", BURST, status=429, retry_after=1)
        if self.delivered == self.kill_at and self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            self.killed = True


@dataclass(frozen=True, slots=True)
class DeliveryRun:
    """One `coverbot digests run` subprocess and what the sandbox saw of it."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    messages: int
    send_seconds: float
    throttled: int

    @property
    def rate(self) -> float:
        """Messages a second over the sending window."""
        return self.messages / self.send_seconds if self.send_seconds else 0.0

    def counts(self) -> dict[str, int]:
        """The numbers of the run's summary line (readers, planned, sent, messages, failed,
        deactivated)."""
        match = _SUMMARY.search(self.stdout)
        if match is None:
            raise ValueError(f"no digest run summary in:\n{self.stdout}\n{self.stderr[-3000:]}")
        return {k: int(v) for k, v in match.groupdict().items() if k != "seconds"}


async def run_digests(config: Path, data_dir: Path, now: datetime, watch: SendWatch) -> DeliveryRun:
    """`coverbot digests run --now NOW` to completion (or until ``watch`` kills it)."""
    delivered, throttled = watch.delivered, watch.throttled
    watch.first = watch.last = None
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *coverbot_command(),
        "--config",
        str(config),
        "--data-dir",
        str(data_dir),
        "digests",
        "run",
        "--now",
        now.isoformat(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(),
    )
    watch.pid = process.pid
    out, err = await process.communicate()
    watch.pid = None
    window = (watch.last - watch.first) if watch.first and watch.last else 0.0
    return DeliveryRun(
        returncode=process.returncode if process.returncode is not None else -1,
        stdout=out.decode(),
        stderr=err.decode(),
        seconds=time.perf_counter() - started,
        messages=watch.delivered - delivered,
        send_seconds=window,
        throttled=watch.throttled - throttled,
    )


# -- the benchmark ------------------------------------------------------------------------------


async def _deliver_once(
    coverage: Path,
    work: Path,
    readers: Sequence[Reader],
    at: datetime,
    rate: float,
    telegram_limit: float,
) -> DeliveryRun:
    data_dir = copy_coverage(coverage, work / "data")
    await asyncio.to_thread(subscribe, state_url(data_dir), readers, at)
    async with BotApiSandbox(TOKEN, auto_chats=True) as sandbox:
        for reader in readers:
            if reader.blocked:
                sandbox.block(reader.chat_id)
        if telegram_limit:
            sandbox.flood_limit(per_chat_per_second=1, global_per_second=telegram_limit)
        watch = SendWatch(sandbox, burst_at=max(1, len(readers) // 4))
        config = write_config(work / "coverbot.toml", sandbox.base_url, rate)
        return await run_digests(config, data_dir, at + timedelta(days=8), watch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument(
        "--telegram-limit",
        type=float,
        default=30.0,
        help="Sandbox flood control: messages a second in all (0: none).",
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="Kept afterwards if given.")
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="coverbot-digests-"))
    work.mkdir(parents=True, exist_ok=True)
    readers = make_readers(args.readers)
    at = datetime.now(UTC) - timedelta(hours=1)
    coverage = work / "coverage"
    source = stage_articles(work / "articles", at)
    started = time.perf_counter()
    output = refresh(write_config(work / "refresh.toml", "", 25.0, source), coverage)
    print(f"refresh ({time.perf_counter() - started:.1f}s): {output.strip().splitlines()[0]}")
    topics = sum(len(r.topics) for r in readers)
    limit = f"{args.telegram_limit:g} messages/s" if args.telegram_limit else "none"
    print(
        f"{len(readers)} readers, {topics} topics, {sum(r.blocked for r in readers)} blocked; "
        f"sandbox flood limit: {limit}; "
        f"a burst of {BURST} 429s after {max(1, len(readers) // 4)} messages"
    )
    header = (
        f"{'messages_per_second':>20} {'wall s':>7} {'send s':>7} {'msg/s':>6} "
        f"{'digests':>7} {'articles':>8} {'deactivated':>11} {'429s':>5}"
    )
    print(header)
    for label, rate in (("25 (default)", 25.0), ("unthrottled", UNTHROTTLED)):
        run = asyncio.run(
            _deliver_once(coverage, work / label.split()[0], readers, at, rate, args.telegram_limit)
        )
        counts = run.counts()
        print(
            f"{label:>20} {run.seconds:7.1f} {run.send_seconds:7.1f} {run.rate:6.1f} "
            f"{run.messages:7d} {counts['sent']:8d} {counts['deactivated']:11d} "
            f"{run.throttled:5d}"
        )
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
