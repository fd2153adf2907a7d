"""Which network addresses partner calls may reach, and an httpx transport that checks them when it connects.

Partner URLs are given by tenants, so a URL must not become a way into the service's own network: unless
ALLOW_HTTP_UPSTREAMS is set, only public addresses are called. A URL is checked when it is stored (its literal
address, `app.schemas.common`), and again here on the address its name resolves to, since DNS can change later.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import httpcore
import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream

IPAddress = IPv4Address | IPv6Address
# host, port -> the addresses the name resolves to (a fake in tests: nothing may leave the machine).
Resolver = Callable[[str, int], Awaitable[list[str]]]

# RFC 6890 special-purpose blocks, multicast and the reserved rest: none of them is a partner on the internet.
NON_PUBLIC_V4 = tuple(
    IPv4Network(block)
    for block in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    )
)  # fmt: skip
NAT64 = IPv6Network("64:ff9b::/96")
NOT_PUBLIC = "a loopback, private, link-local, reserved or multicast address"


def is_public(address: IPAddress) -> bool:
    """Whether an address is on the public internet; an IPv6 address carrying an IPv4 one is judged by both."""
    if isinstance(address, IPv4Address):
        return not any(address in block for block in NON_PUBLIC_V4)
    embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
    if address in NAT64:
        embedded = IPv4Address(int(address) & 0xFFFFFFFF)
    if embedded is not None and not is_public(embedded):
        return False
    special = (
        address.is_private or address.is_reserved or address.is_multicast or address.is_link_local
        or address.is_site_local or address.is_loopback or address.is_unspecified
    )  # fmt: skip
    return address.is_global and not special


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, in any form a resolver accepts (`127.1`, `2130706433`, `0x7f.0.0.1`)."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        pass
    try:
        return IPv4Address(socket.inet_aton(host))
    except (OSError, UnicodeError, ValueError):
        return None


def is_local_name(host: str) -> bool:
    """`localhost` and its subdomains always lead to this machine (RFC 6761)."""
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


class RefusedAddress(httpcore.ConnectError):
    """A partner host that resolves to a non-public address: refused before connecting (httpx.ConnectError)."""


async def resolve(host: str, port: int) -> list[str]:
    """The addresses of a host, as the system resolver gives them."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PublicOnlyBackend(AsyncNetworkBackend):
    """Connects only to public addresses: it resolves the host itself, checks every address, and connects to a
    checked one. TLS still names the original host (httpcore sends the URL's host as SNI and verifies it)."""

    def __init__(self, resolver: Resolver = resolve, inner: AsyncNetworkBackend | None = None) -> None:
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface names it so
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        addresses = await self._checked_addresses(host, port, timeout)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # _checked_addresses never returns an empty list
        raise failure

    async def _checked_addresses(self, host: str, port: int, within: float | None) -> list[str]:
        if is_local_name(host):
            raise RefusedAddress(f"{host} is this machine")
        literal = literal_address(host)
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                found = await asyncio.wait_for(self._resolver(host, port), within)
            except TimeoutError:
                raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
            except OSError as exc:
                raise httpcore.ConnectError(f"name or service not known: {host}") from exc
        addresses = [ipaddress.ip_address(address.split("%")[0]) for address in found]
        # One non-public answer is enough to refuse: a name that mixes them is not a partner's.
        if not addresses or not all(is_public(address) for address in addresses):
            raise RefusedAddress(f"{host} resolves to {NOT_PUBLIC}")
        return [str(address) for address in addresses]

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface names it so
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        raise RefusedAddress("partner calls do not use local sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PartnerTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, connecting through `PublicOnlyBackend` unless non-public addresses are allowed.

    A client given a transport ignores proxies from the environment: the addresses checked are the partner's own.
    """

    def __init__(self, *, allow_private: bool, limits: httpx.Limits, resolver: Resolver = resolve) -> None:
        super().__init__(limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=None if allow_private else PublicOnlyBackend(resolver),
        )
