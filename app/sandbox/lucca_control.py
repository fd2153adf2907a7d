"""The Lucca sandbox's own controls, beside the account seeding in `control.py`: change people and departments while
it runs (each change sets `modifiedAt` and becomes webhook events), OAuth clients and token lifetime, `Sunset`
headers, call counts per API surface, webhook deliveries (pause, resume in or out of order, redeliver, suspend)."""

import time
from collections import Counter
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.sandbox.control import AccountDep
from app.sandbox.faults import describe_errors
from app.sandbox.lucca_models import Department, LuccaError, OAuthClientSeed
from app.sandbox.lucca_state import LuccaAccount
from app.sandbox.lucca_users import (
    REQUIRED_USER_FIELDS,
    build_user,
    check_references,
    check_required,
    write_extended_data,
)
from app.sandbox.lucca_v3 import FULL_USER_FIELDS, UserView
from app.sandbox.lucca_webhooks import queue_delivery

router = APIRouter(prefix="/_sandbox/lucca/accounts/{account}", tags=["sandbox control"])

# The API surface of a logged call, by the start of its path.
SURFACES = (("/api/v3/", "v3"), ("/organization/", "v4"), ("/lucca-api/", "v5"), ("/connect/token", "token"))


def person_record(request: Request, lucca: LuccaAccount, user_id: int) -> dict[str, Any]:
    """The person as the legacy API returns them, every field."""
    return UserView.of(request, lucca, lucca.name).render(lucca.users[user_id], FULL_USER_FIELDS)


@router.post("/people", status_code=status.HTTP_201_CREATED)
async def hire_person(body: dict[str, Any], request: Request, lucca: AccountDep) -> dict[str, Any]:
    """Hires a person: v3 user fields (`firstName`, `lastName`, `mail`, `departmentId`, `legalEntityId`, `jobTitle`,
    `managerId`, `dtContractStart`, …); `login` defaults to `mail`, `rolePrincipalId` to the account's first role."""
    defaults = {"login": body.get("mail"), "rolePrincipalId": min(lucca.roles, default=None)}
    body = {**defaults, **body}
    check_required(body, REQUIRED_USER_FIELDS, partial=False)
    user = build_user({"id": lucca.new_user_id()}, body)
    check_references(lucca, user, body)
    write_extended_data(lucca, user, body)
    lucca.save_user(user)
    return person_record(request, lucca, user.id)


@router.patch("/people/{user_id}")
async def change_person(user_id: int, body: dict[str, Any], request: Request, lucca: AccountDep) -> dict[str, Any]:
    """Changes a person: rename (`firstName`/`lastName`), change e-mail (`mail`), move (`departmentId`), end the
    contract (`dtContractEnd`), or any other v3 user field."""
    current = lucca.users.get(user_id)
    if current is None:
        raise LuccaError(404, f"No user {user_id} in this account")
    check_required(body, REQUIRED_USER_FIELDS, partial=True)
    user = build_user(current.model_dump(by_alias=True), body)
    check_references(lucca, user, body)
    write_extended_data(lucca, user, body)
    lucca.save_user(user)
    return person_record(request, lucca, user.id)


@router.delete("/people/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_person(user_id: int, lucca: AccountDep) -> None:
    """Deletes a person outright (Lucca's `employee.deleted`)."""
    if lucca.remove_user(user_id) is None:
        raise LuccaError(404, f"No user {user_id} in this account")


@router.put("/departments/{department_id}")
async def put_department(department_id: int, body: dict[str, Any], lucca: AccountDep) -> dict[str, Any]:
    """Creates or changes a department (v4 fields: `name`, `code`, `parentId`, `isActive`, `headId`, …)."""
    current = lucca.departments.get(department_id)
    base = current.model_dump(by_alias=True) if current is not None else {}
    try:
        department = Department.model_validate({**base, **body, "id": department_id})
    except ValidationError as exc:
        raise LuccaError(400, f"Invalid department: {describe_errors(exc.errors())}") from exc
    return lucca.save_department(department).model_dump(by_alias=True)


class OAuthClientBody(BaseModel):
    """An OAuth client's secret and scopes."""

    model_config = ConfigDict(extra="forbid")

    client_secret: str = Field(min_length=1)
    scopes: list[str] = []


@router.put("/oauth-clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
async def put_oauth_client(client_id: str, client: OAuthClientBody, lucca: AccountDep) -> None:
    """Registers (or replaces) an OAuth client with its secret and the scopes it may ask for."""
    lucca.oauth_clients[client_id] = OAuthClientSeed(client_id=client_id, **client.model_dump())


class AccountSettings(BaseModel):
    """What a test or a benchmark may change in a running account: token lifetime, v5 headers, delivery retries."""

    model_config = ConfigDict(extra="forbid")

    token_lifetime_seconds: int | None = Field(default=None, ge=1)
    sunset: str | None = None
    deprecation: str | None = None
    delivery_attempts: int | None = Field(default=None, ge=1)
    delivery_retry_seconds: float | None = Field(default=None, ge=0)


@router.patch("/settings", status_code=status.HTTP_204_NO_CONTENT)
async def change_settings(settings: AccountSettings, lucca: AccountDep) -> None:
    """Changes the given settings; `sunset` / `deprecation` set to null remove the header."""
    given = settings.model_dump(exclude_unset=True)
    if settings.token_lifetime_seconds is not None:
        lucca.token_lifetime_seconds = settings.token_lifetime_seconds
    if "sunset" in given:
        lucca.sunset = settings.sunset
    if "deprecation" in given:
        lucca.deprecation = settings.deprecation
    if settings.delivery_attempts is not None:
        lucca.webhooks.attempts = settings.delivery_attempts
    if settings.delivery_retry_seconds is not None:
        lucca.webhooks.retry_seconds = settings.delivery_retry_seconds


@router.post("/oauth/expire-tokens", status_code=status.HTTP_204_NO_CONTENT)
async def expire_tokens(lucca: AccountDep) -> None:
    """Every token given so far expires now (the next v5 call with one is a 401)."""
    lucca.tokens = {key: token.expired_at(time.time()) for key, token in lucca.tokens.items()}


@router.get("/call-counts")
async def call_counts(lucca: AccountDep) -> dict[str, Any]:
    """Calls logged per API surface (`v3`, `v4`, `v5`, `token`, whatever their answer), and token requests and v5
    calls per OAuth client; `DELETE …/calls` starts them again from zero."""
    surfaces: Counter[str] = Counter(dict.fromkeys(("v3", "v4", "v5", "token"), 0))
    by_client: dict[str, Counter[str]] = {"token": Counter(), "v5": Counter()}
    for call in lucca.traffic.calls:
        surface = next((name for prefix, name in SURFACES if call.path.startswith(prefix)), "other")
        surfaces[surface] += 1
        if surface in by_client and call.caller is not None:
            by_client[surface][call.caller] += 1
    return {**surfaces, "token_by_client": by_client["token"], "v5_by_client": by_client["v5"]}


@router.post("/webhooks/pause", status_code=status.HTTP_204_NO_CONTENT)
async def pause_deliveries(lucca: AccountDep) -> None:
    """Holds every delivery (events are still made) until `resume`."""
    lucca.webhooks.paused = True


class Resume(BaseModel):
    """How held deliveries go out: in the order they were made, or newest first (events out of order)."""

    model_config = ConfigDict(extra="forbid")

    reverse: bool = False


@router.post("/webhooks/resume", status_code=status.HTTP_204_NO_CONTENT)
async def resume_deliveries(lucca: AccountDep, resume: Resume | None = None) -> None:
    """Sends the held deliveries, `{"reverse": true}` newest first."""
    state = lucca.webhooks
    if resume is not None and resume.reverse:
        state.queue.reverse()
    state.paused = False
    state.wake.set()


@router.post("/webhooks/events/{event_id}/redeliver", status_code=status.HTTP_202_ACCEPTED)
async def redeliver_event(event_id: str, lucca: AccountDep) -> dict[str, Any]:
    """Sends a stored event again to every endpoint it went to (a duplicate, or a late one after newer events)."""
    state = lucca.webhooks
    if event_id not in state.events:
        raise LuccaError(404, f"No event {event_id} in this account")
    endpoint_ids = dict.fromkeys(d.endpoint_id for d in state.deliveries if d.event_id == event_id)
    deliveries = [queue_delivery(lucca, event_id, endpoint_id) for endpoint_id in endpoint_ids]
    return {"deliveries": [delivery.id for delivery in deliveries]}


@router.post("/webhook-endpoints/{endpoint_id}/suspend", status_code=status.HTTP_204_NO_CONTENT)
async def suspend_endpoint(endpoint_id: str, lucca: AccountDep) -> None:
    """Suspends an endpoint as Lucca does after failures: nothing more is delivered to it."""
    endpoint = lucca.webhooks.endpoints.get(endpoint_id)
    if endpoint is None:
        raise LuccaError(404, f"No webhook endpoint {endpoint_id} in this account")
    endpoint.status = "suspended"


@router.get("/webhooks/deliveries")
async def list_deliveries(lucca: AccountDep) -> dict[str, Any]:
    """Every delivery, oldest first: event, endpoint, topic, status, attempts, last answer."""
    return {"items": [asdict(delivery) for delivery in lucca.webhooks.deliveries]}


@router.get("/webhooks/events")
async def list_events(lucca: AccountDep) -> dict[str, Any]:
    """Every event the account made, oldest first, as delivered."""
    return {"items": list(lucca.webhooks.events.values())}
