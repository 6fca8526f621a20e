"""Who may change a chat's topics and digest settings.

In a private chat, its reader. In a group, only the group's admins (creator or
administrator, asked of Telegram with getChatMember and kept briefly in
``Services.members``), an anonymous admin writing as the group, and the bot's own admins
(``[telegram] admin_ids``). Everyone else may read the settings, not change them: in a busy
group a /digest instant or a /follow from anyone would be a spam lever.
"""

from __future__ import annotations

import logging

from telegram import ChatMember, ChatMemberUpdated, Update
from telegram.constants import ChatType
from telegram.error import BadRequest

from bot.digests import render as render_digest
from bot.services import BotContext
from bot.telegram.handlers import reply_target
from bot.telegram.replies import send_parts

log = logging.getLogger(__name__)

GROUP_ADMINS = frozenset({ChatMember.OWNER, ChatMember.ADMINISTRATOR})


async def may_change(update: Update, context: BotContext) -> bool:
    """Whether the sender of ``update`` may change its chat's subscriptions."""
    chat, user, message = update.effective_chat, update.effective_user, update.message
    if chat is None or chat.type == ChatType.PRIVATE:
        return True
    if message is not None and message.sender_chat is not None:
        # Only the group's admins can write as the group (Telegram hides who).
        return message.sender_chat.id == chat.id
    if user is None:
        return False
    if context.services.is_admin(user.id):
        return True

    async def lookup() -> str:
        try:
            return (await context.bot.get_chat_member(chat.id, user.id)).status
        except BadRequest as exc:  # not a member (any more), or the list is hidden from us
            log.info("getChatMember %s in chat %s: %s", user.id, chat.id, exc.message)
            return ChatMember.LEFT

    return await context.services.members.status(chat.id, user.id, lookup) in GROUP_ADMINS


async def allowed(update: Update, context: BotContext) -> bool:
    """``may_change``; when not, a short polite reply (a notice under a pressed button)."""
    if await may_change(update, context):
        return True
    query, message = update.callback_query, update.effective_message
    if query is not None:
        await query.answer(render_digest.group_admins_only_notice())
    elif message is not None:
        refusal = render_digest.group_admins_only_message()
        await send_parts(context, message.chat_id, [refusal], reply_to=reply_target(message))
    return False


def remember(change: ChatMemberUpdated, context: BotContext) -> None:
    """A ``chat_member`` update (sent while the bot is a group admin): a promotion or a
    demotion counts at once instead of when the cached status expires."""
    member = change.new_chat_member
    context.services.members.remember(change.chat.id, member.user.id, member.status)
