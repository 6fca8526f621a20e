"""/start, /help and /follow suggest only what the index's own coverage holds; questions in
another script are told to use English.

Real PTB over real HTTP to the sandbox, with a real index of a few articles that are not the
sample's (the bot's configured examples are the sample's questions).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import SandboxChat
from index import Article, CoverageIndex, IndexSettings
from index.embeddings import Embedder
from tests.bot_harness import InProcessBot, LoopThread, loop_fixture, start_bot

_ = loop_fixture  # a fixture: used by name

HARBOUR = [
    Article(
        url=f"https://harbour.example/{n}",
        title=title,
        body=body,
        published_at=f"2026-05-0{n}T08:00:00+00:00",
    )
    for n, title, body in [
        (
            1,
            "Harbour Board approves night ferry to Northgate",
            "The Harbour Board approved a night ferry to Northgate on Tuesday.\n\n"
            "The ferry will run every hour from midnight, the board said.",
        ),
        (
            2,
            "Storm closes the road to Northgate for two days",
            "A storm closed the coast road to Northgate on Friday.\n\n"
            "Crews cleared the fallen trees by Sunday morning.",
        ),
        (
            3,
            "Harbour Board raises mooring fees",
            "Mooring fees rise by a tenth from June, the Harbour Board said.",
        ),
    ]
]


@pytest.fixture()
def bot(loop: LoopThread, tmp_path: Path, embedder: Embedder) -> Iterator[InProcessBot]:
    index = CoverageIndex(tmp_path / "data", IndexSettings(), embedder=embedder)
    index.import_articles(HARBOUR)
    running = start_bot(loop, index, tmp_path / "state")
    yield running
    running.shutdown()


def _send(bot: InProcessBot, chat: SandboxChat, text: str) -> list[dict[str, Any]]:
    user = bot.sandbox.users[chat.id]
    before = bot.sandbox.sent_count(chat.id)
    update = bot.run(bot.sandbox.inject_message(chat, user, text))
    bot.run(bot.wait_done(update))
    return bot.sandbox.sent(chat.id)[before:]


def test_start_offers_questions_the_index_answers(bot: InProcessBot) -> None:
    chat = bot.sandbox.chat(bot.sandbox.user("Reader"))
    (welcome,) = _send(bot, chat, "/start")
    assert "3 articles so far" in welcome["text"] and "Try one of these:" in welcome["text"]
    buttons = [b for row in welcome["reply_markup"]["inline_keyboard"] for b in row]
    # The configured examples are about the sample's coverage: this index answers none.
    assert [b["text"] for b in buttons] == [
        "What about Harbour Board?",
        "What about Northgate?",
    ]
    user = bot.sandbox.users[chat.id]
    before = bot.sandbox.sent_count(chat.id)
    bot.run(bot.sandbox.press_button(chat, user, welcome["message_id"], "x:1"))
    bot.run(bot.sandbox.wait_for(lambda _: bot.sandbox.sent_count(chat.id) > before))
    answer = bot.sandbox.sent(chat.id)[before]
    assert "Northgate" in answer["text"] and "could not find" not in answer["text"]
    assert bot.errors == []


def test_follow_suggests_a_name_from_the_headlines(bot: InProcessBot) -> None:
    chat = bot.sandbox.chat(bot.sandbox.user("Reader"))
    (usage,) = _send(bot, chat, "/follow")
    assert "For example: /follow Harbour Board" in usage["text"]
    assert "Witkoff" not in usage["text"]
    (listing,) = _send(bot, chat, "/following")
    assert listing["text"] == "You follow no topics yet. Try /follow Harbour Board."


def test_a_question_in_arabic_is_asked_to_be_in_english(bot: InProcessBot) -> None:
    chat = bot.sandbox.chat(bot.sandbox.user("Reader"))
    (reply,) = _send(bot, chat, "متى تعمل العبارة الليلية؟")
    assert reply["text"].startswith("Questions must be in English for now")
    assert "Arabic" in reply["text"]
