"""Tests of the local Bot API sandbox, driven through real PTB over real HTTP."""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.sandbox import BotApiSandbox, TelegramHtmlError, parse_telegram_html

async_test = pytest.mark.asyncio(loop_scope="function")
# PTB 22 warns that RetryAfter.retry_after will become a timedelta.
ignore_retry_after_warning = pytest.mark.filterwarnings(
    "ignore::telegram.warnings.PTBDeprecationWarning"
)


@pytest_asyncio.fixture(loop_scope="function")
async def sandbox() -> AsyncIterator[BotApiSandbox]:
    """A running sandbox with the default bot."""
    async with BotApiSandbox() as sb:
        yield sb


@pytest_asyncio.fixture(loop_scope="function")
async def bot(sandbox: BotApiSandbox) -> AsyncIterator[Bot]:
    """A real PTB Bot talking to the sandbox."""
    async with Bot(sandbox.token, base_url=sandbox.base_url) as client:
        yield client


def _retry_seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after as seconds (int or timedelta depending on PTB settings)."""
    value: Any = exc.retry_after
    return value if isinstance(value, int | float) else value.total_seconds()


# --------------------------------------------------------------------- HTML parser


def test_parse_nested_tags() -> None:
    """Nested tags give one entity each with UTF-16 offsets."""
    text, entities = parse_telegram_html("<b>bold <i>both</i></b> <u>u</u>")
    assert text == "bold both u"
    assert entities == [
        {"type": "bold", "offset": 0, "length": 9},
        {"type": "italic", "offset": 5, "length": 4},
        {"type": "underline", "offset": 10, "length": 1},
    ]


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("<strong>x</strong>", {"type": "bold"}),
        ("<em>x</em>", {"type": "italic"}),
        ("<ins>x</ins>", {"type": "underline"}),
        ("<del>x</del>", {"type": "strikethrough"}),
        ("<strike>x</strike>", {"type": "strikethrough"}),
        ("<tg-spoiler>x</tg-spoiler>", {"type": "spoiler"}),
        ('<span class="tg-spoiler">x</span>', {"type": "spoiler"}),
        ("<code>x</code>", {"type": "code"}),
        ("<pre>x</pre>", {"type": "pre"}),
        (
            '<pre><code class="language-python">x</code></pre>',
            {"type": "pre", "language": "python"},
        ),
        ("<blockquote>x</blockquote>", {"type": "blockquote"}),
        ("<blockquote expandable>x</blockquote>", {"type": "expandable_blockquote"}),
        (
            '<a href="https://example.com/?a=1&amp;b=2">x</a>',
            {"url": "https://example.com/?a=1&b=2"},
        ),
        ('<a href="tg://user?id=42">x</a>', {"type": "text_mention"}),
        ('<tg-emoji emoji-id="5368324170671202286">x</tg-emoji>', {"type": "custom_emoji"}),
    ],
)
def test_parse_supported_tags(markup: str, expected: dict[str, Any]) -> None:
    """Every documented tag maps to the Bot API entity type."""
    text, entities = parse_telegram_html(markup)
    assert text == "x"
    assert len(entities) == 1
    assert expected.items() <= entities[0].items()


@pytest.mark.parametrize(
    ("markup", "message"),
    [
        ("<script>x</script>", 'Unsupported start tag "script" at byte offset 0'),
        ("é<br>", 'Unsupported start tag "br" at byte offset 2'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
def test_parse_errors(markup: str, message: str) -> None:
    """Invalid markup fails with Telegram's wording."""
    with pytest.raises(TelegramHtmlError) as info:
        parse_telegram_html(markup)
    assert str(info.value) == f"Can't parse entities: {message}"


def test_parse_character_references() -> None:
    """Only the four named entities and numeric ones decode; a lone & stays literal."""
    text, entities = parse_telegram_html("AT&T & co &lt;b&gt; &amp; &quot; &nbsp; &#65;&#x42;&#67")
    assert text == 'AT&T & co <b> & " &nbsp; ABC'
    assert entities == []


def test_parse_utf16_offsets_with_emoji() -> None:
    """Characters outside the BMP count as two UTF-16 units."""
    text, entities = parse_telegram_html("😀 <b>é😀x</b> <i>y</i>")
    assert text == "😀 é😀x y"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 4},
        {"type": "italic", "offset": 8, "length": 1},
    ]


def test_parse_drops_invalid_links_and_empty_entities() -> None:
    """Bad link targets and empty tags produce no entity, like Telegram."""
    text, entities = parse_telegram_html('<a href="not a url">a</a><b></b><a>example.org</a>')
    assert text == "aexample.org"
    assert entities == [
        {"type": "text_link", "url": "http://example.org", "offset": 1, "length": 11}
    ]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escaped_text_round_trips(text: str) -> None:
    """html.escape(text, quote=False) always parses back to the same plain text."""
    assert parse_telegram_html(html.escape(text, quote=False)) == (text, [])


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1))
def test_bold_entity_covers_escaped_text(text: str) -> None:
    """Wrapping escaped text in <b> gives one entity spanning its UTF-16 length."""
    plain, entities = parse_telegram_html(f"<b>{html.escape(text)}</b>")
    assert plain == text
    units = len(text.encode("utf-16-le")) // 2
    assert entities == [{"type": "bold", "offset": 0, "length": units}]


# ------------------------------------------------------------------ sending


@async_test
async def test_get_me(bot: Bot) -> None:
    """getMe describes the configured bot user."""
    me = await bot.get_me()
    assert me.is_bot and me.username == "coverbot_test_bot"
    assert me.supports_inline_queries and me.can_join_groups


@async_test
async def test_send_message_html_round_trip(sandbox: BotApiSandbox, bot: Bot) -> None:
    """sendMessage parses HTML, returns a full Message and records it."""
    user = sandbox.user("Ann", username="ann")
    chat = sandbox.chat(user)
    first = await bot.send_message(chat.id, "<b>Hi</b> 😀 <a href='https://x.org'>x</a>", "HTML")
    second = await bot.send_message(chat.id, "plain", reply_parameters=ReplyParameters(1))
    assert first.text == "Hi 😀 x" and first.from_user is not None
    assert first.from_user.id == bot.id
    assert [e.type for e in first.entities] == ["bold", "text_link"]
    assert first.entities[1].offset == 6 and first.entities[1].url == "https://x.org"
    assert (first.message_id, second.message_id) == (1, 2)
    assert second.reply_to_message is not None and second.reply_to_message.text == "Hi 😀 x"
    record = sandbox.sent(chat.id)[0]
    assert record["sandbox"]["raw_text"].startswith("<b>Hi</b>")
    assert record["sandbox"]["parse_mode"] == "HTML"


@async_test
async def test_send_message_validation(sandbox: BotApiSandbox, bot: Bot) -> None:
    """Bad HTML, empty text, unknown chats and bad replies are 400s."""
    chat = sandbox.chat(sandbox.user())
    with pytest.raises(BadRequest, match='unsupported start tag "script" at byte offset 0'):
        await bot.send_message(chat.id, "<script>alert(1)</script>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(chat.id, "<b> </b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999_999, "hello")
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(chat.id, "hi", reply_parameters=ReplyParameters(77))
    assert sandbox.sent(chat.id) == []


@async_test
async def test_message_length_limit_counts_utf16(sandbox: BotApiSandbox, bot: Bot) -> None:
    """4096 UTF-16 units after parsing is the maximum; markup does not count."""
    chat = sandbox.chat(sandbox.user())
    await bot.send_message(chat.id, "<b>" + "😀" * 2048 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(chat.id, "😀" * 2048 + "x")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(chat.id, "x" * 4097)


@async_test
async def test_edit_and_delete(sandbox: BotApiSandbox, bot: Bot) -> None:
    """Edits update the record; no-op edits fail; omitting reply_markup drops the keyboard."""
    chat = sandbox.chat(sandbox.user())
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("More", callback_data="more")]])
    sent = await bot.send_message(chat.id, "one", reply_markup=keyboard)
    edited = await bot.edit_message_text("<i>two</i>", chat.id, sent.message_id, parse_mode="HTML")
    assert isinstance(edited, Message)
    assert edited.text == "two" and edited.edit_date is not None
    assert edited.reply_markup is None
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("<i>two</i>", chat.id, sent.message_id, parse_mode="HTML")
    await bot.edit_message_reply_markup(chat.id, sent.message_id, reply_markup=keyboard)
    record = sandbox.sent(chat.id)[0]
    assert record["text"] == "two" and record["reply_markup"]["inline_keyboard"]
    assert record["sandbox"]["edit_history"] == ["one", "two"]
    assert await bot.delete_message(chat.id, sent.message_id)
    assert sandbox.sent(chat.id) == []
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("three", chat.id, sent.message_id)


@async_test
async def test_text_is_trimmed_like_telegram(sandbox: BotApiSandbox, bot: Bot) -> None:
    """Surrounding spaces/newlines are dropped, so a whitespace-only edit is a no-op."""
    chat = sandbox.chat(sandbox.user())
    sent = await bot.send_message(chat.id, "\n <b> Title</b>\nbody\n\n", parse_mode="HTML")
    assert sent.text == "Title\nbody"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [("bold", 0, 5)]
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text(
            "<b>Title</b>\nbody \n", chat.id, sent.message_id, parse_mode="HTML"
        )


@async_test
async def test_keyboard_validation(sandbox: BotApiSandbox, bot: Bot) -> None:
    """callback_data over 64 bytes and non-http(s)/tg URLs are rejected."""
    chat = sandbox.chat(sandbox.user())
    long_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(chat.id, "hi", reply_markup=long_data)
    bad_url = InlineKeyboardMarkup([[InlineKeyboardButton("x", url="javascript:alert(1)")]])
    with pytest.raises(BadRequest, match=r"(?i)wrong http url"):
        await bot.send_message(chat.id, "hi", reply_markup=bad_url)
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="a" * 64)]])
    await bot.send_message(chat.id, "hi", reply_markup=ok)


# ---------------------------------------------------------------- updates


@async_test
async def test_get_updates_long_poll_and_offset(sandbox: BotApiSandbox, bot: Bot) -> None:
    """A waiting getUpdates returns as soon as a message is injected; offset confirms."""
    user = sandbox.user("Bo", username="bo")
    chat = sandbox.chat(user)
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await _until_polling(sandbox)
    await sandbox.inject_message(chat, user, "/ask@coverbot_test_bot what about @someone?")
    updates = await asyncio.wait_for(poll, 10)  # well before the poll's own 30 s
    message = updates[0].message
    assert message is not None and message.from_user is not None
    assert message.from_user.id == user.id
    assert [(e.type, e.offset, e.length) for e in message.entities] == [
        ("bot_command", 0, 22),
        ("mention", 34, 8),
    ]
    await sandbox.inject_message(chat, user, "second")
    again = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    assert [u.message.text for u in again if u.message] == ["second"]
    assert await bot.get_updates(offset=again[-1].update_id + 1, timeout=0) == ()


@async_test
async def test_application_callback_round_trip(sandbox: BotApiSandbox) -> None:
    """A polling PTB Application answers a command, then a button press."""

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Reply with a keyboard."""
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Next", callback_data="next")]])
        assert update.effective_message is not None
        await update.effective_message.reply_html("<b>Welcome</b>", reply_markup=keyboard)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer the press and edit the message."""
        query = update.callback_query
        assert query is not None
        await query.answer("done")
        await query.edit_message_text(f"pressed {query.data}")

    app = Application.builder().token(sandbox.token).base_url(sandbox.base_url).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    user = sandbox.user("Cy")
    chat = sandbox.chat(user)
    assert app.updater is not None
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await sandbox.inject_message(chat, user, "/start")
        [welcome] = await sandbox.wait_for(1, chat_id=chat.id, timeout=3)
        assert welcome["text"] == "Welcome" and welcome["entities"][0]["type"] == "bold"
        query_id = await sandbox.press_button(chat, user, welcome["message_id"], "next")
        await sandbox.wait_for(lambda sent: sent[0]["text"] == "pressed next", chat_id=chat.id)
        await app.updater.stop()
        await app.stop()
    assert sandbox.callback_answers[0]["callback_query_id"] == query_id
    assert sandbox.callback_answers[0]["text"] == "done"
    assert sandbox.counters["getMe"] >= 1 and sandbox.counters["getUpdates"] >= 1


@async_test
async def test_callback_answer_rules(sandbox: BotApiSandbox, bot: Bot) -> None:
    """A query is answered once; text over 200 characters is rejected."""
    user = sandbox.user()
    chat = sandbox.chat(user)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x")]])
    sent = await bot.send_message(chat.id, "hi", reply_markup=keyboard)
    query_id = await sandbox.press_button(chat, user, sent.message_id, "x")
    with pytest.raises(BadRequest):
        await bot.answer_callback_query(query_id, text="y" * 201)
    assert await bot.answer_callback_query(query_id, text="ok")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(ValueError, match="no button"):
        await sandbox.press_button(chat, user, sent.message_id, "missing")


@async_test
async def test_inline_query_round_trip(sandbox: BotApiSandbox, bot: Bot) -> None:
    """Inline queries arrive as updates; answers are validated and recorded."""
    user = sandbox.user("Di")
    query_id = await sandbox.inject_inline_query(user, "climate")
    [update] = await bot.get_updates(timeout=0)
    assert update.inline_query is not None and update.inline_query.query == "climate"

    def article(result_id: str, text: str) -> InlineQueryResultArticle:
        """An article result with HTML content."""
        content = InputTextMessageContent(text, parse_mode="HTML")
        return InlineQueryResultArticle(result_id, "Title", content)

    with pytest.raises(BadRequest, match=r"(?i)result_id_duplicate"):
        await bot.answer_inline_query(query_id, [article("1", "a"), article("1", "b")])
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.answer_inline_query(query_id, [article("1", "<blink>a</blink>")])
    too_many = [article(str(i), "a") for i in range(51)]
    with pytest.raises(BadRequest, match=r"(?i)results_too_much"):
        await bot.answer_inline_query(query_id, too_many)
    assert await bot.answer_inline_query(query_id, [article("1", "<b>a</b>")], cache_time=0)
    assert sandbox.inline_answers[query_id]["results"][0]["id"] == "1"


@async_test
async def test_my_chat_member_kicked_blocks(sandbox: BotApiSandbox, bot: Bot) -> None:
    """A user blocking the bot yields a my_chat_member update and 403 on send."""
    user = sandbox.user()
    chat = sandbox.chat(user)
    await sandbox.inject_my_chat_member(chat, user, "kicked")
    [update] = await bot.get_updates(timeout=0)
    assert update.my_chat_member is not None
    assert update.my_chat_member.new_chat_member.status == "kicked"
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(chat.id, "digest")


# ---------------------------------------------------------- fault injection


@async_test
@ignore_retry_after_warning
async def test_fail_next_raises_retry_after(sandbox: BotApiSandbox, bot: Bot) -> None:
    """fail_next answers 429 with parameters.retry_after, once."""
    chat = sandbox.chat(sandbox.user())
    sandbox.fail_next("sendMessage", count=1, status=429, retry_after=7)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(chat.id, "x")
    assert _retry_seconds(info.value) == 7
    await bot.send_message(chat.id, "x")
    assert [r.status for r in sandbox.calls("sendMessage")] == [429, 200]


@async_test
@ignore_retry_after_warning
async def test_flood_limit_per_chat(sandbox: BotApiSandbox, bot: Bot) -> None:
    """More than N messages a second to one chat trips flood control."""
    first, second = sandbox.chat(sandbox.user()), sandbox.chat(sandbox.user())
    sandbox.flood_limit(per_chat_per_second=2)
    await bot.send_message(first.id, "1")
    await bot.send_message(first.id, "2")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(first.id, "3")
    assert _retry_seconds(info.value) >= 1
    await bot.send_message(second.id, "other chat is fine")
    sandbox.flood_limit()
    await bot.send_message(first.id, "limits off")


@async_test
async def test_block_raises_forbidden(sandbox: BotApiSandbox, bot: Bot) -> None:
    """block(chat_id) makes sends answer 403 until unblocked."""
    chat = sandbox.chat(sandbox.user())
    sandbox.block(chat.id)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(chat.id, "x")
    sandbox.unblock(chat.id)
    await bot.send_message(chat.id, "x")


# ------------------------------------------------------------------ webhook


@async_test
async def test_webhook_delivery_with_secret(sandbox: BotApiSandbox, bot: Bot) -> None:
    """Updates are POSTed to the webhook with the secret header; failures are retried."""
    received: list[tuple[str | None, dict[str, Any]]] = []
    statuses = [500]

    async def hook(request: web.Request) -> web.Response:
        """Fail once, then accept."""
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response(status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cr3t")
        with pytest.raises(Conflict):
            await bot.get_updates(timeout=0)
        user = sandbox.user()
        await sandbox.inject_message(sandbox.chat(user), user, "via webhook")
        deadline = time.monotonic() + 3
        while len(received) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert [secret for secret, _ in received] == ["s3cr3t", "s3cr3t"]
        assert received[1][1]["message"]["text"] == "via webhook"
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook") and info.pending_update_count == 0
        assert await bot.delete_webhook()
        assert await bot.get_updates(timeout=0) == ()
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------- protocol


@async_test
async def test_protocol_errors_and_encodings(sandbox: BotApiSandbox) -> None:
    """Unknown token 401, unknown method 404; JSON bodies and GET work too."""
    with pytest.raises(InvalidToken):
        async with Bot("42:wrong", base_url=sandbox.base_url) as stranger:
            await stranger.get_me()
    chat = sandbox.chat(sandbox.user())
    async with aiohttp.ClientSession() as session:
        url = f"{sandbox.base_url}{sandbox.token}"
        async with session.post(f"{url}/noSuchMethod") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        body = {"chat_id": chat.id, "text": "<i>json</i>", "parse_mode": "HTML"}
        async with session.post(f"{url}/sendMessage", json=body) as response:
            assert (await response.json())["result"]["entities"][0]["type"] == "italic"
        async with session.get(f"{url}/getMe") as response:
            assert (await response.json())["result"]["username"] == "coverbot_test_bot"
    other = sandbox.add_bot("777:second", username="second_bot")
    async with Bot("777:second", base_url=sandbox.base_url) as second:
        assert (await second.get_me()).username == "second_bot" == other.username
        await second.send_message(chat.id, "from the second bot")
    assert [m["text"] for m in sandbox.sent(chat.id, token="777:second")] == ["from the second bot"]


@async_test
async def test_commands_actions_and_chat_info(sandbox: BotApiSandbox, bot: Bot) -> None:
    """setMyCommands/getMyCommands, chat actions, getChat and getChatMember."""
    await bot.set_my_commands([BotCommand("ask", "Ask a question"), BotCommand("help", "Help")])
    assert [c.command for c in await bot.get_my_commands()] == ["ask", "help"]
    assert sandbox.commands[0] == {"command": "ask", "description": "Ask a question"}
    with pytest.raises(BadRequest):
        await bot.set_my_commands([BotCommand("Bad Command", "x")])
    user = sandbox.user("Eve", username="eve")
    group = sandbox.chat(type="supergroup", title="Newsroom")
    await bot.send_chat_action(group.id, "typing")
    assert sandbox.chat_actions[0]["action"] == "typing"
    info = await bot.get_chat(group.id)
    assert info.title == "Newsroom" and info.type == "supergroup"
    await sandbox.inject_message(group, user, "hello")
    member = await bot.get_chat_member(group.id, user.id)
    assert member.status == "member" and member.user.username == "eve"
    stranger = sandbox.user("Mallory")
    assert (await bot.get_chat_member(group.id, stranger.id)).status == "left"
    for status in ("creator", "administrator", "restricted", "kicked"):
        sandbox.set_member_status(group, stranger, status)
        assert (await bot.get_chat_member(group.id, stranger.id)).status == status
    with pytest.raises(ValueError, match="unknown chat member status"):
        sandbox.set_member_status(group, stranger, "owner")
    private = sandbox.chat(user)
    assert (await bot.get_chat_member(private.id, user.id)).status == "member"
    with pytest.raises(BadRequest, match="User not found"):
        await bot.get_chat_member(private.id, stranger.id)


@async_test
async def test_stop_releases_pending_long_poll() -> None:
    """Stopping the sandbox answers a waiting getUpdates at once."""
    sandbox = BotApiSandbox()
    await sandbox.start()
    async with Bot(sandbox.token, base_url=sandbox.base_url) as client:
        poll = asyncio.create_task(client.get_updates(timeout=30))
        await _until_polling(sandbox)
        await sandbox.stop()
        assert await asyncio.wait_for(poll, 10) == ()  # well before the poll's own 30 s


@async_test
async def test_many_concurrent_sends_and_wait_for(sandbox: BotApiSandbox, bot: Bot) -> None:
    """Concurrent sends get distinct increasing ids; wait_for times out cleanly."""
    chats = [sandbox.chat(sandbox.user()) for _ in range(50)]
    await asyncio.gather(*(bot.send_message(c.id, f"digest {i}") for i, c in enumerate(chats)))
    await asyncio.gather(*(bot.send_message(chats[0].id, str(i)) for i in range(20)))
    ids = [m["message_id"] for m in sandbox.sent(chats[0].id)]
    assert sorted(ids) == list(range(1, 22))
    assert len(sandbox.sent()) == 70
    with pytest.raises(TimeoutError):
        await sandbox.wait_for(1, chat_id=chats[1].id + 10_000, timeout=0.05)


async def _until_polling(sandbox: BotApiSandbox) -> None:
    """Until a getUpdates call is waiting in the sandbox."""
    async with asyncio.timeout(10):
        while sandbox.bot_state().poll_generation == 0:
            await asyncio.sleep(0.01)
