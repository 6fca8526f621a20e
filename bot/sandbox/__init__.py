"""Local Telegram Bot API server ("the sandbox") for end-to-end tests and local chat.

It owns a fake of Telegram's Bot API that speaks the real HTTP protocol on 127.0.0.1, so PTB's
own HTTP layer talks to it. It is standalone: it imports nothing from ``bot`` or ``index``.
"""

from .models import RequestRecord, SandboxChat, SandboxUser
from .params import ApiError
from .server import DEFAULT_TOKEN, BotApiSandbox
from .telegram_html import TelegramHtmlError, parse_telegram_html, utf16_len

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "BotApiSandbox",
    "RequestRecord",
    "SandboxChat",
    "SandboxUser",
    "TelegramHtmlError",
    "parse_telegram_html",
    "utf16_len",
]
