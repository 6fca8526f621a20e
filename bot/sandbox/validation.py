"""Validation of message text, keyboards, inline results and commands like Telegram does."""

from __future__ import annotations

import logging
import re
from typing import Any

from .params import ApiError, bad_request
from .telegram_html import TelegramHtmlError, parse_telegram_html, utf16_len

logger = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_RESULTS = 50
MAX_KEYBOARD_BUTTONS = 100
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_INLINE_RESULT_TYPES = frozenset(
    {"article", "photo", "gif", "mpeg4_gif", "video", "audio", "voice", "document"}
    | {"location", "venue", "contact", "game", "sticker"}
)
_TRIMMED = " \n"
_UNTRIMMED_ENTITIES = frozenset({"text_link", "text_mention", "pre", "code"})
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_DETECTORS = (
    ("bot_command", re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?!\w)")),
    ("url", re.compile(r"\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)\]'}]")),
    ("mention", re.compile(r"(?<![\w@/])@[A-Za-z0-9_]{4,32}(?!\w)")),
    ("hashtag", re.compile(r"(?<![\w#])#[^\W\d]\w*")),
)


def render_text(
    text: str, parse_mode: str | None, entities: list[dict] | None
) -> tuple[str, list[dict]]:
    """Apply ``parse_mode`` (or explicit ``entities``) and return (plain text, entities)."""
    mode = (parse_mode or "").strip().lower()
    if mode == "html":
        try:
            return parse_telegram_html(text)
        except TelegramHtmlError as exc:
            raise bad_request(f"can't parse entities: {exc.detail}") from None
    if mode in ("markdown", "markdownv2"):
        logger.warning("sandbox does not parse %s; treating text as plain", parse_mode)
        return text, []
    if mode:
        raise bad_request(f"unsupported parse_mode {parse_mode}")
    return text, _check_entities(text, entities or [])


def _check_entities(text: str, entities: list[Any]) -> list[dict]:
    """Validate explicit ``entities`` against the text length."""
    total = utf16_len(text)
    checked = []
    for entity in entities:
        if not isinstance(entity, dict) or "type" not in entity:
            raise bad_request('can\'t parse MessageEntity: field "type" must be of type String')
        offset, length = int(entity.get("offset", -1)), int(entity.get("length", 0))
        if offset < 0 or length <= 0 or offset + length > total:
            continue
        checked.append(dict(entity))
    return checked


def finalize_text(
    plain: str, entities: list[dict], *, empty: str = "message text is empty"
) -> tuple[str, list[dict]]:
    """Trim like Telegram, then 400 if the text is empty or over 4096 UTF-16 units.

    Telegram strips leading spaces/newlines from formatting entities (not links or code),
    drops trailing spaces/newlines from the text, and leading ones up to the first entity.
    """
    if not plain.strip(_TRIMMED):
        raise bad_request(empty)
    entities = [_strip_entity_start(plain, e) for e in entities]
    text = plain.rstrip(_TRIMMED)
    limit = utf16_len(text)
    kept = []
    for entity in entities:
        if entity["length"] > 0 and entity["offset"] < limit:
            entity["length"] = min(entity["length"], limit - entity["offset"])
            kept.append(entity)
    first = min((e["offset"] for e in kept), default=len(text))
    shift = min(len(text) - len(text.lstrip(_TRIMMED)), first)
    for entity in kept:
        entity["offset"] -= shift
    text = text[shift:]
    if utf16_len(text) > MAX_MESSAGE_LENGTH:
        raise bad_request("message is too long")
    return text, kept


def _strip_entity_start(text: str, entity: dict) -> dict:
    """Move a formatting entity's start past leading spaces/newlines."""
    entity = dict(entity)
    if entity["type"] in _UNTRIMMED_ENTITIES:
        return entity
    units = text.encode("utf-16-le", "surrogatepass")
    while entity["length"] > 0:
        start = 2 * entity["offset"]
        if units[start : start + 2] not in (b" \x00", b"\n\x00"):
            break
        entity["offset"] += 1
        entity["length"] -= 1
    return entity


def validate_reply_markup(markup: Any, *, inline_only: bool = False) -> dict | None:
    """Validate a reply markup object; return it (or None when absent)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _validate_inline_keyboard(markup["inline_keyboard"])
        return markup
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup or markup.get("remove_keyboard") or markup.get("force_reply"):
        return markup
    raise bad_request("can't parse reply keyboard markup JSON object")


def _validate_inline_keyboard(rows: Any) -> None:
    """Check rows of inline buttons."""
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('can\'t parse inline keyboard: field "inline_keyboard" must be an Array')
    count = 0
    for row in rows:
        for button in row:
            _validate_button(button)
            count += 1
    if count > MAX_KEYBOARD_BUTTONS:
        raise bad_request("reply markup is too long")


def _validate_button(button: Any) -> None:
    """One inline button: text plus exactly one valid action."""
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request("can't parse inline keyboard button: Text must be a String")
    if not button["text"]:
        raise bad_request("can't parse inline keyboard button: Text must be non-empty")
    actions = [key for key in _BUTTON_ACTIONS if key in button]
    if not actions:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if len(actions) > 1:
        raise bad_request(
            "can't parse inline keyboard button: exactly one of the optional fields must be used"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        size = len(str(data).encode("utf-8"))
        if not isinstance(data, str) or not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = str(button["url"])
        if not re.match(r"^(https?://[^\s/?#]+|tg://\S+)", url, re.IGNORECASE):
            raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


def validate_inline_results(results: Any) -> list[dict]:
    """Validate ``answerInlineQuery`` results: count, ids, types and message contents."""
    if not isinstance(results, list):
        raise bad_request("can't parse inline query results JSON object")
    if len(results) > MAX_INLINE_RESULTS:
        raise bad_request("RESULTS_TOO_MUCH")
    seen: set[str] = set()
    for result in results:
        if not isinstance(result, dict):
            raise bad_request("can't parse inline query result")
        result_id = str(result.get("id", ""))
        if not 1 <= len(result_id.encode("utf-8")) <= 64:
            raise bad_request("RESULT_ID_INVALID")
        if result_id in seen:
            raise bad_request("RESULT_ID_DUPLICATE")
        seen.add(result_id)
        _validate_inline_result(result)
    return results


def _validate_inline_result(result: dict) -> None:
    """Type-specific checks of one inline result."""
    kind = result.get("type")
    if kind not in _INLINE_RESULT_TYPES:
        raise bad_request(f"can't parse inline query result: unsupported type {kind!r}")
    if kind == "article":
        if not result.get("title"):
            raise bad_request('can\'t parse InlineQueryResultArticle: Field "title" must be set')
        if "input_message_content" not in result:
            raise bad_request("can't parse InlineQueryResultArticle: no input_message_content")
    content = result.get("input_message_content")
    if isinstance(content, dict) and "message_text" in content:
        plain, entities = render_text(
            str(content["message_text"]), content.get("parse_mode"), content.get("entities")
        )
        finalize_text(plain, entities, empty="MESSAGE_EMPTY")
    validate_reply_markup(result.get("reply_markup"), inline_only=True)


def validate_commands(commands: Any) -> list[dict]:
    """Validate ``setMyCommands`` commands."""
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad_request("too many commands specified")
    cleaned = []
    for item in commands:
        if not isinstance(item, dict):
            raise bad_request("can't parse BotCommand")
        command = str(item.get("command", "")).lstrip("/")
        description = str(item.get("description", "")).strip()
        if not _COMMAND.match(command):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(description) <= 256:
            raise bad_request("command description is empty" if not description else "too long")
        cleaned.append({"command": command, "description": description})
    return cleaned


def detect_entities(text: str) -> list[dict]:
    """Entities Telegram's clients attach on their own: commands, mentions, URLs, hashtags."""
    found: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _DETECTORS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(s < end and start < e for s, e in taken):
                continue
            taken.append((start, end))
            found.append((start, end, kind))
    entities = []
    for start, end, kind in sorted(found):
        offset = utf16_len(text[:start])
        entities.append({"type": kind, "offset": offset, "length": utf16_len(text[start:end])})
    return entities


def error_for_status(status: int, retry_after: int) -> ApiError:
    """An injected failure with Telegram's wording for ``status``."""
    if status == 429:
        return ApiError(
            429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
        )
    texts = {
        400: "Bad Request: injected failure",
        401: "Unauthorized",
        403: "Forbidden: bot was blocked by the user",
        404: "Not Found",
        409: "Conflict: injected failure",
        500: "Internal Server Error",
        502: "Bad Gateway",
    }
    return ApiError(status, texts.get(status, f"Error {status}: injected failure"))
