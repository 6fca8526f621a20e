"""The private-address guard: only public addresses, checked where the socket is opened.

The fetcher resolves a host once, checks every address, and connects to the address it
checked, so DNS rebinding cannot slip a second, private answer in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpcore
import httpx


def _address_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is not a public one, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for label in ("loopback", "unspecified", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{label}"):
            return label.replace("_", "-")
    return None if ip.is_global else "not globally routable"


class AddressRefused(Exception):
    """A host that is not public, or cannot be resolved; `reason` is for admins."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def public_addresses(host: str, port: int) -> list[str]:
    """The addresses of `host`, each checked to be public; AddressRefused otherwise."""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise AddressRefused(f"cannot resolve {host}") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for ip in addresses:
        problem = _address_problem(ip)
        if problem:
            shown = host if str(ip) == host else f"{host} resolves to {ip}"
            raise AddressRefused(f"private address ({shown}: {problem})")
    return list(dict.fromkeys(str(ip) for ip in addresses))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to the public addresses it checked.

    The host is resolved once, here; every address is checked and the socket is opened to
    one of those addresses. TLS still verifies (and sends SNI for) the host name, which
    httpcore takes from the URL, not from the address connected to.
    """

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first reachable checked address of `host`."""
        error: Exception | None = None
        for address in await public_addresses(host, port):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are never a source."""
        raise AddressRefused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        """As the default backend."""
        await self._inner.sleep(seconds)


def guarded_transport() -> httpx.AsyncHTTPTransport:
    """httpx's transport with the address check at connect time (`GuardedBackend`)."""
    transport = httpx.AsyncHTTPTransport()
    # httpx offers no hook for the network backend; rebuild its pool with ours, keeping the
    # TLS context httpx made (certifi roots, verification on).
    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=pool._ssl_context, network_backend=GuardedBackend()
    )
    return transport
