"""Lucca's webhooks: what arrives on a tenant's endpoint, checked and stored before it is answered (CONTRACT 13).

The URL's random token names the tenant (only its SHA-256 is stored); the endpoint's secret, which Lucca returned
when the endpoint was registered (app.directory.registration), signs every delivery:
`Lucca-Signature = base64(HMAC-SHA256(secret, "{Lucca-Timestamp}.{raw body}"))`, with the timestamp within 5
minutes of now. Only then is the event stored, once per id; a job applies it (app.directory.events).
"""

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from app.crypto import SecretBox, hash_token
from app.errors import Unauthorized
from app.metrics import metrics
from app.schemas.common import String

SOURCE = "lucca"
SIGNATURE_HEADER = "Lucca-Signature"
TIMESTAMP_HEADER = "Lucca-Timestamp"
MAX_SKEW = timedelta(minutes=5)
# The activation's challenge is echoed back as it came, up to this length.
MAX_ECHO_CHARS = 200
WEBHOOK_PATH = "/integrations/webhooks/lucca"
NOT_SIGNED = "Missing or invalid Lucca-Signature or Lucca-Timestamp."

TARGET = """
    SELECT directory_states.tenant_id, directory_states.webhook_secret_encrypted
    FROM directory_states JOIN tenants ON tenants.id = directory_states.tenant_id
    WHERE directory_states.webhook_token_hash = $1 AND tenants.deleted_at IS NULL
"""
STORE_EVENT = """
    INSERT INTO lucca_events (tenant_id, event_id, topic, occurred_at, payload, received_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (tenant_id, event_id) DO NOTHING
    RETURNING event_id
"""


def webhook_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}{WEBHOOK_PATH}/{token}"


LuccaId = Annotated[String, Field(min_length=1, max_length=200)] | int


class Reference(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: LuccaId | None = None


class EventData(Reference):
    """The resource just after the change: its id, and for an employment or job position, its employee's."""

    employee: Reference | None = None


class LuccaEventIn(BaseModel):
    """What the service reads of a Lucca event (lucca-v5.md 7.2); keys it does not use are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: LuccaId | None = Field(default=None, description="The event's id: a resend of it is ignored.")
    topic: Annotated[String, Field(min_length=1, max_length=100, examples=["employee.updated"])]
    occurredAt: datetime | None = None  # Lucca's own name, so that the stored payload keeps it
    data: EventData | None = None

    def payload(self) -> dict[str, Any]:
        """What is kept of the event: the fields the job applying it reads."""
        return self.model_dump(mode="json", exclude_none=True)


EVENT_EXAMPLE: dict[str, Any] = {
    "id": "123",
    "type": "event",
    "apiVersion": "2024-11-01",
    "topic": "employee.updated",
    "occurredAt": "2026-12-06T09:34:23.001Z",
    "source": "https://acme.ilucca.net",
    "data": {"id": "875", "type": "employee"},
}


@dataclass(frozen=True)
class LuccaTarget:
    """The tenant a webhook token names, and its endpoint's signing secret (None until Lucca gave one)."""

    tenant_id: uuid.UUID
    secret: str | None


async def webhook_target(connection: asyncpg.Connection, box: SecretBox, token: str) -> LuccaTarget:
    """The tenant whose endpoint URL carries this token (looked up by its hash); 401 for any other token, as the
    Cards webhook answers."""
    row = await connection.fetchrow(TARGET, hash_token(token))
    if row is None:
        raise Unauthorized("Unknown webhook token.")
    encrypted = row["webhook_secret_encrypted"]
    return LuccaTarget(tenant_id=row["tenant_id"], secret=box.decrypt(encrypted) if encrypted else None)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Lucca's signature of a delivery: base64(HMAC-SHA256(secret, "{timestamp}.{body}"))."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def parse_timestamp(value: str) -> datetime | None:
    """`Lucca-Timestamp`: UTC ISO 8601 (an offset-less time is read as UTC; Unix seconds are accepted too)."""
    value = value.strip()
    try:
        moment = datetime.fromtimestamp(int(value), UTC) if value.isdigit() else datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_signed(target: LuccaTarget, headers: Any, body: bytes, now: datetime) -> None:
    """401 unless the delivery carries a timestamp within 5 minutes of now and the endpoint secret's signature of
    it and the raw body (compared in constant time)."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    moment = parse_timestamp(timestamp) if timestamp else None
    signed = (
        target.secret is not None
        and moment is not None
        and bool(given)
        and abs(now - moment) <= MAX_SKEW
        and hmac.compare_digest(signature(target.secret, timestamp, body).encode(), given.strip().encode())
    )
    if not signed:
        metrics.inc("webhook_deliveries_total", source=SOURCE, outcome="refused")
        raise Unauthorized(NOT_SIGNED)


def event_id(event: LuccaEventIn, body: bytes) -> str:
    """Lucca's event id; an event without one (a ping) is known by its body's hash, so a resend is still one."""
    return str(event.id) if event.id is not None else "sha256:" + hashlib.sha256(body).hexdigest()


async def store_event(
    connection: asyncpg.Connection, target: LuccaTarget, event: LuccaEventIn, body: bytes, now: datetime
) -> tuple[str, bool]:
    """Store the event once per id; returns its id and whether it was seen before (then nothing more is done)."""
    known_as = event_id(event, body)
    payload = json.dumps(event.payload())
    stored = await connection.fetchval(
        STORE_EVENT, target.tenant_id, known_as, event.topic, event.occurredAt, payload, now
    )
    duplicate = stored is None
    metrics.inc("webhook_deliveries_total", source=SOURCE, outcome="duplicate" if duplicate else "lucca_event")
    return known_as, duplicate
