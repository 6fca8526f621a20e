"""Polite, safe HTTP for sources: timeouts, retries, size and redirect limits, robots.txt, SSRF.

Deadlines: `read_timeout` between bytes, `total_timeout` for one `get` with all its retries,
redirects and waits, `deadline` for everything one Fetcher does (one source's refresh or
probe), so a server trickling a byte at a time costs at most those, never their product.

The private-address guard runs where the socket is opened: the fetcher resolves a host
once, checks every address, and connects to the address it checked (DNS rebinding cannot
slip a second, private answer in between).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import urllib.robotparser
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from .addresses import AddressRefused, guarded_transport, public_addresses
from .decode import decode_body

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "coverbot/0.1 (+https://github.com/coverbot)"
MB = 1024 * 1024
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_ROBOTS_TTL = 3600.0


class FetchError(Exception):
    """A fetch that failed; `reason` is short and meant for admins ("timeout", "HTTP 500")."""

    def __init__(self, url: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


class _Retryable(Exception):
    """An attempt that may succeed if tried again (after `retry_after` seconds if given)."""

    def __init__(self, error: FetchError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """Limits and manners for every request; the defaults suit a news site."""

    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    # One `get`, retries and redirects included.
    total_timeout: float = 120.0
    # Everything one Fetcher does: one source's refresh (all its pages) or one probe.
    deadline: float = 600.0
    retries: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    max_bytes: int = 10 * MB
    max_redirects: int = 5
    per_host: int = 2
    allow_private: bool = False
    trust_env: bool = False


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """A complete response body (or a 304) with the final URL after redirects."""

    url: str
    status: int
    headers: httpx.Headers
    content: bytes

    @property
    def not_modified(self) -> bool:
        """True for a 304 answer to a conditional GET."""
        return self.status == 304

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ("" when absent)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        """The charset declared in Content-Type, if any."""
        match = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", self.headers.get("content-type", ""))
        return match.group(1) if match else None

    def text(self) -> str:
        """The body decoded: BOM, declared charset, in-document declaration, UTF-8, detection."""
        return decode_body(self.content, self.charset)


@dataclass(slots=True)
class ValidatorCache:
    """ETag / Last-Modified per URL, for conditional GETs; persist with `to_json`."""

    entries: dict[str, dict[str, str]] = field(default_factory=dict)

    def request_headers(self, url: str) -> dict[str, str]:
        """If-None-Match / If-Modified-Since for a URL seen before."""
        entry = self.entries.get(url, {})
        names = {"etag": "If-None-Match", "last_modified": "If-Modified-Since"}
        return {names[key]: value for key, value in entry.items() if key in names}

    def remember(self, url: str, headers: httpx.Headers) -> None:
        """Keep the validators of a 200 response (or forget stale ones)."""
        found = {"etag": headers.get("etag"), "last_modified": headers.get("last-modified")}
        entry = {key: value for key, value in found.items() if value}
        if entry:
            self.entries[url] = entry
        else:
            self.entries.pop(url, None)

    def forget(self, url: str) -> None:
        """Drop a URL's validators, so its next GET returns the full body."""
        self.entries.pop(url, None)

    def to_json(self) -> dict[str, dict[str, str]]:
        """A JSON-ready copy."""
        return {url: dict(entry) for url, entry in self.entries.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ValidatorCache:
        """Rebuild from `to_json` output; malformed entries are dropped."""
        entries = {
            str(url): {k: str(v) for k, v in entry.items() if k in ("etag", "last_modified")}
            for url, entry in (data or {}).items()
            if isinstance(entry, Mapping)
        }
        return cls({url: e for url, e in entries.items() if e})


async def check_public_url(url: str, allow_private: bool = False) -> None:
    """Refuse URLs that are not http(s) or whose host resolves to a non-public address.

    A check before the fact, for a clear answer to an admin; the fetcher itself checks the
    address it connects to (`GuardedBackend`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(url, "not an http(s) URL")
    if allow_private:
        return
    try:
        await public_addresses(parts.hostname, parts.port or 443)
    except AddressRefused as exc:
        raise FetchError(url, exc.reason) from exc


# -- the fetcher ----------------------------------------------------------------------------


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _human_size(n: int) -> str:
    return f"{n // MB} MB" if n >= MB else f"{n} bytes"


class Fetcher:
    """An httpx.AsyncClient with manners: use `async with Fetcher(...) as fetcher`."""

    def __init__(
        self,
        settings: FetchSettings | None = None,
        *,
        validators: ValidatorCache | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings or FetchSettings()
        self.validators = validators if validators is not None else ValidatorCache()
        s = self.settings
        if transport is None and not s.allow_private:
            transport = guarded_transport()
        self._deadline = time.monotonic() + s.deadline
        self._client = httpx.AsyncClient(
            headers={"User-Agent": s.user_agent},
            timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout),
            follow_redirects=False,
            trust_env=s.trust_env,
            transport=transport,
        )
        self._host_limits: dict[str, asyncio.Semaphore] = {}
        self._robots: dict[str, tuple[float, urllib.robotparser.RobotFileParser]] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying connection pool."""
        await self._client.aclose()

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        conditional: bool = False,
        robots: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> FetchResponse:
        """GET with retries; raises FetchError.

        `robots`: obey robots.txt (pages, not admin-named feeds). `conditional`: send and keep
        ETag / Last-Modified, so an unchanged resource answers 304 (`not_modified`).
        """
        if params:
            url = str(httpx.URL(url).copy_merge_params(dict(params)))
        s = self.settings
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(url, f"deadline of {s.deadline:g}s for this source passed")
        budget = min(s.total_timeout, remaining)
        ends = time.monotonic() + budget
        try:
            async with asyncio.timeout(budget):
                return await self._attempts(url, conditional, robots, dict(headers or {}), ends)
        except TimeoutError:
            raise FetchError(url, f"timeout (no answer within {budget:g}s)") from None

    async def _attempts(
        self, url: str, conditional: bool, robots: bool, headers: dict[str, str], ends: float
    ) -> FetchResponse:
        """`get`'s retries with backoff, inside its deadline (`ends`, monotonic)."""
        s = self.settings
        for attempt in range(s.retries + 1):
            try:
                return await self._follow(url, conditional, robots, headers)
            except _Retryable as exc:
                delay = min(s.max_backoff, s.backoff * 2**attempt) * random.uniform(0.5, 1.0)
                if exc.retry_after is not None:
                    if exc.retry_after > s.max_retry_after:
                        raise exc.error from None
                    delay = max(delay, exc.retry_after)
                if attempt == s.retries or time.monotonic() + delay >= ends:
                    raise exc.error from None
                log.info("retrying %s in %.2fs: %s", url, delay, exc.error.reason)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _follow(
        self, url: str, conditional: bool, robots: bool, headers: dict[str, str]
    ) -> FetchResponse:
        """One attempt: follow redirects by hand so every hop is checked."""
        seen: list[str] = []
        current = url
        while True:
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchError(current, "not an http(s) URL")
            if robots and not await self.allowed_by_robots(current):
                raise FetchError(current, "blocked by robots.txt")
            hop_headers = dict(headers)
            if conditional:
                hop_headers.update(self.validators.request_headers(current))
            response = await self._request(current, hop_headers)
            if response.status not in (301, 302, 303, 307, 308):
                if response.status == 200 and conditional:
                    self.validators.remember(current, response.headers)
                return response
            seen.append(current)
            location = response.headers.get("location")
            if not location:
                raise FetchError(current, f"HTTP {response.status} without Location")
            current = urljoin(current, location.strip())
            if current in seen:
                raise FetchError(url, "redirect loop")
            if len(seen) > self.settings.max_redirects:
                raise FetchError(url, f"too many redirects (> {self.settings.max_redirects})")

    def _host_limit(self, url: str) -> asyncio.Semaphore:
        host = urlsplit(url).netloc.lower()
        if host not in self._host_limits:
            self._host_limits[host] = asyncio.Semaphore(self.settings.per_host)
        return self._host_limits[host]

    async def _request(self, url: str, headers: dict[str, str]) -> FetchResponse:
        """A single request, streamed under the size limit; errors mapped to FetchError."""
        try:
            async with self._host_limit(url):
                return await self._stream(url, headers)
        except AddressRefused as exc:
            raise FetchError(url, exc.reason) from None
        except httpx.TimeoutException as exc:
            raise _Retryable(FetchError(url, "timeout")) from exc
        except httpx.DecodingError as exc:
            raise FetchError(url, "bad content encoding") from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise FetchError(url, "invalid URL") from exc
        except httpx.TransportError as exc:
            failed = isinstance(exc, httpx.ConnectError)
            reason = "connection failed" if failed else "connection error"
            raise _Retryable(FetchError(url, reason)) from exc

    async def _stream(self, url: str, headers: dict[str, str]) -> FetchResponse:
        limit = self.settings.max_bytes
        too_large = f"too large (> {_human_size(limit)})"
        async with self._client.stream("GET", url, headers=headers) as r:
            status = r.status_code
            if status in _RETRY_STATUSES:
                error = FetchError(url, f"HTTP {status}", status=status)
                wait = _retry_after(r.headers.get("retry-after")) if status in (429, 503) else None
                raise _Retryable(error, wait)
            if status >= 400:
                raise FetchError(url, f"HTTP {status}", status=status)
            declared = r.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise FetchError(url, too_large)
            body = bytearray()
            if status not in (301, 302, 303, 307, 308, 304):
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise FetchError(url, too_large)
            return FetchResponse(url, status, r.headers, bytes(body))

    async def allowed_by_robots(self, url: str) -> bool:
        """Whether robots.txt of the URL's host lets our user agent fetch it."""
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        async with self._robots_locks.setdefault(key, asyncio.Lock()):  # one fetch per host
            cached = self._robots.get(key)
            if cached is None or cached[0] < time.monotonic():
                cached = (time.monotonic() + _ROBOTS_TTL, await self._load_robots(key))
                self._robots[key] = cached
        return cached[1].can_fetch(self.settings.user_agent, url)

    async def _load_robots(self, origin: str) -> urllib.robotparser.RobotFileParser:
        """robots.txt per RFC 9309: 4xx means allow all, unreachable means disallow all."""
        parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
        try:
            response = await self.get(origin + "/robots.txt")
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                parser.allow_all = True  # type: ignore[attr-defined]
            else:
                log.warning(
                    "robots.txt of %s unavailable (%s): not fetching pages", origin, exc.reason
                )
                parser.disallow_all = True  # type: ignore[attr-defined]
            return parser
        parser.parse(decode_body(response.content, response.charset).splitlines())
        return parser
