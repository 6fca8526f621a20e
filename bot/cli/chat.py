"""`coverbot chat`: talk to the real bot in a terminal, through the local Bot API sandbox.

The bot is the same application `coverbot run` builds, polling a sandbox in this process
instead of Telegram; the terminal is the reader's Telegram client. Works with stdin that is
not a terminal, so a session can be scripted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import click

from bot.cli.common import open_index, run_import, sample_path
from bot.config import Config
from bot.sandbox import BotApiSandbox, SandboxChat, SandboxUser
from bot.services import Services
from bot.telegram.app import build_application, open_services, serve
from index import CoverageIndex

log = logging.getLogger(__name__)

WAIT_SECONDS = 60.0
QUIT = ("/quit", "/exit")


# -- showing Telegram messages in a terminal ---------------------------------------------


def format_message(text: str, entities: list[dict[str, Any]], styled: bool = False) -> str:
    """A message's text with its entities shown for a terminal: links spelled out,
    blockquotes indented, bold and italic styled when ``styled``."""
    units = text.encode("utf-16-le", "surrogatepass")

    def piece(start: int, end: int) -> str:
        return units[2 * start : 2 * end].decode("utf-16-le", "replace")

    ordered = sorted(entities, key=lambda e: (e["offset"], -e["length"]))

    def walk(start: int, end: int, items: list[dict[str, Any]]) -> str:
        out, pos, i = [], start, 0
        while i < len(items):
            entity = items[i]
            e_start = max(entity["offset"], pos)
            e_end = min(entity["offset"] + entity["length"], end)
            j = i + 1
            while j < len(items) and items[j]["offset"] < e_end:
                j += 1
            out.append(piece(pos, e_start))
            out.append(_decorate(entity, walk(e_start, e_end, items[i + 1 : j]), styled))
            pos, i = max(pos, e_end), j
        out.append(piece(pos, end))
        return "".join(out)

    return walk(0, len(units) // 2, ordered)


def _decorate(entity: dict[str, Any], inner: str, styled: bool) -> str:
    kind = entity["type"]
    if kind in ("blockquote", "expandable_blockquote"):
        return "\n".join(f"  │ {line}" for line in inner.split("\n"))
    if kind == "text_link":
        label = click.style(inner, underline=True) if styled else inner
        return f"{label} <{entity.get('url', '')}>"
    if styled and kind == "bold":
        return click.style(inner, bold=True)
    if styled and kind == "italic":
        return click.style(inner, italic=True)
    return inner


def format_buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, callback data) of a message's inline buttons, in reading order."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


def indent(text: str, prefix: str) -> str:
    """First line after ``prefix``, the others aligned under it."""
    pad = " " * len(prefix)
    return "\n".join((prefix if i == 0 else pad) + line for i, line in enumerate(text.split("\n")))


class TerminalView:
    """Prints what the bot did in one chat since the last look."""

    def __init__(
        self,
        sandbox: BotApiSandbox,
        chat_id: int,
        styled: bool,
        echo: Callable[[str], None] = click.echo,
    ) -> None:
        """Show ``chat_id`` of ``sandbox`` through ``echo``."""
        self.sandbox = sandbox
        self.chat_id = chat_id
        self.styled = styled
        self.echo = echo
        self.buttons: list[tuple[str, str]] = []
        self.button_message: int | None = None
        self.inline_query: str | None = None
        self._seen: dict[int, int] = {}
        self._notices = 0

    def show_new(self) -> None:
        """Print button notices, new messages and edits; remember the last buttons."""
        for notice in self.sandbox.callback_answers[self._notices :]:
            if notice.get("text"):
                self.echo(indent(f"({notice['text']})", "bot> ") + "\n")
        self._notices = len(self.sandbox.callback_answers)
        for message in self.sandbox.sent(self.chat_id):
            message_id, edits = message["message_id"], message["sandbox"]["edit_count"]
            before = self._seen.get(message_id)
            text_edited = (
                before is not None
                and edits > before
                and message["sandbox"]["edit_history"][-1] != message.get("text")
            )
            if before is None or text_edited:
                self._print(message, edited=before is not None)
            self._seen[message_id] = edits
            if format_buttons(message):
                self.buttons = format_buttons(message)
                self.button_message = message_id
            elif message_id == self.button_message:
                self.buttons, self.button_message = [], None

    def _print(self, message: dict[str, Any], edited: bool) -> None:
        body = format_message(message.get("text", ""), message.get("entities", []), self.styled)
        self.echo(indent(body, "bot> " if not edited else "bot (edited)> "))
        buttons = format_buttons(message)
        if buttons:
            labels = "   ".join(f"[{i}] {label}" for i, (label, _) in enumerate(buttons, 1))
            self.echo(indent(labels, "     "))
        self.echo("")

    def show_inline(self, answer: dict[str, Any] | None) -> None:
        """Print the results of an inline query."""
        results = (answer or {}).get("results", [])
        if not results:
            button = ((answer or {}).get("button") or {}).get("text", "no results")
            self.echo(indent(f"(inline: {button})", "bot> "))
        for i, result in enumerate(results, 1):
            line = f"inline {i}. {result.get('title', '')} — {result.get('description', '')}"
            self.echo(indent(line, "bot> " if i == 1 else "     "))
        self.echo("")


# -- the session -----------------------------------------------------------------------------


def ensure_coverage(config: Config) -> CoverageIndex:
    """The index, with the bundled sample coverage imported when it has no articles."""
    index = open_index(config)
    if index.stats(with_vectors=False).articles == 0:
        click.echo(f"{config.data_dir} has no coverage yet: importing the sample…", err=True)
        report = run_import(config, [sample_path()], show=False, index=index)
        click.echo(report.summary(), err=True)
    return index


def run_chat(config: Config, name: str = "Reader", lines: TextIO | None = None) -> None:
    """`coverbot chat`: a terminal session with the bot until /quit or end of input."""
    with _quiet_log():
        index = ensure_coverage(config)  # the bot reuses it: one model load
        asyncio.run(_session(config, index, name, lines or sys.stdin, sys.stdout.isatty()))


@contextlib.contextmanager
def _quiet_log() -> Iterator[None]:
    """Only warnings reach the terminal during the chat (unless -v): the log would drown the
    conversation. Handler levels, because some libraries set their own loggers to DEBUG."""
    root = logging.getLogger()
    if root.level <= logging.DEBUG:
        yield
        return
    saved = [(handler, handler.level) for handler in root.handlers]
    for handler, level in saved:
        handler.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        for handler, level in saved:
            handler.setLevel(level)


async def _session(
    config: Config, index: CoverageIndex, name: str, lines: TextIO, styled: bool
) -> None:
    async with BotApiSandbox() as sandbox:
        settings = dataclasses.replace(
            config.telegram, token=sandbox.token, api_base_url=sandbox.base_url, mode="polling"
        )
        services = open_services(dataclasses.replace(config, telegram=settings), index)
        stop = asyncio.Event()
        bot = asyncio.create_task(serve(build_application(services), stop))
        try:
            await _until_polling(sandbox, bot)
            user = sandbox.user(name, username="reader")
            chat = sandbox.chat(user)
            click.echo(
                f"coverbot chat: you are {name}, talking to @{sandbox.bot_state().user['username']}"
                " through a local Bot API sandbox.\nType a question; :N presses button N of the"
                " last message; '@ question' tries inline mode; /quit leaves.\n"
            )
            await _repl(sandbox, services, user, chat, lines, styled)
        finally:
            stop.set()
            await bot


async def _until_polling(sandbox: BotApiSandbox, bot: asyncio.Task[None]) -> None:
    """Wait until the bot polls (model loaded, commands set), or fail if it died."""
    while sandbox.bot_state().poll_generation == 0:  # a long poll has begun
        if bot.done():
            await bot  # raises what stopped it
            raise click.ClickException("the bot stopped before it started polling")
        await asyncio.sleep(0.05)


async def _repl(
    sandbox: BotApiSandbox,
    services: Services,
    user: SandboxUser,
    chat: SandboxChat,
    lines: TextIO,
    styled: bool,
) -> None:
    view = TerminalView(sandbox, chat.id, styled)
    interactive = lines.isatty()
    incoming = _read_lines(lines)
    while True:
        if interactive:
            click.echo("you> ", nl=False)
        line = await incoming.get()
        if not line:
            break
        line = line.strip()
        if not interactive:
            click.echo(f"you> {line}")
        if line in QUIT:
            break
        if not line:
            continue
        update_id = await _act(sandbox, view, user, chat, line)
        if update_id is None:
            continue
        try:
            await services.finished.wait(update_id, timeout=WAIT_SECONDS)
        except TimeoutError:
            click.echo(f"(the bot did not finish within {WAIT_SECONDS:.0f} s)")
        if line.startswith("@"):
            view.show_inline(sandbox.inline_answers.get(view.inline_query or ""))
        view.show_new()


def _read_lines(lines: TextIO) -> asyncio.Queue[str]:
    """Lines from a daemon thread ("" at the end), so Ctrl-C never waits for Enter."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        try:
            for line in iter(lines.readline, ""):
                loop.call_soon_threadsafe(queue.put_nowait, line)
            loop.call_soon_threadsafe(queue.put_nowait, "")
        except RuntimeError:
            pass  # the session is over and its loop closed

    threading.Thread(target=read, name="coverbot-chat-input", daemon=True).start()
    return queue


async def _act(
    sandbox: BotApiSandbox, view: TerminalView, user: SandboxUser, chat: SandboxChat, line: str
) -> int | None:
    """Turn a line into an update (message, button press or inline query); its id or None."""
    if line.startswith(":"):
        number = line[1:].strip()
        if not number.isdigit() or not 1 <= int(number) <= len(view.buttons):
            click.echo(f"(no button {number}; the last message has {len(view.buttons)})\n")
            return None
        assert view.button_message is not None
        data = view.buttons[int(number) - 1][1]
        await sandbox.press_button(chat, user, view.button_message, data)
    elif line.startswith("@"):
        words = line[1:].split(maxsplit=1)
        if words and words[0] == sandbox.bot_state().user["username"]:
            words = words[1:]  # "@ourbot question", as typed in Telegram
        view.inline_query = await sandbox.inject_inline_query(user, " ".join(words))
    else:
        await sandbox.inject_message(chat, user, line)
    return sandbox.bot_state().next_update_id - 1
