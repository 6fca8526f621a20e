"""Only a group's admins change what the group follows and when its digests come.

The real bot over HTTP against the sandbox, whose getChatMember answers with the statuses the
test gives the group's members.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.digests import render as render_digest
from bot.sandbox import SandboxChat, SandboxUser
from bot.services import MemberStatuses
from bot.telegram import callbacks
from index.coverage import CoverageIndex
from tests.bot_harness import InProcessBot, LoopThread, loop_fixture, start_bot

_ = loop_fixture

BOT_ADMIN = 4343
REFUSAL = "Only this group's admins can change"


@pytest.fixture()
def bot(loop: LoopThread, sample_index: CoverageIndex, tmp_path: Path) -> Iterator[InProcessBot]:
    running = start_bot(loop, sample_index, tmp_path, admin_ids=(BOT_ADMIN,))
    yield running
    running.shutdown()


def _say(bot: InProcessBot, chat: SandboxChat, user: SandboxUser, text: str, **kwargs: Any) -> str:
    update = bot.run(bot.sandbox.inject_message(chat, user, text, **kwargs))
    bot.run(bot.wait_done(update))
    return str(bot.sandbox.sent(chat.id)[-1]["text"])


def _press(bot: InProcessBot, chat: SandboxChat, user: SandboxUser, data: str) -> str:
    message_id = next(
        m["message_id"]
        for m in reversed(bot.sandbox.sent(chat.id))
        if data in str(m.get("reply_markup"))
    )
    bot.run(bot.sandbox.press_button(chat, user, message_id, data))
    bot.run(bot.wait_done({"update_id": bot.sandbox.bot_state().next_update_id - 1}))
    return str(bot.sandbox.callback_answers[-1].get("text"))


def _member_lookups(bot: InProcessBot) -> Counter[int]:
    return Counter(int(c.params["user_id"]) for c in bot.sandbox.calls("getChatMember"))


def test_only_group_admins_change_subscriptions(bot: InProcessBot) -> None:
    sandbox, store = bot.sandbox, bot.services.state.subscribers
    group = sandbox.chat(type="supergroup", title="Newsroom")
    member, admin, owner = sandbox.user("Member"), sandbox.user("Admin"), sandbox.user("Owner")
    sandbox.set_member_status(group, member, "member")
    sandbox.set_member_status(group, admin, "administrator")
    sandbox.set_member_status(group, owner, "creator")

    assert "Following Witkoff" in _say(bot, group, admin, "/follow Witkoff")
    for text in ("/follow ceasefire", "/unfollow Witkoff", "/digest instant", "/timezone Cairo"):
        reply = _say(bot, group, member, text)
        assert reply.startswith(REFUSAL), text
        assert sandbox.sent(group.id)[-1]["reply_to_message"]["from"]["id"] == member.id
    # Reading the settings stays open to everyone; the buttons under them change nothing.
    assert "Witkoff" in _say(bot, group, member, "/following")
    [topic] = store.topics_of(group.id)
    notice = render_digest.group_admins_only_notice()
    assert _press(bot, group, member, callbacks.unfollow(topic.id)) == notice
    _say(bot, group, member, "/digest")
    assert _press(bot, group, member, callbacks.digest("instant")) == notice
    reader = store.get(group.id)
    assert reader is not None and [t.text for t in reader.topics] == ["Witkoff"]
    assert reader.schedule.cadence == "daily" and reader.schedule.timezone == "UTC"
    # A busy group does not mean a lookup per command: one per person, cached.
    assert _member_lookups(bot) == {admin.id: 1, member.id: 1}

    # The group's creator, an anonymous admin and the bot's own admins may.
    assert "Following ceasefire" in _say(bot, group, owner, "/follow ceasefire")
    assert not _say(bot, group, member, "/digest instant", anonymous=True).startswith(REFUSAL)
    bot_admin = sandbox.user("Operator", id=BOT_ADMIN)
    assert "Stopped following" in _say(bot, group, bot_admin, "/unfollow Witkoff")
    reader = store.get(group.id)
    assert reader is not None and [t.text for t in reader.topics] == ["ceasefire"]
    assert reader.schedule.cadence == "instant"
    assert set(_member_lookups(bot)) == {admin.id, member.id, owner.id}


def test_a_demoted_admin_loses_the_right_and_private_chats_ask_nobody(
    bot: InProcessBot,
) -> None:
    sandbox = bot.sandbox
    group = sandbox.chat(type="group", title="Desk")
    editor = sandbox.user("Editor")
    sandbox.set_member_status(group, editor, "administrator")
    assert "Following Witkoff" in _say(bot, group, editor, "/follow Witkoff")
    update = bot.run(sandbox.inject_chat_member(group, editor, "member"))
    bot.run(bot.wait_done(update))
    assert _say(bot, group, editor, "/follow aid").startswith(REFUSAL)
    stranger = sandbox.user("Stranger")  # a plain member of the group
    assert _say(bot, group, stranger, "/timezone Cairo").startswith(REFUSAL)

    reader = sandbox.user("Reader")
    private = sandbox.chat(reader)
    lookups = len(sandbox.calls("getChatMember"))
    assert "Following Witkoff" in _say(bot, private, reader, "/follow Witkoff")
    assert "Cairo" in _say(bot, private, reader, "/timezone Cairo")
    assert len(sandbox.calls("getChatMember")) == lookups


def test_member_statuses_expire_stay_bounded_and_share_lookups() -> None:
    now = [0.0]
    cache = MemberStatuses(ttl=60, size=2, clock=lambda: now[0])
    lookups: list[int] = []

    async def lookup() -> str:
        lookups.append(1)
        await asyncio.sleep(0.01)
        return "member"

    async def scenario() -> None:
        # Ten commands at once from one member: one getChatMember.
        assert (
            await asyncio.gather(*(cache.status(1, 7, lookup) for _ in range(10)))
            == ["member"] * 10
        )
        assert len(lookups) == 1
        now[0] = 59
        assert await cache.status(1, 7, lookup) == "member" and len(lookups) == 1
        now[0] = 61  # expired
        assert await cache.status(1, 7, lookup) == "member" and len(lookups) == 2
        cache.remember(1, 8, "administrator")
        cache.remember(1, 9, "creator")  # over the size: the least recently used goes
        assert await cache.status(1, 9, lookup) == "creator" and len(lookups) == 2
        assert await cache.status(1, 7, lookup) == "member" and len(lookups) == 3

    asyncio.run(scenario())
