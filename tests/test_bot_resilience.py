"""The bot under pressure: flood control, failing handlers, rejected HTML, webhooks.

Real PTB over real HTTP to the sandbox, with the real index; nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.config import Config, IndexSection, TelegramSection
from bot.sandbox import BotApiSandbox
from bot.telegram.app import build_application, open_services, prune_answers, serve
from index.answer import Answer
from index.coverage import CoverageIndex
from tests.bot_harness import InProcessBot, LoopThread, loop_fixture, start_bot, texts

QUESTION = "What did Witkoff urge?"
QUOTE = "Witkoff urged Israel to uphold the ceasefire"
ADMIN = 4242

# PTB 22 warns that RetryAfter.retry_after will become a timedelta.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

_ = loop_fixture  # a fixture: used by name


@pytest.fixture()
def bot(loop: LoopThread, sample_index: CoverageIndex, tmp_path: Path) -> Iterator[InProcessBot]:
    """The bot as `coverbot run` builds it (AIORateLimiter included), with an admin."""
    running = start_bot(loop, sample_index, tmp_path, admin_ids=(ADMIN,))
    yield running
    running.shutdown()


def test_flood_control_every_answer_arrives_once(bot: InProcessBot) -> None:
    """The sandbox answers 429 to a burst; AIORateLimiter waits and retries; each reader
    gets exactly one answer."""
    sandbox = bot.sandbox
    readers = [sandbox.user(f"Reader {i}") for i in range(8)]
    chats = [sandbox.chat(u) for u in readers]
    sandbox.flood_limit(global_per_second=3)

    async def burst() -> None:
        updates = [
            await sandbox.inject_message(c, u, QUESTION)
            for c, u in zip(chats, readers, strict=True)
        ]
        await bot.wait_done(updates, timeout=30)

    bot.run(burst(), timeout=40)
    assert any(r.status == 429 for r in sandbox.calls("sendMessage"))
    for chat in chats:
        [answer] = sandbox.sent(chat.id)
        assert QUOTE in answer["text"]
    assert bot.errors == []


def test_typing_shows_only_when_an_answer_is_slow(
    bot: InProcessBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, batcher = bot.sandbox, bot.services.batcher
    fast_reader, slow_reader = sandbox.user("Fast"), sandbox.user("Slow")
    fast, slow = sandbox.chat(fast_reader), sandbox.chat(slow_reader)
    bot.run(bot.wait_done(bot.run(sandbox.inject_message(fast, fast_reader, QUESTION))))
    ask = batcher.ask

    async def slow_ask(question: str, reader: int | None = None) -> Answer:
        await asyncio.sleep(1.0)  # an index busy with a refresh, say
        return await ask(question, reader)

    monkeypatch.setattr(batcher, "ask", slow_ask)
    bot.run(bot.wait_done(bot.run(sandbox.inject_message(slow, slow_reader, QUESTION))))
    typing = {a["chat_id"] for a in sandbox.chat_actions if a["action"] == "typing"}
    assert slow.id in typing
    assert QUOTE in sandbox.sent(slow.id)[0]["text"] and QUOTE in sandbox.sent(fast.id)[0]["text"]


def test_failed_handler_apologises_and_reports_to_admins(bot: InProcessBot) -> None:
    """The answer cannot be sent (a server error): the reader gets an apology, the admin a
    report; a second failure right after is held back by the rate limit."""
    sandbox = bot.sandbox
    reader = sandbox.user("Ann")
    chat = sandbox.chat(reader)
    admin_chat = sandbox.chat(sandbox.user("Admin", id=ADMIN))

    async def fail_twice() -> None:
        for _ in range(2):
            sandbox.fail_next("sendMessage", status=500)
            await bot.wait_done(await sandbox.inject_message(chat, reader, QUESTION))

    bot.run(fail_twice())
    assert (
        texts(sandbox.sent(chat.id))
        == ["Sorry, something went wrong on my side. Please try again in a moment."] * 2
    )
    [report] = sandbox.sent(admin_chat.id)
    assert report["text"].startswith("NetworkError in update")
    assert f"chat {chat.id}" in report["text"]
    assert any(e["type"] == "pre" for e in report["entities"])
    assert len(bot.errors) == 2


def test_rejected_html_is_resent_as_plain_text(bot: InProcessBot) -> None:
    sandbox = bot.sandbox
    reader = sandbox.user("Bo")
    chat = sandbox.chat(reader)
    sandbox.fail_next(
        "sendMessage",
        status=400,
        description='Bad Request: can\'t parse entities: Unsupported start tag "x" at byte '
        "offset 0",
    )

    async def ask() -> None:
        await bot.wait_done(await sandbox.inject_message(chat, reader, QUESTION))

    bot.run(ask())
    [message] = sandbox.sent(chat.id)
    assert message["sandbox"]["parse_mode"] is None
    assert QUOTE in message["text"]
    assert "https://sample.coverbot.example/2025/03/05/" in message["text"]
    assert message["reply_markup"]["inline_keyboard"]  # the buttons survive the fallback
    assert bot.errors == []


def test_blocked_reader_is_not_an_error_to_report(bot: InProcessBot) -> None:
    sandbox = bot.sandbox
    reader = sandbox.user("Cy")
    chat = sandbox.chat(reader)
    admin_chat = sandbox.chat(sandbox.user("Admin", id=ADMIN))

    async def ask_then_block() -> None:
        await bot.wait_done(await sandbox.inject_my_chat_member(chat, reader, "kicked"))
        await bot.wait_done(await sandbox.inject_message(chat, reader, QUESTION))

    bot.run(ask_then_block())
    assert sandbox.sent(admin_chat.id) == []


def test_webhook_mode_checks_the_secret_token(
    loop: LoopThread, sample_index: CoverageIndex, tmp_path: Path, unused_tcp_port: int
) -> None:
    """Webhook mode: the sandbox posts updates with the secret header and the bot answers;
    a request without the secret is refused."""

    async def scenario() -> tuple[list[str], int]:
        async with BotApiSandbox() as sandbox:
            url = f"http://127.0.0.1:{unused_tcp_port}/coverbot-hook"
            settings = TelegramSection(
                token=sandbox.token,
                api_base_url=sandbox.base_url,
                mode="webhook",
                webhook_url=url,
                webhook_listen="127.0.0.1",
                webhook_port=unused_tcp_port,
                webhook_secret="s3cret-token",
            )
            config = Config(index=IndexSection(data_dir=str(tmp_path)), telegram=settings)
            services = open_services(config, index=sample_index)
            stop = asyncio.Event()
            task = asyncio.create_task(serve(build_application(services), stop))
            async with asyncio.timeout(30):  # the bot has set its webhook
                while sandbox.bot_state().webhook_url != url:
                    await asyncio.sleep(0.02)
            reader = sandbox.user("Di")
            chat = sandbox.chat(reader)
            update = await sandbox.inject_message(chat, reader, QUESTION)
            await services.finished.wait(update["update_id"], 20)
            async with aiohttp.ClientSession() as session:
                forged = {"update_id": 999, "message": update["message"]}
                async with session.post(url, json=forged) as response:
                    status = response.status
            stop.set()
            await task
            return texts(sandbox.sent(chat.id)), status

    sent, forged_status = loop.run(scenario(), timeout=60)
    assert len(sent) == 1 and QUOTE in sent[0]
    assert forged_status == 403


def test_old_answers_are_pruned_by_a_daily_job(bot: InProcessBot) -> None:
    assert bot.app.job_queue is not None
    [job] = bot.app.job_queue.get_jobs_by_name("prune-answers")
    assert job.job.trigger.interval == timedelta(days=1)
    bot.services.state.save_answer(1, QUESTION, ("https://n.example/a",))
    assert bot.run(prune_answers(bot.app.bot_data)) == 0  # it is fresh


def test_one_gatekeeper_for_admin_rights(bot: InProcessBot) -> None:
    assert bot.services.is_admin(ADMIN)
    assert not bot.services.is_admin(ADMIN + 1)
    assert not bot.services.is_admin(None)
