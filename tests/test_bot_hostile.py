"""Hostile input: thousands of generated messages, presses and inline queries through the
sandbox to the real bot and index. No unhandled exception; every call the bot makes passes
the sandbox's Telegram validation; every private message and button press gets its reply;
groups stay silent unless addressed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram.ext import AIORateLimiter

from bot.sandbox.validation import detect_entities
from index.coverage import CoverageIndex
from tests.bot_harness import InProcessBot, LoopThread, start_bot

USERNAME = "coverbot_test_bot"
BATCH = 50
BATCHES = 40  # 2,000 events

FRAGMENTS = [
    "<b>",
    "</b>",
    "<i>x</i>",
    "<script>alert(1)</script>",
    "<a href='javascript:alert(1)'>x</a>",
    "&",
    "&amp;",
    "&lt;",
    "&#0;",
    "&#x110000;",
    "<",
    ">",
    "</>",
    "<<>>",
    '"',
    "'",
    "\\",
    "*bold*",
    "_it_",
    "`code`",
    "```pre```",
    "[link](http://x.y)",
    "||spoiler||",
    "~~s~~",
    f"@{USERNAME}",
    "@someone_else",
    "#hashtag",
    "https://example.com/?a=1&b=2",
    "/start",
    "/ask",
    "/latest",
    "/help",
    "/nope",
    f"/ask@{USERNAME}",
    "😀",
    "👍🏽",
    "🇺🇦",
    "👨‍👩‍👧",
    "مرحبا بالعالم",
    "שלום עולם",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\x00",
    "\x07",
    "\x1b[31m",
    "\r\n",
    "\t",
    " ",
    "\n",
    "Witkoff",
    "ceasefire",
    "Gaza aid trucks",
    "flour",
    "What did Witkoff urge?",
    "?",
]
OUR_COMMANDS = ("start", "help", "ask", "latest")
COMMANDS = ["/start", "/help", "/ask", "/latest", "/nope", f"/ask@{USERNAME}", "/start@other_bot"]

fragments = st.lists(st.sampled_from(FRAGMENTS), max_size=6).map("".join)
long_text = st.builds(
    lambda unit, n: (unit * n)[:5000],
    st.sampled_from(["a", "é", "😀", "<", "& ", "ا "]),
    st.integers(3000, 5000),
)
texts = st.one_of(
    fragments,
    fragments,
    st.text(max_size=30),
    st.just(""),
    long_text,
    st.tuples(st.sampled_from(COMMANDS), st.one_of(fragments, st.text(max_size=80))).map(" ".join),
)
junk_data = st.one_of(
    st.text(max_size=20).filter(lambda d: 0 < len(d.encode()) <= 64),
    st.sampled_from(["m:nope:1", "f:nope:0:h", "x:9", "x:0", "m:", "f:a:1:z"]),
)


@dataclass(frozen=True)
class Event:
    kind: str  # private | group | mention | press | inline
    chat: int
    text: str


# Hostile text is expensive to encode (emoji and rare scripts are many tokens each), so the
# mix keeps what reaches the index to about a seventh of the events.
KINDS = ["private"] * 3 + ["group"] * 8 + ["press"] * 3 + ["mention", "inline"]
TEXTS = {
    "private": texts,
    "group": texts,
    "mention": texts,
    "press": junk_data,
    "inline": st.lists(st.sampled_from(FRAGMENTS), max_size=3).map("".join),
}
events = st.sampled_from(KINDS).flatmap(
    lambda kind: st.builds(
        Event,
        st.just(kind),
        st.integers(0, 4 if kind in ("group", "mention") else 19),
        TEXTS[kind],
    )
)


def addressed(event: Event) -> bool:
    """Whether a group message is for the bot, as Telegram marks it up: a mention of the bot,
    or one of its commands at the start (`/name` or `/name@bot`)."""
    if event.kind == "mention":
        return True
    if event.kind != "group":
        return False
    units = event.text.encode("utf-16-le")
    for entity in detect_entities(event.text):
        start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
        value = units[start:end].decode("utf-16-le").lower()
        if entity["type"] == "mention" and value == f"@{USERNAME}":
            return True
        if entity["type"] == "bot_command" and entity["offset"] == 0:
            name, _, bot = value[1:].partition("@")
            if name in OUR_COMMANDS and bot in ("", USERNAME):
                return True
    return False


@pytest.fixture(scope="module")
def fuzz_bot(
    sample_index: CoverageIndex, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessBot]:
    loop = LoopThread()
    # Telegram's own pacing (30 messages/s) would make 2,000 messages take a minute; flood
    # control has its own test.
    limiter = AIORateLimiter(overall_max_rate=0, group_max_rate=0, max_retries=3)
    # Nor each reader's allowance: every private message here must get its reply
    # (tests/test_fairness.py covers a reader over the allowance).
    bot = start_bot(
        loop,
        sample_index,
        tmp_path_factory.mktemp("fuzz"),
        rate_limiter=limiter,
        questions_per_minute=0,
    )
    yield bot
    bot.shutdown()
    loop.close()


@pytest.mark.slow  # hundreds of generated updates through the whole bot
def test_hostile_input(fuzz_bot: InProcessBot, caplog: pytest.LogCaptureFixture) -> None:
    sandbox = fuzz_bot.sandbox
    readers = [sandbox.user(f"Reader {i}") for i in range(20)]
    privates = [sandbox.chat(u) for u in readers]
    groups = [sandbox.chat(type="supergroup", title=f"Group {i}") for i in range(5)]
    counted = {"events": 0, "core": 0}
    started = time.monotonic()

    async def play(batch: list[Event]) -> dict[int, int]:
        """Inject a batch at once; wait until the bot is done with all of it."""
        expected: dict[int, int] = {}
        updates = []
        for event in batch:
            user = readers[event.chat % len(readers)]
            if event.kind == "private":
                chat = privates[event.chat]
                updates.append(await sandbox.inject_message(chat, user, event.text))
                expected[chat.id] = expected.get(chat.id, 0) + 1
            elif event.kind in ("group", "mention"):
                chat = groups[event.chat]
                text = f"@{USERNAME} {event.text}" if event.kind == "mention" else event.text
                updates.append(await sandbox.inject_message(chat, user, text))
                expected.setdefault(chat.id, 0)
            elif event.kind == "press":
                chat = privates[event.chat]
                message_id = max(sandbox.bot_state().histories.get(chat.id, {0: None}))
                await sandbox.press_button(chat, user, message_id, event.text, strict=False)
                updates.append({"update_id": sandbox.bot_state().next_update_id - 1})
            else:
                await sandbox.inject_inline_query(user, event.text)
                updates.append({"update_id": sandbox.bot_state().next_update_id - 1})
        before = {chat_id: sandbox.sent_count(chat_id) for chat_id in expected}
        await fuzz_bot.wait_done(updates, timeout=60)
        return {chat_id: sandbox.sent_count(chat_id) - before[chat_id] for chat_id in expected} | {
            -chat_id: n for chat_id, n in expected.items()
        }

    @settings(
        max_examples=BATCHES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(events, min_size=BATCH, max_size=BATCH))
    def run(batch: list[Event]) -> None:
        result = fuzz_bot.run(play(batch), timeout=90)
        counted["events"] += len(batch)
        for event in batch:
            if event.kind == "private":
                chat_id = privates[event.chat].id
                assert result[chat_id] >= result[-chat_id], "a private message got no reply"
            elif event.kind == "group":
                chat_id = groups[event.chat].id
                asked = [e for e in batch if e.chat == event.chat and addressed(e)]
                if not asked:
                    assert result[chat_id] == 0, "the bot spoke in a group unasked"

    with caplog.at_level(logging.WARNING):
        run()

    assert counted["events"] >= 2000
    assert fuzz_bot.errors == []
    failed = [(r.method, r.status, r.description) for r in sandbox.requests if not r.ok]
    assert failed == [], failed[:5]
    state = sandbox.bot_state()
    assert not state.open_callbacks, "a button press was never answered"
    assert not state.open_inline_queries, "an inline query was never answered"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    print(
        f"{counted['events']} events, {fuzz_bot.services.batcher.questions} questions in "
        f"{fuzz_bot.services.batcher.batches} batches, {time.monotonic() - started:.1f}s"
    )
