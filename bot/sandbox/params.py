"""Request parameters and Bot API errors.

PTB 22 posts ``application/x-www-form-urlencoded`` (``multipart/form-data`` when uploading)
where string values are sent as-is and every other value (ints, bools, dicts, lists) is
JSON-encoded: ``chat_id=42``, ``disable_notification=true``, ``reply_markup={"inline_...``.
Other clients post a JSON body with native types.  :class:`Params` reads a field with the
type the method expects, whichever way it arrived.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)

_JSON_ERRORS = {
    "reply_markup": "can't parse reply keyboard markup JSON object",
    "entities": "can't parse entities JSON object",
    "results": "can't parse inline query results JSON object",
    "commands": "can't parse commands JSON object",
}


class ApiError(Exception):
    """A Bot API error answer: HTTP status, description and optional parameters."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        """Build the error; ``description`` is the full Telegram text."""
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram would send."""
        data: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            data["parameters"] = self.parameters
        return data


def bad_request(message: str) -> ApiError:
    """400 ``Bad Request: <message>``."""
    return ApiError(400, f"Bad Request: {message}")


def forbidden(message: str) -> ApiError:
    """403 ``Forbidden: <message>``."""
    return ApiError(403, f"Forbidden: {message}")


def too_many_requests(retry_after: int) -> ApiError:
    """429 flood-control answer with ``parameters.retry_after``."""
    return ApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


class Params:
    """Typed access to the fields of one request."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Wrap the merged query/body fields."""
        self.data = data

    def has(self, name: str) -> bool:
        """Whether the field is present and not empty."""
        return self.data.get(name) not in (None, "")

    def string(self, name: str, default: str | None = None) -> str | None:
        """Field as text (numbers are converted)."""
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            return json.dumps(value)
        return str(value)

    def integer(self, name: str, default: int | None = None) -> int | None:
        """Field as an integer; 400 if it is not one."""
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise bad_request(f'field "{name}" must be a valid Number') from None

    def number(self, name: str, default: float = 0.0) -> float:
        """Field as a number; 400 if it is not one."""
        value = self.data.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be a valid Number') from None

    def flag(self, name: str, default: bool = False) -> bool:
        """Field as a boolean (``true``/``false``/``1``/``0``)."""
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return bool(value)
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise bad_request(f'field "{name}" must be of type Boolean')

    def obj(self, name: str, default: Any = None) -> Any:
        """Field that is a JSON object or array, decoding it if it arrived as a string."""
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(_JSON_ERRORS.get(name, f"can't parse {name} JSON object")) from None

    def chat_id(self, name: str = "chat_id") -> int | str:
        """``chat_id`` as an int or an ``@username``; 400 if missing or malformed."""
        value = self.data.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if text.startswith("@"):
            return text
        try:
            return int(text)
        except ValueError:
            raise bad_request("chat not found") from None

    def require_str(self, name: str, empty_message: str) -> str:
        """Field as text; 400 ``empty_message`` if missing."""
        value = self.string(name)
        if value is None or value == "":
            raise bad_request(empty_message)
        return value

    def require_int(self, name: str, empty_message: str) -> int:
        """Field as an int; 400 ``empty_message`` if missing."""
        value = self.integer(name)
        if value is None:
            raise bad_request(empty_message)
        return value


async def read_params(request: web.Request) -> Params:
    """Merge query string and body (JSON, urlencoded or multipart) into :class:`Params`."""
    data: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad_request("can't parse JSON encoded request") from None
            if not isinstance(body, dict):
                raise bad_request("JSON object expected")
            data.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    data[key] = {"filename": value.filename, "content_type": value.content_type}
                else:
                    data[key] = value
    return Params(data)
