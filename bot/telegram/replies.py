"""Sending rendered parts to Telegram: keyboards, link previews, and the plain-text fallback."""

from __future__ import annotations

import logging

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.services import BotContext
from bot.telegram import render

log = logging.getLogger(__name__)


def markup(keyboard: render.Keyboard | None) -> InlineKeyboardMarkup | None:
    """Plain keyboard data as PTB's inline keyboard."""
    if not keyboard:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in keyboard]
    )


def keyboard_of(message: Message) -> render.Keyboard:
    """The callback buttons of a message we sent, as plain data."""
    rows = message.reply_markup.inline_keyboard if message.reply_markup else ()
    return tuple(
        tuple(render.Button(b.text, str(b.callback_data)) for b in row if b.callback_data)
        for row in rows
    )


async def send_parts(
    context: BotContext,
    chat_id: int,
    parts: list[str],
    keyboard: render.Keyboard | None = None,
    reply_to: int | None = None,
) -> list[Message]:
    """Send HTML parts in order; the keyboard goes on the last, the first replies to
    ``reply_to``."""
    sent = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        sent.append(
            await send_html(
                context, chat_id, part, keyboard if last else None, reply if i == 0 else None
            )
        )
    return sent


async def send_html(
    context: BotContext,
    chat_id: int,
    html_text: str,
    keyboard: render.Keyboard | None = None,
    reply: ReplyParameters | None = None,
) -> Message:
    """One HTML message; if Telegram cannot parse it, the same content as plain text."""
    previews = LinkPreviewOptions(is_disabled=not context.services.config.telegram.link_previews)
    try:
        return await context.bot.send_message(
            chat_id,
            html_text,
            parse_mode=ParseMode.HTML,
            reply_markup=markup(keyboard),
            reply_parameters=reply,
            link_preview_options=previews,
        )
    except BadRequest as exc:
        if "can't parse entities" not in exc.message.lower():
            raise
        log.warning("Telegram rejected our HTML (%s); resending as plain text", exc.message)
    pieces = render.plain_parts(html_text)
    sent: Message | None = None
    for i, piece in enumerate(pieces):
        sent = await context.bot.send_message(
            chat_id,
            piece,
            reply_markup=markup(keyboard) if i == len(pieces) - 1 else None,
            reply_parameters=reply if i == 0 else None,
            link_preview_options=previews,
        )
    assert sent is not None
    return sent


async def drop_more_button(query: CallbackQuery) -> None:
    """Remove "More" from the message whose "More" was pressed (it has been used)."""
    message = query.message
    if not isinstance(message, Message):
        return  # too old for Telegram to show us
    keyboard = keyboard_of(message)
    remaining = render.without_more(keyboard)
    if remaining != keyboard:
        await message.edit_reply_markup(markup(remaining))
