"""Lucca's webhooks (v5): endpoints registered with the activation echo, and every change to a person or a
department delivered as a signed event (`Lucca-Timestamp`, `Lucca-Signature`) by a background task per account,
retried on failure; a 404 or 410 answer suspends the endpoint."""

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.sandbox.lucca_gate import AccountDep
from app.sandbox.lucca_models import Department, LuccaError, User
from app.sandbox.lucca_oauth import API_VERSION, V5_SURFACE, v5_response
from app.sandbox.lucca_state import Change, Delivery, LuccaAccount, WebhookEndpoint
from app.sandbox.lucca_v5_records import V5View, v5_time

# Lucca gives an endpoint 3 s to answer, an echo or an event.
ANSWER_SECONDS = 3.0
# Attributes that change with every write: not a change of their own in `previousAttributes`.
IGNORED_ATTRIBUTES = {"createdAt", "lastUpdatedAt"}
# An event before it is stored: topic, data, previousAttributes (None but on updates).
EventDraft = tuple[str, dict[str, Any], dict[str, Any] | None]

router = APIRouter(prefix="/{account}", route_class=V5_SURFACE.route_class(), tags=["lucca v5 webhooks"])


class EndpointRequest(BaseModel):
    """The body of `POST /lucca-api/webhook-endpoints`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str = Field(min_length=1)
    webhook_url: str = Field(min_length=1, pattern=r"^https?://")
    api_version: str = Field(min_length=1)
    topics: list[str] = Field(min_length=1)
    business_establishments: list[dict[str, Any]] | None = None


def endpoint_record(account: LuccaAccount, endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The `webhook-endpoint` resource (its secret only in the creation's answer)."""
    return {
        "id": endpoint.id,
        "type": "webhook-endpoint",
        "url": f"{account.public_url}/lucca-api/webhook-endpoints/{endpoint.id}",
        "name": endpoint.name,
        "webhookUrl": endpoint.webhook_url,
        "apiVersion": endpoint.api_version,
        "topics": endpoint.topics,
        "businessEstablishments": endpoint.business_establishments,
        "status": endpoint.status,
        "createdAt": endpoint.created_at,
    }


async def answers_echo(url: str) -> bool:
    """Lucca's activation: `GET <url>?echo=<random>` must answer 200, `text/plain`, the same value."""
    challenge = secrets.token_urlsafe(16)
    try:
        async with httpx.AsyncClient(timeout=ANSWER_SECONDS) as http:
            answer = await http.get(url, params={"echo": challenge})
    except httpx.HTTPError:
        return False
    plain = answer.headers.get("content-type", "").split(";")[0].strip() == "text/plain"
    return answer.status_code == 200 and plain and answer.text == challenge


@router.post("/lucca-api/webhook-endpoints")
async def create_endpoint(body: EndpointRequest, lucca: AccountDep) -> JSONResponse:
    """Registers an endpoint, active only when it answered the echo; 201 with its signing `secret`."""
    state = lucca.webhooks
    endpoint = WebhookEndpoint(
        id=state.new_id(),
        name=body.name,
        webhook_url=body.webhook_url,
        api_version=body.api_version,
        topics=body.topics,
        business_establishments=body.business_establishments,
        secret=secrets.token_urlsafe(48),
        created_at=v5_time(datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")),
    )
    if await answers_echo(endpoint.webhook_url):
        endpoint.status = "active"
    state.endpoints[endpoint.id] = endpoint
    start_deliverer(lucca)
    record = {**endpoint_record(lucca, endpoint), "secret": endpoint.secret}
    answer = v5_response(lucca, record, status_code=201)
    answer.headers["Location"] = record["url"]
    return answer


@router.get("/lucca-api/webhook-endpoints")
async def list_endpoints(request: Request, lucca: AccountDep) -> JSONResponse:
    """The account's endpoints, `?status=active,suspended,inactive`."""
    statuses = {value for raw in request.query_params.getlist("status") for value in raw.split(",") if value}
    items = [
        endpoint_record(lucca, endpoint)
        for endpoint in lucca.webhooks.endpoints.values()
        if not statuses or endpoint.status in statuses
    ]
    return v5_response(lucca, {"type": "webhook-endpoints", "url": str(request.url), "items": items})


@router.get("/lucca-api/webhook-endpoints/{endpoint_id}")
async def get_endpoint(endpoint_id: str, lucca: AccountDep) -> JSONResponse:
    """One endpoint with its status."""
    endpoint = lucca.webhooks.endpoints.get(endpoint_id)
    if endpoint is None:
        raise LuccaError(404, "Resource may have previously been deleted.")
    return v5_response(lucca, endpoint_record(lucca, endpoint))


# ----------------------------------------------------------------------------------------------------
# From changes to events to deliveries, in the account's background task.


def changed_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """`previousAttributes`: the attributes that changed, with their previous values."""
    return {key: value for key, value in before.items() if key not in IGNORED_ATTRIBUTES and after.get(key) != value}


def person_events(view: V5View, change: Change) -> list[EventDraft]:
    """(topic, data, previousAttributes) for a person's change: the employee, employment and job position."""
    before, after = change.before, change.after
    assert isinstance(before, User | None) and isinstance(after, User | None)
    renderers = (("employee", view.employee), ("employment", view.employment), ("job-position", view.job_position))
    if after is None:
        assert before is not None
        return [("employee.deleted", view.employee(before), None)]
    if before is None:
        return [(f"{kind}.created", render(after), None) for kind, render in renderers]
    events: list[EventDraft] = []
    for kind, render in renderers:
        data, previous = render(after), changed_attributes(render(before), render(after))
        if previous:
            events.append((f"{kind}.updated", data, previous))
    return events


def department_events(view: V5View, change: Change) -> list[EventDraft]:
    """(topic, data, previousAttributes) for a department's change."""
    before, after = change.before, change.after
    assert isinstance(before, Department | None) and isinstance(after, Department)
    if before is None:
        return [("department.created", view.department(after), None)]
    previous = changed_attributes(view.department(before), view.department(after))
    return [("department.updated", view.department(after), previous)] if previous else []


def publish(account: LuccaAccount, change: Change) -> None:
    """Turns one change into events, and queues a delivery to each active endpoint wanting them."""
    state, view = account.webhooks, V5View.of(account)
    events = person_events(view, change) if change.kind == "employee" else department_events(view, change)
    person = change.after or change.before
    establishment = person.legal_entity_id if isinstance(person, User) else None
    for topic, data, previous in events:
        event_id = state.new_id()
        event: dict[str, Any] = {
            "id": event_id,
            "type": "event",
            "url": f"{view.base}/events/{event_id}",
            "apiVersion": API_VERSION,
            "topic": topic,
            "occurredAt": v5_time(change.at),
            "source": account.public_url,
            "businessEstablishment": view.ref("business-establishment", "business-establishments", establishment),
            "data": data,
            "links": {"retry": {"href": f"{view.base}/webhook-deliveries"}},
        }
        if previous is not None:
            event["previousAttributes"] = previous
        state.events[event_id] = event
        for endpoint in state.endpoints.values():
            if endpoint.wants(topic, None if establishment is None else str(establishment)):
                queue_delivery(account, event_id, endpoint.id)


def queue_delivery(account: LuccaAccount, event_id: str, endpoint_id: str) -> Delivery:
    """Queues one more delivery of a stored event to an endpoint."""
    state = account.webhooks
    topic = state.events[event_id]["topic"]
    delivery = Delivery(state.new_id(), event_id, endpoint_id, topic)
    state.deliveries.append(delivery)
    state.queue.append(delivery)
    state.wake.set()
    return delivery


def signed_headers(secret: str, raw_body: bytes) -> dict[str, str]:
    """`Lucca-Timestamp` (UTC ISO 8601) and `Lucca-Signature` = base64(HMAC-SHA256(secret, f"{timestamp}.{body}"))."""
    timestamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "Lucca-Timestamp": timestamp,
        "Lucca-Signature": base64.b64encode(digest).decode(),
    }


async def attempt(http: httpx.AsyncClient, account: LuccaAccount, delivery: Delivery) -> None:
    """Sends a delivery once: delivered on a 2xx, the endpoint suspended on a 404/410, else retried later."""
    state = account.webhooks
    endpoint = state.endpoints.get(delivery.endpoint_id)
    if endpoint is None or endpoint.status != "active":
        delivery.status = "failed"
        delivery.last_error = "the endpoint is not active"
        return
    raw = json.dumps(state.events[delivery.event_id]).encode()
    delivery.attempts += 1
    try:
        answer = await http.post(endpoint.webhook_url, content=raw, headers=signed_headers(endpoint.secret, raw))
        delivery.last_status_code, delivery.last_error = answer.status_code, None
    except httpx.HTTPError as exc:
        delivery.last_status_code, delivery.last_error = None, str(exc) or type(exc).__name__
    code = delivery.last_status_code
    if code is not None and 200 <= code < 300:
        delivery.status = "delivered"
    elif code in (404, 410):
        delivery.status, endpoint.status = "failed", "suspended"
    elif delivery.attempts < state.attempts:
        delivery.status = "undelivered"
        asyncio.get_running_loop().call_later(state.retry_seconds * delivery.attempts, retry, account, delivery)
    else:
        delivery.status = "failed"


def retry(account: LuccaAccount, delivery: Delivery) -> None:
    """Puts a failed delivery back in the queue."""
    account.webhooks.queue.append(delivery)
    account.webhooks.wake.set()


async def deliver_forever(account: LuccaAccount) -> None:
    """The account's deliverer: publishes recorded changes, then sends queued deliveries one at a time."""
    state = account.webhooks
    async with httpx.AsyncClient(timeout=ANSWER_SECONDS) as http:
        while True:
            await state.wake.wait()
            state.wake.clear()
            while state.changes:
                publish(account, state.changes.pop(0))
            while state.queue and not state.paused:
                await attempt(http, account, state.queue.popleft())


def start_deliverer(account: LuccaAccount) -> None:
    """Starts the account's deliverer unless it runs already (changes are never delivered inside a request)."""
    state = account.webhooks
    if state.task is None or state.task.done():
        state.task = asyncio.get_running_loop().create_task(deliver_forever(account))
