"""Plain data objects of the sandbox: users, chats, stored messages and request records."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

CHAT_TYPES = ("private", "group", "supergroup", "channel")

_ADMIN_RIGHTS = (
    "can_be_edited",
    "is_anonymous",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)
_RESTRICTED_FLAGS = (
    "is_member",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_send_messages",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_manage_topics",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_edit_tag",
    "can_react_to_messages",
)


@dataclass(frozen=True)
class SandboxUser:
    """A Telegram user (or bot) as the sandbox knows it."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = "en"
    is_bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Bot API ``User`` object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value is not None and not (self.is_bot and key == "language_code"):
                data[key] = value
        return data


@dataclass(frozen=True)
class SandboxChat:
    """A chat: private (id equals the user's id), group, supergroup or channel."""

    id: int
    type: str = "private"
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Bot API ``Chat`` object."""
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name", "last_name"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data

    def to_full_info(self) -> dict[str, Any]:
        """Bot API ``ChatFullInfo`` object with the fields PTB requires."""
        gifts = ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription")
        accepted = dict.fromkeys((*gifts, "gifts_from_channels"), False)
        return {
            **self.to_dict(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": accepted,
        }

    @property
    def is_private(self) -> bool:
        """Whether this is a one-to-one chat with a user."""
        return self.type == "private"


def chat_member_dict(user: dict[str, Any], status: str) -> dict[str, Any]:
    """Bot API ``ChatMember`` object for ``status`` with every field PTB requires."""
    data: dict[str, Any] = {"user": user, "status": status}
    if status == "creator":
        data["is_anonymous"] = False
    elif status == "administrator":
        data.update(dict.fromkeys(_ADMIN_RIGHTS, False))
        data.update(can_manage_chat=True, can_delete_messages=True, can_invite_users=True)
    elif status == "restricted":
        data.update(dict.fromkeys(_RESTRICTED_FLAGS, False))
        data.update(is_member=True, until_date=0)
    elif status == "kicked":
        data["until_date"] = 0
    return data


@dataclass
class StoredMessage:
    """A message in a chat history, kept current after edits."""

    token: str
    message: dict[str, Any]
    outgoing: bool
    raw_text: str | None = None
    parse_mode: str | None = None
    edit_history: list[str] = field(default_factory=list)
    deleted: bool = False

    @property
    def chat_id(self) -> int:
        """Id of the chat the message lives in."""
        return int(self.message["chat"]["id"])

    @property
    def message_id(self) -> int:
        """Id of the message inside its chat."""
        return int(self.message["message_id"])

    def record(self) -> dict[str, Any]:
        """Copy of the Telegram message plus a ``sandbox`` key with the parse metadata."""
        data = copy.deepcopy(self.message)
        data["sandbox"] = {
            "token": self.token,
            "raw_text": self.raw_text,
            "parse_mode": self.parse_mode,
            "edit_count": len(self.edit_history),
            "edit_history": list(self.edit_history),
            "deleted": self.deleted,
        }
        return data


@dataclass
class RequestRecord:
    """One Bot API call as the sandbox saw and answered it."""

    token: str
    method: str
    params: dict[str, Any]
    status: int = 200
    description: str | None = None
    at: float = field(default_factory=time.time)
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the call succeeded."""
        return self.status == 200
