"""Readers for article files: JSON, JSON Lines, HTML, Markdown and plain text."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .articles import Article, ArticleDefaults, ArticleError, article_from_record

log = logging.getLogger(__name__)

SUFFIXES = (".json", ".jsonl", ".ndjson", ".html", ".htm", ".md", ".markdown", ".txt")
_MAX_FILE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that was skipped, and why."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.reason}"


Item = Article | Rejected


def _decode(path: Path, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise ArticleError("binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArticleError(f"not UTF-8 text (byte {exc.start})") from exc


def _record(path: Path, line: int | None, record: Any, defaults: ArticleDefaults) -> Item:
    try:
        return article_from_record(record, defaults)
    except ArticleError as exc:
        return Rejected(str(path), line, str(exc))


def _read_json(path: Path, text: str, defaults: ArticleDefaults) -> Iterator[Item]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield Rejected(str(path), exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})")
        return
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        data = data["articles"]
    if isinstance(data, list):
        for i, record in enumerate(data):
            item = _record(path, None, record, defaults)
            if isinstance(item, Rejected):
                item = Rejected(str(path), None, f"item {i}: {item.reason}")
            yield item
    else:
        yield _record(path, None, data, defaults)


def _read_jsonl(path: Path, text: str, defaults: ArticleDefaults) -> Iterator[Item]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Rejected(str(path), lineno, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        yield _record(path, lineno, record, defaults)


def _read_text(path: Path, text: str, defaults: ArticleDefaults) -> Iterator[Item]:
    """First non-empty line is the title (a Markdown heading mark is dropped); the rest, body."""
    lines = text.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        yield Rejected(str(path), None, "empty file")
        return
    title = lines[0].strip().lstrip("#").strip()
    body = "\n".join(lines[1:])
    url = path.resolve().as_uri().replace("file://", "https://local.invalid", 1)
    yield _record(path, None, {"url": url, "title": title, "body": body}, defaults)


def _read_html(path: Path, text: str, defaults: ArticleDefaults) -> Iterator[Item]:
    from .extract import extract_article

    try:
        record = extract_article(text, url=None)
    except ArticleError as exc:
        yield Rejected(str(path), None, str(exc))
        return
    if not record.get("url"):
        record["url"] = path.resolve().as_uri().replace("file://", "https://local.invalid", 1)
    yield _record(path, None, record, defaults)


_READERS = {
    ".json": _read_json,
    ".jsonl": _read_jsonl,
    ".ndjson": _read_jsonl,
    ".html": _read_html,
    ".htm": _read_html,
    ".md": _read_text,
    ".markdown": _read_text,
    ".txt": _read_text,
}


def read_file(path: Path, defaults: ArticleDefaults | None = None) -> Iterator[Item]:
    """Articles (or rejections) from one file, chosen by its suffix."""
    defaults = defaults or ArticleDefaults()
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        yield Rejected(str(path), None, f"unsupported file type {path.suffix or '(none)'!r}")
        return
    try:
        size = path.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise ArticleError(f"file too large ({size} bytes)")
        text = _decode(path, path.read_bytes())
    except (OSError, ArticleError) as exc:
        yield Rejected(str(path), None, str(exc))
        return
    yield from reader(path, text, defaults)


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files to import: the given files, and supported files under given folders."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
            )
        else:
            yield path


def read_paths(paths: Iterable[Path], defaults: ArticleDefaults | None = None) -> Iterator[Item]:
    """Articles and rejections from files and folders, in order."""
    for path in expand_paths(paths):
        if not path.exists():
            yield Rejected(str(path), None, "no such file")
            continue
        yield from read_file(path, defaults)
