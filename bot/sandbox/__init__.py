"""Local Telegram Bot API server ("the sandbox") for end-to-end tests and local chat."""

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
