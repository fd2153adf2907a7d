"""Webhook alerts, signed as Standard Webhooks specifies: receivers verify them with any of its libraries."""

import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from app.alerts.message import AlertMessage
from app.alerts.senders.posting import post_alert
from app.models.alert import AlertChannel
from app.services.context import Services


def event_type(message: AlertMessage) -> str:
    """`problem.opened`, `problem.reminder`, `problem.resolved`, or `test`."""
    return "test" if message.event == "test" else f"problem.{message.event}"


def json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value) if isinstance(value, uuid.UUID) else value


def webhook_body(message: AlertMessage, sent_at: datetime) -> bytes:
    """Standard Webhooks' payload shape: the type, when it was sent, and the message's fields as data."""
    data = {name: json_value(value) for name, value in asdict(message).items()}
    payload = {"type": event_type(message), "timestamp": sent_at.isoformat(), "data": data}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


async def send_webhook(services: Services, channel: AlertChannel, message: AlertMessage) -> None:
    # The id is the delivery's, the same on every retry: receivers deduplicate on it.
    assert channel.secret_encrypted is not None
    sent_at = datetime.now(UTC)
    body = webhook_body(message, sent_at)
    signature = Webhook(services.box.decrypt(channel.secret_encrypted)).sign(str(message.id), sent_at, body)
    headers = {
        "webhook-id": str(message.id),
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }
    await post_alert(services, channel, "webhook", body, headers)
