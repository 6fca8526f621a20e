"""A local folder of article files; a file is read again only when its mtime or size moves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from ..articles import Article
from ..fetch import Fetcher, FetchError
from ..importers import expand_paths, read_paths
from .base import Source, SourceBatch

log = logging.getLogger(__name__)


def folder_path(url: str) -> Path:
    """A folder given as a path or a file:// URL."""
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    return Path(url).expanduser()


@dataclass(slots=True)
class FolderSource(Source):
    """Article files (JSON, JSON Lines, HTML, Markdown, text) under a folder."""

    kind: ClassVar[str] = "folder"
    url: str

    async def probe(self, fetcher: Fetcher) -> None:
        """The file or folder must exist."""
        if not folder_path(self.url).exists():
            raise FetchError(self.url, "no such file or folder")

    async def fetch(
        self, fetcher: Fetcher, cursor: Mapping[str, Any] | None, *, full_listing: bool = False
    ) -> SourceBatch:
        """Articles from new and changed files; `seen_urls` covers every file present."""
        return await asyncio.to_thread(self._scan, dict((cursor or {}).get("files") or {}))

    def _scan(self, old: Mapping[str, Any]) -> SourceBatch:
        root = folder_path(self.url)
        if not root.exists():
            raise FetchError(self.url, "no such file or folder")
        batch = SourceBatch()
        files: dict[str, Any] = {}
        for path in expand_paths([root]):
            try:
                stat = path.stat()
            except OSError as exc:
                batch.reject(str(path), exc.strerror or "unreadable")
                continue
            signature = [stat.st_mtime_ns, stat.st_size]
            previous = old.get(str(path))
            if isinstance(previous, Mapping) and previous.get("sig") == signature:
                files[str(path)] = dict(previous)
                continue
            urls = []
            for item in read_paths([path]):
                if isinstance(item, Article):
                    batch.articles.append(item)
                    urls.append(item.url)
                else:
                    where = item.path if item.line is None else f"{item.path}:{item.line}"
                    batch.reject(where, item.reason)
            files[str(path)] = {"sig": signature, "urls": urls}
        batch.seen_urls = {url for entry in files.values() for url in entry["urls"]}
        batch.cursor = {"files": files}
        return batch
