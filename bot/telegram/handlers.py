"""Telegram handlers: parse the update, call the core, render, reply. Nothing more."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError
from telegram import (
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction, ParseMode

from bot.batcher import ReaderBusy
from bot.services import BotContext
from bot.telegram import callbacks, render
from bot.telegram.replies import drop_more_button, send_parts
from index import Answer, check_question

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 300
TYPING_AFTER_SECONDS = 0.3
T = TypeVar("T")
_WORDS = re.compile(r"\w")


def question_problem(question: str) -> str | None:
    """Why a text cannot be asked (a message for the reader), or None when it can."""
    if len(question) > MAX_QUESTION_CHARS:
        return render.question_too_long_message(MAX_QUESTION_CHARS)
    if not _WORDS.search(question):
        return render.not_a_question_message()
    problem = check_question(question)
    if problem is not None and problem.script is not None:
        return render.language_message(problem.script)
    return None


def addressed_question(message: Message, username: str, bot_id: int) -> str | None:
    """In a group: the question if the message mentions the bot or replies to it, else None."""
    text = message.text or ""
    mention = f"@{username}".lower()
    mentioned = any(
        value.lower() == mention
        for value in message.parse_entities([MessageEntity.MENTION]).values()
    )
    replied = message.reply_to_message is not None and (
        message.reply_to_message.from_user is not None
        and message.reply_to_message.from_user.id == bot_id
    )
    if not (mentioned or replied):
        return None
    return " ".join(re.sub(re.escape(mention), " ", text, flags=re.IGNORECASE).split())


async def answer_question(
    context: BotContext,
    chat_id: int,
    question: str,
    reply_to: int | None = None,
    reader: int | None = None,
) -> None:
    """Typing, the core's answer, then the excerpts with their buttons, or the decline;
    a reader over their allowance is asked, once, to slow down."""
    services = context.services
    try:
        answer = await _with_typing(context, chat_id, services.batcher.ask(question, reader))
    except ReaderBusy as busy:
        if busy.notify:
            await send_parts(context, chat_id, [render.slow_down_message(busy.retry_after)])
        return
    if not answer.answered or not answer.excerpts:
        await send_parts(context, chat_id, [render.decline_message()], reply_to=reply_to)
        return
    urls = tuple(e.url for e in answer.excerpts)
    try:
        answer_id: str | None = await asyncio.to_thread(
            services.state.save_answer, chat_id, answer.question, urls
        )
    except (OSError, SQLAlchemyError) as exc:  # a full disk: answer without the buttons
        log.warning("answer not kept for its buttons (the state database refused): %s", exc)
        answer_id = None
    await send_answer_page(context, chat_id, answer, answer_id, 0, reply_to)


async def _with_typing(context: BotContext, chat_id: int, work: Awaitable[T]) -> T:
    """Await ``work``; show "typing…" only if it takes long enough for a reader to notice
    (most answers come sooner, and each chat action is a request against the rate limit)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=TYPING_AFTER_SECONDS)
    if not done:
        await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
    return await task


async def send_answer_page(
    context: BotContext,
    chat_id: int,
    answer: Answer,
    answer_id: str | None,
    start: int,
    reply_to: int | None = None,
) -> None:
    """Excerpts from ``start`` (one page), with feedback buttons and "More" if some are left
    (no buttons when the answer could not be kept: ``answer_id`` None)."""
    per_message, total = context.services.config.telegram.excerpts_per_message, len(answer.excerpts)
    keyboard = (
        render.answer_keyboard(answer_id, start, min(per_message, total - start), total)
        if answer_id is not None
        else None
    )
    parts = render.answer_parts(answer, start, per_message)
    await send_parts(context, chat_id, parts, keyboard, reply_to)


def bot_username(context: BotContext) -> str:
    """The bot's @username: from the config, else as Telegram's getMe told it."""
    return context.services.config.telegram.bot_username or context.bot.username


def reply_target(message: Message) -> int | None:
    """In groups the bot replies to the message it answers; in private chats it need not."""
    return None if message.chat.type == "private" else message.message_id


async def ask(context: BotContext, message: Message, question: str) -> None:
    """Answer a question from a message, or say why it cannot be asked."""
    reply_to = reply_target(message)
    problem = question_problem(question)
    if problem is not None:
        await send_parts(context, message.chat_id, [problem], reply_to=reply_to)
    else:
        reader = message.from_user.id if message.from_user else message.chat_id
        await answer_question(context, message.chat_id, question, reply_to, reader)


# -- messages ------------------------------------------------------------------------------


async def on_help(update: Update, context: BotContext) -> None:
    """/start and /help: what the bot covers, how to ask, example questions as buttons."""
    assert update.effective_message is not None
    services = context.services
    stats = await services.batcher.call(services.index.stats, False)
    newest = await services.batcher.call(services.index.latest, 1)
    examples = await services.batcher.call(services.coverage_examples)
    text = render.help_message(
        bot_username(context),
        stats.articles,
        newest[0].published_at if newest else None,
        has_examples=bool(examples.questions),
    )
    keyboard = render.examples_keyboard(examples.questions)
    await send_parts(context, update.effective_message.chat_id, [text], keyboard)


async def on_private_text(update: Update, context: BotContext) -> None:
    """Any text in a private chat is a question."""
    message = update.effective_message
    assert message is not None and message.text is not None
    await ask(context, message, message.text)


async def on_group_text(update: Update, context: BotContext) -> None:
    """In groups, a question only when the bot is mentioned or replied to; else silence."""
    message = update.effective_message
    assert message is not None
    question = addressed_question(message, bot_username(context), context.bot.id)
    if question is not None:
        await ask(context, message, question)


async def on_ask(update: Update, context: BotContext) -> None:
    """/ask <question>, in any chat."""
    message = update.effective_message
    assert message is not None
    question = " ".join(context.args or [])
    if not question:
        usage = [render.ask_usage_message()]
        await send_parts(context, message.chat_id, usage, reply_to=reply_target(message))
    else:
        await ask(context, message, question)


async def on_latest(update: Update, context: BotContext) -> None:
    """/latest: the newest headlines with links."""
    message = update.effective_message
    assert message is not None
    services = context.services
    articles = await services.batcher.call(
        services.index.latest, services.config.telegram.latest_count
    )
    parts = render.latest_parts(articles)
    await send_parts(context, message.chat_id, parts, reply_to=reply_target(message))


async def on_unknown_command(update: Update, context: BotContext) -> None:
    """A command we do not have, in a private chat."""
    assert update.effective_message is not None
    await send_parts(context, update.effective_message.chat_id, [render.unknown_command_message()])


async def on_not_text(update: Update, context: BotContext) -> None:
    """Photos, stickers and empty messages in a private chat: ask for words."""
    assert update.effective_message is not None
    await send_parts(context, update.effective_message.chat_id, [render.not_a_question_message()])


# -- buttons -------------------------------------------------------------------------------


async def on_more(update: Update, context: BotContext) -> None:
    """The "More" button: the next excerpts of a saved answer; the used button goes away."""
    query = update.callback_query
    assert query is not None
    press = callbacks.parse_press(query.data)
    if not isinstance(press, callbacks.MorePress) or query.message is None:
        await query.answer(render.stale_button_notice())
        return
    await query.answer()
    saved = await asyncio.to_thread(context.services.state.get_answer, press.answer_id)
    answer = await context.services.batcher.ask(saved.question) if saved else None
    chat_id = query.message.chat.id
    if saved is None or answer is None or press.start >= len(answer.excerpts):
        await send_parts(context, chat_id, [render.no_more_message()])
        return
    await drop_more_button(query)
    await send_answer_page(context, chat_id, answer, saved.id, press.start)


async def on_feedback(update: Update, context: BotContext) -> None:
    """Helpful / wrong quote: stored for the admins, acknowledged with a short notice."""
    query = update.callback_query
    assert query is not None
    press = callbacks.parse_press(query.data)
    stored = None
    if isinstance(press, callbacks.FeedbackPress):
        record = context.services.state.record_feedback
        stored = await asyncio.to_thread(
            record, press.answer_id, press.start, query.from_user.id, press.kind
        )
    await query.answer(render.feedback_notice(stored.kind if stored else None))


async def on_example(update: Update, context: BotContext) -> None:
    """An example question from /help: asked as if the reader had typed it."""
    query = update.callback_query
    assert query is not None
    press = callbacks.parse_press(query.data)
    services = context.services
    examples = (await services.batcher.call(services.coverage_examples)).questions
    if (
        not isinstance(press, callbacks.ExamplePress)
        or press.index >= len(examples)
        or query.message is None
    ):
        await query.answer(render.stale_button_notice())
        return
    await query.answer(render.shorten(examples[press.index], 200))
    reader = query.from_user.id if query.from_user else None
    await answer_question(context, query.message.chat.id, examples[press.index], None, reader)


async def on_stale_button(update: Update, context: BotContext) -> None:
    """Buttons we do not (or no longer) know."""
    assert update.callback_query is not None
    await update.callback_query.answer(render.stale_button_notice())


# -- inline mode ---------------------------------------------------------------------------


async def on_inline_query(update: Update, context: BotContext) -> None:
    """``@bot question`` in any chat: the best excerpts as results to share."""
    query = update.inline_query
    assert query is not None
    question = query.query.strip()
    answer = None
    if question_problem(question) is None:
        answer = await context.services.batcher.ask(question)
    results = [
        InlineQueryResultArticle(
            r.id,
            r.title,
            InputTextMessageContent(r.html, parse_mode=ParseMode.HTML),
            description=r.description,
        )
        for r in render.inline_results(answer)
    ]
    label = render.inline_empty_label(bool(question))
    button = None if results else InlineQueryResultsButton(label, start_parameter="help")
    await query.answer(results, cache_time=60, button=button)


# -- bookkeeping ---------------------------------------------------------------------------


async def on_finished(update: Update, context: BotContext) -> None:
    """Runs after every other handler of the update (and its error handlers)."""
    await context.services.finished.mark(update.update_id)
