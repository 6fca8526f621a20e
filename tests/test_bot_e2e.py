"""End to end, as an operator runs it: `coverbot run` in a subprocess, pointed at the sandbox.

The sandbox runs in the test process; the bot finds it through ``api_base_url`` in its config
file and its token in ``TELEGRAM_TOKEN``. The tests in this module share one bot process and
run in order; the last one stops it with SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import BotApiSandbox
from index.coverage import CoverageIndex
from tests.backends import servers_toml, state_rows
from tests.bot_harness import LoopThread

# `coverbot run` in a subprocess.
pytestmark = pytest.mark.slow

TOKEN = "987654:operator-token"
QUESTION = "What did Witkoff urge?"
QUOTE = "Witkoff urged Israel to uphold the ceasefire"
ARTICLE = "https://sample.coverbot.example/2025/03/05/"
USERNAME = "coverbot_test_bot"


@dataclass
class OperatorBot:
    loop: LoopThread
    sandbox: BotApiSandbox
    process: subprocess.Popen[bytes]
    data_dir: Path
    log: Path

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return self.loop.run(coro, timeout)

    def wait_for(self, predicate: Any, chat_id: int, timeout: float = 20.0) -> Any:
        return self.run(
            self.sandbox.wait_for(predicate, chat_id=chat_id, timeout=timeout), timeout + 5
        )


def _coverbot() -> list[str]:
    script = Path(sys.executable).with_name("coverbot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


@pytest.fixture(scope="module")
def operator_bot(
    tmp_path_factory: pytest.TempPathFactory, sample_index: CoverageIndex
) -> Iterator[OperatorBot]:
    root = tmp_path_factory.mktemp("operator")
    data_dir = root / "data"
    shutil.copytree(sample_index.data_dir, data_dir)  # the sample coverage, already indexed
    loop = LoopThread()
    sandbox = BotApiSandbox(TOKEN, bot_username=USERNAME)
    loop.run(sandbox.start())
    config = root / "coverbot.toml"
    config.write_text(
        f'[telegram]\napi_base_url = "{sandbox.base_url}"\nexcerpts_per_message = 2\n'
        # Wide answers, so that "More" has something to show whatever the tuning.
        "[answer]\nrelative_floor = 0.0\ndecline_below = 0.01\n"
        # The Chroma server and PostgreSQL of a server-mode run (nothing by default).
        f"{servers_toml(data_dir)}"
    )
    log = root / "bot.log"
    env = {**os.environ, "TELEGRAM_TOKEN": TOKEN, "COVERBOT_CONFIG": str(config)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*_coverbot(), "--data-dir", str(data_dir), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    bot = OperatorBot(loop, sandbox, process, data_dir, log)
    try:
        deadline = time.monotonic() + 90
        while sandbox.bot_state().poll_generation == 0:
            assert process.poll() is None, f"coverbot run exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"coverbot run never polled:\n{log.read_text()}"
            time.sleep(0.05)
        yield bot
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        loop.run(sandbox.stop())
        loop.close()


def _buttons(message: dict[str, Any]) -> dict[str, str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {b["text"]: b["callback_data"] for row in rows for b in row}


def test_reader_asks_presses_more_and_gives_feedback(operator_bot: OperatorBot) -> None:
    sandbox = operator_bot.sandbox
    assert {c["command"] for c in sandbox.commands} >= {"ask", "latest", "help"}
    reader = sandbox.user("Reader", username="reader")
    chat = sandbox.chat(reader)
    operator_bot.run(sandbox.inject_message(chat, reader, QUESTION))
    [answer] = operator_bot.wait_for(1, chat.id)
    assert QUOTE in answer["text"]
    assert any(e["type"] == "blockquote" for e in answer["entities"])
    links = [e["url"] for e in answer["entities"] if e["type"] == "text_link"]
    assert links[0].startswith(ARTICLE)
    assert answer["sandbox"]["parse_mode"] == "HTML"
    assert answer["link_preview_options"] == {"is_disabled": True}  # link_previews = false

    buttons = _buttons(answer)
    more = next(data for label, data in buttons.items() if label.startswith("More"))
    operator_bot.run(sandbox.press_button(chat, reader, answer["message_id"], more))
    sent = operator_bot.wait_for(2, chat.id)
    assert sent[1]["entities"] and sent[1]["text"] != answer["text"]
    assert not any(label.startswith("More") for label in _buttons(sent[0]))  # used up

    wrong = _buttons(sent[1])["⚠️ Wrong quote"]
    operator_bot.run(sandbox.press_button(chat, reader, sent[1]["message_id"], wrong))
    # The bot handles updates concurrently: one press at a time keeps their order.
    operator_bot.run(_until(lambda: len(sandbox.callback_answers) == 2))
    helpful = _buttons(sent[0])["👍 Helpful"]
    operator_bot.run(sandbox.press_button(chat, reader, sent[0]["message_id"], helpful))
    operator_bot.run(_until(lambda: len(sandbox.callback_answers) == 3))
    assert sandbox.callback_answers[-1]["text"] == "Thanks, glad it helped."

    sql = "SELECT kind, url, question, user_id FROM feedback ORDER BY id"
    rows = state_rows(operator_bot.data_dir, sql)
    assert [r[0] for r in rows] == ["wrong_quote", "helpful"]
    assert rows[1][1].startswith(ARTICLE) and rows[1][2] == QUESTION and rows[1][3] == reader.id


def test_group_is_silent_unless_mentioned_replied_or_asked(operator_bot: OperatorBot) -> None:
    sandbox = operator_bot.sandbox
    member = sandbox.user("Member")
    group = sandbox.chat(type="supergroup", title="Newsroom")
    inject = operator_bot.run
    silent = [
        inject(sandbox.inject_message(group, member, text))["message"]["message_id"]
        for text in (
            "good morning all",
            QUESTION,
            "/ask@some_other_bot " + QUESTION,
            "/latest@some_other_bot",
        )
    ]
    addressed = [
        inject(sandbox.inject_message(group, member, f"@{USERNAME} {QUESTION}")),
        inject(sandbox.inject_message(group, member, f"/ask {QUESTION}")),
        inject(sandbox.inject_message(group, member, f"/ask@{USERNAME} {QUESTION}")),
    ]
    sent = operator_bot.wait_for(3, group.id)
    first = sent[0]["message_id"]
    addressed.append(
        inject(sandbox.inject_message(group, member, QUESTION, reply_to_message_id=first))
    )
    sent = operator_bot.wait_for(4, group.id)
    replied_to = sorted(m["reply_to_message"]["message_id"] for m in sent)
    assert replied_to == sorted(u["message"]["message_id"] for u in addressed)
    assert not set(replied_to) & set(silent)
    assert all(QUOTE in m["text"] for m in sent)
    # "typing" shows only for slow answers, and never for the messages it ignored.
    assert len([a for a in sandbox.chat_actions if a["chat_id"] == group.id]) <= 4


def test_sigterm_stops_the_bot_cleanly(operator_bot: OperatorBot) -> None:
    process = operator_bot.process
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0, operator_bot.log.read_text()
    log = operator_bot.log.read_text()
    assert "coverbot stopped" in log
    assert "Traceback" not in log


async def _until(condition: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
