"""Bot API method handlers: ``handler(sandbox, bot, params) -> result``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .models import SandboxChat, StoredMessage, chat_member_dict
from .params import Params, bad_request
from .updates import DEFAULT_ALLOWED, BotState
from .validation import (
    finalize_text,
    render_text,
    validate_commands,
    validate_inline_results,
    validate_reply_markup,
)

if TYPE_CHECKING:
    from .server import BotApiSandbox

logger = logging.getLogger(__name__)

Handler = Callable[["BotApiSandbox", BotState, Params], Awaitable[Any]]
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
CHAT_ACTIONS = frozenset(
    {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice"}
    | {"upload_document", "choose_sticker", "find_location", "record_video_note"}
    | {"upload_video_note"}
)
ALWAYS_TRUE = (
    "close",
    "logOut",
    "setMyDescription",
    "setMyShortDescription",
    "setMyName",
    "setChatMenuButton",
    "setMyDefaultAdministratorRights",
)


async def get_me(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """getMe."""
    return bot.user


async def get_updates(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """getUpdates with long polling."""
    allowed = p.obj("allowed_updates")
    if isinstance(allowed, list):
        bot.allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED
    limit = min(100, max(1, p.integer("limit", 100) or 100))
    timeout = min(50.0, p.number("timeout", 0.0))
    return await bot.long_poll(p.integer("offset"), limit, timeout, sb.closing)


async def set_webhook(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """setWebhook (plain http is allowed for local receivers)."""
    url = p.string("url", "") or ""
    if url and not url.lower().startswith(("http://", "https://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = p.string("secret_token")
    if secret is not None and not all(c.isalnum() or c in "_-" for c in secret):
        raise bad_request("secret token contains unallowed characters")
    if p.flag("drop_pending_updates"):
        bot.updates.clear()
    allowed = p.obj("allowed_updates")
    if isinstance(allowed, list):
        bot.allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED
    bot.webhook_secret = secret or None
    bot.webhook_max_connections = p.integer("max_connections", 40) or 40
    await sb.set_webhook_url(bot, url)
    return True


async def delete_webhook(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """deleteWebhook."""
    if p.flag("drop_pending_updates"):
        bot.updates.clear()
    await sb.set_webhook_url(bot, "")
    return True


async def get_webhook_info(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """getWebhookInfo."""
    info: dict[str, Any] = {
        "url": bot.webhook_url,
        "has_custom_certificate": False,
        "pending_update_count": len(bot.updates),
    }
    if bot.webhook_url:
        info["max_connections"] = bot.webhook_max_connections
        info["allowed_updates"] = sorted(bot.allowed_updates)
    if bot.webhook_last_error:
        info["last_error_date"], info["last_error_message"] = bot.webhook_last_error
    return info


def commands_key(scope: Any, language_code: str) -> str:
    """Storage key for a command list: scope and language."""
    return json.dumps([scope, language_code], sort_keys=True)


def _commands_key(p: Params) -> str:
    """Storage key of the command list addressed by a request."""
    return commands_key(p.obj("scope") or {"type": "default"}, p.string("language_code") or "")


async def set_my_commands(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """setMyCommands."""
    bot.commands[_commands_key(p)] = validate_commands(p.obj("commands", []))
    return True


async def get_my_commands(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """getMyCommands."""
    return bot.commands.get(_commands_key(p), [])


async def delete_my_commands(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """deleteMyCommands."""
    bot.commands.pop(_commands_key(p), None)
    return True


def _resolve_reply(bot: BotState, chat: SandboxChat, p: Params) -> dict[str, Any] | None:
    """The message being replied to (``reply_parameters`` or legacy ``reply_to_message_id``)."""
    params = p.obj("reply_parameters") or {}
    message_id = params.get("message_id") if isinstance(params, dict) else None
    if message_id is None:
        message_id = p.integer("reply_to_message_id")
    if message_id is None:
        return None
    target = bot.find(chat.id, int(message_id))
    if target is not None:
        reply = dict(target.message)
        reply.pop("reply_to_message", None)
        return reply
    allow = params.get("allow_sending_without_reply") or p.flag("allow_sending_without_reply")
    if allow:
        return None
    raise bad_request("message to be replied not found")


async def send_message(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """sendMessage."""
    chat = sb.resolve_chat(p.chat_id())
    raw = p.string("text", "") or ""
    parse_mode = p.string("parse_mode")
    plain, entities = render_text(raw, parse_mode, p.obj("entities"))
    plain, entities = finalize_text(plain, entities)
    markup = validate_reply_markup(p.obj("reply_markup"))
    reply = _resolve_reply(bot, chat, p)
    sb.check_can_send(chat)
    message = sb.new_message(bot, chat, bot.sender, plain, entities)
    if reply is not None:
        message["reply_to_message"] = reply
    if markup is not None and "inline_keyboard" in markup:
        message["reply_markup"] = markup
    preview = p.obj("link_preview_options")
    if isinstance(preview, dict) and preview:
        message["link_preview_options"] = preview
    stored = StoredMessage(bot.token, message, True, raw, parse_mode)
    sb.record_sent(bot, stored)
    return message


def _editable(sb: BotApiSandbox, bot: BotState, p: Params) -> StoredMessage | None:
    """Message addressed by chat_id+message_id, or None for inline_message_id edits."""
    if p.has("inline_message_id"):
        return None
    chat = sb.resolve_chat(p.chat_id())
    message_id = p.require_int("message_id", "message identifier is not specified")
    stored = bot.find(chat.id, message_id)
    if stored is None:
        raise bad_request("message to edit not found")
    if not stored.outgoing:
        raise bad_request("message can't be edited")
    return stored


def _apply_edit(
    sb: BotApiSandbox, stored: StoredMessage, text: str, entities: list[dict], markup: Any
) -> dict[str, Any]:
    """Update a stored message in place, refusing no-op edits like Telegram."""
    message = stored.message
    unchanged = (
        message.get("text") == text
        and message.get("entities", []) == entities
        and message.get("reply_markup") == markup
    )
    if unchanged:
        raise bad_request(NOT_MODIFIED)
    stored.edit_history.append(message.get("text", ""))
    message["text"] = text
    message.pop("entities", None)
    if entities:
        message["entities"] = entities
    message.pop("reply_markup", None)
    if markup is not None:
        message["reply_markup"] = markup
    message["edit_date"] = int(time.time())
    return message


async def edit_message_text(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """editMessageText; omitting reply_markup removes the inline keyboard, as on Telegram."""
    raw = p.string("text", "") or ""
    parse_mode = p.string("parse_mode")
    plain, entities = render_text(raw, parse_mode, p.obj("entities"))
    plain, entities = finalize_text(plain, entities)
    markup = validate_reply_markup(p.obj("reply_markup"), inline_only=True)
    stored = _editable(sb, bot, p)
    if stored is None:
        sb.inline_edits.append({"token": bot.token, **p.data})
        return True
    sb.check_flood(stored.chat_id)
    message = _apply_edit(sb, stored, plain, entities, markup)
    stored.raw_text, stored.parse_mode = raw, parse_mode
    return message


async def edit_message_reply_markup(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """editMessageReplyMarkup; no reply_markup removes the keyboard."""
    markup = validate_reply_markup(p.obj("reply_markup"), inline_only=True)
    stored = _editable(sb, bot, p)
    if stored is None:
        sb.inline_edits.append({"token": bot.token, **p.data})
        return True
    message = stored.message
    return _apply_edit(sb, stored, message.get("text", ""), message.get("entities", []), markup)


async def delete_message(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """deleteMessage."""
    chat = sb.resolve_chat(p.chat_id())
    message_id = p.require_int("message_id", "message identifier is not specified")
    stored = bot.find(chat.id, message_id)
    if stored is None:
        raise bad_request("message to delete not found")
    stored.deleted = True
    return True


async def answer_callback_query(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """answerCallbackQuery: each query can be answered once."""
    query_id = p.require_str("callback_query_id", "query_id is empty")
    text = p.string("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    if query_id not in bot.open_callbacks:
        raise bad_request(QUERY_INVALID)
    bot.open_callbacks.discard(query_id)
    answer = {
        "callback_query_id": query_id,
        "text": text,
        "show_alert": p.flag("show_alert"),
        "url": p.string("url"),
        "cache_time": p.integer("cache_time", 0),
        "token": bot.token,
    }
    sb.callback_answers.append(answer)
    return True


async def answer_inline_query(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """answerInlineQuery with result validation."""
    query_id = p.require_str("inline_query_id", "query_id is empty")
    results = validate_inline_results(p.obj("results", []))
    next_offset = p.string("next_offset", "") or ""
    if len(next_offset.encode("utf-8")) > 64:
        raise bad_request("NEXT_OFFSET_INVALID")
    if query_id not in bot.open_inline_queries:
        raise bad_request(QUERY_INVALID)
    bot.open_inline_queries.discard(query_id)
    sb.inline_answers[query_id] = {
        "inline_query_id": query_id,
        "results": results,
        "cache_time": p.integer("cache_time", 300),
        "is_personal": p.flag("is_personal"),
        "next_offset": next_offset,
        "button": p.obj("button"),
        "token": bot.token,
    }
    return True


async def send_chat_action(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """sendChatAction."""
    chat = sb.resolve_chat(p.chat_id())
    action = p.string("action", "") or ""
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    sb.check_can_send(chat, flood=False)
    sb.chat_actions.append(
        {"chat_id": chat.id, "action": action, "at": time.time(), "token": bot.token}
    )
    return True


async def get_chat(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """getChat (ChatFullInfo)."""
    return sb.resolve_chat(p.chat_id()).to_full_info()


async def get_chat_member(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """getChatMember: the bot's own status; in a private chat its user is a ``member``; in
    groups a user's status as set (``set_member_status``), ``member`` once they wrote there,
    else ``left`` (what Telegram answers for someone who is not in the group)."""
    chat = sb.resolve_chat(p.chat_id())
    user_id = p.require_int("user_id", "user not found")
    if user_id == bot.user["id"]:
        return chat_member_dict(bot.sender, bot.member_status.get(chat.id, "member"))
    user = sb.users.get(user_id)
    if user is None or (chat.is_private and user_id != chat.id):
        raise bad_request("user not found")
    status = sb.user_status.get((chat.id, user_id), "member" if chat.is_private else "left")
    return chat_member_dict(user.to_dict(), status)


async def leave_chat(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """leaveChat: later sends to the chat are forbidden."""
    chat = sb.resolve_chat(p.chat_id())
    if chat.is_private:
        raise bad_request("chat member status can't be changed in private chats")
    bot.member_status[chat.id] = "left"
    sb.block(chat.id, f"Forbidden: bot is not a member of the {chat.type} chat")
    return True


async def always_true(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """Setters the sandbox accepts without modelling them."""
    return True


async def get_my_texts(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """getMyName/getMyDescription/getMyShortDescription placeholders."""
    return {"name": bot.user["first_name"], "description": "", "short_description": ""}


async def get_chat_menu_button(sb: BotApiSandbox, bot: BotState, p: Params) -> Any:
    """getChatMenuButton."""
    return {"type": "default"}


METHODS: dict[str, Handler] = {
    name.lower(): handler
    for name, handler in {
        "getMe": get_me,
        "getUpdates": get_updates,
        "setWebhook": set_webhook,
        "deleteWebhook": delete_webhook,
        "getWebhookInfo": get_webhook_info,
        "setMyCommands": set_my_commands,
        "getMyCommands": get_my_commands,
        "deleteMyCommands": delete_my_commands,
        "sendMessage": send_message,
        "editMessageText": edit_message_text,
        "editMessageReplyMarkup": edit_message_reply_markup,
        "deleteMessage": delete_message,
        "answerCallbackQuery": answer_callback_query,
        "answerInlineQuery": answer_inline_query,
        "sendChatAction": send_chat_action,
        "getChat": get_chat,
        "getChatMember": get_chat_member,
        "leaveChat": leave_chat,
        "getMyName": get_my_texts,
        "getMyDescription": get_my_texts,
        "getMyShortDescription": get_my_texts,
        "getChatMenuButton": get_chat_menu_button,
        **dict.fromkeys(ALWAYS_TRUE, always_true),
    }.items()
}
