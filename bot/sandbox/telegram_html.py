"""Parser for the Telegram Bot API ``parse_mode=HTML`` dialect.

This mirrors the behaviour of Telegram's own parser (tdlib ``parse_html``) closely enough
that a message accepted here is accepted by Telegram and vice versa:

* Supported tags: ``b``/``strong``, ``i``/``em``, ``u``/``ins``, ``s``/``strike``/``del``,
  ``tg-spoiler``, ``span class="tg-spoiler"``, ``a href``, ``code`` (optionally
  ``class="language-x"``), ``pre`` (with a nested ``code class="language-x"`` giving a
  ``pre`` entity with ``language``), ``blockquote`` (optionally ``expandable``) and
  ``tg-emoji emoji-id``.  Tag names are case-insensitive; anything else is an
  ``Unsupported start tag`` error, including a bare ``<`` (``a < b`` fails with
  ``Unsupported start tag ""``).
* Only ``&lt;``, ``&gt;``, ``&amp;``, ``&quot;`` and numeric ``&#NN;``/``&#xNN;`` references
  are decoded; the trailing ``;`` is optional.  Like Telegram, an ``&`` that does not start
  one of these (``AT&T``, ``&nbsp;``, ``& b``) is kept literally instead of being an error.
* Tags must be closed and properly nested; ``</>`` closes the innermost open tag.  End tag
  names are compared case-insensitively (a small leniency over Telegram).
* An ``a`` whose URL is not a valid link produces no entity (Telegram drops it silently);
  ``tg://user?id=N`` gives a ``text_mention``.  Empty entities are dropped.

Entity offsets and lengths are in UTF-16 code units, as in the Bot API.  Error messages use
Telegram's wording; byte offsets count UTF-8 bytes of the input.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_SPACES = frozenset(" \t\r\n\v\f")
_TAGS = frozenset(
    {"a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler", "tg-emoji"}
    | {"span", "pre", "code", "blockquote"}
)
_SIMPLE_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
_USER_LINK = re.compile(r"^tg://user\?id=(\d{1,18})$", re.IGNORECASE)
_URL_SCHEMES = ("http://", "https://", "tg://", "ton://")
_HOST = re.compile(r"^[\w-]+(\.[\w-]+)+(:\d+)?([/?#].*)?$")


class TelegramHtmlError(ValueError):
    """Raised when text is not valid Telegram HTML; the message matches Telegram's."""

    def __init__(self, detail: str) -> None:
        """Store the bare reason (e.g. ``Unsupported start tag "x" at byte offset 0``)."""
        super().__init__(f"Can't parse entities: {detail}")
        self.detail = detail


def utf16_len(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


@dataclass
class _OpenTag:
    """A start tag waiting for its end tag."""

    name: str
    argument: str
    offset: int
    out_index: int
    expandable: bool = False


class _Parser:
    """Single-use state machine over one input string."""

    def __init__(self, text: str) -> None:
        """Prepare to parse ``text``."""
        self.text = text
        self.n = len(text)
        self.out: list[str] = []
        self.u16 = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[dict] = []

    def at(self, i: int) -> str:
        """Character at ``i``, or ``""`` past the end (tdlib's NUL terminator)."""
        return self.text[i] if i < self.n else ""

    def is_space(self, i: int) -> bool:
        """Whether position ``i`` is whitespace or the end of input."""
        return i >= self.n or self.text[i] in _SPACES

    def byte_offset(self, i: int) -> int:
        """UTF-8 byte offset of character index ``i``."""
        return len(self.text[:i].encode("utf-8", "surrogatepass"))

    def error(self, detail: str) -> TelegramHtmlError:
        """Build an error with Telegram's wording."""
        return TelegramHtmlError(detail)

    def emit(self, chunk: str) -> None:
        """Append decoded text and advance the UTF-16 offset."""
        self.out.append(chunk)
        self.u16 += utf16_len(chunk)

    def run(self) -> tuple[str, list[dict]]:
        """Parse the whole input."""
        i = 0
        while i < self.n:
            ch = self.text[i]
            if ch == "&":
                decoded, end = decode_entity(self.text, i)
                if decoded is not None:
                    self.emit(decoded)
                    i = end
                    continue
            if ch != "<":
                self.emit(ch)
                i += 1
                continue
            i = self.end_tag(i) if self.at(i + 1) == "/" else self.start_tag(i)
        if self.stack:
            name = self.stack[-1].name
            raise self.error(f'Can\'t find end tag corresponding to start tag "{name}"')
        plain = "".join(self.out)
        if any(0xD800 <= ord(c) <= 0xDFFF for c in plain):
            raise self.error(
                "Text contains invalid Unicode characters after decoding HTML entities, "
                "check for unmatched surrogate code units"
            )
        return plain, _finish_entities(self.entities)

    def start_tag(self, begin: int) -> int:
        """Parse ``<name attr=...>`` at ``begin``; return the index after ``>``."""
        i = begin + 1
        while not self.is_space(i) and self.text[i] != ">":
            i += 1
        if i >= self.n:
            raise self.error(f"Unclosed start tag at byte offset {self.byte_offset(begin)}")
        name = self.text[begin + 1 : i].lower()
        if name not in _TAGS:
            raise self.error(
                f'Unsupported start tag "{name}" at byte offset {self.byte_offset(begin)}'
            )
        tag = _OpenTag(name, "", self.u16, len(self.out))
        while self.at(i) != ">":
            i = self.attribute(begin, i, tag)
        if name == "span" and tag.argument != "spoiler":
            raise self.error(
                f'Tag "span" must have class "tg-spoiler" at byte offset {self.byte_offset(begin)}'
            )
        self.stack.append(tag)
        return i + 1

    def attribute(self, begin: int, i: int, tag: _OpenTag) -> int:
        """Parse one attribute of ``tag`` starting near ``i``; return the new index."""
        while i < self.n and self.text[i] in _SPACES:
            i += 1
        if self.at(i) == ">":
            return i
        name_begin = i
        while not self.is_space(i) and self.text[i] not in "=>":
            i += 1
        attr = self.text[name_begin:i]
        where = f'the tag "{tag.name}" at byte offset {self.byte_offset(begin)}'
        if not attr:
            raise self.error(f"Empty attribute name in {where}")
        while i < self.n and self.text[i] in _SPACES:
            i += 1
        if self.at(i) != "=":
            if tag.name == "blockquote" and attr == "expandable":
                tag.expandable = True
                return i
            raise self.error(f"Expected equal sign in declaration of an attribute of {where}")
        i += 1
        while i < self.n and self.text[i] in _SPACES:
            i += 1
        if i >= self.n:
            raise self.error(f"Unclosed start tag {where}")
        value, i = self.attribute_value(i)
        if i >= self.n:
            raise self.error(f"Unclosed start tag at byte offset {self.byte_offset(begin)}")
        _apply_attribute(tag, attr, value)
        return i

    def attribute_value(self, i: int) -> tuple[str, int]:
        """Parse a quoted string or a bare name token at ``i``."""
        quote = self.text[i]
        if quote not in "'\"":
            token_begin = i
            while i < self.n and self.text[i] in _TOKEN_CHARS:
                i += 1
            if not self.is_space(i) and self.text[i] != ">":
                offset = self.byte_offset(token_begin)
                raise self.error(f"Unexpected end of name token at byte offset {offset}")
            return self.text[token_begin:i].lower(), i
        i += 1
        chunks: list[str] = []
        while i < self.n and self.text[i] != quote:
            if self.text[i] == "&":
                decoded, end = decode_entity(self.text, i)
                if decoded is not None:
                    chunks.append(decoded)
                    i = end
                    continue
            chunks.append(self.text[i])
            i += 1
        if i < self.n:
            i += 1
        return "".join(chunks), i

    def end_tag(self, begin: int) -> int:
        """Parse ``</name>`` at ``begin``, emit the entity; return the index after ``>``."""
        if not self.stack:
            raise self.error(f"Unexpected end tag at byte offset {self.byte_offset(begin)}")
        i = begin + 2
        while not self.is_space(i) and self.text[i] != ">":
            i += 1
        end_name = self.text[begin + 2 : i]
        while i < self.n and self.text[i] in _SPACES:
            i += 1
        if self.at(i) != ">":
            raise self.error(f"Unclosed end tag at byte offset {self.byte_offset(begin)}")
        tag = self.stack.pop()
        if end_name and end_name.lower() != tag.name:
            raise self.error(
                f"Unmatched end tag at byte offset {self.byte_offset(begin)}, "
                f'expected "</{tag.name}>", found "</{end_name}>"'
            )
        if self.u16 > tag.offset:
            self.close(tag)
        return i + 1

    def close(self, tag: _OpenTag) -> None:
        """Turn a closed, non-empty tag into an entity."""
        offset, length = tag.offset, self.u16 - tag.offset
        base = {"offset": offset, "length": length}
        last = self.entities[-1] if self.entities else None
        same_span = last is not None and (last["offset"], last["length"]) == (offset, length)
        if tag.name in _SIMPLE_TYPES:
            self.entities.append({"type": _SIMPLE_TYPES[tag.name], **base})
        elif tag.name == "a":
            url = tag.argument or "".join(self.out[tag.out_index :])
            entity = _link_entity(url)
            if entity is not None:
                self.entities.append({**entity, **base})
        elif tag.name == "pre":
            if same_span and last is not None and last["type"] == "code" and last.get("language"):
                last["type"] = "pre"
            else:
                self.entities.append({"type": "pre", **base})
        elif tag.name == "code":
            if same_span and last is not None and last["type"] == "pre" and tag.argument:
                last["language"] = tag.argument
            else:
                self.entities.append({"type": "code", **base, "language": tag.argument})
        elif tag.name == "tg-emoji":
            if not tag.argument:
                raise TelegramHtmlError("Invalid custom emoji identifier specified")
            self.entities.append({"type": "custom_emoji", **base, "custom_emoji_id": tag.argument})
        else:
            kind = "expandable_blockquote" if tag.expandable else "blockquote"
            self.entities.append({"type": kind, **base})


def _apply_attribute(tag: _OpenTag, attr: str, value: str) -> None:
    """Record the attributes that carry meaning; others are ignored like Telegram does."""
    if tag.name == "a" and attr == "href":
        tag.argument = value
    elif tag.name == "code" and attr == "class" and value.startswith("language-"):
        tag.argument = value[len("language-") :]
    elif tag.name == "span" and attr == "class" and value.startswith("tg-"):
        tag.argument = value[len("tg-") :]
    elif tag.name == "tg-emoji" and attr == "emoji-id":
        if not value.isascii() or not value.isdigit() or not 0 < int(value) < 2**63:
            raise TelegramHtmlError("Invalid custom emoji identifier specified")
        tag.argument = value


def _link_entity(url: str) -> dict | None:
    """Entity fields for an ``<a>`` target, or None when Telegram would drop the link."""
    url = url.strip()
    mention = _USER_LINK.match(url)
    if mention:
        user = {"id": int(mention.group(1)), "is_bot": False, "first_name": "User"}
        return {"type": "text_mention", "user": user}
    normalized = normalize_url(url)
    return None if normalized is None else {"type": "text_link", "url": normalized}


def normalize_url(url: str) -> str | None:
    """Return the URL Telegram would store for a link target, or None if it is not a link."""
    if not url or any(c in _SPACES for c in url):
        return None
    lowered = url.lower()
    if lowered.startswith(_URL_SCHEMES):
        rest = url.split("://", 1)[1]
        return url if rest else None
    if "://" in url or not _HOST.match(url):
        return None
    return "http://" + url


def _finish_entities(entities: list[dict]) -> list[dict]:
    """Drop code inside pre, strip empty languages and sort like Telegram."""
    pres = [(e["offset"], e["offset"] + e["length"]) for e in entities if e["type"] == "pre"]
    result = []
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
            start, end = entity["offset"], entity["offset"] + entity["length"]
            if any(ps <= start and end <= pe for ps, pe in pres):
                continue
        result.append(entity)
    result.sort(key=lambda e: (e["offset"], -e["length"]))
    return result


def decode_entity(text: str, pos: int) -> tuple[str | None, int]:
    """Decode a character reference at ``text[pos] == '&'``; (None, pos) if there is none."""
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        hexadecimal = end < n and text[end] == "x"
        if hexadecimal:
            end += 1
        digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
        start = end
        while end < n and text[end] in digits:
            end += 1
        number = int(text[start:end], 16 if hexadecimal else 10) if end > start else 0
        if number == 0 or number >= 0x10FFFF or end - pos >= 10:
            return None, pos
        decoded = chr(number)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(text[pos + 1 : end])
        if named is None:
            return None, pos
        decoded = named
    if end < n and text[end] == ";":
        end += 1
    return decoded, end


def parse_telegram_html(text: str) -> tuple[str, list[dict]]:
    """Parse Telegram HTML into (plain text, Bot API entity dicts); raise TelegramHtmlError."""
    return _Parser(text).run()
