"""Readers for article files: JSON, JSON Lines, HTML, Markdown and plain text.

Every article needs its real URL, since readers get it as the link: JSON records carry it, an
HTML page names it (`<link rel="canonical">` or `og:url`), and a Markdown or text file gives it
in front matter. Where a file has none, the caller may name the site it mirrors (`base_url`,
joined with the file's path under the folder given); otherwise the file is rejected. No link
is ever made up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from .articles import Article, ArticleDefaults, ArticleError, article_from_record

log = logging.getLogger(__name__)

SUFFIXES = (".json", ".jsonl", ".ndjson", ".html", ".htm", ".md", ".markdown", ".txt")
_MAX_FILE_BYTES = 50 * 1024 * 1024
# Front matter keys of .md/.txt files; others (a site generator's `layout:`...) are ignored.
_FRONT_MATTER_KEYS = frozenset(
    ("url", "title", "published_at", "updated_at", "author", "source", "tags", "category", "id")
)
_NO_URL_TEXT = "no url: put 'url: https://...' in front matter, or import with a base URL"
_NO_URL_HTML = "no url: the page has no canonical link or og:url; import with a base URL"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that was skipped, and why."""

    path: str
    line: int | None
    reason: str
    # Files of other types found in a folder: reported, but not failed records.
    skipped: bool = False

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


def _read_json(
    path: Path, text: str, defaults: ArticleDefaults, fallback_url: str | None
) -> Iterator[Item]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield Rejected(str(path), exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})")
        return
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        data = data["articles"]
    if data == []:
        yield Rejected(str(path), None, "no records (an empty list)")
        return
    if isinstance(data, list):
        for i, record in enumerate(data):
            item = _record(path, None, record, defaults)
            if isinstance(item, Rejected):
                item = Rejected(str(path), None, f"item {i}: {item.reason}")
            yield item
    else:
        yield _record(path, None, data, defaults)


def _read_jsonl(
    path: Path, text: str, defaults: ArticleDefaults, fallback_url: str | None
) -> Iterator[Item]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Rejected(str(path), lineno, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        yield _record(path, lineno, record, defaults)


def _front_matter(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """`key: value` lines between two `---` lines at the top, and the lines after them."""
    if not lines or lines[0].strip() != "---":
        return {}, lines
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            break
    else:
        return {}, lines  # no closing line: a rule in the text, not front matter
    fields: dict[str, str] = {}
    for line in lines[1:end]:
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in _FRONT_MATTER_KEYS:
            fields[key] = value.strip().strip("'\"").strip()
    return fields, lines[end + 1 :]


def _read_text(
    path: Path, text: str, defaults: ArticleDefaults, fallback_url: str | None
) -> Iterator[Item]:
    """Optional front matter (url, title, dates...); then the first non-empty line is the
    title, unless the front matter gave one (a Markdown heading mark is dropped); the rest,
    the body."""
    lines = text.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    record: dict[str, Any] = {}
    fields, lines = _front_matter(lines)
    record.update(fields)
    if "tags" in record:
        record["tags"] = record["tags"].strip("[]")
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        yield Rejected(str(path), None, "empty file")
        return
    if not record.get("title"):
        record["title"] = lines.pop(0).strip().lstrip("#").strip()
    record["body"] = "\n".join(lines)
    record["url"] = record.get("url") or fallback_url
    if not record["url"]:
        yield Rejected(str(path), None, _NO_URL_TEXT)
        return
    yield _record(path, None, record, defaults)


def _read_html(
    path: Path, text: str, defaults: ArticleDefaults, fallback_url: str | None
) -> Iterator[Item]:
    from .extract import extract_article

    try:
        record = extract_article(text, url=None)
    except ArticleError as exc:
        yield Rejected(str(path), None, str(exc))
        return
    record["url"] = record.get("url") or fallback_url
    if not record["url"]:
        yield Rejected(str(path), None, _NO_URL_HTML)
        return
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


def read_file(
    path: Path, defaults: ArticleDefaults | None = None, fallback_url: str | None = None
) -> Iterator[Item]:
    """Articles (or rejections) from one file, chosen by its suffix; `fallback_url` is the
    article's URL when an .md, .txt or .html file names none (JSON records carry their own)."""
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
    if not text.strip():
        yield Rejected(str(path), None, "empty file")
        return
    yield from reader(path, text, defaults, fallback_url)


def _supported(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files to import: the given files, and supported files under given folders."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and _supported(p))
        else:
            yield path


def _other_files(folder: Path) -> Rejected | None:
    """One note for the files of other types in a folder (hidden ones aside), or None."""
    others = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file()
        and not _supported(p)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not others:
        return None
    shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
    noun = "file" if len(others) == 1 else "files"
    reason = f"{len(others)} {noun} of other types not read ({shown})"
    return Rejected(str(folder), None, reason, skipped=True)


def join_url(base_url: str, relative: PurePath) -> str:
    """The URL of a file mirrored from a site: the base URL and the file's relative path."""
    return base_url.rstrip("/") + "/" + quote(relative.as_posix())


def read_paths(
    paths: Iterable[Path],
    defaults: ArticleDefaults | None = None,
    base_url: str | None = None,
) -> Iterator[Item]:
    """Articles and rejections from files and folders, in order.

    With `base_url`, an .md, .txt or .html file that names no URL gets `base_url` joined with
    its path under the folder given (or its name, for a file given alone). Files of other
    types in a folder are reported once per folder as `skipped`.
    """
    for given in paths:
        if not given.exists():
            yield Rejected(str(given), None, "no such file")
            continue
        root = given if given.is_dir() else given.parent
        for path in expand_paths([given]):
            fallback = join_url(base_url, path.relative_to(root)) if base_url else None
            yield from read_file(path, defaults, fallback)
        if given.is_dir() and (note := _other_files(given)) is not None:
            yield note
