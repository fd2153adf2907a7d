"""Which addresses partner calls may reach: the rule for stored URLs, and the check when connecting.

Nothing here leaves the machine: names are resolved by fake resolvers, and the only connections made go to a
loopback server of the test's own.
"""

import asyncio
import re
from collections.abc import AsyncIterator, Iterable
from ipaddress import IPv4Address, ip_address
from typing import Any

import httpcore
import httpx
import pytest

from app.clients.addresses import (
    NON_PUBLIC_V4,
    PartnerTransport,
    PublicOnlyBackend,
    RefusedAddress,
    is_public,
    literal_address,
)
from app.schemas.common import partner_url_pattern, partner_url_problem

NOT_PUBLIC = [
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1",  # noqa: S104
    "198.18.0.1", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::7f00:1", "2002:7f00:1::1", "2001:db8::1", "::7f00:1",
]  # fmt: skip
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "100.128.0.1", "172.32.0.1", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public(ip_address(address))


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f.0.0.1", "127.0.0.1"), ("0x7f000001", "127.0.0.1"),
     ("017700000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("[::1]", "::1"), ("acme.ilucca.net", None),
     ("1e100.net", None)],
)  # fmt: skip
def test_literal_addresses_in_every_form_a_resolver_accepts(host: str, expected: str | None) -> None:
    found = literal_address(host)
    assert (str(found) if found else None) == expected


REFUSED = [
    "https://169.254.169.254/latest/meta-data", "https://127.0.0.1:6379", "https://10.0.0.1", "https://[::1]:5432",
    "https://[::ffff:127.0.0.1]", "https://[::ffff:a9fe:a9fe]", "https://[fe80::1]", "https://2130706433",
    "https://0x7f.1", "https://0177.0.0.1", "https://127.1", "https://0", "https://localhost", "https://LOCALHOST:8443",
    "https://api.localhost", "https://192.168.0.10/acme", "https://172.20.1.1", "https://100.100.100.200",
    "https://224.0.0.251", "https://0.0.0.0:8000", "http://acme.ilucca.net", "https://zelda:hunter2pass@internal.corp",
    "https://zelda@acme.ilucca.net", "https://:hunter2pass@acme.ilucca.net", "https://acme.ilucca.net?x=1",
    "https://acme.ilucca.net#x", "https://acme.ilucca.net:0", "https://acme.ilucca.net:65536", "ftp://acme.ilucca.net",
    "https://[2606:4700::1111]", "https://010.8.8.8",
]  # fmt: skip
ACCEPTED = [
    "https://acme.ilucca.net", "https://api.taleez.com/0", "https://acme.ilucca.net:8443/path/x", "https://8.8.8.8",
    "https://localhost.example.com", "https://xn--bcher-kva.example", "https://a.b-c.d",
]  # fmt: skip


@pytest.mark.parametrize("url", REFUSED)
def test_refused_partner_urls_say_why_without_repeating_them(url: str) -> None:
    problem = partner_url_problem(url, allow_http=False)
    assert problem is not None
    assert "zelda" not in problem and "hunter2" not in problem and url not in problem
    assert re.fullmatch(partner_url_pattern(False), url) is None  # the OpenAPI pattern says the same


@pytest.mark.parametrize("url", ACCEPTED)
def test_public_partner_urls_are_accepted(url: str) -> None:
    assert partner_url_problem(url, allow_http=False) is None
    assert re.fullmatch(partner_url_pattern(False), url) is not None


def test_sandboxes_may_use_http_and_loopback_but_never_credentials() -> None:
    for url in ("http://127.0.0.1:8100/acme", "http://localhost:8100", "https://10.0.0.1", "http://sandbox"):
        assert partner_url_problem(url, allow_http=True) is None
    assert "credentials" in (partner_url_problem("http://zelda:hunter2pass@127.0.0.1", allow_http=True) or "")


def _edges(blocks: Iterable[Any]) -> Iterable[IPv4Address]:
    for block in blocks:
        for address in (block.network_address, block.broadcast_address):
            yield address
            for step in (-1, 1):
                if 0 <= int(address) + step <= 0xFFFFFFFF:
                    yield address + step


def test_the_pattern_and_the_server_agree_at_every_block_edge() -> None:
    pattern = partner_url_pattern(False)
    for address in _edges(NON_PUBLIC_V4):
        url = f"https://{address}"
        assert (re.fullmatch(pattern, url) is not None) is is_public(address), url
        assert (partner_url_problem(url, False) is None) is is_public(address), url


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Connects wherever it is told to, but to the test's loopback server; records what it was asked."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.asked: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.asked.append(host)
        return await httpcore.AnyIOBackend().connect_tcp("127.0.0.1", self.port, timeout=timeout)


def resolver(table: dict[str, list[str]]) -> Any:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return table[host]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


@pytest.fixture
async def loopback_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A tiny HTTP server on 127.0.0.1 that records each request's head."""
    heads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], heads


@pytest.mark.parametrize(
    ("host", "answers"),
    [("partner.test", ["127.0.0.1"]), ("partner.test", ["10.1.2.3"]), ("partner.test", ["93.184.216.34", "10.0.0.1"]),
     ("partner.test", ["::ffff:169.254.169.254"]), ("localhost", []), ("api.localhost", []), ("127.0.0.1", []),
     ("2130706433", [])],
)  # fmt: skip
async def test_a_host_leading_to_a_non_public_address_is_refused_before_connecting(
    host: str, answers: list[str]
) -> None:
    inner = RecordingBackend(port=9)
    backend = PublicOnlyBackend(resolver({host: answers}), inner=inner)
    with pytest.raises(RefusedAddress):
        await backend.connect_tcp(host, 443, timeout=1)
    assert inner.asked == []


async def test_the_checked_address_is_connected_with_the_original_host(
    loopback_server: tuple[int, list[bytes]],
) -> None:
    port, heads = loopback_server
    inner = RecordingBackend(port)
    backend = PublicOnlyBackend(resolver({"partner.test": ["93.184.216.34"]}), inner=inner)
    async with httpcore.AsyncConnectionPool(network_backend=backend) as pool:
        response = await pool.request("GET", f"http://partner.test:{port}/acme")
    assert response.status == 200
    assert inner.asked == ["93.184.216.34"]
    assert f"Host: partner.test:{port}".encode() in heads[0]


class TlsRecorder(httpcore.AsyncNetworkStream):
    def __init__(self) -> None:
        self.server_hostname: str | None = None

    async def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> httpcore.AsyncNetworkStream:
        self.server_hostname = server_hostname
        raise httpcore.ConnectError("the test stops here")


async def test_tls_still_names_the_original_host() -> None:
    stream = TlsRecorder()

    class Fake(httpcore.AsyncNetworkBackend):
        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
            local_address: str | None = None,
            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
        ) -> httpcore.AsyncNetworkStream:
            assert host == "93.184.216.34"
            return stream

    backend = PublicOnlyBackend(resolver({"partner.test": ["93.184.216.34"]}), inner=Fake())
    async with httpcore.AsyncConnectionPool(network_backend=backend) as pool:
        with pytest.raises(httpcore.ConnectError):
            await pool.request("GET", "https://partner.test/acme")
    assert stream.server_hostname == "partner.test"


async def test_the_partner_transport_refuses_loopback_unless_allowed(loopback_server: tuple[int, list[bytes]]) -> None:
    port, heads = loopback_server
    limits = httpx.Limits(max_connections=5)
    fake = resolver({"partner.test": ["127.0.0.1"]})
    async with httpx.AsyncClient(transport=PartnerTransport(allow_private=False, limits=limits, resolver=fake)) as http:
        for url in (f"http://localhost:{port}/", f"http://127.0.0.1:{port}/", f"http://partner.test:{port}/"):
            with pytest.raises(httpx.ConnectError) as caught:
                await http.get(url)
            assert isinstance(caught.value.__cause__, RefusedAddress)
    assert heads == []  # nothing reached the server
    async with httpx.AsyncClient(transport=PartnerTransport(allow_private=True, limits=limits)) as http:
        assert (await http.get(f"http://localhost:{port}/")).status_code == 200
