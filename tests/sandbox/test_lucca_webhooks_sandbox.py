"""The Lucca sandbox's webhooks: registration with the echo, signed deliveries of every change made through v3 or a
control, retries, suspension on 410, and the controls that pause, reorder, repeat and list deliveries."""

import asyncio
import base64
import hashlib
import hmac
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.sandbox.test_lucca_v5_sandbox import bearer
from tests.sandbox_server import LuccaAccount, SandboxServer

TOPICS = [
    f"{kind}.{change}"
    for kind in ("employee", "employment", "job-position", "department")
    for change in ("created", "updated", "deleted")
]


class Receiver:
    """A tiny webhook receiver: answers the echo (unless told not to), records events, answers them as told."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, str], bytes]] = []
        self.statuses: deque[int] = deque()
        self.echo = True
        # Set, events are answered at once; cleared, each waits until it is set again.
        self.open = threading.Event()
        self.open.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                echo = parse_qs(urlparse(self.path).query).get("echo", [""])[0]
                body = (echo if receiver.echo else "no").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.open.wait(timeout=10)
                status = receiver.statuses.popleft() if receiver.statuses else 200
                if status == 200:
                    receiver.events.append((dict(self.headers.items()), raw))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/lucca"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def topics(self) -> list[str]:
        return [json.loads(raw)["topic"] for _, raw in self.events]

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for _, raw in self.events]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def account(sandbox: SandboxServer) -> LuccaAccount:
    account = sandbox.new_lucca_account()
    account.control("PATCH", "/settings", json={"delivery_retry_seconds": 0.05})
    return account


async def register(
    http: httpx.AsyncClient, account: LuccaAccount, url: str, topics: list[str] = TOPICS
) -> dict[str, Any]:
    """Registers an endpoint for these topics (every person and department topic by default); the 201's body."""
    headers = await bearer(http, account, scope="webhook-endpoints.readwrite")
    body = {"name": "lucca-connectors", "webhookUrl": url, "apiVersion": "2024-11-01", "topics": topics}
    answer = await http.post(f"/{account.name}/lucca-api/webhook-endpoints", headers=headers, json=body)
    assert answer.status_code == 201, answer.text
    endpoint: dict[str, Any] = answer.json()
    return endpoint


async def eventually(check: Callable[[], bool]) -> None:
    """Waits (10 s at most) until the background deliveries made `check` true."""
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the sandbox did not deliver in 10 s")


def deliveries(account: LuccaAccount) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = account.control("GET", "/webhooks/deliveries").json()["items"]
    return items


async def test_registration_answers_the_echo_then_the_endpoint_is_active(
    http: httpx.AsyncClient, account: LuccaAccount, receiver: Receiver
) -> None:
    endpoint = await register(http, account, receiver.url)
    assert endpoint["status"] == "active"
    assert len(endpoint["secret"]) >= 32
    headers = await bearer(http, account, scope="webhook-endpoints.readwrite")
    one = (await http.get(f"/{account.name}/lucca-api/webhook-endpoints/{endpoint['id']}", headers=headers)).json()
    assert (one["status"], one["webhookUrl"], "secret" in one) == ("active", receiver.url, False)
    listed = await http.get(f"/{account.name}/lucca-api/webhook-endpoints?status=active", headers=headers)
    assert [item["id"] for item in listed.json()["items"]] == [endpoint["id"]]


async def test_an_endpoint_that_does_not_echo_stays_inactive_and_gets_nothing(
    http: httpx.AsyncClient, account: LuccaAccount, receiver: Receiver
) -> None:
    receiver.echo = False
    endpoint = await register(http, account, receiver.url)
    assert endpoint["status"] == "inactive"
    unreachable = await register(http, account, "http://127.0.0.1:9/nothing")
    assert unreachable["status"] == "inactive"
    account.change_person(102, firstName="Jeannot")
    await asyncio.sleep(0.2)
    assert receiver.events == []


async def test_registering_needs_the_readwrite_scope(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    headers = await bearer(http, account, scope="employees.readonly")
    body = {"name": "x", "webhookUrl": "http://127.0.0.1:9/", "apiVersion": "2024-11-01", "topics": TOPICS}
    answer = await http.post(f"/{account.name}/lucca-api/webhook-endpoints", headers=headers, json=body)
    assert answer.status_code == 403


async def test_a_change_is_delivered_signed_with_the_endpoint_secret(
    http: httpx.AsyncClient, account: LuccaAccount, receiver: Receiver
) -> None:
    endpoint = await register(http, account, receiver.url)
    account.change_person(102, firstName="Jeannot")
    await eventually(lambda: len(receiver.events) == 1)
    headers, raw = receiver.events[0]
    expected = hmac.new(
        endpoint["secret"].encode(), headers["Lucca-Timestamp"].encode() + b"." + raw, hashlib.sha256
    ).digest()
    assert headers["Lucca-Signature"] == base64.b64encode(expected).decode()
    sent_at = datetime.fromisoformat(headers["Lucca-Timestamp"])
    assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)
    event = json.loads(raw)
    assert (event["type"], event["topic"], event["apiVersion"]) == ("event", "employee.updated", "2024-11-01")
    assert event["data"]["id"] == "102"
    assert event["data"]["givenName"] == "Jeannot"
    assert event["previousAttributes"] == {"givenName": "Jean"}
    assert event["source"] == f"{account.server.url}/{account.name}"
    assert event["businessEstablishment"]["id"] == "1"
    assert deliveries(account)[0]["status"] == "delivered"


async def test_a_resource_pattern_takes_each_change_of_that_resource_and_no_other(
    http: httpx.AsyncClient, account: LuccaAccount, receiver: Receiver
) -> None:
    """`employee.*` (the contract's form) stands for employee.created, .updated and .deleted, not for employment.*."""
    await register(http, account, receiver.url, topics=["employee.*", "department.updated"])
    hired = account.hire(firstName="Nora", lastName="Petit", mail="nora@acme.fr", dtContractStart="2026-01-05")
    account.change_person(hired["id"], firstName="Norah")
    account.delete_person(hired["id"])
    await eventually(lambda: len(receiver.events) == 3)
    await asyncio.sleep(0.2)
    assert receiver.topics() == ["employee.created", "employee.updated", "employee.deleted"]


async def test_every_kind_of_change_makes_its_events(
    http: httpx.AsyncClient, account: LuccaAccount, receiver: Receiver
) -> None:
    await register(http, account, receiver.url)
    hired = account.hire(firstName="Nora", lastName="Petit", mail="nora@acme.fr", dtContractStart="2026-01-05")
    await eventually(lambda: len(receiver.events) == 3)
    assert receiver.topics() == ["employee.created", "employment.created", "job-position.created"]
    assert receiver.bodies()[1]["data"]["employee"]["id"] == str(hired["id"])

    account.change_person(hired["id"], departmentId=11)
    await eventually(lambda: len(receiver.events) == 4)
    moved = receiver.bodies()[3]
    assert (moved["topic"], moved["previousAttributes"]["department"]["id"]) == ("job-position.updated", "10")

    account.change_person(hired["id"], dtContractEnd="2026-02-01")
    await eventually(lambda: len(receiver.events) == 7)
    assert sorted(receiver.topics()[4:]) == ["employee.updated", "employment.updated", "job-position.updated"]

    key = {"Authorization": f"lucca application={account.api_key}"}
    written = await http.put(f"/{account.name}/api/v3/users/100", headers=key, json={"mail": "claire@acme.fr"})
    assert written.status_code == 200
    await eventually(lambda: len(receiver.events) == 8)
    assert receiver.bodies()[7]["previousAttributes"] == {"email": "claire.martin@acme.fr"}

    account.delete_person(hired["id"])
    account.control("PUT", "/departments/12", json={"name": "People & Culture"})
    await eventually(lambda: len(receiver.events) == 10)
    assert receiver.topics()[8:] == ["employee.deleted", "department.updated"]
    assert receiver.bodies()[9]["previousAttributes"] == {"name": "People"}


async def test_a_failed_delivery_is_retried(http: httpx.AsyncClient, account: LuccaAccount, receiver: Receiver) -> None:
    await register(http, account, receiver.url)
    receiver.statuses.extend([500, 503])
    account.change_person(102, jobTitle="Architect")
    await eventually(lambda: len(receiver.events) == 1)
    delivery = deliveries(account)[0]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 3, 200)


async def test_a_410_suspends_the_endpoint(http: httpx.AsyncClient, account: LuccaAccount, receiver: Receiver) -> None:
    endpoint = await register(http, account, receiver.url)
    receiver.statuses.append(410)
    account.change_person(102, jobTitle="Architect")
    await eventually(lambda: deliveries(account)[0]["status"] == "failed")
    headers = await bearer(http, account, scope="webhook-endpoints.readwrite")
    one = await http.get(f"/{account.name}/lucca-api/webhook-endpoints/{endpoint['id']}", headers=headers)
    assert one.json()["status"] == "suspended"
    account.change_person(102, jobTitle="Principal")
    await asyncio.sleep(0.2)
    assert receiver.events == []
    assert len(deliveries(account)) == 1


async def test_a_suspend_control_stops_deliveries(
    http: httpx.AsyncClient, account: LuccaAccount, receiver: Receiver
) -> None:
    endpoint = await register(http, account, receiver.url)
    account.control("POST", f"/webhook-endpoints/{endpoint['id']}/suspend")
    account.change_person(102, jobTitle="Architect")
    await asyncio.sleep(0.2)
    assert receiver.events == []


async def test_paused_deliveries_resume_newest_first_and_an_event_is_redelivered(
    http: httpx.AsyncClient, account: LuccaAccount, receiver: Receiver
) -> None:
    await register(http, account, receiver.url)
    account.control("POST", "/webhooks/pause")
    account.change_person(102, jobTitle="First")
    account.change_person(102, jobTitle="Second")
    await eventually(lambda: len(deliveries(account)) == 2)
    assert receiver.events == []
    account.control("POST", "/webhooks/resume", json={"reverse": True})
    await eventually(lambda: len(receiver.events) == 2)
    assert [body["data"]["jobTitle"] for body in receiver.bodies()] == ["Second", "First"]

    first_event = receiver.bodies()[1]["id"]
    account.control("POST", f"/webhooks/events/{first_event}/redeliver")
    await eventually(lambda: len(receiver.events) == 3)
    assert receiver.bodies()[2]["id"] == first_event
    events = account.control("GET", "/webhooks/events").json()["items"]
    assert [event["data"]["jobTitle"] for event in events] == ["First", "Second"]


async def test_a_change_is_answered_before_its_event_is_delivered(
    http: httpx.AsyncClient, account: LuccaAccount, receiver: Receiver
) -> None:
    await register(http, account, receiver.url)
    receiver.open.clear()
    key = {"Authorization": f"lucca application={account.api_key}"}
    written = await http.put(f"/{account.name}/api/v3/users/102", headers=key, json={"jobTitle": "Architect"})
    assert written.status_code == 200
    # Had the write waited for the delivery, the receiver's silence would have made it undelivered (3 s timeout).
    assert [delivery["status"] for delivery in deliveries(account)] in ([], ["pending"])
    receiver.open.set()
    await eventually(lambda: len(receiver.events) == 1)
    assert deliveries(account)[0]["status"] == "delivered"
