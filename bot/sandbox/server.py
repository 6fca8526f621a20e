"""A local Telegram Bot API server for tests: real HTTP, Telegram-shaped answers.

Point PTB at it with ``Bot(token, base_url=sandbox.base_url)`` or
``ApplicationBuilder().base_url(sandbox.base_url)``.  PTB builds ``{base_url}{token}/{method}``,
so ``base_url`` ends in ``/bot``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from .inject import InjectionMixin
from .methods import METHODS, commands_key
from .models import RequestRecord, SandboxChat, SandboxUser, StoredMessage
from .params import ApiError, bad_request, read_params
from .updates import BotState, FloodControl, run_webhook
from .validation import error_for_status

logger = logging.getLogger(__name__)

DEFAULT_TOKEN = "123456789:SANDBOX-test-token"
Listener = Callable[[RequestRecord], None]


class BotApiSandbox(InjectionMixin):
    """In-process Bot API server with records, waiting helpers and fault injection."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "coverbot_test_bot",
        bot_first_name: str = "Coverbot",
        webhook_retries: int = 3,
        webhook_retry_delay: float = 0.05,
        auto_chats: bool = False,
    ) -> None:
        """Configure the server and its first bot; nothing listens until :meth:`start`.

        With ``auto_chats`` an unknown positive chat id is taken as a private chat with a new
        user instead of answering ``chat not found``.
        """
        self.host = host
        self.auto_chats = auto_chats
        self.port = port
        self.token = token
        self.webhook_retries = webhook_retries
        self.webhook_retry_delay = webhook_retry_delay
        self.bots: dict[str, BotState] = {}
        self.users: dict[int, SandboxUser] = {}
        self.chats: dict[int, SandboxChat] = {}
        self.user_status: dict[tuple[int, int], str] = {}
        self.requests: list[RequestRecord] = []
        self.counters: Counter[str] = Counter()
        self.callback_answers: list[dict[str, Any]] = []
        self.inline_answers: dict[str, dict[str, Any]] = {}
        self.chat_actions: list[dict[str, Any]] = []
        self.inline_edits: list[dict[str, Any]] = []
        self.webhook_deliveries: list[dict[str, Any]] = []
        self.closing = asyncio.Event()
        self._messages: list[StoredMessage] = []
        self._failures: dict[str, deque[ApiError]] = {}
        self._blocked: dict[int, str] = {}
        self._flood: FloodControl | None = None
        self._activity = asyncio.Condition()
        self._listeners: list[Listener] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._next_id = 1000
        self.add_bot(token, username=bot_username, first_name=bot_first_name)

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> BotApiSandbox:
        """Bind and serve; afterwards :attr:`port` holds the real port."""
        if self._runner is not None:
            return self
        self.closing.clear()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._handle_file)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        logger.info("Bot API sandbox listening on %s", self.base_url)
        return self

    async def stop(self) -> None:
        """Release pollers, stop webhook workers and close the server."""
        if self._runner is None:
            return
        self.closing.set()
        for bot in self.bots.values():
            await bot.wake()
            if bot.webhook_task is not None:
                bot.webhook_task.cancel()
                await asyncio.gather(bot.webhook_task, return_exceptions=True)
                bot.webhook_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> BotApiSandbox:
        """Start on entering ``async with``."""
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving ``async with``."""
        await self.stop()

    @property
    def base_url(self) -> str:
        """API base URL for PTB (``http://127.0.0.1:PORT/bot``)."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def file_base_url(self) -> str:
        """File base URL for PTB (``http://127.0.0.1:PORT/file/bot``)."""
        return f"http://{self.host}:{self.port}/file/bot"

    def add_bot(
        self, token: str, *, username: str = "coverbot_test_bot", first_name: str = "Coverbot"
    ) -> SandboxUser:
        """Register another bot token; returns its bot user."""
        prefix = token.split(":", 1)[0]
        bot_id = int(prefix) if prefix.isdigit() else self.new_id()
        user = SandboxUser(bot_id, first_name, username, is_bot=True, language_code=None)
        data = user.to_dict() | {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }
        self.bots[token] = BotState(token, data)
        return user

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        """Dispatch ``/bot{token}/{method}``."""
        token, method = request.match_info["token"], request.match_info["method"]
        record = RequestRecord(token, method, {})
        started = time.monotonic()
        try:
            result = await self._dispatch(request, record)
            payload: dict[str, Any] = {"ok": True, "result": result}
        except ApiError as exc:
            record.status, record.description = exc.status, exc.description
            payload = exc.payload()
        except Exception:
            logger.exception("sandbox handler for %s crashed", method)
            error = ApiError(500, "Internal Server Error")
            record.status, record.description = error.status, error.description
            payload = error.payload()
        record.duration = time.monotonic() - started
        await self._record(record)
        return web.json_response(payload, status=record.status)

    async def _dispatch(self, request: web.Request, record: RequestRecord) -> Any:
        """Authenticate, parse, apply injected faults and run the handler."""
        bot = self.bots.get(record.token)
        if bot is None:
            raise ApiError(401, "Unauthorized")
        handler = METHODS.get(record.method.lower())
        if handler is None:
            raise ApiError(404, "Not Found")
        params = await read_params(request)
        record.params = params.data
        self._raise_injected(record.method)
        return await handler(self, bot, params)

    async def _handle_file(self, request: web.Request) -> web.Response:
        """Files are not modelled: always 404."""
        return web.json_response(ApiError(404, "Not Found").payload(), status=404)

    async def _record(self, record: RequestRecord) -> None:
        """Log a finished call, notify listeners and wake :meth:`wait_for`."""
        self.requests.append(record)
        self.counters[record.method] += 1
        for listener in list(self._listeners):
            try:
                listener(record)
            except Exception:
                logger.exception("sandbox listener failed")
        async with self._activity:
            self._activity.notify_all()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(record)`` after every Bot API call (e.g. to print bot replies)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Undo :meth:`add_listener`."""
        self._listeners.remove(listener)

    # ------------------------------------------------------- used by methods

    def resolve_chat(self, chat_id: int | str) -> SandboxChat:
        """Known chat by id or ``@username``; 400 ``chat not found`` otherwise."""
        if isinstance(chat_id, str):
            name = chat_id.lstrip("@").lower()
            for known in self.chats.values():
                if known.username and known.username.lower() == name:
                    return known
            raise bad_request("chat not found")
        found = self.chats.get(chat_id)
        if found is None and self.auto_chats and chat_id > 0:
            found = self.chat(self.user(f"User {chat_id}", id=chat_id))
        if found is None:
            raise bad_request("chat not found")
        return found

    def check_can_send(self, chat: SandboxChat, *, flood: bool = True) -> None:
        """403 if the chat blocked the bot; 429 if flood control trips."""
        reason = self._blocked.get(chat.id)
        if reason is not None:
            raise ApiError(403, reason)
        if flood:
            self.check_flood(chat.id)

    def check_flood(self, chat_id: int) -> None:
        """Apply :meth:`flood_limit` rules, if any."""
        if self._flood is not None:
            self._flood.check(chat_id)

    def record_sent(self, bot: BotState, stored: StoredMessage) -> None:
        """Store an outgoing message in its chat history and the sent log."""
        bot.store(stored)
        self._messages.append(stored)

    async def set_webhook_url(self, bot: BotState, url: str) -> None:
        """Switch a bot between polling (``url=""``) and webhook delivery."""
        bot.webhook_url = url
        if not url:
            bot.webhook_last_error = None
        if url and (bot.webhook_task is None or bot.webhook_task.done()):
            if self._session is None:
                raise bad_request("sandbox is not running")
            bot.webhook_task = asyncio.create_task(
                run_webhook(
                    bot,
                    self._session,
                    self.webhook_deliveries,
                    self.webhook_retries,
                    self.webhook_retry_delay,
                )
            )
        await bot.wake()

    # --------------------------------------------------------- test records

    def sent(
        self, chat_id: int | None = None, *, token: str | None = None, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """Messages bots sent (current text/markup, plus a ``sandbox`` metadata key)."""
        return [
            stored.record()
            for stored in self._messages
            if (chat_id is None or stored.chat_id == chat_id)
            and (token is None or stored.token == token)
            and (include_deleted or not stored.deleted)
        ]

    def history(self, chat_id: int, *, token: str | None = None) -> list[dict[str, Any]]:
        """Every live message of a chat, from users and the bot, in id order."""
        messages = self.bot_state(token).histories.get(chat_id, {})
        return [m.record() for _, m in sorted(messages.items()) if not m.deleted]

    def sent_count(self, chat_id: int | None = None, *, token: str | None = None) -> int:
        """Number of live messages bots sent (cheap: no copies)."""
        return sum(
            1
            for stored in self._messages
            if (chat_id is None or stored.chat_id == chat_id)
            and (token is None or stored.token == token)
            and not stored.deleted
        )

    def calls(self, method: str | None = None) -> list[RequestRecord]:
        """Request log, optionally only one method (case-insensitive)."""
        if method is None:
            return list(self.requests)
        return [r for r in self.requests if r.method.lower() == method.lower()]

    @property
    def commands(self) -> list[dict[str, Any]]:
        """Default-scope command list of the first bot (from setMyCommands)."""
        return self.get_commands()

    def get_commands(
        self, scope: dict[str, Any] | None = None, language_code: str = "", token: str | None = None
    ) -> list[dict[str, Any]]:
        """Command list set for ``scope``/``language_code`` via setMyCommands."""
        key = commands_key(scope or {"type": "default"}, language_code)
        return self.bot_state(token).commands.get(key, [])

    async def wait_for(
        self,
        predicate: int | Callable[[list[dict[str, Any]]], Any],
        *,
        chat_id: int | None = None,
        timeout: float = 5.0,
        token: str | None = None,
    ) -> Any:
        """Wait until ``chat_id`` (None: all chats) has ``predicate`` sent messages, or until
        ``predicate(sent)`` is truthy; return the sent list or the predicate's value.

        Re-checks after every Bot API call; raises TimeoutError after ``timeout`` seconds.
        """
        async with self._activity:
            try:
                async with asyncio.timeout(timeout):
                    while True:
                        if isinstance(predicate, int):
                            if self.sent_count(chat_id, token=token) >= predicate:
                                return self.sent(chat_id, token=token)
                        else:
                            value = predicate(self.sent(chat_id, token=token))
                            if value:
                                return value
                        await self._activity.wait()
            except TimeoutError:
                texts = [m.get("text") for m in self.sent(chat_id)]
                raise TimeoutError(
                    f"sandbox wait_for timed out after {timeout}s; chat {chat_id} has {texts!r}"
                ) from None

    # -------------------------------------------------------- fault injection

    def fail_next(
        self,
        method: str,
        count: int = 1,
        status: int = 429,
        retry_after: int = 1,
        description: str | None = None,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` ("*" = any) with an error."""
        error = error_for_status(status, retry_after)
        if description is not None:
            error = ApiError(status, description, error.parameters)
        queue = self._failures.setdefault(method.lower(), deque())
        queue.extend([error] * count)

    def _raise_injected(self, method: str) -> None:
        """Raise the next queued failure for ``method``, if any."""
        for key in (method.lower(), "*"):
            queue = self._failures.get(key)
            if queue:
                raise queue.popleft()

    def flood_limit(
        self, per_chat_per_second: float | None = None, global_per_second: float | None = None
    ) -> None:
        """Enforce Telegram-like flood control on sends/edits (both None: switch off)."""
        if per_chat_per_second is None and global_per_second is None:
            self._flood = None
        else:
            self._flood = FloodControl(per_chat_per_second, global_per_second)

    def block(self, chat_id: int, description: str | None = None) -> None:
        """Make sends to ``chat_id`` fail with 403 (default: blocked by the user)."""
        if description is None:
            self.block_chat(self.chats.get(chat_id) or SandboxChat(chat_id))
        else:
            self._blocked[chat_id] = description

    def unblock(self, chat_id: int) -> None:
        """Undo :meth:`block`."""
        self._blocked.pop(chat_id, None)

    def is_blocked(self, chat_id: int) -> bool:
        """Whether sends to ``chat_id`` currently fail with 403."""
        return chat_id in self._blocked
