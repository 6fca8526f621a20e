"""Test-side "world" of the sandbox: users, chats and the updates they cause."""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from .models import CHAT_TYPES, SandboxChat, SandboxUser, StoredMessage, chat_member_dict
from .updates import BotState
from .validation import detect_entities

logger = logging.getLogger(__name__)

MEMBER_STATUSES = ("creator", "administrator", "member", "restricted", "left", "kicked")
# The sender Telegram shows for messages an anonymous group admin sends as the group.
ANONYMOUS_ADMIN = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}


class InjectionMixin:
    """Create users and chats and inject the updates they would cause."""

    token: str
    bots: dict[str, BotState]
    users: dict[int, SandboxUser]
    chats: dict[int, SandboxChat]
    user_status: dict[tuple[int, int], str]
    _blocked: dict[int, str]
    _next_id: int

    def new_id(self) -> int:
        """A fresh positive id for users, chats and queries."""
        self._next_id += 1
        return self._next_id

    def bot_state(self, token: str | None = None) -> BotState:
        """State of ``token`` (default: the first bot)."""
        return self.bots[token or self.token]

    def user(
        self,
        first_name: str = "Alice",
        *,
        username: str | None = None,
        id: int | None = None,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> SandboxUser:
        """Create and register a (human) user."""
        user = SandboxUser(id or self.new_id(), first_name, username, last_name, language_code)
        self.users[user.id] = user
        return user

    def chat(
        self,
        user: SandboxUser | None = None,
        *,
        type: str = "private",
        title: str | None = None,
        id: int | None = None,
        username: str | None = None,
    ) -> SandboxChat:
        """Create and register a chat; a private chat takes its id and names from ``user``."""
        if type not in CHAT_TYPES:
            raise ValueError(f"unknown chat type {type!r}")
        if type == "private":
            if user is None:
                raise ValueError("a private chat needs its user")
            self.users[user.id] = user
            chat = SandboxChat(
                user.id, "private", None, user.username, user.first_name, user.last_name
            )
        else:
            chat_id = id or (-self.new_id() if type == "group" else -(10**12 + self.new_id()))
            chat = SandboxChat(chat_id, type, title or f"Test {type}", username)
        self.chats[chat.id] = chat
        return chat

    def set_member_status(self, chat: SandboxChat, user: SandboxUser, status: str) -> None:
        """What getChatMember answers for ``user`` in ``chat`` from now on: ``creator``,
        ``administrator``, ``member``, ``restricted``, ``left`` or ``kicked``."""
        if status not in MEMBER_STATUSES:
            raise ValueError(f"unknown chat member status {status!r}")
        self._register(chat, user)
        self.user_status[(chat.id, user.id)] = status

    def new_message(
        self,
        bot: BotState,
        chat: SandboxChat,
        sender: dict[str, Any],
        text: str,
        entities: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """A Bot API ``Message`` with the next id of ``chat``."""
        message: dict[str, Any] = {
            "message_id": bot.allocate_message_id(chat.id),
            "from": sender,
            "chat": chat.to_dict(),
            "date": int(time.time()),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        return message

    def _register(self, chat: SandboxChat, user: SandboxUser | None) -> None:
        """Make sure the chat and user are known to the server."""
        self.chats.setdefault(chat.id, chat)
        if user is not None:
            self.users.setdefault(user.id, user)
            self.user_status.setdefault((chat.id, user.id), "member")

    async def inject_update(self, payload: dict[str, Any], *, token: str | None = None) -> dict:
        """Queue a raw update (without ``update_id``) for the bot."""
        return await self.bot_state(token).push(payload)

    async def inject_message(
        self,
        chat: SandboxChat,
        user: SandboxUser,
        text: str,
        *,
        reply_to_message_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
        token: str | None = None,
        anonymous: bool = False,
    ) -> dict[str, Any]:
        """A user writes ``text`` in ``chat``; commands, mentions, URLs and hashtags get
        entities automatically.  ``anonymous``: a group admin writing as the group (Telegram
        sends it from GroupAnonymousBot with the group as ``sender_chat``).  Returns the
        queued update."""
        self._register(chat, user)
        bot = self.bot_state(token)
        found = detect_entities(text) if entities is None else entities
        sender = ANONYMOUS_ADMIN if anonymous else user.to_dict()
        message = self.new_message(bot, chat, sender, text, found)
        if anonymous:
            message["sender_chat"] = chat.to_dict()
        if reply_to_message_id is not None:
            target = bot.find(chat.id, reply_to_message_id)
            if target is None:
                raise ValueError(f"no message {reply_to_message_id} in chat {chat.id}")
            reply = copy.deepcopy(target.message)
            reply.pop("reply_to_message", None)
            message["reply_to_message"] = reply
        bot.store(StoredMessage(bot.token, message, outgoing=False, raw_text=text))
        return await bot.push({"message": copy.deepcopy(message)})

    async def press_button(
        self,
        chat: SandboxChat,
        user: SandboxUser,
        message_id: int,
        callback_data: str,
        *,
        token: str | None = None,
        strict: bool = True,
    ) -> str:
        """A user presses an inline button; returns the callback query id.  With ``strict``
        the message must exist and carry a button with that ``callback_data``."""
        self._register(chat, user)
        bot = self.bot_state(token)
        stored = bot.find(chat.id, message_id)
        if stored is None and strict:
            raise ValueError(f"no message {message_id} in chat {chat.id}")
        if strict and stored is not None and not _has_button(stored.message, callback_data):
            raise ValueError(f"message {message_id} has no button with data {callback_data!r}")
        query_id = str(self.new_id() * 7919 + 10**15)
        bot.open_callbacks.add(query_id)
        query: dict[str, Any] = {
            "id": query_id,
            "from": user.to_dict(),
            "chat_instance": str(abs(hash((bot.token, chat.id))) % 10**18),
            "data": callback_data,
        }
        if stored is not None:
            query["message"] = copy.deepcopy(stored.message)
        await bot.push({"callback_query": query})
        return query_id

    async def inject_inline_query(
        self,
        user: SandboxUser,
        query: str,
        *,
        offset: str = "",
        chat_type: str = "sender",
        token: str | None = None,
    ) -> str:
        """A user types ``@bot query``; returns the inline query id."""
        self.users.setdefault(user.id, user)
        bot = self.bot_state(token)
        query_id = str(self.new_id() * 7907 + 10**15)
        bot.open_inline_queries.add(query_id)
        payload = {
            "id": query_id,
            "from": user.to_dict(),
            "query": query,
            "offset": offset,
            "chat_type": chat_type,
        }
        await bot.push({"inline_query": payload})
        return query_id

    async def inject_my_chat_member(
        self,
        chat: SandboxChat,
        user: SandboxUser,
        new_status: str,
        *,
        old_status: str | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        """The bot's membership changes (``kicked`` in a private chat = user blocked the bot);
        leaving/kicked blocks later sends, any other status unblocks."""
        self._register(chat, user)
        bot = self.bot_state(token)
        old = old_status or bot.member_status.get(chat.id, "member")
        bot.member_status[chat.id] = new_status
        if new_status in ("kicked", "left"):
            self.block_chat(chat)
        else:
            self._blocked.pop(chat.id, None)
        payload = _member_change(chat, user, bot.sender, old, new_status)
        return await bot.push({"my_chat_member": payload})

    async def inject_chat_member(
        self,
        chat: SandboxChat,
        user: SandboxUser,
        new_status: str,
        *,
        old_status: str | None = None,
        by: SandboxUser | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        """``user``'s status in a group changes (promoted, demoted, left...); Telegram sends
        it as ``chat_member`` to bots that are admins there and asked for it."""
        old = old_status or self.user_status.get((chat.id, user.id), "member")
        self.set_member_status(chat, user, new_status)
        payload = _member_change(chat, by or user, user.to_dict(), old, new_status)
        return await self.bot_state(token).push({"chat_member": payload})

    def block_chat(self, chat: SandboxChat) -> None:
        """Block sends to ``chat`` with the description Telegram uses for its type."""
        if chat.is_private:
            self._blocked[chat.id] = "Forbidden: bot was blocked by the user"
        else:
            self._blocked[chat.id] = f"Forbidden: bot was kicked from the {chat.type} chat"


def _member_change(
    chat: SandboxChat, by: SandboxUser, member: dict[str, Any], old: str, new: str
) -> dict[str, Any]:
    """Bot API ``ChatMemberUpdated``: ``by`` changed ``member``'s status from ``old`` to
    ``new`` in ``chat``."""
    return {
        "chat": chat.to_dict(),
        "from": by.to_dict(),
        "date": int(time.time()),
        "old_chat_member": chat_member_dict(member, old),
        "new_chat_member": chat_member_dict(member, new),
    }


def _has_button(message: dict[str, Any], callback_data: str) -> bool:
    """Whether the message's inline keyboard has a button with ``callback_data``."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return any(button.get("callback_data") == callback_data for row in rows for button in row)
