"""Response bodies to text: BOM, declared charset, in-document declaration, UTF-8, detection."""

from __future__ import annotations

import codecs
import re

_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_XML_ENCODING_RE = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([\w.:-]+)["']""")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _codec(name: str | None) -> str | None:
    """A Python codec name for a declared charset; Latin-1 labels mean windows-1252 (WHATWG)."""
    if not name:
        return None
    try:
        codec = codecs.lookup(name.strip()).name
    except LookupError:
        return None
    return "cp1252" if codec in ("latin-1", "iso8859-1", "ascii") else codec


def decode_body(data: bytes, declared: str | None = None) -> str:
    """Bytes to text: BOM, declared charset, <meta>/<?xml?> declaration, UTF-8, else detect."""
    for bom, bom_codec in _BOMS:
        if data.startswith(bom):
            return data.decode(bom_codec, "replace")
    head = data[:4096]
    match = _XML_ENCODING_RE.match(head) or _CHARSET_RE.search(head)
    candidates: list[str | None] = [
        _codec(declared),
        _codec(match.group(1).decode("ascii") if match else None),
        "utf-8",
    ]
    for codec in candidates:
        if codec:
            try:
                return data.decode(codec)
            except (UnicodeDecodeError, LookupError):
                continue
    return _detect(data)


def _detect(data: bytes) -> str:
    """Guess the encoding; windows-1252 (the web's default) unless it reads worse than another.

    charset_normalizer alone tells Latin code pages apart badly (it reads Portuguese as Baltic
    cp1257), so any guess no less "chaotic" than windows-1252 loses to it.
    """
    import charset_normalizer

    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        return data.decode("utf-8", "replace")
    best = min(m.chaos for m in matches)
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= best:
            return str(match)
    return str(matches[0])
