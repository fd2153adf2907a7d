"""PartnerHTTP: retries, Retry-After, errors, URL joining and the shared rate limit (partner via respx)."""

import asyncio
import os
import pickle
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx
from redis.asyncio import Redis

from app.clients.access import AccountAccess
from app.clients.addresses import PartnerTransport, RefusedAddress
from app.clients.http import (
    FailureStreak,
    PartnerAuthFailed,
    PartnerHTTP,
    PartnerRejected,
    PartnerUnavailable,
    RateLimit,
    RetryPolicy,
    host_of,
    join_url,
    parse_retry_after,
    partner_message,
    window_key,
)
from app.clients.ratelimit import SlidingWindowLimiter
from app.config import Settings
from app.services.context import Services

BASE = "http://partner.test/acme"
FAST = RetryPolicy(base_seconds=0.01, max_seconds=0.05, in_call_seconds=1.0)
SECRET = "s3cr3t-api-key-value"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(os.environ["REDIS_URL"])
    yield client
    await client.aclose()


def partner(
    http: httpx.AsyncClient,
    retry: RetryPolicy = FAST,
    limiter: SlidingWindowLimiter | None = None,
    access: AccountAccess | None = None,
) -> PartnerHTTP:
    return PartnerHTTP(
        http,
        partner="acme",
        base_url=BASE,
        headers={"Authorization": f"Key {SECRET}"},
        retry=retry,
        limiter=limiter,
        access=access,
        rate_limit=RateLimit(requests=100, per_seconds=60) if limiter else None,
    )


@pytest.fixture
async def account(redis: Redis) -> AsyncIterator[str]:
    """A partner account of the test's own; its windows and proofs are deleted after the test."""
    name = f"acme-{uuid.uuid4().hex}.test"
    yield name
    async for key in redis.scan_iter(match=f"*{name}*"):
        await redis.delete(key)


@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        ("http://host/acme", "/api/v3/users", "http://host/acme/api/v3/users"),
        ("http://host/acme/", "api/v3/users", "http://host/acme/api/v3/users"),
        ("https://host", "/api/v3/users", "https://host/api/v3/users"),
        ("https://host/", "/x", "https://host/x"),
    ],
)
def test_join_url_keeps_the_path_prefix(base: str, path: str, expected: str) -> None:
    assert join_url(base, path) == expected


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 0.5 ", now) == 0.5
    assert parse_retry_after("-3", now) == 0.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("inf", now) is None


@respx.mock
async def test_retries_then_succeeds_on_the_prefixed_url(http: httpx.AsyncClient) -> None:
    route = respx.get(f"{BASE}/items", params={"q": "1"}).mock(
        side_effect=[
            httpx.Response(503),
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.Response(429),
            httpx.Response(408),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    response = await partner(http).request("GET", "/items", params={"q": "1"})
    assert response.json() == {"ok": True}
    assert route.call_count == 6
    assert route.calls.last.request.headers["Authorization"] == f"Key {SECRET}"


@respx.mock
async def test_retry_after_seconds_is_honoured(http: httpx.AsyncClient) -> None:
    respx.get(f"{BASE}/items").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "0.3"}), httpx.Response(200)]
    )
    started = time.monotonic()
    await partner(http).request("GET", "/items")
    assert time.monotonic() - started >= 0.3


@respx.mock
async def test_retry_after_date_beyond_the_budget_gives_up_at_once(http: httpx.AsyncClient) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    route = respx.post(f"{BASE}/items").mock(return_value=httpx.Response(503, headers={"Retry-After": later}))
    with pytest.raises(PartnerUnavailable) as caught:
        await partner(http).request("POST", "/items", json={"a": 1})
    assert route.call_count == 1
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 120
    assert "HTTP 503" in caught.value.message


@respx.mock
async def test_exhausted_budget_raises_unavailable(http: httpx.AsyncClient) -> None:
    route = respx.get(f"{BASE}/items").mock(side_effect=httpx.ConnectTimeout("slow"))
    policy = RetryPolicy(base_seconds=0.01, max_seconds=0.04, in_call_seconds=0.1)
    with pytest.raises(PartnerUnavailable) as caught:
        await partner(http, policy).request("GET", "/items")
    # Waits 0.01, 0.02, 0.04, 0.04 fit in 0.1 s; the next would not.
    assert route.call_count == 4
    assert caught.value.partner == "acme"
    assert caught.value.retry_after is None
    assert str(caught.value) == "Acme at partner.test did not answer (timed out)"


@respx.mock
async def test_bad_request_is_final_with_the_partner_message(http: httpx.AsyncClient) -> None:
    body = {"Status": 400, "Message": f"Login already used (key {SECRET})"}
    route = respx.post(f"{BASE}/users").mock(return_value=httpx.Response(400, json=body))
    with pytest.raises(PartnerRejected) as caught:
        await partner(http).request("POST", "/users", json={})
    assert route.call_count == 1
    assert caught.value.status == 400
    assert "Login already used" in caught.value.message
    assert SECRET not in caught.value.message
    assert not isinstance(caught.value, PartnerAuthFailed)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(404, json={"error": {"message": "No such user"}}), "No such user"),
        (httpx.Response(422, json={"detail": "bad field"}), "bad field"),
        (httpx.Response(409, text="  conflict\n here "), "conflict here"),
        (httpx.Response(404), "Not Found"),
    ],
)
async def test_rejection_message_is_read_from_the_body(
    http: httpx.AsyncClient, response: httpx.Response, expected: str
) -> None:
    with respx.mock:
        respx.get(f"{BASE}/x").mock(return_value=response)
        with pytest.raises(PartnerRejected) as caught:
            await partner(http).request("GET", "/x")
    assert caught.value.message.endswith(expected)


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failure(http: httpx.AsyncClient, status: int) -> None:
    with respx.mock:
        respx.get(f"{BASE}/x").mock(return_value=httpx.Response(status, json={"message": "bad key"}))
        with pytest.raises(PartnerAuthFailed) as caught:
            await partner(http).request("GET", "/x")
    assert caught.value.status == status
    assert "bad key" in caught.value.message


@respx.mock
async def test_rate_limit_is_taken_before_every_attempt(http: httpx.AsyncClient, redis: Redis, account: str) -> None:
    respx.get(f"{BASE}/x").mock(side_effect=[httpx.Response(500), httpx.Response(502), httpx.Response(200)])
    access = AccountAccess(redis, "acme", account, SECRET)
    await access.accepted()
    await partner(http, limiter=SlidingWindowLimiter(redis), access=access).request("GET", "/x")
    assert await redis.zcard(window_key("acme", account)) == 3


@respx.mock
async def test_a_credential_counts_in_the_accounts_window_only_once_the_account_accepted_it(
    http: httpx.AsyncClient, redis: Redis, account: str
) -> None:
    route = respx.get(f"{BASE}/x")
    limiter, shared = SlidingWindowLimiter(redis), window_key("acme", account)
    route.mock(return_value=httpx.Response(401))
    with pytest.raises(PartnerAuthFailed):
        await partner(http, limiter=limiter, access=AccountAccess(redis, "acme", account, SECRET)).request("GET", "/x")
    assert await redis.zcard(shared) == 0  # a refused credential's call is its own
    route.mock(return_value=httpx.Response(200))
    client = partner(http, limiter=limiter, access=AccountAccess(redis, "acme", account, SECRET))
    await client.request("GET", "/x")
    assert await redis.zcard(shared) == 1  # the call that proved it, counted once it did
    await client.request("GET", "/x")
    assert await redis.zcard(shared) == 2
    # Every client of that credential, in any process, now counts in the account's window.
    other = AccountAccess(redis, "acme", account, SECRET)
    assert await other.proven() and await other.scope() == account
    route.mock(return_value=httpx.Response(403))
    with pytest.raises(PartnerAuthFailed):
        await client.request("GET", "/x")
    # Refused since: forgotten, everywhere.
    assert not await AccountAccess(redis, "acme", account, SECRET).proven()
    assert not await AccountAccess(redis, "acme", account, "another-secret").proven()
    own = [key async for key in redis.scan_iter(match=f"ratelimit:acme:{account}#*")]
    assert len(own) == 1 and await redis.zcard(own[0]) == 2  # the 401 and the call that proved it


@respx.mock
async def test_different_keys_the_account_accepted_share_its_one_window(
    http: httpx.AsyncClient, redis: Redis, account: str
) -> None:
    """Two tenants with keys of their own for one account: one budget for both (contract section 4)."""
    respx.get(f"{BASE}/x").mock(return_value=httpx.Response(200))
    limiter = SlidingWindowLimiter(redis)
    for secret in ("first-tenants-key", "second-tenants-key"):
        client = partner(http, limiter=limiter, access=AccountAccess(redis, "acme", account, secret))
        await client.request("GET", "/x")
        await client.request("GET", "/x")
    assert await redis.zcard(window_key("acme", account)) == 4


@respx.mock
async def test_a_call_that_may_not_wait_for_the_budget_says_when_to_try_again(
    http: httpx.AsyncClient, redis: Redis, account: str
) -> None:
    route = respx.get(f"{BASE}/x").mock(return_value=httpx.Response(200))
    limiter, access = SlidingWindowLimiter(redis), AccountAccess(redis, "acme", account, SECRET)
    await access.accepted()
    client = partner(http, retry=replace(FAST, rate_wait_seconds=1), limiter=limiter, access=access)
    for _ in range(100):  # the whole budget, taken by other work
        await limiter.acquire(window_key("acme", account), 100, 60)
    with pytest.raises(PartnerUnavailable) as busy:
        await client.request("GET", "/x")
    assert "rate limit (100 calls per 60 s) is in use by other work; try again in" in busy.value.message
    assert busy.value.retry_after is not None and busy.value.retry_after > 50 and not route.called


def test_errors_survive_pickling() -> None:
    error = pickle.loads(pickle.dumps(PartnerUnavailable("acme", "down", 3.0)))  # noqa: S301 - own object
    assert (error.partner, error.message, error.retry_after) == ("acme", "down", 3.0)
    rejected = pickle.loads(pickle.dumps(PartnerAuthFailed("acme", 401, "no")))  # noqa: S301 - own object
    assert (rejected.status, str(rejected)) == (401, "no")


@respx.mock
async def test_a_create_is_not_replayed_after_an_answer_that_may_hide_success(http: httpx.AsyncClient) -> None:
    route = respx.post(f"{BASE}/items").mock(side_effect=[httpx.Response(429), httpx.Response(503)])
    with pytest.raises(PartnerUnavailable):
        await partner(http).request("POST", "/items", json={"a": 1}, replay_safe=False)
    # The 429 was resent (the partner did nothing); the 503 was not (it may have created the item).
    assert route.call_count == 2


def test_the_schedule_doubles_up_to_the_maximum() -> None:
    policy = RetryPolicy(base_seconds=5, max_seconds=300)
    assert [policy.wait(failures) for failures in range(1, 10)] == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert policy.wait(3, retry_after=7.5) == 7.5
    assert policy.wait(3, retry_after=0) == 0.25  # the floor: "Retry-After: 0" cannot spin
    assert policy.wait(10_000) == 300


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits PartnerHTTP asks for, without waiting."""
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def no_sleep(seconds: float) -> None:
        if threading.current_thread() is not threading.main_thread():
            # asyncio's own `sleep` is patched: the sandbox's server thread (its main loop) sleeps for real.
            await real_sleep(seconds)
            return
        asked.append(seconds)

    monkeypatch.setattr("app.clients.http.asyncio.sleep", no_sleep)
    return asked


@respx.mock
async def test_a_streak_continues_the_schedule_across_calls(http: httpx.AsyncClient, sleeps: list[float]) -> None:
    respx.get(f"{BASE}/items").mock(return_value=httpx.Response(503))
    streak = FailureStreak()
    policy = RetryPolicy(base_seconds=1, max_seconds=16, in_call_seconds=5).following(streak)
    for _ in range(3):
        with pytest.raises(PartnerUnavailable):
            await partner(http, policy).request("GET", "/items")
    # Call 1 waits 1 and 2 (4 would pass the 5 s budget); the later calls go on from there instead of restarting.
    assert sleeps == [1, 2]
    assert streak.failures == 5 and streak.since is not None
    assert [policy.wait(failures) for failures in range(streak.failures + 1, streak.failures + 3)] == [16, 16]


@respx.mock
async def test_without_a_streak_each_call_starts_afresh(http: httpx.AsyncClient, sleeps: list[float]) -> None:
    respx.get(f"{BASE}/items").mock(side_effect=[httpx.Response(500), httpx.Response(200)] * 2)
    policy = RetryPolicy(base_seconds=1, max_seconds=16, in_call_seconds=5)
    await partner(http, policy).request("GET", "/items")
    await partner(http, policy).request("GET", "/items")
    assert sleeps == [1, 1]


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "did not answer (connection refused)"),
        (httpx.ConnectError("[Errno -2] Name or service not known"), "did not answer (name not found)"),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), "did not answer (connection reset)"),
        (httpx.RemoteProtocolError("Server disconnected"), "did not answer (connection closed without an answer)"),
        (httpx.ConnectTimeout(""), "did not answer (timed out)"),
        (httpx.Response(429), "is limiting requests (HTTP 429)"),
        (httpx.Response(503), "is unavailable (HTTP 503)"),
        (httpx.Response(500), "had an internal error (HTTP 500)"),
        (httpx.Response(502), "is unreachable behind its gateway (HTTP 502)"),
    ],
)
async def test_outages_are_told_in_words_naming_the_host(
    http: httpx.AsyncClient, answer: httpx.Response | Exception, said: str
) -> None:
    policy = RetryPolicy(base_seconds=0.01, max_seconds=0.01, in_call_seconds=0)
    with respx.mock:
        respx.get(f"{BASE}/x").mock(side_effect=[answer])
        with pytest.raises(PartnerUnavailable) as caught:
            await partner(http, policy).request("GET", "/x")
    assert caught.value.message == f"Acme at partner.test {said}"
    assert "Error" not in caught.value.message and "Exception" not in caught.value.message


async def test_a_real_refused_connection_is_told_in_words(http: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    policy = RetryPolicy(base_seconds=0.01, max_seconds=0.01, in_call_seconds=0)
    # (Only loopback: an unknown name would send a query to the machine's resolver; respx covers its wording.)
    client = PartnerHTTP(
        http, partner="lucca", base_url=f"http://127.0.0.1:{closed_port}/acme", headers={}, retry=policy
    )
    with pytest.raises(PartnerUnavailable) as caught:
        await client.request("GET", "/x")
    assert caught.value.message == f"Lucca at 127.0.0.1:{closed_port} did not answer (connection refused)"


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(404, html="<html><head><title>404</title></head><body><h1>Not here</h1></body></html>"),
         "Not Found"),
        (httpx.Response(400, text="<?xml version='1.0'?><Error><Code>Bad</Code></Error>"), "Bad Request"),
        (httpx.Response(400, json={"message": "first line\nsecond line\r\n\x1b[31mred\x1b[0m <b>bold</b>"}),
         "first line second line [31mred [0m bold"),
        (httpx.Response(418, text=""), "I'm a teapot"),
    ],
)  # fmt: skip
async def test_a_partner_message_is_one_plain_line(
    http: httpx.AsyncClient, response: httpx.Response, expected: str
) -> None:
    with respx.mock:
        respx.get(f"{BASE}/x").mock(return_value=response)
        with pytest.raises(PartnerRejected) as caught:
            await partner(http).request("GET", "/x")
    said = caught.value.message.split("): ", 1)[1]
    assert said == expected


async def test_a_partner_message_is_short_and_masked_before_it_is_cut(http: httpx.AsyncClient) -> None:
    # The secret straddles the old cut (300 characters): cutting first kept its first part.
    for position in (290, 100, 115):
        body = "x" * position + SECRET + " and more " * 50
        with respx.mock:
            respx.get(f"{BASE}/x").mock(return_value=httpx.Response(400, text=body))
            with pytest.raises(PartnerRejected) as caught:
                await partner(http).request("GET", "/x")
        assert SECRET[:4] not in caught.value.message
        assert len(caught.value.message.split("): ", 1)[1]) <= 120
    assert partner_message(httpx.Response(400, text="token " + "y" * 200), lambda text: text).endswith("…")


async def test_a_host_leading_to_a_private_address_fails_for_good_in_plain_words() -> None:
    async def to_loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    transport = PartnerTransport(allow_private=False, limits=httpx.Limits(max_connections=5), resolver=to_loopback)
    async with httpx.AsyncClient(transport=transport) as http:
        for base_url in ("https://partner.test/acme", "https://localhost:6379", "https://127.0.0.1:5432"):
            client = PartnerHTTP(http, partner="taleez", base_url=base_url, headers={}, retry=FAST)
            started = time.monotonic()
            with pytest.raises(PartnerRejected) as caught:
                await client.request("GET", "/candidates/1")
            assert time.monotonic() - started < 0.5  # final: no retry
            assert caught.value.message.startswith(f"Taleez at {host_of(base_url)} was not called: its address is")
            assert "Error" not in caught.value.message and "refused" not in caught.value.message


async def test_the_services_client_checks_addresses_unless_http_upstreams_are_allowed() -> None:
    services = Services.start(Settings(allow_http_upstreams=False))
    try:
        with pytest.raises(httpx.ConnectError) as caught:
            await services.http.get("https://localhost:9/")
        assert isinstance(caught.value.__cause__, RefusedAddress)
    finally:
        await services.close()
