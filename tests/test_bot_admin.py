"""Admin commands through the Bot API sandbox: refused for readers, working for admins; the
refresh schedule and its job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import RefreshSection
from bot.services import BotContext
from bot.sources.registry import SourceRecord
from bot.telegram.admin import ADMIN_COMMANDS
from bot.telegram.jobs import REFRESH_JOB, refresh_job
from index.coverage import CoverageIndex, IndexSettings
from index.embeddings import Embedder
from tests.bot_harness import InProcessBot, LoopThread, loop_fixture, start_bot
from tests.refresh_helpers import QUESTION, QUOTE
from tests.sources_server import start_site
from tests.sources_site import Site

ADMIN = 4242
REFUSAL = "only for the editors"
COMMANDS = [
    "/sources",
    "/addsource http://127.0.0.1:9/",
    "/removesource 1",
    "/refresh",
    "/reindex",
    "/stats",
    "/purge https://example.com/a",
    "/why what happened",
    "/subscribers",
]

_ = loop_fixture  # a fixture: used by name


@pytest.fixture()
def site(loop: LoopThread) -> Iterator[Site]:
    site = Site.load()
    runner = loop.run(start_site(site))
    yield site
    loop.run(runner.cleanup())


def _bot(loop: LoopThread, tmp_path: Path, embedder: Embedder, private: bool) -> InProcessBot:
    index = CoverageIndex(tmp_path / "data", IndexSettings(), embedder=embedder)
    refresh = RefreshSection(allow_private_addresses=private, first_run_seconds=3600)
    return start_bot(loop, index, tmp_path / "state", admin_ids=(ADMIN,), refresh=refresh)


@pytest.fixture()
def bot(loop: LoopThread, tmp_path: Path, embedder: Embedder) -> Iterator[InProcessBot]:
    """The bot with an admin, refusing private addresses (the default)."""
    running = _bot(loop, tmp_path, embedder, private=False)
    yield running
    running.shutdown()


@pytest.fixture()
def local_bot(loop: LoopThread, tmp_path: Path, embedder: Embedder) -> Iterator[InProcessBot]:
    """The bot with an admin, allowed to fetch the local site."""
    running = _bot(loop, tmp_path, embedder, private=True)
    yield running
    running.shutdown()


def say(bot: InProcessBot, chat: object, user: object, text: str) -> str:
    """Send a message and return the text of the bot's last message in that chat."""
    update = bot.run(bot.sandbox.inject_message(chat, user, text))  # type: ignore[arg-type]
    bot.run(bot.wait_done(update, timeout=90), timeout=100)
    return str(bot.sandbox.sent(chat.id)[-1]["text"])  # type: ignore[attr-defined]


def test_every_admin_command_is_refused_to_readers_in_private_and_groups(
    bot: InProcessBot, caplog: pytest.LogCaptureFixture
) -> None:
    assert {c.split()[0][1:] for c in COMMANDS} == set(ADMIN_COMMANDS)
    sandbox = bot.sandbox
    reader = sandbox.user("Reader")
    chats = [sandbox.chat(reader), sandbox.chat(type="supergroup", title="Newsroom")]
    for chat in chats:
        for command in COMMANDS:
            assert REFUSAL in say(bot, chat, reader, command), (chat.type, command)
    assert sandbox.sent_count() == 2 * len(COMMANDS)  # refusals only
    assert bot.services.state.sources.records() == []
    assert sum("refused" in r.getMessage() for r in caplog.records) == 2 * len(COMMANDS)
    public = {c["command"] for c in sandbox.commands}
    assert public and not public & set(ADMIN_COMMANDS)


def test_addsource_refuses_private_addresses(bot: InProcessBot) -> None:
    sandbox = bot.sandbox
    admin = sandbox.user("Editor", id=ADMIN)
    chat = sandbox.chat(admin)
    for url, why in [
        ("http://127.0.0.1/feed/", "127.0.0.1: loopback"),
        ("http://10.0.0.1/feed/", "10.0.0.1: private"),
        ("http://localhost/feed/", "localhost resolves to"),
    ]:
        reply = say(bot, chat, admin, f"/addsource {url}")
        assert reply.startswith(f"Refused {url}: private address (") and why in reply, reply
        assert "allow_private_addresses" in reply
    assert "folders need the CLI" in say(bot, chat, admin, "/addsource /etc folder")
    assert bot.services.state.sources.records() == []


def test_admin_commands_work_for_an_admin(local_bot: InProcessBot, site: Site) -> None:
    bot, sandbox = local_bot, local_bot.sandbox
    admin = sandbox.user("Editor", id=ADMIN)
    chat = sandbox.chat(admin)
    assert "No sources yet" in say(bot, chat, admin, "/sources")
    added = say(bot, chat, admin, f"/addsource {site.url('/')}")
    assert added.startswith("Added source #1 (wordpress)"), added
    assert "not fetched yet" in say(bot, chat, admin, "/sources")
    report = say(bot, chat, admin, "/refresh")
    assert "+6 new, 0 updated, 0 removed" in report, report
    assert "#1 wordpress" in (listing := say(bot, chat, admin, "/sources"))
    assert "6 articles" in listing and "ok, last success" in listing
    why = say(bot, chat, admin, f"/why {QUESTION}")
    assert "fused" in why and "dense" in why and "lexical" in why
    assert site.link(site.posts[102]) in why
    stats = say(bot, chat, admin, "/stats")
    assert (
        "Articles: 6" in stats and "Sources: 1 (0 failing)" in stats and "Subscribers: 0" in stats
    )
    purged = say(bot, chat, admin, f"/purge {site.link(site.posts[104])}")
    assert purged.startswith("Removed"), purged
    old_generation = bot.services.index.generation
    rebuilt = say(bot, chat, admin, "/reindex")
    assert rebuilt.startswith("Rebuilt the index") and "5 articles" in rebuilt, rebuilt
    assert bot.services.index.generation != old_generation
    assert bot.services.batcher.index is bot.services.index
    assert len(sandbox.calls("editMessageText")) >= 1  # the progress message, edited
    answer = say(bot, chat, admin, QUESTION)
    assert QUOTE in answer
    group = sandbox.chat(type="supergroup", title="Editors")
    assert "Articles: 5" in say(bot, group, admin, "/stats")
    removed = say(bot, chat, admin, "/removesource 1 purge")
    assert removed.startswith("Removed source #1") and "5 articles" in removed, removed
    assert bot.services.index.stats(with_vectors=False).articles == 0
    assert bot.errors == []


def test_refresh_schedule_and_job(local_bot: InProcessBot, site: Site) -> None:
    bot, sandbox = local_bot, local_bot.sandbox
    job_queue = bot.app.job_queue
    assert job_queue is not None
    [job] = job_queue.get_jobs_by_name(REFRESH_JOB)
    scheduled = job.job
    assert scheduled.trigger.interval == timedelta(minutes=30)
    assert scheduled.coalesce is True and scheduled.max_instances == 1
    assert scheduled.misfire_grace_time == 300
    registry = bot.services.state.sources
    good: SourceRecord = registry.add("wordpress", site.url("/"))
    bad = registry.add("feed", site.url("/fault/html-feed"))
    admin_chat = sandbox.chat(sandbox.user("Editor", id=ADMIN))
    context = BotContext.from_job(job, bot.app)  # type: ignore[arg-type]
    bot.run(refresh_job(context), timeout=60)
    [told] = sandbox.sent(admin_chat.id)
    assert f"Source #{bad.id}" in told["text"] and "is failing: not a feed" in told["text"]
    assert registry.get(good.id).articles == 6  # type: ignore[union-attr]

    async def while_refreshing() -> None:  # an admin's refresh holds the lock: the job skips
        async with bot.services.index_lock:
            await refresh_job(context)

    bot.run(while_refreshing())
    assert registry.get(bad.id).consecutive_failures == 1  # type: ignore[union-attr]
